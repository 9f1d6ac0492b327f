"""What the UI may read: objects under the store's raw data prefix, and nothing else.

Whatever a URI in a request, a workflow (another tenant's, on a cluster) or a manifest (a task
wrote it) names, the UI reads it only when it lies under the raw data prefix: named plainly (no
'.' or '..' segment, however encoded; no NUL or backslash) and, for ``file://``, reached from the
prefix's folder one component at a time without following a symlink (a task can leave a symlink
in the store that points at the UI's own files). So a refusal can be decided before any read,
and the read itself cannot be led out of the folder.
"""

from __future__ import annotations

import errno
import os
import pathlib
import stat
import urllib.parse
from collections.abc import Iterator
from typing import BinaryIO

from ferry.core import uris
from ferry.data import store as store_
from ferry.data.backends import base, local

REFUSED = "outside the store this UI reads: open an output from a workflow's page"
"""Every refusal's text: it names neither the URI nor the prefix."""
REFUSED_HERE = ("this object lies outside the stores this UI reads; if it is your cluster's store, start "
                "ferry ui with --store and the cluster's raw data prefix (s3://bucket/prefix)")
"""What an output's page says of an output it will not read."""


class Refused(PermissionError):
    def __init__(self) -> None:
        super().__init__(REFUSED)


def inside(root: str, uri: str | None) -> bool:
    """Whether ``uri`` names an object under ``root`` (a raw data prefix), plainly. Pure."""
    prefix = root.rstrip("/") + "/"
    if not uri or not uri.startswith(prefix) or len(uri) == len(prefix) or uris.scheme(root) == "":
        return False
    rest = uri[len(prefix):]
    once = urllib.parse.unquote(rest) if uris.scheme(root) in uris.ENCODED_SCHEMES else rest
    for text in (rest, once, urllib.parse.unquote(once)):  # twice: a backend or server may decode again
        if "\0" in text or "\\" in text or {".", ".."} & set(text.split("/")):
            return False
    return True


class Store(store_.Store):
    """``ferry.Store`` that reads only under its roots: the raw data prefix and the ``others`` the
    UI was started with (``ferry ui --store``: a cluster's store, read from a laptop); its
    ``file://`` reads cannot leave a root's folder."""

    def __init__(self, settings, others: tuple[str, ...] = ()) -> None:
        super().__init__(settings)
        self.roots = tuple(dict.fromkeys((self.raw_data_prefix, *(root.rstrip("/") for root in others))))
        self._confined = [LocalBackend(root) for root in self.roots if uris.scheme(root) == "file"]

    def reads(self, uri: str | None) -> bool:
        """Whether ``uri`` lies under one of the roots, plainly (``inside``)."""
        return any(inside(root, uri) for root in self.roots)

    def backend(self, uri: str) -> base.Backend:
        """The backend of the root ``uri`` lies under (or is): each URI it is then given is checked
        again by the routes, and by the ``file://`` backend itself."""
        root = next((root for root in self.roots if uri == root or inside(root, uri)), None)
        if root is None:
            raise Refused()
        if uris.scheme(root) == "file":
            return next(backend for backend in self._confined if backend.prefix == root)
        return super().backend(uri)


class LocalBackend(local.LocalBackend):
    """Reads below ``root`` only, opening each component with O_NOFOLLOW from the folder above it:
    no symlink is followed below the root, and nothing but a regular file is opened (a FIFO would
    hang the read). Writes are refused: the UI never writes."""

    def __init__(self, prefix: str) -> None:
        self.prefix, self.root = prefix, uris.local_path(prefix)

    def _parts(self, uri: str) -> tuple[str, ...]:
        if not inside(self.prefix, uri):
            raise Refused()
        path = uris.local_path(uri)
        parts = path.parts[len(self.root.parts):]
        if path.parts[:len(self.root.parts)] != self.root.parts or not parts:
            raise Refused()
        return parts

    def _folder(self, parts: tuple[str, ...]) -> int:
        """A descriptor of the folder ``root/parts...``, each component opened without following a link."""
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for part in parts:
                fd, above = _open(part, os.O_DIRECTORY, fd), fd
                os.close(above)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _file(self, uri: str) -> int:
        parts = self._parts(uri)
        folder = self._folder(parts[:-1])
        try:
            fd = _open(parts[-1], os.O_NONBLOCK, folder)
        finally:
            os.close(folder)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise Refused()
        os.set_blocking(fd, True)
        return fd

    def stat(self, uri: str) -> base.ObjectInfo | None:
        try:
            fd = self._file(uri)
        except (FileNotFoundError, NotADirectoryError, Refused):
            return None
        try:
            return base.ObjectInfo(uris.local_path(uri).name, os.fstat(fd).st_size)
        finally:
            os.close(fd)

    def list(self, uri: str) -> Iterator[base.ObjectInfo]:
        try:
            folder = self._folder(self._parts(uri))
        except (FileNotFoundError, NotADirectoryError):
            return
        try:
            for directory, folders, names, fd in os.fwalk(".", dir_fd=folder, follow_symlinks=False):
                folders.sort()
                for name in sorted(names):
                    found = os.stat(name, dir_fd=fd, follow_symlinks=False)
                    if local.TMP_MARK not in name and stat.S_ISREG(found.st_mode):
                        path = pathlib.PurePosixPath(directory, name).as_posix()  # "./a", "b" → "a/b"
                        yield base.ObjectInfo(path, found.st_size, found.st_mtime)
        finally:
            os.close(folder)

    def open(self, uri: str) -> BinaryIO:
        return os.fdopen(self._file(uri), "rb")

    def upload(self, source, uri, on_bytes) -> None:
        raise Refused()

    def write_bytes(self, uri: str, data: bytes) -> None:
        raise Refused()

    def delete(self, uris_) -> None:
        raise Refused()


def _open(name: str, flags: int, folder: int) -> int:
    try:
        return os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | flags, dir_fd=folder)
    except OSError as error:  # a symlink is ELOOP, or ENOTDIR where a folder was asked for
        if error.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(name, folder):
            raise Refused() from None
        raise


def _is_link(name: str, folder: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)
    except OSError:
        return False
