"""The lowest floor: errors, URIs, the records fast path, local files, integrity, process lifetime.

Standard library only; imports nothing else of Ferry."""
