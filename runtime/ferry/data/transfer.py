"""The transfer engine: parallel, verified, resumable-by-skipping uploads and downloads.

Publishing a directory follows one protocol, so a reader can trust what it finds:

1. read the manifest already at the destination (a re-run to the same ``remote_directory``) and
   delete it, so from now on the destination does not look complete;
2. hash every file, in parallel, and upload those whose identical copy is not already there (a
   file whose ``stat`` matches the local record of its last hashing, ``hashcache``, is not even
   read);
3. write the new manifest, last: only now is the output complete;
4. delete objects the old manifest listed and the new one does not.

Downloads check every file's size and sha256 while they stream, write to a temporary name and
rename into place, so a failed or corrupt download never leaves a file that looks right.

Every file is read once on upload where the backend allows it: a small file (up to ``SMALL``)
is read into memory, hashed and sent from there; a large one is hashed part by part as the
backend reads it to send it (``upload_hashing``). So the sha256 in the manifest is always that
of the bytes sent. A tiny file is downloaded into memory, checked, and only then written; others
stream to their temporary name, in parallel parts where the backend can (``download_hashing``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import itertools
import os
import pathlib
import random
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from ferry.core import errors, integrity, localfiles, uris
from ferry.data import blobs, hashcache, manifest, settings as settings_
from ferry.data.backends import base

T = TypeVar("T")
Resolve = Callable[[str], base.Backend]

SMALL = integrity.CHUNK
"""Files up to this size move whole, in memory: at most ``concurrency`` of them at once."""
TINY = 64 * 1024
"""Downloads up to this size are collected whole even where the backend streams them to disk
(``download_hashing``): above it, the copy into one buffer costs more than streaming."""


@dataclasses.dataclass(frozen=True)
class Progress:
    """A snapshot handed to progress callbacks, from any thread."""
    bytes_done: int
    bytes_total: int
    """Sum of the sizes known in advance (http listings do not give sizes)."""
    files_done: int
    files_total: int
    files_skipped: int
    """Files not sent because their identical copy was already at the destination."""


ProgressCallback = Callable[[Progress], None]


class _Tracker:
    def __init__(self, callback: ProgressCallback | None, files_total: int, bytes_total: int):
        self._callback, self._lock = callback, threading.Lock()
        self._files_total, self._bytes_total = files_total, bytes_total
        self._bytes = self._files = self._skipped = 0

    def _update(self, count: int, files: int = 0, skipped: int = 0) -> None:
        with self._lock:
            self._bytes += count
            self._files += files
            self._skipped += skipped
            if self._callback is None:
                return
            state = Progress(self._bytes, self._bytes_total, self._files, self._files_total, self._skipped)
        self._callback(state)

    def add_bytes(self, count: int) -> None:
        self._update(count)

    def skipped(self, files: int, size: int) -> None:
        """``files`` files of ``size`` bytes in all were already at the destination."""
        if files:
            self._update(size, files=files, skipped=files)

    def file_done(self, skipped_bytes: int | None = None) -> None:
        if skipped_bytes is None:
            self._update(0, files=1)
        else:
            self._update(skipped_bytes, files=1, skipped=1)


def _with_retries(backend: base.Backend, settings: settings_.Settings, tracker: _Tracker,
                  action: Callable[[base.OnBytes], T]) -> T:
    """Run ``action`` again, with jittered exponential backoff, on the backend's transient errors,
    until ``max_attempts`` are spent and the store has not answered for ``retry_seconds``; bytes
    reported by a failed attempt are taken back from the progress."""
    first_failure = None
    for attempt in itertools.count(1):
        sent = 0

        def on_bytes(count: int) -> None:
            nonlocal sent
            sent += count
            tracker.add_bytes(count)

        try:
            return action(on_bytes)
        except backend.transient_errors as error:
            tracker.add_bytes(-sent)
            now = time.monotonic()
            first_failure = first_failure or now
            if attempt >= settings.max_attempts and now - first_failure >= settings.retry_seconds:
                raise errors.StoreUnavailableError(
                    f"the store did not answer for {now - first_failure:.0f}s ({attempt} attempts, retry budget "
                    f"{settings.retry_seconds:g}s): {error}") from error
            time.sleep(min(10.0, 0.25 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0))


def _call(backend: base.Backend, settings: settings_.Settings, request: Callable[[], T]) -> T:
    """One request (a manifest, a delete) retried through an outage like a file."""
    return _with_retries(backend, settings, _Tracker(None, 0, 0), lambda on_bytes: request())


def _run_all(tasks: Sequence[Callable[[], T]], concurrency: int) -> list[T]:
    """Run ``tasks`` on ``concurrency`` threads, each taking the next task when it is done with
    one, and return their results in order; after the first failure no task starts, and once the
    running ones end it is raised. (A pool with a future per task held about 1 KiB per file: 10 MiB
    for 10,000 files.)"""
    results: list = [None] * len(tasks)
    failures: list[BaseException] = []
    indexes, taking = iter(range(len(tasks))), threading.Lock()

    def work() -> None:
        while not failures:
            with taking:
                index = next(indexes, None)
            if index is None:
                return
            try:
                results[index] = tasks[index]()
            except BaseException as error:  # noqa: BLE001 - raised below, on the calling thread
                failures.append(error)

    workers = [threading.Thread(target=work, name=f"ferry-{number}") for number in range(min(concurrency, len(tasks)))]
    for worker in workers:
        worker.start()
    try:
        for worker in workers:
            worker.join()
    except BaseException as error:  # interrupted: let the running tasks end, start no more
        failures.append(error)
        for worker in workers:
            worker.join()
        raise
    if failures:
        raise failures[0]
    return results


def read_manifest(backend: base.Backend, uri: str, expected_digest: str | None = None,
                  settings: settings_.Settings | None = None, keep: Callable[[str], bool] | None = None,
                  models: bool = True) -> manifest.Manifest | manifest.Part | None:
    """The manifest of the directory ``uri``, or None if it has none. With ``expected_digest`` (from
    a blob reference) a missing manifest is an incomplete output and a different one is an error.
    With ``settings``, reading it is retried through an outage; with ``keep``, only the paths it
    accepts (``manifest.parse``), and without ``models`` as a ``manifest.Part``. Every reader of a
    stored manifest comes here, and here an entry naming an object outside the store (another
    scheme or bucket, or outside the settings' raw data prefix when the manifest is in it) is
    refused with PathEscapeError (``manifest.check_objects``)."""
    where = uris.join(uri, manifest.NAME)
    try:
        data = (_call(backend, settings, lambda: backend.read_bytes(where)) if settings
                else backend.read_bytes(where))
    except FileNotFoundError:
        if expected_digest:
            raise errors.IncompleteOutputError(
                f"{uri} has no {manifest.NAME}: its upload did not finish, or it was deleted; "
                f"re-run the task that produced it") from None
        return None
    if expected_digest and manifest.digest_of(data) != expected_digest:
        raise errors.IntegrityError(where, "manifest digest", expected_digest, manifest.digest_of(data))
    root = settings.raw_data_prefix if settings else None
    if models or keep is None:
        return manifest.parse(data, where, keep, base=uri, root=root)
    return manifest.part(data, where, keep, base=uri, root=root)


def listing(backend: base.Backend, uri: str, keep: Callable[[str], bool] | None = None) -> manifest.Manifest:
    """A manifest-shaped listing of a directory Ferry did not publish: paths and sizes, no hashes
    (only the paths ``keep`` accepts, when given)."""
    return manifest.Manifest(files=[manifest.Entry(path=info.path, size=info.size) for info in backend.list(uri)
                                    if info.path != manifest.NAME and (keep is None or keep(info.path))])


def _send(backend: base.Backend, source: pathlib.Path, size: int, uri: str, settings: settings_.Settings,
          tracker: _Tracker, there: manifest.Entry | None = None) -> tuple[int, str]:
    """Upload one local file of about ``size`` bytes, reading it once where the backend allows;
    the size and sha256 of what was stored. A file identical to ``there`` (the entry already at
    ``uri``) is not sent."""
    put_small = getattr(backend, "put_small", None)
    upload_hashing = getattr(backend, "upload_hashing", None)
    if size <= SMALL:
        with localfiles.open_regular(source) as f:
            data = f.read(SMALL + 1)
        if len(data) <= SMALL:  # else it grew since it was listed: the general way below
            sha256 = hashlib.sha256(data).hexdigest()
            if there is not None and (there.size, there.sha256) == (len(data), sha256):
                tracker.file_done(skipped_bytes=len(data))
            elif put_small is not None:
                def put(on_bytes: base.OnBytes) -> None:
                    put_small(uri, data, sha256)
                    on_bytes(len(data))
                _with_retries(backend, settings, tracker, put)
                tracker.file_done()
            else:
                _with_retries(backend, settings, tracker,
                              lambda on_bytes: backend.upload(source, uri, on_bytes))
                tracker.file_done()
            return len(data), sha256
    if (upload_hashing is not None and size >= settings.multipart_threshold
            and (there is None or there.size != size)):  # nothing to compare with: hash while sending
        sent = _with_retries(backend, settings, tracker,
                             lambda on_bytes: upload_hashing(source, uri, on_bytes))
        tracker.file_done()
        return sent
    with localfiles.open_regular(source) as f:
        size, sha256 = integrity.sha256_stream(f)
    if there is not None and (there.size, there.sha256) == (size, sha256):
        tracker.file_done(skipped_bytes=size)
    else:
        _with_retries(backend, settings, tracker, lambda on_bytes: backend.upload(source, uri, on_bytes))
        tracker.file_done()
    return size, sha256


def upload_file(backend: base.Backend, source: pathlib.Path, uri: str, settings: settings_.Settings,
                progress: ProgressCallback | None = None) -> blobs.BlobRef:
    source = pathlib.Path(os.path.realpath(source))  # opened below without following links
    size = source.stat().st_size
    tracker = _Tracker(progress, 1, size)
    size, sha256 = _send(backend, source, size, uri, settings, tracker)
    return blobs.BlobRef(uri=uri, kind=blobs.Kind.FILE, size=size, file_count=1, sha256=sha256)


def _write_new(path: str, data: bytes, mode: int | None) -> None:
    """Create ``path`` (it must not exist) holding ``data``, with permission bits ``mode``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600 if mode is not None else 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if mode is not None:
            os.fchmod(fd, mode)
    finally:
        os.close(fd)


def _fetch(backend: base.Backend, uri: str, target: str, name: str, size: int | None, sha256: str | None,
           mode: int | None, settings: settings_.Settings, tracker: _Tracker, temporary: str) -> None:
    """Download ``uri`` to ``target`` through the unused name ``temporary`` beside it."""
    read_small = getattr(backend, "read_small", None)
    download_hashing = getattr(backend, "download_hashing", None)

    def attempt(on_bytes: base.OnBytes) -> None:
        if size is not None and size <= (TINY if download_hashing else SMALL):  # whole, in memory, checked first
            if read_small is not None:
                data = read_small(uri, size)
            else:
                with backend.open(uri) as stream:
                    data = stream.read(size + 1)
            if data is not None and len(data) <= size:  # else longer than promised: streamed below to tell its size
                integrity.verify(name, size, sha256, len(data), hashlib.sha256(data).hexdigest())
                _write_new(temporary, data, mode)
                os.replace(temporary, target)
                on_bytes(len(data))
                return
        with open(temporary, "wb") as out:
            if download_hashing is not None:
                got = download_hashing(uri, out.fileno(), on_bytes, size)
            else:
                sink = integrity.HashingWriter(out, on_bytes)
                backend.download(uri, sink)
                got = sink.size, sink.sha256
        integrity.verify(name, size, sha256, *got)
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, target)

    try:
        _with_retries(backend, settings, tracker, attempt)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    tracker.file_done()


