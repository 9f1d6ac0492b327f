"""``gs://`` and ``abfs(s)://`` stores through fsspec (gcsfs, adlfs), installed as optional extras:
``pip install 'ferry-workflows[gcs]'`` or ``'ferry-workflows[azure]'``. Any other fsspec filesystem
works the same way (tests use fsspec's in-memory one). Credentials come from each library's usual environment
(``GOOGLE_APPLICATION_CREDENTIALS``, ``AZURE_STORAGE_ACCOUNT_NAME``...).
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator, Sequence
from typing import BinaryIO

import ferry
from ferry.core import integrity, localfiles
from ferry.data.backends import base

EXTRAS = {"gs": "gcs", "gcs": "gcs", "abfs": "azure", "abfss": "azure", "az": "azure"}
ALIASES = {"abfss": "abfs"}
"""adlfs always talks TLS; fsspec registers it as ``abfs``."""


class FsspecBackend(base.Backend):
    def __init__(self, protocol: str, **storage_options):
        try:
            import fsspec
            self._fs = fsspec.filesystem(ALIASES.get(protocol, protocol), **storage_options)
        except (ImportError, ValueError) as error:
            raise ImportError(f"{protocol}:// needs an fsspec driver: {ferry.install_hint(EXTRAS.get(protocol, protocol))} "
                              f"({error})") from None

    def _path(self, uri: str) -> str:
        return self._fs._strip_protocol(uri)

    def stat(self, uri: str) -> base.ObjectInfo | None:
        try:
            info = self._fs.info(self._path(uri))
        except FileNotFoundError:
            return None
        return base.ObjectInfo(uri.rstrip("/").rsplit("/", 1)[-1], info.get("size")) if info["type"] == "file" else None

    def list(self, uri: str) -> Iterator[base.ObjectInfo]:
        root = self._path(uri).rstrip("/") + "/"
        for path, info in sorted(self._fs.find(root, detail=True).items()):
            if info["type"] == "file" and path.startswith(root):
                yield base.ObjectInfo(path[len(root):], info.get("size"))

    def open(self, uri: str) -> BinaryIO:
        return self._fs.open(self._path(uri), "rb")

    def upload(self, source: pathlib.Path, uri: str, on_bytes: base.OnBytes) -> None:
        with localfiles.open_regular(source) as reader, self._fs.open(self._path(uri), "wb") as writer:
            while chunk := reader.read(integrity.CHUNK):
                writer.write(chunk)
                on_bytes(len(chunk))

    def write_bytes(self, uri: str, data: bytes) -> None:
        self._fs.pipe_file(self._path(uri), data)

    def put_if_absent(self, uri: str, data: bytes) -> bool:
        """Best effort: fsspec's ``xb`` mode creates only if absent, atomically where the filesystem
        can (local, memory; gcsfs and adlfs where their versions send the store's precondition).
        Elsewhere a writer racing this one within the same moment may overwrite it unseen."""
        path = self._path(uri)
        if self._fs.exists(path):
            return False
        try:
            with self._fs.open(path, "xb") as writer:
                writer.write(data)
        except FileExistsError:
            return False
        return True

    def delete(self, uris_: Sequence[str]) -> None:
        present = [path for path in map(self._path, uris_) if self._fs.exists(path)]
        if present:
            self._fs.rm(present)
