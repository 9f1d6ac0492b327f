"""One entry of a manifest, declared once (``StoredEntry``), and the rules for it and for a
manifest's digest: shared by the fast reader (``ferry.data.manifest``) and the pydantic models
(``ferry.data.manifest_models``, whose ``Entry`` is generated from ``StoredEntry``), which both
import this and not each other."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

import msgspec

from ferry.core import digests, errors, uris


class StoredEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One file of a manifest, as msgspec reads it, strictly typed (no ``"1"`` for 1). The model
    ``Entry`` has these fields, defaults and limits; the fast reader checks the clean paths and the
    hex digits of ``sha256`` (the ``pattern`` in ``extra``) on all entries at once (``manifest._checked``)."""
    path: str
    """Relative POSIX path inside the directory."""
    size: Annotated[int, msgspec.Meta(ge=0)] | None = None
    """Bytes; None only in listings of directories Ferry did not publish."""
    sha256: Annotated[str, msgspec.Meta(min_length=64, max_length=64, extra={"pattern": digests.SHA256})] | None = None
    """Hex digest of the content; None only in listings of directories Ferry did not publish."""
    mode: Annotated[int, msgspec.Meta(ge=0, le=0o777)] = 0o644
    """Permission bits (executable bits included) to restore."""
    object: str | None = None
    """Where the bytes are stored when not at ``<directory>/<path>``."""


def check_relpath(path: str) -> str:
    """Return ``path`` if it is a clean relative POSIX path inside its directory, else raise.

    Any name that POSIX filesystems and S3 keys both allow is clean (backslashes, ``:``, ``#``,
    ``%``, spaces, unicode, a leading dash...); refused is only what could leave the directory or
    cannot be stored: an absolute path, an empty, ``.`` or ``..`` segment, a NUL, and text that
    is not UTF-8 (a POSIX name of other bytes, which no S3 key or manifest can hold)."""
    parts = path.split("/")
    if not path or path[0] == "/" or "\0" in path or "" in parts or "." in parts or ".." in parts:
        raise errors.PathEscapeError(
            f"{path!r} is not a clean relative path: use 'dir/file' form, without '..' or '.' segments, "
            f"'//', a leading '/' or a NUL")
    if not is_utf8(path):
        raise errors.PathEscapeError(
            f"{path!r} is not UTF-8: S3 keys and Ferry's manifests hold only UTF-8 names; rename the file")
    return path


def is_utf8(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8 (a name read from a POSIX filesystem may hold other bytes,
    which Python keeps as lone surrogates)."""
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def object_uri(base: str, entry: Any) -> str:
    """Where ``entry``'s bytes live for a manifest stored at directory ``base``."""
    return entry.object or uris.join(base, entry.path)
