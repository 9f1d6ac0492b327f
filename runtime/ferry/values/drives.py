"""``ferry.Drive``: a named space that every task of every workflow naming it can share, as Lightning's Drive.

A drive lives under the raw data prefix, and each file remembers the writer that put it (a task:
``<workflow>/<task>``; see ``Drive.component_name``)::

    <raw data prefix>/drives/<name>/
        objects/<random>                      the bytes of one put, never overwritten
        files/<path>/.ferry-claim             {"writer"}: who holds <path> (puts refusing duplicates)
        files/<path>/.ferry-copies/<writer>   {"path", "writer", "object", "size", "sha256"}: a writer's copy

Concurrent writers never corrupt each other: a put uploads its bytes to a fresh object, then points
its own copy record at it (a small atomic write), and only then deletes the object its previous
copy pointed at. A writer new to a path, unless it allows duplicates, first claims the path with
the backend's conditional create (``Backend.put_if_absent``: ``If-None-Match: *`` on S3, an
exclusive hard link on the local store, best effort through fsspec), so of two racing writers exactly
one gets the path and the other is refused before it uploads
anything. Reads check size and sha256, and look again if the copy was replaced while they read it.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import secrets
import socket
import time
import urllib.parse

import pydantic

from ferry.core import errors, uris
from ferry.data import blobs, manifest, store as store_

PROTOCOL = "ferry://"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
RESERVED = ".ferry-"
"""Path components starting with this hold the drive's own records."""
CLAIM, COPIES = ".ferry-claim", ".ferry-copies"
OBJECT = re.compile(r"[A-Za-z0-9_-]{1,128}")
"""An object's name in a copy record: one plain name under ``objects/`` (puts write 32 hex digits)."""


class Copy(pydantic.BaseModel):
    """One writer's copy of a path: its record under ``.ferry-copies/``, as ``Drive.copies`` lists them."""

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")

    path: str
    writer: str
    object: str
    """Name of the object under ``objects/``."""
    size: int
    sha256: str


