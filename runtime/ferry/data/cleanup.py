"""Which stored objects a deleted workflow leaves for the taking. Pure functions.

A workflow's attempts publish under its own folder, ``<namespace folder>/<workflow uid>/``
(``taskpod.build_plan``). Deleting that folder must never take what is still in use: an output
another workflow reads or reports (its spec and status name the URI), a cache entry's result
(``<namespace folder>/cache/*.json``: a later run would reuse it), an asset or directory whose
manifest names objects stored here (assets made by filtering or combining others copy nothing).
Drives (``<raw data prefix>/drives/``), code archives and the cache live outside any workflow's
folder and are never candidates.

Protection works by URI prefix: a URI named anywhere keeps the object it names and everything
under it (a directory's files, an asset's manifest), so the granularity is what users pass around.
The I/O (listing, reading entries and manifests, deleting) is ``ferry.data.collect``'s.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Iterator
from typing import Any

from ferry.data import manifest

UID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
"""A Kubernetes uid: the name of a workflow's folder."""
RUN_ID = re.compile(r"^.+-[0-9a-f]{8}$")
"""A local run's id (``local.new_run_id``): its folder's name under ``<raw data prefix>/local/``,
beside ``cache/``."""


def folder(root: str, uid: str) -> str:
    """The folder of the workflow with ``uid`` in the namespace folder ``root``, ending in ``/``."""
    return f"{root.rstrip('/')}/{uid}/"


def named_uris(document: Any, under: str) -> Iterator[str]:
    """Every string in a JSON document (a Workflow, a cache entry, a manifest) that is a URI under
    ``under``: wherever it sits (an input's ``uri``, an output, a stored result, a manifest entry's
    ``object``), whoever wrote it."""
    if isinstance(document, str):
        if document.startswith(under):
            yield document
    elif isinstance(document, dict):
        for value in document.values():
            yield from named_uris(value, under)
    elif isinstance(document, list):
        for value in document:
            yield from named_uris(value, under)


def blob_uris(document: Any, under: str) -> Iterator[str]:
    """The URIs under ``under`` of directories and assets a JSON document references (``{"kind":
    "directory", "uri": ...}``): their manifests may name objects stored elsewhere. Only there: a
    task writes cache entries and status, and a URI elsewhere (``http://`` an internal service)
    would have the cleanup pod fetch it."""
    if isinstance(document, dict):
        uri = document.get("uri")
        if document.get("kind") in ("directory", "asset") and isinstance(uri, str) and uri.startswith(under):
            yield uri
        for value in document.values():
            yield from blob_uris(value, under)
    elif isinstance(document, list):
        for value in document:
            yield from blob_uris(value, under)


def covered(uri: str, kept: set[str]) -> bool:
    """Whether ``uri`` is kept: named itself, or under a kept URI (each ancestor looked up once)."""
    if uri in kept:
        return True
    position = uri.find("://") + 3
    while (position := uri.find("/", position) + 1) > 0:
        if uri[:position - 1] in kept or uri[:position] in kept:
            return True
    return False


def doomed(objects: Iterable[str], kept: set[str]) -> list[str]:
    """The objects to delete: those not kept, manifests first (a directory whose manifest is gone
    is gone for every reader; one whose files went first would fail their downloads)."""
    free = [uri for uri in objects if not covered(uri, kept)]
    return sorted(free, key=lambda uri: (not uri.endswith("/" + manifest.NAME), uri))


PLAN_ENV = "FERRY_CLEANUP_PLAN"
PLAN_LIMIT = 256 * 1024
"""Bytes of plan a cleanup pod's environment may carry; a workflow referenced more widely is left
to ``ferry gc``, which reads the Workflows itself."""


def plan(root: str, uid: str, others: Iterable[dict]) -> dict:
    """What the cleanup pod of the deleted workflow ``uid`` needs (``ferry pod cleanup``): its
    folder, and what the namespace's other Workflows name there. Only those that name something in
    the folder matter (a derived asset's manifest names objects only of assets its task read, so
    through a URI in that workflow): their URIs under the namespace folder, and their directories
    and assets, whose manifests the pod reads."""
    mine, inside = folder(root, uid), root.rstrip("/") + "/"
    referencing = [other for other in others
                   if other.get("metadata", {}).get("uid") != uid and next(named_uris(other, mine), None)]
    return {"root": root, "folder": mine, "kept": sorted(set(named_uris(referencing, inside))),
            "blobs": sorted(set(blob_uris(referencing, inside)))}


def abandoned(objects: Iterable[tuple[str, float | None]], live: set[str], before: float,
              names: re.Pattern | None = UID) -> list[str]:
    """The folders of a namespace folder's listing (``(path, modified)`` pairs) that ``ferry gc``
    may empty: named like a workflow's (``names``), of none still there (``live``), and with every
    object written before ``before`` (an object of unknown age keeps its folder)."""
    newest: dict[str, float | None] = {}
    for path, modified in objects:
        name, slash, _ = path.partition("/")
        if slash and (names is None or names.match(name)) and name not in live:
            seen = newest.get(name, 0.0)
            newest[name] = None if modified is None or seen is None else max(seen, modified)
    return sorted(name for name, modified in newest.items() if modified is not None and modified < before)


def older_than(text: str) -> datetime.timedelta:
    """``30d``, ``12h``, ``90m``: ``ferry gc --older-than``'s durations."""
    found = re.fullmatch(r"(\d+)([dhm])", text.strip())
    if not found:
        raise ValueError(f"--older-than {text!r}: give a number and a unit, d (days), h (hours) or m (minutes): 30d")
    unit = {"d": "days", "h": "hours", "m": "minutes"}[found[2]]
    return datetime.timedelta(**{unit: int(found[1])})
