"""Pure helpers for the URIs that name stored objects.

Object stores (``s3://``, ``gs://``, ``abfs://``...) keep keys as they are, spaces and unicode
included, like the AWS CLI does. ``file://`` and ``http(s)://`` are real URLs, so the parts joined
onto them are percent-encoded and decoded again when turned back into paths.
"""

from __future__ import annotations

import os
import pathlib
import urllib.parse

ENCODED_SCHEMES = frozenset({"file", "http", "https"})


def scheme(uri: str | os.PathLike) -> str:
    """The lower-case scheme of ``uri``; ``""`` for a plain local path."""
    text = os.fspath(uri)
    head, sep, _ = text.partition("://")
    return head.lower() if sep and head.isascii() and head.replace("+", "").isalnum() else ""


def is_uri(path: str | os.PathLike) -> bool:
    """True for ``scheme://...`` (a stored object, even ``file://``); False for a local path."""
    return scheme(path) != ""


def to_uri(location: str | os.PathLike) -> str:
    """``location`` as a URI: a plain path becomes an absolute ``file://`` URI, a URI stays as it is."""
    text = os.fspath(location)
    return text if is_uri(text) else pathlib.Path(text).absolute().as_uri()


def join(base: str, *parts: str) -> str:
    """``base`` + ``/`` + each relative ``part``, encoding the parts where the scheme needs it."""
    encode = scheme(base) in ENCODED_SCHEMES
    tail = "/".join(urllib.parse.quote(p.strip("/")) if encode else p.strip("/") for p in parts if p.strip("/"))
    return f"{base.rstrip('/')}/{tail}" if tail else base


def check_clean(location: str | os.PathLike, what: str) -> str:
    """``location`` if no segment of its path is ``.`` or ``..`` (decoded, where the scheme encodes)
    and it holds no NUL; else ValueError naming ``what``. A destination is checked when it is named,
    so a task is refused before its work rather than at publish, after it."""
    text = os.fspath(location)
    path = text.split("://", 1)[1].partition("/")[2] if is_uri(text) else text
    segments = {*path.split("/"), *(urllib.parse.unquote(path).split("/") if scheme(text) in ENCODED_SCHEMES else ())}
    if "\0" in text or {".", ".."} & segments:
        raise ValueError(f"{what}={text!r}: '.', '..' and NUL are refused in a destination; name the place itself")
    return text


def as_directory(uri: str) -> str:
    """``uri`` with exactly one trailing slash, the form used as a listing prefix."""
    return uri.rstrip("/") + "/"


def relative(base: str, uri: str) -> str:
    """The decoded path of ``uri`` below ``base``; ValueError when it is not below it."""
    prefix = as_directory(base)
    if not uri.startswith(prefix):
        raise ValueError(f"{uri} is not inside {prefix}")
    rel = uri[len(prefix):]
    return urllib.parse.unquote(rel) if scheme(base) in ENCODED_SCHEMES else rel


def basename(uri: str) -> str:
    """The last path component of a URI or path, decoded where the scheme encodes."""
    name = os.fspath(uri).rstrip("/").rsplit("/", 1)[-1]
    return urllib.parse.unquote(name) if scheme(uri) in ENCODED_SCHEMES else name


def local_path(uri: str | os.PathLike) -> pathlib.Path:
    """The filesystem path of a ``file://`` URI or a plain path."""
    text = os.fspath(uri)
    if scheme(text) == "file":
        parsed = urllib.parse.urlsplit(text)
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"{text}: file:// URIs must name this machine (file:///path), not {parsed.netloc!r}")
        if os.name == "nt":  # drive letters; elsewhere url2pathname is unquote (without urllib.request's 25 ms import)
            from urllib.request import url2pathname

            return pathlib.Path(url2pathname(parsed.path))
        return pathlib.Path(urllib.parse.unquote(parsed.path))
    return pathlib.Path(text)


def split_bucket(uri: str) -> tuple[str, str]:
    """``("bucket", "key/in/bucket")`` from ``scheme://bucket/key/in/bucket``."""
    rest = uri.split("://", 1)[1]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise ValueError(f"{uri}: expected {scheme(uri)}://BUCKET/KEY")
    return bucket, key
