"""``ferry.File``: a reference to one file, local or stored, that tasks pass to each other.

It is a thin value: the constructor does no I/O and reads no settings. A local file is uploaded
when it leaves a task (``to_blob``), to a fresh path under the raw data prefix or to
``remote_path=``; a stored one (``s3://``, ``file://``, ``https://``...) passes by reference.
Reading a stored file downloads it on first use (``download()``, ``open()`` of the path,
``os.fspath``), or streams it without a download (``File.open()``).
"""

from __future__ import annotations

import io
import os
import pathlib
from typing import IO

from ferry.core import uris
from ferry.data import blobs, store as store_
from ferry.values import references


class File(references.Reference):
    """``File("local/path", remote_path=None)`` or ``File("s3://bucket/key")``; see the module docstring."""

    def __init__(self, path: str | os.PathLike, remote_path: str | None = None):
        super().__init__(path)
        self._remote_path = remote_path if remote_path is None else uris.check_clean(remote_path, "remote_path")

    @classmethod
    def from_source(cls, uri: str) -> File:
        """A stored file, downloaded only when it is read."""
        return cls(uri)

    @classmethod
    def from_blob(cls, ref: blobs.BlobRef) -> File:
        """The file a blob reference stands for; reads check its size and sha256."""
        if ref.kind != blobs.Kind.FILE:
            raise ValueError(f"{ref.uri} is a {ref.kind.value}, not a file; load it as a Directory")
        file = cls(ref.uri)
        file._ref = ref
        return file

    def download(self) -> pathlib.Path:
        """Download a stored file once (verified against its blob reference); return the local path."""
        if self.is_remote and not self._downloaded:
            store_.current().download_file(self._ref or self._source, self.path)
            self._downloaded = True
        return self.path

    def open(self, mode: str = "rb", encoding: str | None = None) -> IO:
        """Open for reading; a stored file not yet downloaded is streamed, never saved whole."""
        if self.is_remote and not self._downloaded:
            if set(mode) - set("rbt"):
                raise ValueError(f"{self._source} is stored remotely and read-only here; open it with mode 'r' or 'rb'")
            stream = store_.current().open(self._ref or self._source)
            return stream if "b" in mode else io.TextIOWrapper(stream, encoding=encoding)
        return open(self.path, mode, encoding=encoding)

    def to_blob(self, store: store_.Store | None = None) -> blobs.BlobRef:
        """The blob reference, uploading a local file first (once)."""
        if self._ref is None:
            if self.is_remote:
                self._ref = blobs.BlobRef(uri=self._source, kind=blobs.Kind.FILE)
            else:
                self._ref = (store or store_.current()).upload_file(self.path, self._remote_path)
        return self._ref