class Drive:
    """``Drive("ferry://name", allow_duplicates=False, component_name=None)``: see the module docstring.

    Nothing is read or written until a method is called; the store is the current one then.
    """

    def __init__(self, id: str, allow_duplicates: bool = False, component_name: str | None = None):
        name = id[len(PROTOCOL):] if isinstance(id, str) and id.startswith(PROTOCOL) else ""
        if not NAME.fullmatch(name):
            raise ValueError(f"{id!r} is not a drive: expected 'ferry://<name>', where <name> is 1 to 63 letters, "
                             "digits, '.', '_' or '-' and starts with a letter or digit, "
                             "e.g. Drive('ferry://drive_1')")
        if component_name is not None and not component_name.strip():
            raise ValueError("component_name must not be empty; leave it out to write as the current task")
        self.name, self.allow_duplicates, self._component_name = name, allow_duplicates, component_name

    @property
    def id(self) -> str:
        return PROTOCOL + self.name

    @property
    def component_name(self) -> str:
        """The writer this drive puts and deletes as: ``component_name=`` if given, else the running
        task (``<workflow>/<task>`` from ``FERRY_WORKFLOW``/``FERRY_TASK``, set in task pods), else this
        process (``<host>-<pid>``)."""
        if self._component_name:
            return self._component_name
        workflow, task = os.environ.get("FERRY_WORKFLOW"), os.environ.get("FERRY_TASK")
        return f"{workflow}/{task}" if workflow and task else f"{socket.gethostname()}-{os.getpid()}"

    def __repr__(self) -> str:
        return f"Drive({self.id!r})"

    def put(self, local_path: str | os.PathLike, remote_path: str | None = None) -> str:
        """Put a local file at ``remote_path`` (default: ``local_path`` if it is relative and inside
        the current directory, else the file's name); returns that path. This writer's own copy is
        replaced; a path another writer has is refused (FileExistsError) unless this drive allows
        duplicates, and then this writer's copy is kept beside the others."""
        source = pathlib.Path(local_path)
        if not source.is_file():
            raise FileNotFoundError(f"{source} is not a file; Drive.put sends one file at a time")
        path = _check(remote_path if remote_path is not None else _default_path(source))
        store, writer = store_.current(), self.component_name
        backend = store.backend(store.raw_data_prefix)
        own = self._copy(store, path, writer)
        exclusive = own is None and not self.allow_duplicates  # a new writer of the path, wanting it alone
        claimed = exclusive and self._claim(store, path, writer)
        try:
            others = [w for w in self._writers(store, path) if w != writer] if exclusive else []
            if others:
                raise FileExistsError(self._taken(path, others, writer))
            token = secrets.token_hex(16)
            ref = store.upload_file(source, self._uri(store, "objects", token))
            copy = Copy(path=path, writer=writer, object=token, size=ref.size, sha256=ref.sha256)
            backend.write_bytes(self._copy_uri(store, path, writer), copy.model_dump_json().encode())
        except BaseException:
            if claimed:
                backend.delete([self._uri(store, "files", path, CLAIM)])
            raise
        if own is not None:
            backend.delete([self._uri(store, "objects", own.object)])
        return path

    def list(self, path_prefix: str = "") -> list[str]:
        """The paths in the drive that start with ``path_prefix`` (``""`` or ``"."``: all), sorted."""
        prefix = "" if path_prefix in (".", "./") else path_prefix.removeprefix("./")
        folder = prefix.rpartition("/")[0]
        store = store_.current()
        listed = store.backend(store.raw_data_prefix).list(self._uri(store, "files", folder))
        paths = {_join(folder, info.path.rpartition(f"/{COPIES}/")[0]) for info in listed
                 if f"/{COPIES}/" in info.path}
        return sorted(path for path in paths if path.startswith(prefix))

    def copies(self, path_prefix: str = "") -> list[Copy]:
        """Every writer's copy of the paths that start with ``path_prefix``: who put each file, and its size."""
        store = store_.current()
        return [copy for path in self.list(path_prefix) for writer in self._writers(store, path)
                if (copy := self._copy(store, path, writer)) is not None]

    def get(self, path: str, local_path: str | os.PathLike | None = None, timeout: float | None = None,
            component_name: str | None = None) -> pathlib.Path:
        """Download the file at ``path`` to ``local_path`` (default: the same path under the current
        directory; an existing directory: the file's name in it), verified; returns where it landed.

        With ``timeout`` (seconds), wait for the file to appear, polling with backoff, then raise
        TimeoutError. When several writers put copies (``allow_duplicates``), choose one with
        ``component_name``.
        """
        path = _check(path)
        store = store_.current()
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.05
        while True:
            writers = [component_name] if component_name else self._writers(store, path)
            if len(writers) > 1:
                raise ValueError(f"{path!r} in {self.id} has copies by {', '.join(map(repr, writers))}; "
                                 f"choose one with component_name=")
            copy = self._copy(store, path, writers[0]) if writers else None
            if copy is not None:
                ref = blobs.BlobRef(uri=self._uri(store, "objects", copy.object), kind=blobs.Kind.FILE,
                                    size=copy.size, sha256=copy.sha256)
                try:
                    return store.download_file(ref, _target(path, local_path))
                except FileNotFoundError:  # replaced or deleted while we read it: look again
                    if self._copy(store, path, copy.writer) == copy:
                        raise
                    continue
            if deadline is None:
                raise FileNotFoundError(f"{path!r} is not in {self.id}" + (f" (put by {component_name!r})"
                                                                         if component_name else ""))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{path!r} did not appear in {self.id} within {timeout} seconds")
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 1.0)

    def delete(self, path: str) -> None:
        """Delete this writer's copy of ``path``; a file put by another writer raises PermissionError."""
        path = _check(path)
        store, writer = store_.current(), self.component_name
        backend = store.backend(store.raw_data_prefix)
        own = self._copy(store, path, writer)
        if own is not None:
            backend.delete([self._copy_uri(store, path, writer)])
        if self._holder(store, path) == writer:  # also frees a claim left by a put that failed midway
            backend.delete([self._uri(store, "files", path, CLAIM)])
        if own is None:
            others = self._writers(store, path)
            if others:
                raise PermissionError(f"{path!r} in {self.id} was put by {', '.join(map(repr, others))}; only the "
                                      f"writer that put a file can delete it (this writer is {writer!r})")
            raise FileNotFoundError(f"{path!r} is not in {self.id}")
        backend.delete([self._uri(store, "objects", own.object)])

    def _uri(self, store: store_.Store, *parts: str) -> str:
        return uris.join(store.raw_data_prefix, "drives", self.name, *parts)

    def _copy_uri(self, store: store_.Store, path: str, writer: str) -> str:
        return self._uri(store, "files", path, COPIES, urllib.parse.quote(writer, safe=""))

    def _copy(self, store: store_.Store, path: str, writer: str) -> Copy | None:
        uri = self._copy_uri(store, path, writer)
        try:
            copy = Copy.model_validate_json(store.backend(uri).read_bytes(uri))
        except FileNotFoundError:
            return None
        if not OBJECT.fullmatch(copy.object):  # any task may write records: one must not reach other objects
            raise errors.PathEscapeError(
                f"{self.id}: the record of {path!r} by {writer!r} ({uri}) names the object {copy.object!r}, which is "
                f"not an object of this drive (one name under objects/): nothing was read or deleted. Delete that "
                f"record and put the file again")
        return copy

    def _writers(self, store: store_.Store, path: str) -> list[str]:
        uri = self._uri(store, "files", path, COPIES)
        return sorted(urllib.parse.unquote(info.path) for info in store.backend(uri).list(uri))

    def _holder(self, store: store_.Store, path: str) -> str | None:
        uri = self._uri(store, "files", path, CLAIM)
        try:
            return json.loads(store.backend(uri).read_bytes(uri))["writer"]
        except FileNotFoundError:
            return None

    def _claim(self, store: store_.Store, path: str, writer: str) -> bool:
        """Hold ``path`` for ``writer``: True if this call claimed it, False if the writer already
        held it; FileExistsError if another writer does."""
        uri = self._uri(store, "files", path, CLAIM)
        while not store.backend(uri).put_if_absent(uri, json.dumps({"writer": writer}).encode()):
            holder = self._holder(store, path)
            if holder == writer:
                return False
            if holder is not None:  # else it was deleted since: try again
                raise FileExistsError(self._taken(path, [holder], writer))
        return True

    def _taken(self, path: str, holders: list[str], writer: str) -> str:
        return (f"{path!r} is already in {self.id}, put by {', '.join(map(repr, holders))}; a second writer of a "
                f"path is refused unless the drive allows it: Drive({self.id!r}, allow_duplicates=True) "
                f"(this writer is {writer!r})")


def names(store: store_.Store | None = None) -> list[str]:
    """The drives under the store's raw data prefix (every one a file was ever put in)."""
    store = store or store_.current()
    uri = uris.join(store.raw_data_prefix, "drives")
    return sorted({info.path.partition("/")[0] for info in store.backend(uri).list(uri)})


def _check(path: str) -> str:
    manifest.check_relpath(path)
    if any(part.startswith(RESERVED) for part in path.split("/")):
        raise ValueError(f"{path!r}: names starting with {RESERVED!r} are reserved for the drive's records; rename it")
    return path


def _default_path(source: pathlib.Path) -> str:
    relative = os.path.normpath(source)
    return source.name if os.path.isabs(relative) or relative.startswith("..") else pathlib.Path(relative).as_posix()


def _target(path: str, local_path: str | os.PathLike | None) -> pathlib.Path:
    if local_path is None:
        return manifest.destination(pathlib.Path.cwd(), path)
    target = pathlib.Path(local_path)
    return target / path.rpartition("/")[2] if target.is_dir() else target


def _join(folder: str, path: str) -> str:
    return f"{folder}/{path}" if folder else path

