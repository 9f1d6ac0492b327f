"""Blob references: the small JSON value that stands for a stored file, directory or asset.

This is what travels between tasks (in a Workflow's status, in the next pod's inputs). Optional
fields are unknown for values passed by reference without being read (``File("s3://...")``); for
outputs Ferry published they are all set, and downloads check the bytes against them.
"""

from __future__ import annotations

import enum

import pydantic


class Kind(str, enum.Enum):
    FILE = "file"
    DIRECTORY = "directory"
    ASSET = "asset"


class BlobRef(pydantic.BaseModel):
    # The field docstrings are for readers only: ``use_attribute_docstrings`` would read and parse
    # this file's source on every start to copy them into a JSON schema nobody asks for (as for
    # ``Settings`` and the manifest's models; the Workflow's models keep it for the CRD).
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")

    uri: str
    """The object (file) or directory prefix (directory, asset) in a store."""
    kind: Kind
    size: int | None = pydantic.Field(None, ge=0)
    """Total bytes."""
    file_count: int | None = pydantic.Field(None, ge=0)
    """Number of files (1 for a file)."""
    manifest_digest: str | None = pydantic.Field(None, pattern=r"^sha256:[0-9a-f]{64}$")
    """sha256 of the stored manifest (directory, asset): pins every file's size and hash."""
    sha256: str | None = pydantic.Field(None, pattern=r"^[0-9a-f]{64}$")
    """Hex sha256 of the content (file)."""

    @pydantic.field_validator("uri")
    @classmethod
    def _has_scheme(cls, uri: str) -> str:
        if "://" not in uri:
            raise ValueError(f"{uri!r} is not a URI; expected scheme://..., e.g. s3://bucket/key or file:///path")
        return uri

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=True)
