"""What ``File`` and ``Directory`` share: a local path or a stored URI, and where it is locally.

A reference never does I/O when it is made; ``download()`` (each subclass's own) fetches a stored
value on first use, which ``os.fspath`` calls, so ``open(f)`` and ``os.listdir(d)`` just work.
"""

from __future__ import annotations

import os
import pathlib

from ferry.core import uris
from ferry.data import blobs, store as store_


class Reference(os.PathLike):
    def __init__(self, path: str | os.PathLike):
        self._source = os.fspath(path)
        self._ref: blobs.BlobRef | None = None
        self._local: pathlib.Path | None = None if uris.is_uri(self._source) else pathlib.Path(self._source)
        self._downloaded = False

    @property
    def remote_source(self) -> str | None:
        """Where the value is stored: its URI, or where it was published; None while only local."""
        return self._ref.uri if self._ref else (self._source if self.is_remote else None)

    @property
    def is_remote(self) -> bool:
        return uris.is_uri(self._source)

    @property
    def path(self) -> pathlib.Path:
        """The local path: the value itself, or where a stored one is (or will be) downloaded."""
        if self._local is None:
            self._local = store_.current().random_local_path(uris.basename(self._source))
        return self._local

    def download(self) -> pathlib.Path:
        raise NotImplementedError

    def __fspath__(self) -> str:
        return str(self.download())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._source!r})"
