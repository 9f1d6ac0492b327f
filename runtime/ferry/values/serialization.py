"""Values to blob references and back: what the operator carries in a Workflow's status and the
next task's runtime turns back into a value.

``to_blob`` publishes local data first (a local File or Directory leaving its task); ``from_blob``
never does I/O. Value types register a loader for their kind (``register``), so ``Asset`` and
later kinds plug in without this module knowing them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ferry.data import blobs, store as store_
from ferry.values.directories import Directory
from ferry.values.files import File


class Blobbable(Protocol):
    def to_blob(self, store: store_.Store | None = None) -> blobs.BlobRef: ...


_loaders: dict[blobs.Kind, Callable[[blobs.BlobRef], Any]] = {
    blobs.Kind.FILE: File.from_blob,
    blobs.Kind.DIRECTORY: Directory.from_blob,
}


def register(kind: blobs.Kind, loader: Callable[[blobs.BlobRef], Any]) -> None:
    """Rebuild values of ``kind`` with ``loader``."""
    _loaders[kind] = loader


def to_blob(value: Blobbable, store: store_.Store | None = None) -> blobs.BlobRef:
    """The blob reference of a value, publishing it to ``store`` (default: the current one) if it is local."""
    if not hasattr(value, "to_blob"):
        raise TypeError(f"{type(value).__name__} cannot travel between tasks; use ferry.File or ferry.Directory")
    return value.to_blob(store)


def from_blob(ref: blobs.BlobRef | Mapping[str, Any] | str) -> Any:
    """The value a blob reference (a model, its dict, or its JSON) stands for. No I/O."""
    if isinstance(ref, str):
        ref = blobs.BlobRef.model_validate_json(ref)
    elif not isinstance(ref, blobs.BlobRef):
        ref = blobs.BlobRef.model_validate(ref)
    loader = _loaders.get(ref.kind)
    if loader is None:
        raise ValueError(f"{ref.uri}: no value type is registered for {ref.kind.value} blobs")
    return loader(ref)


def dumps(value: Blobbable, store: store_.Store | None = None) -> str:
    return to_blob(value, store).to_json()


def loads(text: str) -> Any:
    return from_blob(json.loads(text))
