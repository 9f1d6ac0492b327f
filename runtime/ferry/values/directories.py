"""``ferry.Directory``: a reference to a directory tree, local or stored, passed between tasks.

Like ``File`` it is a thin value. A local directory is published when it leaves a task
(``to_blob``) to a fresh path under the raw data prefix or to ``remote_directory=`` (which re-runs
overwrite, sending only the files that changed). A stored one passes by reference, and nothing
is fetched until asked: ``listdir()`` reads only the manifest (or the listing) and returns
Files that download on first use; ``open("sub/x.csv")`` streams one file; ``download()`` or
``os.fspath`` (``os.listdir(d)``) fetch the whole tree, verified. Whatever is fetched lands at its
own path under the directory's local path (``d.path / "sub/x.csv"``), so files listed together
stay side by side, and inside a task that path is in its working directory (``context.downloads``).
"""

from __future__ import annotations

import os
import pathlib
from typing import IO

from ferry.core import uris
from ferry.data import blobs, manifest, store as store_
from ferry.values import references
from ferry.values.files import File


class Directory(references.Reference):
    """``Directory("local/dir", remote_directory=None)`` or ``Directory("s3://bucket/prefix")``;
    see the module docstring."""

    def __init__(self, path: str | os.PathLike, remote_directory: str | None = None):
        super().__init__(path)
        self._remote_directory = remote_directory if remote_directory is None else uris.check_clean(remote_directory, "remote_directory")
        self._contents: manifest.Manifest | None = None
        self._is_part = False

    @classmethod
    def from_source(cls, uri: str) -> Directory:
        """A stored directory; nothing is read until it is listed, opened or downloaded."""
        return cls(uri)

    @classmethod
    def from_blob(cls, ref: blobs.BlobRef) -> Directory:
        """The directory a blob reference stands for; its manifest must match the reference's digest."""
        if ref.kind == blobs.Kind.FILE:
            raise ValueError(f"{ref.uri} is a file, not a directory; load it as a File")
        directory = cls(ref.uri)
        directory._ref = ref
        return directory

    @classmethod
    def _part(cls, uri: str, contents: manifest.Manifest, parent: Directory, name: str) -> Directory:
        """A subdirectory ``name`` of the stored directory ``parent``, known by its manifest entries
        (objects stay where they are), at ``name`` under the parent's local path."""
        directory = cls(uri)
        directory._contents, directory._is_part = contents, True
        parent._place(directory, name)
        return directory

    def _place(self, child: File | Directory, path: str) -> None:
        """Put ``child`` at ``path`` under this directory's local path, fetched if this one is."""
        child._local, child._downloaded = self.path / path, self._downloaded

    def manifest(self) -> manifest.Manifest:
        """Every file of a stored directory with its size and (if Ferry published it) sha256."""
        if self._contents is None:
            self._contents = store_.current().manifest(self._ref or self._source)
        return self._contents

    def download(self) -> pathlib.Path:
        """Download every file once, verified; return the local path."""
        if self.is_remote and not self._downloaded:
            store_.current().download_directory(self._source, self.path, contents=self.manifest())
            self._downloaded = True
        return self.path

    def listdir(self) -> list[File | Directory]:
        """The entries at the top of the directory, as Files and Directories that fetch nothing
        until read. Works as ``Directory.listdir(d)`` too."""
        if not self.is_remote:
            return [Directory(entry.path) if entry.is_dir() else File(entry.path)
                    for entry in sorted(os.scandir(self.path), key=lambda e: e.name)]
        contents = self.manifest()
        files, directories = contents.children()
        return ([self._file(entry) for entry in files]
                + [Directory._part(uris.join(self._source, name), contents.subtree(self._source, name), self, name)
                   for name in directories])

    def file(self, path: str) -> File:
        """One file of the directory by relative path, without fetching the others."""
        manifest.check_relpath(path)
        if not self.is_remote:
            return File(self.path / path)
        entry = self.manifest().find(path)
        if entry is None:
            raise FileNotFoundError(f"{path} is not in {self._source}")
        return self._file(entry)

    def open(self, path: str, mode: str = "rb", encoding: str | None = None) -> IO:
        """Stream one file of the directory (``d.open("sub/x.csv", "r")``), verified at its end."""
        return self.file(path).open(mode, encoding)

    def _file(self, entry: manifest.Entry) -> File:
        file = File.from_blob(blobs.BlobRef(uri=self.manifest().object_uri(self._source, entry), kind=blobs.Kind.FILE,
                                            size=entry.size, file_count=1, sha256=entry.sha256))
        self._place(file, entry.path)
        return file

    def to_blob(self, store: store_.Store | None = None) -> blobs.BlobRef:
        """The blob reference: a local directory is published first (once); a part of a stored one
        gets a manifest of its own that points at the same objects; a stored one passes as it is."""
        if self._ref is None:
            store = store or store_.current()
            if not self.is_remote:
                self._ref = store.upload_directory(self.path, self._remote_directory)
            elif self._is_part:
                self._ref = store.publish_manifest(self._contents)
            else:
                self._ref = blobs.BlobRef(uri=self._source, kind=blobs.Kind.DIRECTORY)
        return self._ref
