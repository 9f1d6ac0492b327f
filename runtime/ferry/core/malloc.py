"""glibc's malloc told to give whole small files' buffers back to the system when they are freed.

glibc serves a request of at least its mmap threshold (128 KiB at first) with a mapping of its
own, freed at once, but raises the threshold to the size of each such buffer freed: after the
first 1 MiB file has been read whole, every later one is carved from the arena of the thread that
reads it, and 32 threads' arenas keep what they held at their peak. Fixing the threshold at 1 MiB
keeps those buffers out of the arenas: uploading 1,000 files of 1 MiB peaked at 82 MiB instead of
94 (``benchmarks/s3_transfer.py``), for about 0.8 s more CPU (a page fault per 4 KiB read), which
did not show in the wall time. At 128 KiB the 256 KiB pieces of downloads went back too (76 MiB
instead of 98 for the same files), but at 1.7 s more CPU and a slower download, so not those.

Only Ferry's own transfer processes set it (``ferry pod fetch`` and ``publish``): the setting is
the whole process's, and in a user's process it would map and unmap every array of 1 MiB or more
on each use.
"""

from __future__ import annotations

import functools
import os

M_MMAP_THRESHOLD = -3
"""``mallopt``'s parameter number (``malloc.h``); setting it also stops glibc raising it."""
THRESHOLD = 1024 * 1024
"""A whole small file (``transfer.SMALL``, read with one byte more) and more: no smaller buffer."""


@functools.cache
def return_large_buffers() -> bool:
    """Fix the mmap threshold (once per process; nothing on another C library). Whether it was set."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return False
        import ctypes

        return bool(ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, THRESHOLD))
    except (ValueError, OSError, AttributeError):  # not glibc, or no confstr name
        return False
