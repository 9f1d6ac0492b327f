"""Python values in and out of tasks: which kind each type travels as, and how.

``File``, ``Directory`` and ``Asset`` travel as blob references, ``list[File]`` and ``list[Directory]``
as one directory of them (``ferry.values.lists``); everything else pydantic can
serialize (str, int, float, bool, lists and dicts of them, dataclasses, pydantic models) travels
as a JSON value. Small values ride in the workflow's status; large ones are stored as a JSON
object and passed by reference.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import typing
from typing import Any

import pydantic

from ferry.api import resource
from ferry.data import blobs, store as store_
from ferry.values import lists, serialization
from ferry.values.assets import Asset
from ferry.values.directories import Directory
from ferry.values.files import File

MAX_INLINE_VALUE = 1024
"""Bytes of JSON carried inline in status; larger values are stored."""

_KINDS: dict[type, resource.Kind] = {File: resource.Kind.FILE, Directory: resource.Kind.DIRECTORY,
                                     Asset: resource.Kind.ASSET}
"""Known here rather than registered by ``ferry.values.assets``, so restoring an asset never imports the
Workflow's models (``resource``) nor this module."""


def kind_of(annotation: Any) -> resource.Kind:
    if lists.item_type(annotation) is not None:
        return resource.Kind.DIRECTORY
    if inspect.isclass(annotation):
        for cls, kind in _KINDS.items():
            if issubclass(annotation, cls):
                return kind
    return resource.Kind.VALUE


def unsupported(annotation: Any) -> str | None:
    """Why values of ``annotation`` cannot travel between tasks, or None: said where a task is
    defined, rather than as pydantic's many lines (and its advice for library authors) at compile."""
    if kind_of(annotation) != resource.Kind.VALUE:
        return None
    if _holds_blob(annotation, set()):
        return ("files, directories and assets inside dicts, tuples, optional values, dataclasses or lists of other "
                "things are not supported yet; use list[ferry.File], list[ferry.Directory] or one ferry.Directory "
                "holding the files")
    try:
        _adapter(annotation)
    except pydantic.PydanticUserError:
        return ("its values cannot travel between tasks: use str, int, float, bool, lists and dicts of them, "
                "a dataclass, a pydantic model, or a ferry.File, ferry.Directory or ferry.Asset")
    return None


def _holds_blob(annotation: Any, seen: set[int]) -> bool:
    """Whether a File, Directory or Asset is somewhere inside ``annotation`` (its arguments, or the
    fields of a dataclass or pydantic model)."""
    if id(annotation) in seen:
        return False
    seen.add(id(annotation))
    inner = list(typing.get_args(annotation))
    if dataclasses.is_dataclass(annotation) and inspect.isclass(annotation):
        inner += typing.get_type_hints(annotation).values()
    elif inspect.isclass(annotation) and issubclass(annotation, pydantic.BaseModel):
        inner += [field.annotation for field in annotation.model_fields.values()]
    return any(kind_of(t) != resource.Kind.VALUE or _holds_blob(t, seen) for t in inner)


@functools.lru_cache(maxsize=None)
def _adapter(annotation: Any) -> pydantic.TypeAdapter:
    return pydantic.TypeAdapter(annotation)


def check(annotation: Any, value: Any) -> Any:
    """Validate a literal against a type; raises ``ValueError`` with pydantic's explanation."""
    if lists.item_type(annotation) is not None:
        return lists.check(annotation, value)
    if kind_of(annotation) != resource.Kind.VALUE:
        if isinstance(value, annotation):
            return value
        raise ValueError(f"expected {annotation.__name__}, got {type(value).__name__} {value!r}")
    try:
        return _adapter(annotation).validate_python(value)
    except pydantic.ValidationError as error:
        raise ValueError(f"expected {getattr(annotation, '__name__', annotation)}, got {value!r}: "
                         f"{error.errors()[0]['msg']}") from None


def to_blob(annotation: Any, value: Any, store: store_.Store | None = None) -> blobs.BlobRef:
    """The blob reference of a File, Directory, Asset, or list of Files or Directories, publishing
    what is local (to ``store``, default: the current one)."""
    if lists.item_type(annotation) is not None:
        return lists.publish(annotation, value, store or store_.current())
    return check(annotation, value).to_blob(store)


def to_json(annotation: Any, value: Any) -> Any:
    return _adapter(annotation).dump_python(check(annotation, value), mode="json")


def dump(annotation: Any, value: Any, store: store_.Store, uri_for_large: str) -> resource.Output:
    """Publish a task's return value: blobs through their own ``to_blob``, values inline or stored."""
    kind = kind_of(annotation)
    if kind != resource.Kind.VALUE:
        return resource.Output.of(to_blob(annotation, value, store), kind)
    return publish_json(to_json(annotation, value), store, uri_for_large)


def publish_json(data: Any, store: store_.Store, uri_for_large: str) -> resource.Output:
    """A JSON value as an output: inline up to ``MAX_INLINE_VALUE`` bytes, else stored at ``uri_for_large``."""
    encoded = json.dumps(data).encode()
    if len(encoded) <= MAX_INLINE_VALUE:
        return resource.Output(kind=resource.Kind.VALUE, value=data)
    store.backend(uri_for_large).write_bytes(uri_for_large, encoded)
    return resource.Output(kind=resource.Kind.VALUE, uri=uri_for_large, size=len(encoded),
                           sha256=hashlib.sha256(encoded).hexdigest())


def load(annotation: Any, output: resource.Output, store: store_.Store) -> Any:
    """Rebuild a task's input value from what an upstream task published (no download for blobs;
    a list of them reads its directory's manifest)."""
    if lists.item_type(annotation) is not None:
        return lists.load(annotation, output.blob())
    if output.kind != resource.Kind.VALUE:
        return serialization.from_blob(output.blob())
    data = output.value
    if output.uri is not None:
        with store.open(output.blob(blobs.Kind.FILE)) as stream:
            data = json.loads(stream.read())
    return _adapter(annotation).validate_python(data)
