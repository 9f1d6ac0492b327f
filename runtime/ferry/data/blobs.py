"""Blob references: the small JSON value that stands for a stored file, directory or asset.

This is what travels between tasks (in a Workflow's status, in the next pod's inputs). Optional
fields are unknown for values passed by reference without being read (``File("s3://...")``); for
outputs Ferry published they are all set, and downloads check the bytes against them.
"""

from __future__ import annotations

import enum
import json
from typing import Any

from ferry.core import digests, records


class Kind(str, enum.Enum):
    FILE = "file"
    DIRECTORY = "directory"
    ASSET = "asset"


_KINDS = {kind.value: kind for kind in Kind} | {kind: kind for kind in Kind}


def _has_scheme(uri: str) -> str:
    if "://" not in uri:
        raise ValueError(f"{uri!r} is not a URI; expected scheme://..., e.g. s3://bucket/key or file:///path")
    return uri


_uri = records.constrained(lambda value: value if type(value) is str and "://" in value else records.NO, _has_scheme)


def _kind(value: Any) -> Any:
    return _KINDS.get(value, records.NO) if type(value) in (str, Kind) else records.NO


class BlobRef(records.Record):
    """A stored file, directory or asset (``uri``, ``kind``), with what downloads check.

    Fields: ``uri``, the object (file) or directory prefix (directory, asset) in a store; ``kind``;
    ``size``, total bytes; ``file_count`` (1 for a file); ``manifest_digest``, sha256 of the stored
    manifest (directory, asset), which pins every file's size and hash; ``sha256``, hex sha256 of
    the content (file). A ``records.Record``: no pydantic unless the input needs it."""

    uri: str = records.field(_uri)
    kind: Kind = records.field(_kind)
    size: int | None = records.field(records.optional(records.integer(0)), None)
    file_count: int | None = records.field(records.optional(records.integer(0)), None)
    manifest_digest: str | None = records.field(records.optional(records.matching(digests.MANIFEST_DIGEST)), None)
    sha256: str | None = records.field(records.optional(records.matching(digests.SHA256)), None)

    def to_json(self) -> str:
        """Compact JSON, as pydantic writes it (printable text is written the same by ``json``)."""
        values = self.model_dump(mode="json", exclude_none=True)
        if all(value.isprintable() for value in values.values() if isinstance(value, str)):
            return json.dumps(values, separators=(",", ":"), ensure_ascii=False)
        return self.as_model().model_dump_json(exclude_none=True)
