"""The local filesystem as a store (``file://`` URIs and plain paths): the embedded default."""

from __future__ import annotations

import os
import pathlib
import secrets
import shutil
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from ferry.core import localfiles, uris
from ferry.data.backends import base

TMP_MARK = ".ferry-tmp-"


def _temporary(target: pathlib.Path) -> pathlib.Path:
    """A sibling name for writing ``target`` before renaming it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return target.with_name(f".{target.name}{TMP_MARK}{secrets.token_hex(6)}")


class LocalBackend(base.Backend):
    def stat(self, uri: str) -> base.ObjectInfo | None:
        path = uris.local_path(uri)
        return base.ObjectInfo(path.name, path.stat().st_size) if path.is_file() else None

    def list(self, uri: str) -> Iterator[base.ObjectInfo]:
        root = uris.local_path(uri)
        for directory, _, names in sorted(os.walk(root)):
            for name in sorted(names):
                path = pathlib.Path(directory, name)
                if TMP_MARK not in name and path.is_file():
                    found = path.stat()
                    yield base.ObjectInfo(path.relative_to(root).as_posix(), found.st_size, found.st_mtime)

    def open(self, uri: str) -> BinaryIO:
        return open(uris.local_path(uri), "rb")

    def upload(self, source: pathlib.Path, uri: str, on_bytes: base.OnBytes) -> None:
        target = uris.local_path(uri)
        temporary = _temporary(target)
        try:
            with localfiles.open_regular(source) as reader, open(temporary, "wb") as writer:
                shutil.copyfileobj(reader, writer)
            size = temporary.stat().st_size
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        on_bytes(size)

    def write_bytes(self, uri: str, data: bytes) -> None:
        target = uris.local_path(uri)
        temporary = _temporary(target)
        try:
            temporary.write_bytes(data)
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)

    def put_if_absent(self, uri: str, data: bytes) -> bool:
        target = uris.local_path(uri)
        temporary = _temporary(target)
        temporary.write_bytes(data)
        try:
            os.link(temporary, target)  # fails if the target exists, and never shows a partial file
            return True
        except FileExistsError:
            return False
        finally:
            temporary.unlink()

    def delete(self, uris_: Sequence[str]) -> None:
        for uri in uris_:
            uris.local_path(uri).unlink(missing_ok=True)
