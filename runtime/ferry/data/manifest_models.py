"""The manifest's pydantic models (``ferry.data.manifest`` has the rest): imported on first use of
``manifest.Entry`` or ``manifest.Manifest``, so that restoring part of an asset, which checks the
stored manifest with msgspec (``manifest.part``), does not import pydantic."""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any

import msgspec
import pydantic

from ferry.data.entries import StoredEntry, check_relpath, digest_of, object_uri


def _limits(kind: Any) -> Any:
    """A ``StoredEntry`` field's type as the model checks it: msgspec's bounds and ``extra`` (a
    ``pattern``) become pydantic's; its lengths only shortcut the pattern, so the pattern says what is wrong."""
    if typing.get_origin(kind) is Annotated:
        base, *metas = typing.get_args(kind)
        limits = {}
        for meta in metas:
            limits |= {name: getattr(meta, name) for name in ("ge", "gt", "le", "lt")
                       if getattr(meta, name) is not None}
            limits |= meta.extra or {}
        return Annotated[base, pydantic.Field(**limits)]
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return typing.Union[tuple(map(_limits, typing.get_args(kind)))]
    return kind


def _entry() -> type[pydantic.BaseModel]:
    hints = typing.get_type_hints(StoredEntry, include_extras=True)
    fields = {field.name: (_limits(hints[field.name]), field.default if field.required is False else ...)
              for field in msgspec.structs.fields(StoredEntry)}
    # Built on first validation, not at import: restoring a part of an asset makes its entries
    # with ``model_construct`` and never validates one.
    return pydantic.create_model(
        "Entry", __config__=pydantic.ConfigDict(frozen=True, extra="forbid", defer_build=True), __module__=__name__,
        __validators__={"_clean_path": pydantic.field_validator("path")(lambda cls, path: check_relpath(path))},
        **fields)


Entry = _entry()
"""``StoredEntry`` as a pydantic model: what reads loosely typed or malformed manifests, and says why."""


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
