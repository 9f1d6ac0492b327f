"""The manifest's pydantic models (``ferry.data.manifest`` has the rest): imported on first use of
``manifest.Entry`` or ``manifest.Manifest``, so that restoring part of an asset, which checks the
stored manifest with msgspec (``manifest.part``), does not import pydantic."""

from __future__ import annotations

import pydantic

from ferry.core import integrity
from ferry.data.entries import check_relpath, digest_of, object_uri


class Entry(pydantic.BaseModel):
    # Built on first validation, not at import: restoring a part of an asset makes its entries
    # with ``model_construct`` and never validates one. No use_attribute_docstrings: it would parse
    # this file's source at import to copy the field docstrings into a JSON schema nobody asks for.
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", defer_build=True)

    path: str
    """Relative POSIX path inside the directory."""
    size: int | None = pydantic.Field(None, ge=0)
    """Bytes; None only in listings of directories Ferry did not publish."""
    sha256: str | None = pydantic.Field(None, pattern=integrity.SHA256)
    """Hex digest of the content; None only in listings of directories Ferry did not publish."""
    mode: int = pydantic.Field(0o644, ge=0, le=0o777)
    """Permission bits (executable bits included) to restore."""
    object: str | None = None
    """Where the bytes are stored when not at ``<directory>/<path>``."""

    @pydantic.field_validator("path")
    @classmethod
    def _clean_path(cls, path: str) -> str:
        return check_relpath(path)


class Manifest(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", defer_build=True)  # as Entry

    version: int = 1
    files: list[Entry] = []
    """Every file, sorted by path."""
    empty_directories: list[str] = []
    """Directories with nothing inside, which would otherwise vanish."""

    @pydantic.field_validator("empty_directories")
    @classmethod
    def _clean_directories(cls, paths: list[str]) -> list[str]:
        return [check_relpath(path) for path in paths]

    @pydantic.model_validator(mode="after")
    def _unique_paths(self) -> Manifest:
        paths = [entry.path for entry in self.files]
        if len(set(paths)) != len(paths):
            raise ValueError("a manifest lists the same path twice")
        return self

    @property
    def size(self) -> int:
        return sum(entry.size or 0 for entry in self.files)

    def to_bytes(self) -> bytes:
        """Canonical JSON: the bytes that are stored and hashed."""
        return self.model_dump_json(exclude_none=True).encode()

    def digest(self) -> str:
        return digest_of(self.to_bytes())

    def object_uri(self, base: str, entry: Entry) -> str:
        """Where ``entry``'s bytes live for a manifest stored at directory ``base``."""
        return object_uri(base, entry)

    def find(self, path: str) -> Entry | None:
        return next((entry for entry in self.files if entry.path == path), None)

    def subtree(self, base: str, prefix: str) -> Manifest:
        """The part under ``prefix``, with paths relative to it and objects kept where they are."""
        head = check_relpath(prefix.strip("/")) + "/"
        return Manifest(
            files=[entry.model_copy(update={"path": entry.path[len(head):], "object": self.object_uri(base, entry)})
                   for entry in self.files if entry.path.startswith(head)],
            empty_directories=[d[len(head):] for d in self.empty_directories if d.startswith(head)])

    def children(self) -> tuple[list[Entry], list[str]]:
        """Top-level files and the names of top-level directories."""
        names = {entry.path.split("/", 1)[0] for entry in self.files if "/" in entry.path}
        names |= {d.split("/", 1)[0] for d in self.empty_directories}
        return [entry for entry in self.files if "/" not in entry.path], sorted(names)
