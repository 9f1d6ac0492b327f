"""The rules for one entry of a manifest and for its digest: shared by the fast reader
(``ferry.data.manifest``) and the pydantic models (``ferry.data.manifest_models``), which both
import this and not each other."""

from __future__ import annotations

import hashlib
from typing import Any

from ferry.core import errors, uris


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
