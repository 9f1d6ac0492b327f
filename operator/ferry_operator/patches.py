"""JSON patches (RFC 6902) between two documents: a status write sends what changed, not the
whole Workflow (whose spec can be megabytes) nor the whole status. Not merge patches: they
cannot set a null inside an object, which a task's JSON value output may hold."""

from __future__ import annotations

from typing import Any

_ABSENT = object()


def pointer(path: str, key: str) -> str:
    """``path`` extended by ``key`` as a JSON pointer (RFC 6901 escapes)."""
    return f"{path}/{key.replace('~', '~0').replace('/', '~1')}"


def diff(before: dict[str, Any], after: dict[str, Any], path: str = "") -> list[dict[str, Any]]:
    """The operations that turn the object at ``path``, ``before``, into ``after``: removed keys
    removed, new or changed values added (``add`` replaces a member), objects present in both
    compared member by member. Lists and other values are replaced whole."""
    ops: list[dict[str, Any]] = [{"op": "remove", "path": pointer(path, key)} for key in before.keys() - after.keys()]
    for key, value in after.items():
        old = before.get(key, _ABSENT)
        if isinstance(value, dict) and isinstance(old, dict):
            ops += diff(old, value, pointer(path, key))
        elif type(old) is not type(value) or old != value:
            ops.append({"op": "add", "path": pointer(path, key), "value": value})
    return ops


def finalizer_added(meta: dict, finalizer: str) -> list[dict[str, Any]]:
    """The operations that add ``finalizer`` to an object with metadata ``meta``."""
    if meta.get("finalizers"):
        return [{"op": "add", "path": "/metadata/finalizers/-", "value": finalizer}]
    return [{"op": "add", "path": "/metadata/finalizers", "value": [finalizer]}]


def finalizer_removed(meta: dict, finalizer: str) -> list[dict[str, Any]] | None:
    """The operations that remove ``finalizer`` (None when it is not there): by position, after
    testing it is still there, so they neither depend on the rest of the object not changing
    meanwhile nor drop another controller's finalizer."""
    finalizers = meta.get("finalizers") or []
    if finalizer not in finalizers:
        return None
    where = f"/metadata/finalizers/{finalizers.index(finalizer)}"
    return [{"op": "test", "path": where, "value": finalizer}, {"op": "remove", "path": where}]
