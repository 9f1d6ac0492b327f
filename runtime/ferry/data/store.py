"""The raw data store: the one object task code, plugins and Ferry's own values use to move data.

It plays the part of flytekit's ``FileAccessProvider``: ``exists``, ``get``, ``put``, directory
upload and download, ``list``, ``delete``, ``open``, fresh random paths under the raw data prefix,
and ``a``-prefixed async variants of each. It picks a backend by URI scheme (``file://`` or a
plain path, ``s3://``, ``http(s)://``, ``gs://``, ``abfs(s)://``), so one store serves every
location, and it keeps one backend (one client) per scheme for all threads.

``current()`` is the store of the running task (set with ``using``); outside a task it is made
from the ``FERRY_*`` environment on first use.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import os
import pathlib
import secrets
import stat
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import BinaryIO

from ferry.core import integrity, uris
from ferry.data import blobs, manifest, settings as settings_, transfer
from ferry.data.backends import base, registry

Source = str | blobs.BlobRef
"""A URI, or a blob reference whose digests downloads check."""


async def _in_thread(function, *args):
    """``asyncio.to_thread``, with asyncio imported only by code that awaits (it costs ``import ferry``
    about 13 ms otherwise)."""
    import asyncio

    return await asyncio.to_thread(function, *args)


def _split(source: Source) -> tuple[str, blobs.BlobRef | None]:
    return (source.uri, source) if isinstance(source, blobs.BlobRef) else (source, None)


class Store:
    """Moves data between local disk and any store; see the module docstring. Thread-safe."""

    def __init__(self, settings: settings_.Settings | None = None, output_prefix: str | None = None):
        self.settings = settings or settings_.Settings.from_env()
        self.output_prefix = output_prefix or self.settings.raw_data_prefix
        """Where new outputs go (``random_remote_path``); a task attempt sets its own, while drives,
        checkpoints and the cache stay under the shared raw data prefix."""
        self.downloads: pathlib.Path | None = None
        """Where stored values are downloaded when no place is given: inside a task, a folder of its
        working directory (set by ``context.using``, removed when the task ends); else the settings'
        ``local_dir``. Directories published from a tree that holds it leave it out."""
        self._backends: dict[str, base.Backend] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Store(raw_data_prefix={self.raw_data_prefix!r})"

    @property
    def raw_data_prefix(self) -> str:
        return self.settings.raw_data_prefix

    def backend(self, uri: str) -> base.Backend:
        """The backend for ``uri``'s scheme, made once per store."""
        scheme = uris.scheme(uri)
        with self._lock:
            if scheme not in self._backends:
                self._backends[scheme] = registry.create(uri, self.settings)
            return self._backends[scheme]

    def random_remote_path(self, name: str | None = None) -> str:
        """A fresh URI under the output prefix, ending in ``name`` when given."""
        return uris.join(self.output_prefix, secrets.token_hex(16), *([name] if name else []))

    def random_local_path(self, name: str | None = None) -> pathlib.Path:
        """A fresh, not yet created, local path under ``downloads`` (in a task) or the settings' ``local_dir``."""
        return (self.downloads or self.settings.local_dir).joinpath(secrets.token_hex(16), *([name] if name else []))

    def exists(self, uri: str) -> bool:
        """Whether ``uri`` is an object or a directory with something in it."""
        backend = self.backend(uri)
        return backend.stat(uri) is not None or next(iter(backend.list(uri)), None) is not None

    def manifest(self, source: Source, keep: Callable[[str], bool] | None = None) -> manifest.Manifest:
        """The directory's manifest (checked against the reference's digest), or for a directory
        Ferry did not publish, a listing of it with sizes where the store gives them; with ``keep``,
        only the paths it accepts (much faster for a part of a large manifest: ``manifest.parse``)."""
        uri, ref = _split(source)
        backend = self.backend(uri)
        found = transfer.read_manifest(backend, uri, ref.manifest_digest if ref else None, self.settings, keep)
        return found if found is not None else transfer.listing(backend, uri, keep)

    def part(self, source: Source, keep: Callable[[str], bool]) -> manifest.Part:
        """The files and empty directories of a directory whose paths ``keep`` accepts, checked as
        ``manifest`` checks them but without models (``manifest.part``): what restoring a part needs."""
        uri, ref = _split(source)
        backend = self.backend(uri)
        found = transfer.read_manifest(backend, uri, ref.manifest_digest if ref else None, self.settings, keep,
                                       models=False)
        return found if found is not None else manifest.Part(transfer.listing(backend, uri, keep).files)

    def list(self, uri: str) -> list[str]:
        """Relative paths of the files in the directory ``uri``."""
        return [entry.path for entry in self.manifest(uri).files]

    def open(self, source: Source) -> BinaryIO:
        """A read stream of one object, fetched as it is read; with a blob reference, the stream
        checks size and sha256 at its end and raises IntegrityError instead of ending quietly."""
        uri, ref = _split(source)
        stream = self.backend(uri).open(uri)
        return io.BufferedReader(integrity.VerifyingReader(stream, uri, ref and ref.size, ref and ref.sha256),
                                 integrity.CHUNK)

    def delete(self, uri: str, recursive: bool = False) -> None:
        """Delete an object or, with ``recursive``, a directory (its manifest first, so a partial
        delete never looks like a complete output)."""
        backend = self.backend(uri)
        if not recursive:
            backend.delete([uri])
            return
        backend.delete([uris.join(uri, manifest.NAME)])
        backend.delete([uris.join(uri, info.path) for info in backend.list(uri)])

    def upload_file(self, local: str | os.PathLike, uri: str | None = None,
                    progress: transfer.ProgressCallback | None = None) -> blobs.BlobRef:
        source = pathlib.Path(local)
        uri = uris.to_uri(uri) if uri else self.random_remote_path(source.name)
        return transfer.upload_file(self.backend(uri), source, uri, self.settings, progress)

    def download_file(self, source: Source, local: str | os.PathLike,
                      progress: transfer.ProgressCallback | None = None) -> pathlib.Path:
        uri, ref = _split(source)
        return transfer.download_file(self.backend(uri), uri, pathlib.Path(local), self.settings,
                                      ref.size if ref else None, ref.sha256 if ref else None, progress)

    def upload_directory(self, local: str | os.PathLike, uri: str | None = None,
                         progress: transfer.ProgressCallback | None = None) -> blobs.BlobRef:
        """Publish a local directory at ``uri`` (default: fresh under the raw data prefix);
        files already there unchanged, per the destination's manifest, are not sent again."""
        uri = uris.to_uri(uri) if uri else self.random_remote_path()
        return transfer.upload_directory(self.backend(uri), pathlib.Path(local), uri, self.settings, progress,
                                         skip=self.downloads)

    def download_directory(self, source: Source, local: str | os.PathLike,
                           progress: transfer.ProgressCallback | None = None,
                           contents: manifest.Manifest | manifest.Part | None = None) -> pathlib.Path:
        """Download a directory, every file checked against its manifest (``contents`` when the
        caller already has it)."""
        uri, _ = _split(source)
        contents = contents if contents is not None else self.manifest(source)
        return transfer.download_directory(self.backend, uri, contents, pathlib.Path(local), self.settings, progress)

    def publish_manifest(self, contents: manifest.Manifest, uri: str | None = None,
                         kind: blobs.Kind = blobs.Kind.DIRECTORY) -> blobs.BlobRef:
        """Publish a directory made of objects already stored (each entry naming its ``object``)
        by writing only its manifest: nothing is downloaded or uploaded again."""
        uri = uris.to_uri(uri) if uri else self.random_remote_path()
        if any(entry.object is None for entry in contents.files):
            raise ValueError("every entry of a manifest published on its own must name its stored object")
        return self._write_manifest(contents, uri, kind)

    def upload_files(self, files: Mapping[str, str | os.PathLike], uri: str | None = None,
                     kind: blobs.Kind = blobs.Kind.DIRECTORY, stored: Sequence[manifest.Entry] = (),
                     empty_directories: Sequence[str] = ()) -> blobs.BlobRef:
        """Publish local files under the relative paths chosen for them (``{"img/1.jpg": "image.jpg"}``)
        at ``uri`` (default: fresh under the raw data prefix), next to ``stored`` entries that name
        objects already stored elsewhere, and ``empty_directories``. Files go up in parallel; the
        manifest is written last."""
        uri = uris.to_uri(uri) if uri else self.random_remote_path()
        for path in files:
            if manifest.check_relpath(path) == manifest.NAME:
                raise ValueError(f"{manifest.NAME} is reserved for Ferry's manifest; store the file under another name")
        clashes = sorted(set(files) & {entry.path for entry in stored})
        if clashes:
            raise ValueError(f"{clashes[0]!r} is listed both as a local file and as a stored object; keep one")
        backend = self.backend(uri)

        def send(path: str, local: str | os.PathLike) -> manifest.Entry:
            ref = transfer.upload_file(backend, pathlib.Path(local), uris.join(uri, path), self.settings)
            mode = stat.S_IMODE(os.stat(local).st_mode) & 0o777
            return manifest.Entry(path=path, size=ref.size, sha256=ref.sha256, mode=mode)

        import concurrent.futures  # here: it imports logging (~10 ms), which downloads do without

        with concurrent.futures.ThreadPoolExecutor(max(1, min(self.settings.concurrency, len(files))),
                                                   thread_name_prefix="ferry") as pool:
            futures = [pool.submit(send, path, local) for path, local in files.items()]
            try:
                entries = [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        contents = manifest.Manifest(files=sorted([*entries, *stored], key=lambda entry: entry.path),
                                     empty_directories=sorted(empty_directories))
        return self._write_manifest(contents, uri, kind)

    def _write_manifest(self, contents: manifest.Manifest, uri: str, kind: blobs.Kind) -> blobs.BlobRef:
        data = contents.to_bytes()
        self.backend(uri).write_bytes(uris.join(uri, manifest.NAME), data)
        return blobs.BlobRef(uri=uri, kind=kind, size=contents.size, file_count=len(contents.files),
                             manifest_digest=manifest.digest_of(data))

    def put(self, local: str | os.PathLike, uri: str | None = None,
            progress: transfer.ProgressCallback | None = None) -> blobs.BlobRef:
        """Upload a local file or directory; returns its blob reference."""
        upload = self.upload_directory if os.path.isdir(local) else self.upload_file
        return upload(local, uri, progress)

    def get(self, source: Source, local: str | os.PathLike, recursive: bool | None = None,
            progress: transfer.ProgressCallback | None = None) -> pathlib.Path:
        """Download a file or, with ``recursive`` (default: guessed from the reference's kind, a
        trailing ``/`` or the absence of an object at the URI), a directory."""
        uri, ref = _split(source)
        if recursive is None:
            recursive = (ref.kind != blobs.Kind.FILE if ref else
                         uri.endswith("/") or self.backend(uri).stat(uri) is None)
        download = self.download_directory if recursive else self.download_file
        return download(source, local, progress)

    async def aexists(self, uri: str) -> bool:
        return await _in_thread(self.exists, uri)

    async def alist(self, uri: str) -> list[str]:
        return await _in_thread(self.list, uri)

    async def adelete(self, uri: str, recursive: bool = False) -> None:
        await _in_thread(self.delete, uri, recursive)

    async def aput(self, local: str | os.PathLike, uri: str | None = None,
                   progress: transfer.ProgressCallback | None = None) -> blobs.BlobRef:
        return await _in_thread(self.put, local, uri, progress)

    async def aget(self, source: Source, local: str | os.PathLike, recursive: bool | None = None,
                   progress: transfer.ProgressCallback | None = None) -> pathlib.Path:
        return await _in_thread(self.get, source, local, recursive, progress)

    async def aupload_file(self, local: str | os.PathLike, uri: str | None = None,
                           progress: transfer.ProgressCallback | None = None) -> blobs.BlobRef:
        return await _in_thread(self.upload_file, local, uri, progress)

    async def adownload_file(self, source: Source, local: str | os.PathLike,
                             progress: transfer.ProgressCallback | None = None) -> pathlib.Path:
        return await _in_thread(self.download_file, source, local, progress)

    async def aupload_directory(self, local: str | os.PathLike, uri: str | None = None,
                                progress: transfer.ProgressCallback | None = None) -> blobs.BlobRef:
        return await _in_thread(self.upload_directory, local, uri, progress)

    async def adownload_directory(self, source: Source, local: str | os.PathLike,
                                  progress: transfer.ProgressCallback | None = None) -> pathlib.Path:
        return await _in_thread(self.download_directory, source, local, progress)

    async def aread(self, source: Source) -> bytes:
        """All bytes of one (small) object, checked like ``open``."""
        def read() -> bytes:
            with self.open(source) as stream:
                return stream.read()
        return await _in_thread(read)


_current: contextvars.ContextVar[Store | None] = contextvars.ContextVar("ferry_store", default=None)
_default: Store | None = None
_default_lock = threading.Lock()


def current() -> Store:
    """The store of the running task, or the process default made from the environment."""
    global _default
    store = _current.get()
    if store is not None:
        return store
    with _default_lock:
        if _default is None:
            _default = Store()
        return _default


@contextlib.contextmanager
def using(store: Store) -> Iterator[Store]:
    """Make ``store`` the current one inside the ``with`` block (and tasks it starts)."""
    token = _current.set(store)
    try:
        yield store
    finally:
        _current.reset(token)
