"""The local executor (``ferry run``): processes, containers, the fork server and the run history."""
