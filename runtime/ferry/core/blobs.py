"""Blob references: the small JSON value that stands for a stored file, directory or asset.

It travels between tasks, in a Workflow's status and in the next pod's inputs, so it is declared
once, here below both floors that use it: the SDK's ``BlobRef`` (also ``ferry.data.blobs.BlobRef``)
is this record, and the status's ``Output`` (``ferry.api.resource``) takes its fields from it, with
their constraints (the CRD's patterns) and descriptions. Optional fields are unknown for values
passed by reference without being read (``File("s3://...")``); for outputs Ferry published they are
all set, and downloads check the bytes against them.
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
    """A stored file, directory or asset (``uri``, ``kind``), with what downloads check. A
    ``records.Record``: no pydantic unless the input needs it. The docstrings below are the CRD's
    descriptions of a status output's fields."""

    uri: str = records.field(_uri)
    """Where the blob is stored: the object (files) or the folder (directories, assets)."""
    kind: Kind = records.field(_kind)
    size: int | None = records.field(records.optional(records.integer(0)), None)
    """Total bytes."""
    file_count: int | None = records.field(records.optional(records.integer(0)), None)
    """Number of files (1 for a file)."""
    manifest_digest: str | None = records.field(records.optional(records.matching(digests.MANIFEST_DIGEST)), None)
    """Digest of the stored manifest that lists every file with its size and sha256 (directories and assets)."""
    sha256: str | None = records.field(records.optional(records.matching(digests.SHA256)), None)
    """The file's sha256 (files)."""

    def to_json(self) -> str:
        """Compact JSON, as pydantic writes it (printable text is written the same by ``json``)."""
        values = self.model_dump(mode="json", exclude_none=True)
        if all(value.isprintable() for value in values.values() if isinstance(value, str)):
            return json.dumps(values, separators=(",", ":"), ensure_ascii=False)
        return self.as_model().model_dump_json(exclude_none=True)
