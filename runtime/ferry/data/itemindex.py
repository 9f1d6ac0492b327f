"""A map's item index: what each item of a map is, stored so that one item costs what one file costs.

A map's split reads what the map goes over once (a list, or a directory's or asset's manifest) and
stores ``index.json`` plus shards beside it (``shards/<n>.json``). The index lists the shards with
their digests; each shard holds about sqrt(n) items (fewer when they are large), cut at a unit's
boundary so that a unit reads exactly one shard. A pod running items ``first .. first + count - 1``
reads the index and its one shard: at 100,000 files, tens of KiB each, where the whole manifest is
13 MB. The chain of digests: status holds the index's sha256, the index each shard's, a shard each
file's sha256 (which the download checks).

An item is a JSON value (over a list) or a file (over a directory or asset): a manifest entry whose
``object`` is always set to the file's URI, so an item knows where its bytes are without the
directory. The planning is pure (``value_items``, ``file_items``, ``shard_bounds``); ``write`` and
``read`` do the I/O.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from typing import Any, Literal

import msgspec

from ferry.core import errors
from ferry.data import manifest
from ferry.data.entries import StoredEntry, object_uri

INDEX = "index.json"
VERSION = 1
MAX_ITEM_BYTES = 64 * 1024
"""Largest item of a list, as JSON: every item of its shard reads it (a larger item belongs in a file)."""
SHARD_BYTES = 1 << 20
"""A shard stops growing past this (a shard still holds at least one unit's items)."""
MAX_READ_BYTES = 64 * 1024 * 1024
"""Largest index or shard read back (a unit of 10,000 large items stays far below)."""


class ShardRef(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    uri: str
    sha256: str
    size: int
    first: int
    count: int


class Index(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    kind: Literal["value", "file"]
    items: int
    shards: list[ShardRef]
    base: str | None = None
    """The directory or asset mapped over (its manifest's objects are checked against its store)."""
    version: int = VERSION


class _FileShard(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    first: int
    files: list[StoredEntry]


class _ValueShard(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    first: int
    values: list[msgspec.Raw]


_index_decoder = msgspec.json.Decoder(Index)
_decoders = {"file": msgspec.json.Decoder(_FileShard), "value": msgspec.json.Decoder(_ValueShard)}


@dataclasses.dataclass(frozen=True)
class Stored:
    """Where the index is, with what a reader checks."""
    uri: str
    sha256: str
    size: int
    items: int
    shard_sizes: list[int]


def value_items(values: Any, where: str) -> list[bytes]:
    """Each item of a list as compact JSON; ValueError naming ``where`` for what is not a list or an item too large."""
    if not isinstance(values, list):
        raise ValueError(f"{where} is {_a(values)}, not a list: map over a list value, a directory or an asset")
    encoded = [json.dumps(value, separators=(",", ":")).encode() for value in values]
    for number, data in enumerate(encoded):
        if len(data) > MAX_ITEM_BYTES:
            raise ValueError(f"{where}: item {number} is {len(data):,} bytes of JSON, more than an item of a list "
                             f"may be ({MAX_ITEM_BYTES >> 10} KiB); write large items to files and map over a "
                             f"directory of them")
    return encoded


def _a(value: Any) -> str:
    names = {dict: "an object", str: "a string", bool: "a boolean", int: "a number", float: "a number",
             type(None): "null"}
    return names.get(type(value), type(value).__name__)


def file_items(base: str, files: list[Any]) -> list[StoredEntry]:
    """The files of a manifest stored at ``base``, in its order, each naming the URI of its bytes."""
    return [StoredEntry(path=entry.path, size=entry.size, sha256=entry.sha256, mode=entry.mode,
                        object=object_uri(base, entry)) for entry in files]


def shard_bounds(sizes: list[int], batch_size: int = 1, budget: int = SHARD_BYTES) -> list[tuple[int, int]]:
    """``(first, count)`` of each shard for items of ``sizes`` bytes: about sqrt(n) items each, cut
    only where a unit of ``batch_size`` items ends, and before ``budget`` bytes where a unit allows."""
    total = len(sizes)
    target = -(-(math.isqrt(max(total - 1, 0)) + 1) // batch_size) * batch_size  # ceil(sqrt(n)), whole units
    bounds: list[tuple[int, int]] = []
    first, used = 0, 0
    for start in range(0, total, batch_size):
        unit = sum(sizes[start:start + batch_size])
        count = start - first
        if count and (count + batch_size > target or used + unit > budget):
            bounds.append((first, count))
            first, used = start, 0
        used += unit
    if total > first:
        bounds.append((first, total - first))
    return bounds


def write(backend: Any, prefix: str, kind: str, items: list[bytes] | list[StoredEntry], base: str | None = None,
          batch_size: int = 1) -> Stored:
    """Store the shards, then the index (``<prefix>/index.json``) listing them with their digests."""
    encoded = items if kind == "value" else [msgspec.json.encode(entry) for entry in items]
    field = b"values" if kind == "value" else b"files"
    shards, sizes = [], []
    for number, (first, count) in enumerate(shard_bounds([len(data) for data in encoded], batch_size)):
        data = b'{"first":%d,"%s":[%s]}' % (first, field, b",".join(encoded[first:first + count]))
        uri = f"{prefix}/shards/{number:05d}.json"
        backend.write_bytes(uri, data)
        shards.append(ShardRef(uri=uri, sha256=hashlib.sha256(data).hexdigest(), size=len(data), first=first,
                               count=count))
        sizes.append(len(data))
    index = msgspec.json.encode(Index(kind=kind, items=len(items), shards=shards, base=base))
    uri = f"{prefix}/{INDEX}"
    backend.write_bytes(uri, index)
    return Stored(uri=uri, sha256=hashlib.sha256(index).hexdigest(), size=len(index), items=len(items),
                  shard_sizes=sizes)


def _read(backend: Any, uri: str, sha256: str, what: str) -> bytes:
    with backend.open(uri) as stream:
        data = stream.read(MAX_READ_BYTES + 1)
    if len(data) > MAX_READ_BYTES:
        raise errors.IntegrityError(uri, "size", f"at most {MAX_READ_BYTES} bytes ({what})", f"{len(data)} or more")
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise errors.IntegrityError(uri, "sha256", sha256, actual)
    return data


def read_index(backend: Any, uri: str, sha256: str) -> Index:
    """The index at ``uri``, its digest checked, its shards contiguous and beside it."""
    data = _read(backend, uri, sha256, "an item index")
    try:
        index = _index_decoder.decode(data)
    except msgspec.MsgspecError as error:
        raise errors.IntegrityError(uri, "item index", "a Ferry item index", str(error)) from None
    folder = uri.rsplit("/", 1)[0] + "/shards/"
    at = 0
    for shard in index.shards:
        name = shard.uri[len(folder):]
        if not shard.uri.startswith(folder) or "/" in name or name in ("", ".", "..") or "\0" in name:
            raise errors.PathEscapeError(f"{uri}: shard {shard.uri!r} is not in {folder}; split the map again")
        if shard.first != at or shard.count < 1:
            raise errors.IntegrityError(uri, "shard bounds", f"a shard from item {at}", f"{shard.first}+{shard.count}")
        at += shard.count
    if at != index.items:
        raise errors.IntegrityError(uri, "item count", index.items, at)
    return index


def read(backend: Any, index: Index, where: str, first: int, count: int, root: str | None = None) -> list[Any]:
    """Items ``first .. first + count - 1``: JSON values, or file entries (``StoredEntry`` naming
    their ``object``), read from the shards that hold them, each shard's digest checked, and its
    entries as strictly as a manifest's (``manifest.check_objects`` against the directory's store,
    with the raw data prefix ``root``)."""
    if first < 0 or count < 1 or first + count > index.items:
        raise ValueError(f"{where}: items {first}..{first + count - 1} are not in its {index.items} items")
    found: list[Any] = []
    for shard in index.shards:
        if shard.first + shard.count <= first or shard.first >= first + count:
            continue
        data = _read(backend, shard.uri, shard.sha256, "a shard of an item index")
        try:
            decoded = _decoders[index.kind].decode(data)
        except msgspec.MsgspecError as error:
            raise errors.IntegrityError(shard.uri, "item shard", "a shard of a Ferry item index", str(error)) from None
        entries = decoded.files if index.kind == "file" else decoded.values
        if decoded.first != shard.first or len(entries) != shard.count:
            raise errors.IntegrityError(shard.uri, "shard items", f"{shard.count} from {shard.first}",
                                        f"{len(entries)} from {decoded.first}")
        low, high = max(first, shard.first) - shard.first, min(first + count, shard.first + shard.count) - shard.first
        kept = entries[low:high]
        if index.kind == "file":
            _check_files(kept, index.base, root, shard.uri)
            found += kept
        else:
            found += [json.loads(bytes(raw)) for raw in kept]
    return found


def _check_files(files: list[StoredEntry], base: str | None, root: str | None, where: str) -> None:
    for entry in files:
        manifest.check_relpath(entry.path)
        if entry.object is None or base is None:
            raise errors.IntegrityError(where, "item", "a file naming its object in a known directory", entry.path)
    manifest.check_objects(files, base, root, where)


def item_digest(item: Any) -> str:
    """What identifies an item's content for its cache key: a file's sha256 (else its URI), a value's JSON."""
    if isinstance(item, StoredEntry):
        return f"sha256:{item.sha256}" if item.sha256 else f"uri:{item.object}"
    return "json:" + json.dumps(item, sort_keys=True, separators=(",", ":"))

