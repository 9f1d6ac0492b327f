"""glibc's malloc told to give large buffers back to the system when they are freed.

glibc serves a request of at least its mmap threshold (128 KiB at first) with a mapping of its
own, freed at once, but raises the threshold to the size of each such buffer freed: after the
first 1 MiB file has moved, every later one is carved from the arena of the thread that reads it,
and 32 threads' arenas keep what they held at their peak. Fixing the threshold keeps file-sized
buffers (whole small files, 256 KiB pieces of downloads) out of the arenas: 1,000 files of 1 MiB
peaked 12 MiB lower on upload and 23 MiB lower on download (``benchmarks/s3_transfer.py``), for
a page fault per 4 KiB of each buffer, which cost no measurable time there.
"""

from __future__ import annotations

import functools
import os

M_MMAP_THRESHOLD = -3
"""``mallopt``'s parameter number (``malloc.h``); setting it also stops glibc raising it."""
THRESHOLD = 128 * 1024
"""glibc's own starting value."""


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
