"""Values to blob references and back: what the operator carries in a Workflow's status and the
next task's runtime turns back into a value.

``to_blob`` publishes local data first (a local File or Directory leaving its task); ``from_blob``
never does I/O. Each kind's value type is named in ``VALUE_TYPES`` and imported on first use,
so a reference loads in a process that never imported its type (nothing registers at import).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ferry.data import blobs, store as store_


class Blobbable(Protocol):
    def to_blob(self, store: store_.Store | None = None) -> blobs.BlobRef: ...


VALUE_TYPES: dict[blobs.Kind, str] = {
    blobs.Kind.FILE: "ferry.values.files:File",
    blobs.Kind.DIRECTORY: "ferry.values.directories:Directory",
    blobs.Kind.ASSET: "ferry.values.assets:Asset",
}
"""``module:class`` of the value each kind of blob stands for; the class's ``from_blob`` rebuilds it."""


def loader(kind: blobs.Kind) -> Callable[[blobs.BlobRef], Any]:
    """``from_blob`` of the value type of ``kind``."""
    if kind not in VALUE_TYPES:
        raise ValueError(f"no value type is registered for {kind.value} blobs")
    module, _, name = VALUE_TYPES[kind].partition(":")
    return getattr(importlib.import_module(module), name).from_blob


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
    try:
        load = loader(ref.kind)
    except ValueError as error:
        raise ValueError(f"{ref.uri}: {error}") from None
    return load(ref)


def dumps(value: Blobbable, store: store_.Store | None = None) -> str:
    return to_blob(value, store).to_json()


def loads(text: str) -> Any:
    return from_blob(json.loads(text))
