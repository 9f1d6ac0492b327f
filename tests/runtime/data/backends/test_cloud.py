"""gs:// and abfs(s):// go through fsspec; this machine has no cloud, so the same adapter is
exercised end to end on fsspec's in-memory filesystem."""

from __future__ import annotations

import importlib.util
import secrets

import pytest

import ferry
from ferry.core import uris
from ferry.data.backends import cloud, registry
from tests.runtime.conftest import make_settings, snapshot


@pytest.fixture
def memory_store(monkeypatch, tmp_path):
    pytest.importorskip("fsspec")
    monkeypatch.setattr(registry, "_factories", dict(registry._factories))
    registry.register(["memory"], lambda settings, scheme: cloud.FsspecBackend(scheme))
    store = ferry.Store(make_settings(tmp_path, f"memory://ferry-{secrets.token_hex(4)}/raw"))
    with ferry.use_store(store):
        yield store


def test_directory_round_trip_through_fsspec(memory_store, tree, tmp_path):
    ref = ferry.to_blob(ferry.Directory(tree))
    assert ref.uri.startswith("memory://") and ref.file_count == 8
    local = ferry.from_blob(ref).download()
    assert snapshot(local)["nested/deeper/données ü 😀.txt"] == (b"unicode", 0o644)
    assert (local / "run.sh").stat().st_mode & 0o777 == 0o755

    (tree / "a.txt").write_text("changed")
    seen = []
    memory_store.upload_directory(tree, ref.uri, progress=seen.append)
    assert seen[-1].files_skipped == 6  # a.txt and the link to it changed

    memory_store.backend(ref.uri).write_bytes(uris.join(ref.uri, "a.txt"), b"tampered")
    with pytest.raises(ferry.IntegrityError, match="a.txt"):
        ferry.Directory.from_source(ref.uri).download()


def test_listing_stat_and_delete(memory_store, tmp_path):
    base = memory_store.random_remote_path()
    backend = memory_store.backend(base)
    backend.write_bytes(base + "/a", b"1")
    backend.write_bytes(base + "/s/b", b"22")
    assert sorted((i.path, i.size) for i in backend.list(base)) == [("a", 1), ("s/b", 2)]
    assert backend.stat(base + "/s") is None and backend.stat(base + "/a").size == 1
    memory_store.delete(base, recursive=True)
    assert not memory_store.exists(base)


@pytest.mark.parametrize(("uri", "driver", "extra"), [("gs://bucket/x", "gcsfs", "gcs"),
                                                     ("abfss://c@account/x", "adlfs", "azure")])
def test_missing_driver_names_the_extra_to_install(uri, driver, extra):
    if importlib.util.find_spec(driver):
        pytest.skip(f"{driver} is installed here")
    with pytest.raises(ImportError, match=rf"pip install 'ferry-workflows\[{extra}\]'"):
        ferry.Store(ferry.Settings()).backend(uri)


def test_put_if_absent_creates_once(memory_store):
    uri = uris.join(memory_store.raw_data_prefix, "claim")
    backend = memory_store.backend(uri)
    assert backend.put_if_absent(uri, b"first") is True
    assert backend.put_if_absent(uri, b"second") is False
    assert backend.read_bytes(uri) == b"first"


def test_a_drive_claims_its_paths_on_an_fsspec_store(memory_store, tmp_path, monkeypatch):
    monkeypatch.setenv("FERRY_WORKFLOW", "app")
    source = tmp_path / "model.bin"
    source.write_bytes(b"weights")
    monkeypatch.setenv("FERRY_TASK", "train")
    ferry.Drive("ferry://models").put(source)
    monkeypatch.setenv("FERRY_TASK", "other")
    with pytest.raises(FileExistsError, match="already in ferry://models, put by"):
        ferry.Drive("ferry://models").put(source)
    assert ferry.Drive("ferry://models").get("model.bin", tmp_path / "got").read_bytes() == b"weights"
