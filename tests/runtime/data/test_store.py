"""The public raw data store (the FileAccessProvider of Ferry), against the local store and S3."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

import ferry
from ferry.core import uris
from ferry.data import manifest


def test_random_paths_are_fresh_and_under_the_prefix(store):
    one, two = store.random_remote_path(), store.random_remote_path("x.csv")
    assert one.startswith(store.raw_data_prefix + "/") and two.endswith("/x.csv") and one != two
    local = store.random_local_path("y")
    assert local.parent.parent == store.settings.local_dir and not local.exists()


def test_put_get_exists_list_delete_a_file(store, tmp_path):
    (tmp_path / "f.txt").write_text("content")
    uri = store.random_remote_path("f.txt")
    assert not store.exists(uri)
    ref = store.put(tmp_path / "f.txt", uri)
    assert ref.uri == uri and store.exists(uri)
    assert store.get(uri, tmp_path / "back.txt").read_text() == "content"
    with store.open(ref) as stream:
        assert stream.read() == b"content"
    store.delete(uri)
    assert not store.exists(uri)
    with pytest.raises(FileNotFoundError):
        store.get(ref, tmp_path / "gone.txt")


def test_put_get_a_directory(store, tree, tmp_path):
    ref = store.put(tree)
    assert ref.kind == ferry.Kind.DIRECTORY and store.exists(ref.uri)
    assert "nested/deeper/données ü 😀.txt" in store.list(ref.uri)
    out = store.get(ref.uri, tmp_path / "out")  # a directory, guessed: no object at the URI itself
    assert (out / "nested" / "b.csv").read_text() == "x,y\n1,2\n"
    store.delete(ref.uri, recursive=True)
    assert not store.exists(ref.uri)


def test_open_streams_and_checks_the_end(store, tmp_path):
    (tmp_path / "big").write_bytes(bytes(range(256)) * 4096)
    ref = store.upload_file(tmp_path / "big")
    store.backend(ref.uri).write_bytes(ref.uri, b"\xff" + (bytes(range(256)) * 4096)[1:])
    with store.open(ref) as stream:
        assert stream.read(10)[0] == 0xFF  # the first bytes arrive before the check
        with pytest.raises(ferry.IntegrityError, match="sha256 mismatch"):
            stream.read()


def test_list_of_a_directory_ferry_did_not_publish(store, tmp_path):
    base = store.random_remote_path()
    for name in ("a.txt", "sub/b.txt"):
        (tmp_path / "f").write_text(name)
        store.upload_file(tmp_path / "f", uris.join(base, name))
    assert sorted(store.list(base)) == ["a.txt", "sub/b.txt"]
    assert {e.path: e.size for e in store.manifest(base).files} == {"a.txt": 5, "sub/b.txt": 9}
    assert [e.path for e in store.manifest(base, keep=lambda path: path.startswith("sub/")).files] == ["sub/b.txt"]
    assert [e.path for e in store.part(base, lambda path: path.startswith("sub/")).files] == ["sub/b.txt"]
    assert (store.download_directory(base, tmp_path / "out") / "sub" / "b.txt").read_text() == "sub/b.txt"


def test_a_part_has_the_entries_of_the_manifest_without_models(store, tree, tmp_path):
    ref = store.upload_directory(tree)
    keep = lambda path: path.startswith("nested/")  # noqa: E731
    part, models = store.part(ref, keep), store.manifest(ref, keep=keep)
    assert [msgspec.structs.asdict(entry) for entry in part.files] == [entry.model_dump() for entry in models.files]
    assert part.empty_directories == models.empty_directories and part.files
    out = store.download_directory(ref.uri, tmp_path / "out", contents=part)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == \
        [entry.path for entry in models.files]


def test_publish_manifest_makes_a_directory_from_stored_objects_without_copying(store, tree, tmp_path):
    first = store.upload_directory(tree)
    picked = manifest.Manifest(files=[
        e.model_copy(update={"path": f"picked/{e.path}", "object": uris.join(first.uri, e.path)})
        for e in store.manifest(first).files if e.path.endswith(".txt")])
    made = store.publish_manifest(picked)
    assert store.list(made.uri) == [e.path for e in picked.files]
    assert sorted(info.path for info in store.backend(made.uri).list(made.uri)) == [manifest.NAME]
    out = store.download_directory(made, tmp_path / "out")
    assert (out / "picked" / "a.txt").read_text() == "alpha"
    with pytest.raises(ValueError, match="must name its stored object"):
        store.publish_manifest(store.manifest(first))


def test_async_variants(store, tree, tmp_path):
    async def scenario():
        ref = await store.aput(tree)
        assert await store.aexists(ref.uri)
        listed, out = await asyncio.gather(store.alist(ref.uri), store.aget(ref, tmp_path / "out"))
        single = await store.aupload_file(tree / "a.txt")
        await store.adownload_file(single, tmp_path / "a.txt")
        assert await store.aread(single) == b"alpha"
        await store.adelete(ref.uri, recursive=True)
        return listed, out, await store.aexists(ref.uri)

    listed, out, still_there = asyncio.run(scenario())
    assert "a.txt" in listed and (out / "a.txt").read_text() == "alpha" and not still_there
    assert (tmp_path / "a.txt").read_text() == "alpha"


def test_current_store_defaults_to_the_environment(monkeypatch, tmp_path):
    monkeypatch.setattr(ferry.data.store, "_default", None)
    monkeypatch.setenv("FERRY_RAW_DATA_PREFIX", (tmp_path / "env-raw").as_uri())
    assert ferry.current_store().raw_data_prefix == (tmp_path / "env-raw").as_uri()
    other = ferry.Store(ferry.Settings(raw_data_prefix="s3://x/y"))
    with ferry.use_store(other):
        assert ferry.current_store() is other
    assert ferry.current_store() is not other


def test_plain_path_destinations_become_file_uris(local_store, tree, tmp_path):
    ref = local_store.upload_directory(tree, tmp_path / "published")
    assert ref.uri == (tmp_path / "published").as_uri()
    assert (tmp_path / "published" / manifest.NAME).is_file()
