"""How Ferry reads a local file it is about to store: only regular files, never through a link
that leaves the folder being published, never from ``/proc`` or ``/sys``.

The process that uploads holds the store's credentials in its environment, and
``/proc/self/environ`` is a regular-looking file: a task that links an output there would
otherwise publish the keys. So every upload opens its source with ``open_regular``, which checks
the opened descriptor itself (no race between a check and the open), and publishing a task's
outputs first confines each one to the outputs folder with ``confined``.
"""

from __future__ import annotations

import errno
import functools
import os
import pathlib
import stat
from typing import BinaryIO

from ferry.core import errors

_PSEUDO_FILESYSTEMS = ("/proc", "/sys")


@functools.cache
def _pseudo_devices() -> frozenset[int]:
    """Device numbers of the kernel's pseudo filesystems, wherever they are mounted."""
    found = set()
    for root in _PSEUDO_FILESYSTEMS:
        try:
            found.add(os.stat(root).st_dev)
        except OSError:
            pass
    return frozenset(found)


def _refuse_pseudo(shown: object, real: str) -> None:
    if any(real == root or real.startswith(root + "/") for root in _PSEUDO_FILESYSTEMS):
        raise errors.PathEscapeError(f"{shown} is {real}, a kernel file, which Ferry never stores: "
                                     f"write the data to a regular file instead")


def confined(path: pathlib.Path, folder: pathlib.Path) -> pathlib.Path:
    """``path`` with its links resolved, if it stays inside ``folder``; PathEscapeError otherwise."""
    top = folder.resolve(strict=True)
    real = pathlib.Path(os.path.realpath(path))
    if not real.is_relative_to(top):
        raise errors.PathEscapeError(
            f"{path} links to {real}, outside {top}: write or copy the data into {top} instead of linking to it")
    return real


def check_tree_root(root: pathlib.Path) -> pathlib.Path:
    """The resolved root of a directory to publish, refusing kernel folders such as ``/proc/self``."""
    real = root.resolve(strict=True)
    _refuse_pseudo(root, str(real))
    return real


def check_regular(shown: object, info: os.stat_result) -> None:
    """Refuse anything but a regular file on a real filesystem (FIFOs, devices, sockets, /proc)."""
    if not stat.S_ISREG(info.st_mode):
        raise errors.PathEscapeError(f"{shown} is not a regular file or directory (a FIFO, device or socket); "
                                     f"only regular files and directories can be stored")
    if info.st_dev in _pseudo_devices():
        raise errors.PathEscapeError(f"{shown} is a kernel file (/proc or /sys), which Ferry never stores: "
                                     f"write the data to a regular file instead")


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """Open ``path`` for reading if it is a regular file outside ``/proc`` and ``/sys``.

    The check is made on the opened descriptor, after opening without following a final link and
    without blocking (a FIFO would block a plain open forever), so nothing can be swapped in
    between. A link as the last part is refused: callers hand in resolved paths.
    """
    _refuse_pseudo(path, os.path.abspath(path))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        if error.errno == errno.ELOOP:  # the last part is a link
            raise errors.PathEscapeError(f"{path} became a link while it was being stored; "
                                         f"nothing was published from it") from None
        if error.errno == errno.ENXIO:  # a socket
            check_regular(path, os.stat(path))
        raise
    try:
        check_regular(path, os.fstat(fd))
        return os.fdopen(fd, "rb")  # O_NONBLOCK changes nothing for a regular file's reads
    except BaseException:
        os.close(fd)
        raise