def _temporary(target: str, tag: str) -> str:
    """An unused name beside ``target`` for its bytes until they are checked (``tag`` is unique)."""
    folder, _, name = target.rpartition("/")
    return f"{folder}/.{name}.ferry-tmp-{tag}"


def download_file(backend: base.Backend, uri: str, target: pathlib.Path, settings: settings_.Settings,
                  size: int | None = None, sha256: str | None = None, progress: ProgressCallback | None = None
                  ) -> pathlib.Path:
    """Download one object to ``target``, checking ``size`` and ``sha256`` when given."""
    target.parent.mkdir(parents=True, exist_ok=True)
    place = str(target.resolve())
    _fetch(backend, uri, place, uri, size, sha256, None, settings, _Tracker(progress, 1, size or 0),
           _temporary(place, secrets.token_hex(6)))
    return target


def upload_directory(backend: base.Backend, root: pathlib.Path, uri: str, settings: settings_.Settings,
                     progress: ProgressCallback | None = None, skip: pathlib.Path | None = None) -> blobs.BlobRef:
    """Publish the local directory ``root`` at ``uri`` (the protocol in this module's docstring),
    leaving out the folder ``skip`` (a task's downloads) if it is inside."""
    files, empty = manifest.walk(root, skip)
    manifest_uri = uris.join(uri, manifest.NAME)
    try:
        previous = read_manifest(backend, uri, settings=settings)
    except (errors.IntegrityError, errors.PathEscapeError):  # unreadable: nothing to skip, and it is overwritten below
        previous = None
    if previous is not None:
        _call(backend, settings, lambda: backend.delete([manifest_uri]))
    present = {entry.path: entry for entry in previous.files if entry.object is None} if previous else {}
    tracker = _Tracker(progress, len(files), sum(f.size for f in files))
    hashes = hashcache.HashCache.load(settings.cache_dir if settings.hash_cache else None, root, read=bool(present))

    def send(item: manifest.LocalFile, there: manifest.Entry | None) -> manifest.Entry:
        hashed_at = time.time_ns()
        size, sha256 = _send(backend, item.source, item.size, uris.join(uri, item.path), settings, tracker, there)
        if size == item.size:
            hashes.record(item, sha256, hashed_at)
        return manifest.Entry(path=item.path, size=size, sha256=sha256, mode=item.mode)

    unchanged, changed = [], []
    for item in files:
        there = present.get(item.path)
        known = hashes.known(item) if there is not None else None
        if known is not None and (there.size, there.sha256) == (item.size, known):  # not even read
            unchanged.append(manifest.Entry(path=item.path, size=item.size, sha256=known, mode=item.mode))
        else:
            changed.append(functools.partial(send, item, there))
    tracker.skipped(len(unchanged), sum(entry.size for entry in unchanged))
    entries = unchanged + _run_all(changed, settings.concurrency)
    published = manifest.Manifest(files=sorted(entries, key=lambda e: e.path), empty_directories=empty)
    data = published.to_bytes()
    _call(backend, settings, lambda: backend.write_bytes(manifest_uri, data))
    kept = {entry.path for entry in entries}
    _call(backend, settings, lambda: backend.delete([uris.join(uri, path) for path in present if path not in kept]))
    hashes.save()
    return blobs.BlobRef(uri=uri, kind=blobs.Kind.DIRECTORY, size=published.size, file_count=len(entries),
                         manifest_digest=manifest.digest_of(data))


def download_directory(resolve: Resolve, uri: str, contents: manifest.Manifest | manifest.Part, target: pathlib.Path,
                       settings: settings_.Settings, progress: ProgressCallback | None = None) -> pathlib.Path:
    """Download every file of ``contents`` (stored at ``uri``) under ``target``, verified, in parallel."""
    target.mkdir(parents=True, exist_ok=True)
    for place in manifest.destinations(target, contents.empty_directories):
        os.makedirs(place, exist_ok=True)
    places = manifest.destinations(target, [entry.path for entry in contents.files])
    tracker = _Tracker(progress, len(contents.files), sum(entry.size or 0 for entry in contents.files))
    tag = secrets.token_hex(6)

    def fetch(index: int, entry: manifest.Entry | manifest.StoredEntry) -> None:
        source = manifest.object_uri(uri, entry)
        _fetch(resolve(source), source, places[index], f"{entry.path} ({source})", entry.size, entry.sha256,
               entry.mode, settings, tracker, _temporary(places[index], f"{tag}-{index}"))

    _run_all([functools.partial(fetch, index, entry) for index, entry in enumerate(contents.files)],
             settings.concurrency)
    return target
