"""Deleting what deleted workflows left in the store: the I/O around ``ferry.data.cleanup``'s decisions.

Used by the operator's cleanup pod (``spec.artifactCleanup: OnDeletion``) and by ``ferry gc``.
Both give the namespace folder, the workflow folders to empty, and the documents that may still
name objects there (the namespace's other Workflows); the cache entries and the manifests of every
directory and asset those name are read here.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
from collections.abc import Iterable
from typing import Any

from ferry.data import cleanup, store as store_, transfer

BATCH = 1000
"""Objects per delete request (S3's DeleteObjects takes up to 1,000)."""
READERS = 16
"""Cache entries and manifests read at once."""


@dataclasses.dataclass
class Outcome:
    deleted: int = 0
    bytes: int = 0
    kept: int = 0
    """Objects in the folders that something still names."""

    def __str__(self) -> str:
        return f"deleted {self.deleted} objects ({self.bytes} bytes); kept {self.kept} still referenced"


def collect(store: store_.Store, root: str, folders: list[str], documents: Iterable[Any],
            dry_run: bool = False) -> Outcome:
    """Delete the objects under ``folders`` (in the namespace folder ``root``) that neither
    ``documents``, nor a cache entry, nor the manifest of a directory or asset they name, names."""
    root = root.rstrip("/") + "/"
    with concurrent.futures.ThreadPoolExecutor(READERS) as pool:
        documents = [*documents, *pool.map(lambda uri: _json(store, uri), _cache_entries(store, root))]
        kept = set(cleanup.named_uris(documents, root))
        for named in pool.map(lambda uri: _objects(store, uri), set(cleanup.blob_uris(documents, root))):
            kept.update(cleanup.named_uris(named, root))
    outcome, doomed = Outcome(), []
    for folder in folders:
        listed = {folder + info.path: info.size or 0 for info in store.backend(folder).list(folder)}
        going = cleanup.doomed(listed, kept)
        outcome.kept += len(listed) - len(going)
        outcome.bytes += sum(listed[uri] for uri in going)
        doomed += going
    outcome.deleted = len(doomed)
    if not dry_run:
        for start in range(0, len(doomed), BATCH):
            batch = doomed[start:start + BATCH]
            store.backend(batch[0]).delete(batch)
    return outcome


def _cache_entries(store: store_.Store, root: str) -> list[str]:
    """The URIs of the namespace's cache entries (``taskpod.cache_key``): results later runs reuse."""
    cache = root + "cache/"
    return [cache + info.path for info in store.backend(cache).list(cache)]


def _json(store: store_.Store, uri: str) -> Any:
    try:
        return json.loads(store.backend(uri).read_bytes(uri))
    except (FileNotFoundError, ValueError):  # replaced meanwhile, or not JSON: it names nothing
        return None


def _objects(store: store_.Store, uri: str) -> list[str]:
    """The objects a directory's or asset's manifest names stored elsewhere (an asset made from
    others); none if it has no manifest, or one every reader refuses."""
    try:
        found = transfer.read_manifest(store.backend(uri), uri, settings=store.settings)
    except (FileNotFoundError, ValueError):  # gone meanwhile; IntegrityError, PathEscapeError
        return []
    return [entry.object for entry in found.files if entry.object] if found is not None else []

