"""What an output holds, read through Ferry's store API: a directory's manifest as a tree, and a
preview of one file that reads only its first bytes (a 2 GiB file is never read whole).

Every read goes through ``ferry.Store`` with the reference's digest, so what the page shows is
what the manifest pins, and a download is checked (size and sha256) as ``ferry outputs`` checks it.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json
import mimetypes
from collections.abc import Iterator

from ferry.data import blobs, manifest, store as store_

PREVIEW_BYTES = 256 * 1024
CSV_ROWS = 200
IMAGE_BYTES = 16 * 1024 * 1024
"""Images larger than this are offered as a download only."""


LEVEL_PAGE = 500
"""A folder's page shows this many of its entries (subfolders first, then files): a folder of
100,000 files is 200 pages, not one page of 45 MB."""


@dataclasses.dataclass(frozen=True)
class Level:
    """One page of one folder of a directory output: its subfolders (with total sizes and file
    counts) and files, ``page`` of ``pages``, out of ``total`` entries."""
    path: str
    folders: list[tuple[str, int, int]]
    files: list[manifest.Entry]
    page: int = 0
    pages: int = 1
    total: int = 0


@dataclasses.dataclass(frozen=True)
class Preview:
    kind: str
    """``text``, ``json``, ``csv``, ``image`` or ``binary``."""
    text: str = ""
    rows: list[list[str]] = dataclasses.field(default_factory=list)
    truncated: bool = False


@functools.lru_cache(maxsize=16)
def _manifest(store: store_.Store, uri: str, digest: str | None) -> manifest.Manifest:
    """Manifests are immutable once their digest is known: keep the last few read (the tree is
    browsed a folder at a time)."""
    return store.manifest(blobs.BlobRef(uri=uri, kind=blobs.Kind.DIRECTORY, manifest_digest=digest) if digest else uri)


def level(store: store_.Store, uri: str, digest: str | None, path: str = "", page: int = 0) -> Level:
    """Page ``page`` of the folder ``path`` (``LEVEL_PAGE`` entries; the last page when past it)."""
    prefix = f"{path.strip('/')}/" if path.strip("/") else ""
    folders, files = _folder(store, uri, digest, prefix)
    total = len(folders) + len(files)
    pages = max(1, -(-total // LEVEL_PAGE))
    page = min(page, pages - 1)
    start, end = page * LEVEL_PAGE, (page + 1) * LEVEL_PAGE
    return Level(prefix.rstrip("/"), folders[start:end], files[max(0, start - len(folders)):max(0, end - len(folders))],
                 page, pages, total)


@functools.lru_cache(maxsize=16)
def _folder(store: store_.Store, uri: str, digest: str | None,
            prefix: str) -> tuple[list[tuple[str, int, int]], list[manifest.Entry]]:
    """A folder's subfolders ``(name, total size, file count)`` and files, sorted: one pass over the
    manifest, kept for the next page of the same folder."""
    folders: dict[str, list[int]] = {}
    files = []
    for entry in _manifest(store, uri, digest).files:
        if not entry.path.startswith(prefix):
            continue
        rest = entry.path[len(prefix):]
        head, slash, _ = rest.partition("/")
        if slash:
            totals = folders.setdefault(head, [0, 0])
            totals[0] += entry.size or 0
            totals[1] += 1
        else:
            files.append(entry)
    return sorted((name, size, count) for name, (size, count) in folders.items()), sorted(files, key=lambda e: e.path)


def entry(store: store_.Store, uri: str, digest: str | None, path: str) -> manifest.Entry:
    found = next((e for e in _manifest(store, uri, digest).files if e.path == path), None)
    if found is None:
        raise LookupError(f"{path!r} is not in the output at {uri}")
    return found


def file_ref(store: store_.Store, uri: str, digest: str | None, path: str | None,
             sha256: str | None = None, size: int | None = None) -> blobs.BlobRef:
    """The reference of one file: the output itself, or a file of a directory output."""
    if not path:
        return blobs.BlobRef(uri=uri, kind=blobs.Kind.FILE, sha256=sha256, size=size)
    found = entry(store, uri, digest, path)
    contents = _manifest(store, uri, digest)
    return blobs.BlobRef(uri=contents.object_uri(uri, found), kind=blobs.Kind.FILE, sha256=found.sha256,
                         size=found.size)


def preview(store: store_.Store, ref: blobs.BlobRef, name: str) -> Preview:
    """The first ``PREVIEW_BYTES`` of a file, shown as what its name and bytes say it is."""
    kind = _kind(name)
    if kind == "image":
        return Preview("image") if (ref.size or 0) <= IMAGE_BYTES else Preview("binary", truncated=True)
    with store.backend(ref.uri).open(ref.uri) as stream:  # unverified: a prefix cannot be checked
        head = stream.read(PREVIEW_BYTES + 1)
    truncated = len(head) > PREVIEW_BYTES
    head = head[:PREVIEW_BYTES]
    if b"\0" in head[:8192]:
        return Preview("binary", truncated=truncated)
    text = head.decode("utf-8", errors="replace")
    if truncated:  # a cut multi-byte character or line is not the file's
        text = text.rpartition("\n")[0] or text
    if kind == "json" and not truncated:
        try:
            return Preview("json", text=json.dumps(json.loads(text), indent=2, ensure_ascii=False))
        except ValueError:
            pass
    if kind == "csv":
        dialect = "excel-tab" if name.endswith((".tsv", ".tab")) else "excel"
        rows = list(_first(csv.reader(io.StringIO(text), dialect=dialect), CSV_ROWS))
        return Preview("csv", rows=rows, truncated=truncated or len(rows) == CSV_ROWS)
    return Preview("text", text=text, truncated=truncated)


def read(store: store_.Store, ref: blobs.BlobRef) -> Iterator[bytes]:
    """The whole file, checked against its reference at the end (an IntegrityError ends the stream).
    Opened at once, so a refused or missing file raises before a response starts."""
    stream = store.open(ref)

    def chunks() -> Iterator[bytes]:
        with stream:
            while chunk := stream.read(1024 * 1024):
                yield chunk
    return chunks()


def media_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


INLINE_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp"})


def served_as(name: str) -> tuple[str, bool]:
    """``(media type, may be shown inline)`` of a stored file: a task chose its bytes and name, so
    only text (as ``text/plain``) and raster images are shown in the browser; HTML, SVG and the
    rest only download (a download is never rendered as a page of the UI's origin)."""
    found = media_type(name)
    if found in INLINE_IMAGES:
        return found, True
    if _kind(name) in ("csv", "json") or (found.startswith("text/") and found not in ("text/html", "text/xml")):
        return "text/plain; charset=utf-8", True
    return found, False


def _kind(name: str) -> str:
    lowered = name.lower()
    if lowered.endswith((".csv", ".tsv", ".tab")):
        return "csv"
    if lowered.endswith((".json", ".jsonl", ".ndjson", ".geojson")):
        return "json"
    if media_type(lowered).startswith("image/"):
        return "image"
    return "text"


def _first(rows, count: int):
    for number, row in enumerate(rows):
        if number == count:
            return
        yield row
