"""A map's item index: sharded so one item costs what one file costs, every digest checked on the way."""

from __future__ import annotations

import hashlib
import json

import msgspec
import pytest

from ferry.core import errors
from ferry.data import itemindex
from ferry.data.entries import StoredEntry


class Counting:
    """A backend that counts the bytes read through it."""

    def __init__(self, backend):
        self.backend, self.read = backend, 0

    def write_bytes(self, uri, data):
        self.backend.write_bytes(uri, data)

    def open(self, uri):
        data = self.backend.read_bytes(uri)
        self.read += len(data)
        import io

        return io.BytesIO(data)


def _prefix(store) -> str:
    return f"{store.raw_data_prefix}/ns/x/t/split/1"


def _files(count: int, base: str) -> list[StoredEntry]:
    paths = [f"d{i // 1000:03d}/part-{i:06d}.csv" for i in range(count)]
    return [StoredEntry(path=path, size=1000 + i, sha256=hashlib.sha256(str(i).encode()).hexdigest(),
                        object=f"{base}/{path}") for i, path in enumerate(paths)]


@pytest.mark.parametrize("items, batch", [(0, 1), (1, 1), (2, 1), (99, 1), (100, 1), (101, 1), (10_000, 7), (500, 64)])
def test_shards_cover_every_item_once_about_sqrt_n_each_cut_where_units_end(items, batch):
    bounds = itemindex.shard_bounds([10] * items, batch)
    assert [i for first, count in bounds for i in range(first, first + count)] == list(range(items))
    assert all(first % batch == 0 for first, _ in bounds), "a unit reads exactly one shard"
    if items > 1:
        target = -(-items ** 0.5 // batch) * batch
        assert max(count for _, count in bounds) <= target + batch and len(bounds) <= items / target + 1


def test_a_shard_stops_at_its_byte_budget_but_holds_a_unit_at_least():
    bounds = itemindex.shard_bounds([400] * 100, batch_size=2, budget=1000)
    assert bounds[0] == (0, 2) and all(count == 2 for _, count in bounds)
    assert itemindex.shard_bounds([5000] * 3, budget=1000) == [(0, 1), (1, 1), (2, 1)]


def test_a_list_item_too_large_or_a_value_that_is_not_a_list_is_refused_by_name():
    with pytest.raises(ValueError, match=r"map.over \(x\) is an object, not a list: map over a list value"):
        itemindex.value_items({"a": 1}, "map.over (x)")
    with pytest.raises(ValueError, match=r"map.over: item 1 is 70,00\d bytes of JSON, more than an item of a list may "
                                         r"be \(64 KiB\); write large items to files"):
        itemindex.value_items(["small", "y" * 70_000], "map.over")


def test_values_and_files_round_trip_and_one_unit_reads_the_index_and_one_shard(local_store):
    backend = Counting(local_store.backend(local_store.raw_data_prefix))
    values = [{"n": i, "text": "é" * (i % 5)} for i in range(1000)]
    stored = itemindex.write(backend, _prefix(local_store), "value", itemindex.value_items(values, "over"))
    index = itemindex.read_index(backend, stored.uri, stored.sha256)
    assert index.items == 1000 and len(index.shards) == len(stored.shard_sizes) == 32
    backend.read = 0
    assert itemindex.read(backend, index, stored.uri, 640, 2) == values[640:642]
    assert backend.read == max(stored.shard_sizes[20:21]), "only the shard holding items 640, 641"

    base = f"{local_store.raw_data_prefix}/ns/in/dir"
    files = _files(300, base)
    stored = itemindex.write(backend, _prefix(local_store) + "f", "file", files, base=base)
    index = itemindex.read_index(backend, stored.uri, stored.sha256)
    assert itemindex.read(backend, index, stored.uri, 299, 1, local_store.raw_data_prefix) == files[299:]


def test_a_tampered_index_or_shard_is_refused_naming_the_object(local_store):
    backend = local_store.backend(local_store.raw_data_prefix)
    stored = itemindex.write(backend, _prefix(local_store), "value", itemindex.value_items(list(range(50)), "over"))
    with pytest.raises(errors.IntegrityError, match=rf"{stored.uri}: sha256 mismatch"):
        itemindex.read_index(backend, stored.uri, "0" * 64)
    index = itemindex.read_index(backend, stored.uri, stored.sha256)
    shard = index.shards[3]
    backend.write_bytes(shard.uri, backend.read_bytes(shard.uri).replace(b"]}", b",999]}"))
    with pytest.raises(errors.IntegrityError, match=rf"{shard.uri}: sha256 mismatch"):
        itemindex.read(backend, index, stored.uri, shard.first, 1)
    assert itemindex.read(backend, index, stored.uri, 0, 1) == [0], "the other shards still read"


def test_a_shard_entry_naming_a_path_or_object_outside_the_store_is_refused(local_store):
    backend = local_store.backend(local_store.raw_data_prefix)
    root = local_store.raw_data_prefix
    base = f"{root}/ns/in/dir"
    hostile = [StoredEntry(path="a.csv", size=1, sha256="0" * 64, object="file:///proc/self/environ"),
               StoredEntry(path="../../b.csv", size=1, sha256="0" * 64, object=f"{base}/b.csv"),
               StoredEntry(path="c.csv", size=1, sha256="0" * 64, object=f"{base}/../../../other-tenant/c.csv")]
    for number, entry in enumerate(hostile):
        stored = itemindex.write(backend, f"{_prefix(local_store)}{number}", "file", [entry], base=base)
        index = itemindex.read_index(backend, stored.uri, stored.sha256)
        with pytest.raises(errors.PathEscapeError):
            itemindex.read(backend, index, stored.uri, 0, 1, root)


def test_an_index_naming_a_shard_outside_its_folder_is_refused(local_store):
    backend = local_store.backend(local_store.raw_data_prefix)
    uri = f"{_prefix(local_store)}/index.json"
    data = msgspec.json.encode(itemindex.Index(kind="value", items=1, shards=[itemindex.ShardRef(
        uri=f"{local_store.raw_data_prefix}/other/secret.json", sha256="0" * 64, size=1, first=0, count=1)]))
    backend.write_bytes(uri, data)
    with pytest.raises(errors.PathEscapeError, match="is not in .*/split/1/shards/"):
        itemindex.read_index(backend, uri, hashlib.sha256(data).hexdigest())


def test_an_item_of_a_100000_file_directory_reads_tens_of_kib_not_the_manifest(local_store, capsys):
    base = f"{local_store.raw_data_prefix}/ns/in/dir"
    files = _files(100_000, base)
    backend = Counting(local_store.backend(local_store.raw_data_prefix))
    stored = itemindex.write(backend, _prefix(local_store), "file", files, base=base)
    manifest_bytes = len(json.dumps({"files": [msgspec.to_builtins(entry) for entry in files]}))
    index = itemindex.read_index(backend, stored.uri, stored.sha256)
    assert itemindex.read(backend, index, stored.uri, 77_777, 1, local_store.raw_data_prefix) == [files[77_777]]
    with capsys.disabled():
        print(f"\n100,000 files: manifest {manifest_bytes / 1e6:.1f} MB; index {stored.size / 1024:.0f} KiB, "
              f"{len(stored.shard_sizes)} shards of {max(stored.shard_sizes) / 1024:.0f} KiB at most; "
              f"one item reads {backend.read / 1024:.0f} KiB")
    assert backend.read < 256 * 1024 and backend.read * 100 < manifest_bytes


def test_an_items_digest_is_its_content():
    one = StoredEntry(path="a", size=1, sha256="a" * 64, object="file:///x/a")
    moved = StoredEntry(path="b", size=1, sha256="a" * 64, object="file:///y/b")
    assert itemindex.item_digest(one) == itemindex.item_digest(moved)
    digest = itemindex.item_digest
    assert digest({"a": 1, "b": 2}) == digest({"b": 2, "a": 1}) != digest(1)
