"""Publishing a folder again reads only what changed, and never trusts a record in doubt."""

from __future__ import annotations

import json
import os
import pathlib

import pytest

from ferry.core import localfiles
from ferry.data import hashcache


@pytest.fixture
def reads(monkeypatch) -> set[str]:
    """The names of the local files opened to be hashed or sent."""
    opened: set[str] = set()
    real = localfiles.open_regular

    def counting(path):
        opened.add(pathlib.Path(path).name)
        return real(path)

    monkeypatch.setattr(localfiles, "open_regular", counting)
    return opened


@pytest.fixture
def folder(tmp_path: pathlib.Path) -> pathlib.Path:
    root = tmp_path / "folder"
    root.mkdir()
    for i in range(20):
        (root / f"f{i:02d}.txt").write_text(f"content {i}\n")
    return root


def test_a_second_publish_reads_only_the_changed_files(local_store, folder, reads, monkeypatch, tmp_path):
    monkeypatch.setattr(hashcache, "RACY_NS", 0)  # the files were written just now; see the racy test below
    uri = local_store.random_remote_path()
    local_store.upload_directory(folder, uri)
    assert len(reads) == 20
    reads.clear()
    (folder / "f03.txt").write_text("changed 3\n")
    ref = local_store.upload_directory(folder, uri)
    assert reads == {"f03.txt"}
    back = local_store.download_directory(ref, tmp_path / "back")
    assert (back / "f03.txt").read_text() == "changed 3\n" and (back / "f04.txt").read_text() == "content 4\n"


def test_same_size_and_restored_mtime_are_still_seen_changed(local_store, folder, reads, monkeypatch, tmp_path):
    monkeypatch.setattr(hashcache, "RACY_NS", 0)
    uri = local_store.random_remote_path()
    local_store.upload_directory(folder, uri)
    target = folder / "f05.txt"
    before = target.stat()
    target.write_text("CONTENT 5\n")  # same size
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime put back: only ctime tells
    reads.clear()
    ref = local_store.upload_directory(folder, uri)
    assert reads == {"f05.txt"}
    assert (local_store.download_directory(ref, tmp_path / "back") / "f05.txt").read_text() == "CONTENT 5\n"


def test_a_file_hashed_within_the_racy_margin_of_its_change_is_read_again(local_store, folder, reads):
    uri = local_store.random_remote_path()
    local_store.upload_directory(folder, uri)  # written a moment ago: a later change could share its timestamp
    reads.clear()
    local_store.upload_directory(folder, uri)
    assert len(reads) == 20


def test_an_unreadable_record_costs_a_rehash_and_nothing_else(local_store, folder, reads, monkeypatch, tmp_path):
    monkeypatch.setattr(hashcache, "RACY_NS", 0)
    uri = local_store.random_remote_path()
    local_store.upload_directory(folder, uri)
    [record] = (tmp_path / "cache" / "hashes").iterdir()
    record.write_text("{not json")
    reads.clear()
    (folder / "f07.txt").write_text("changed 7\n")
    ref = local_store.upload_directory(folder, uri)
    assert len(reads) == 20 and ref.file_count == 20
    assert json.loads(record.read_text())["version"] == hashcache.VERSION  # rewritten whole


def test_a_record_with_the_wrong_digest_is_never_trusted_over_the_store(local_store, folder, reads, monkeypatch,
                                                                        tmp_path):
    """A record says the file is unchanged but names another digest than the stored manifest: read it."""
    monkeypatch.setattr(hashcache, "RACY_NS", 0)
    uri = local_store.random_remote_path()
    local_store.upload_directory(folder, uri)
    [record] = (tmp_path / "cache" / "hashes").iterdir()
    data = json.loads(record.read_text())
    for entry in data["files"].values():
        entry[5] = "0" * 64
    record.write_text(json.dumps(data))
    reads.clear()
    local_store.upload_directory(folder, uri)
    assert len(reads) == 20


def test_the_cache_can_be_turned_off(tmp_path, folder):
    import ferry
    from tests.runtime.conftest import make_settings

    store = ferry.Store(make_settings(tmp_path, (tmp_path / "raw").as_uri(), hash_cache=False))
    store.upload_directory(folder)
    assert not (tmp_path / "cache" / "hashes").exists()


def test_a_publish_to_a_new_destination_does_not_read_the_records(local_store, folder, monkeypatch):
    monkeypatch.setattr(hashcache, "RACY_NS", 0)
    local_store.upload_directory(folder, local_store.random_remote_path())
    loaded = []
    real = hashcache.HashCache.load.__func__

    def load(cls, cache_dir, root, read=True):
        cache = real(cls, cache_dir, root, read)
        loaded.append(len(cache._old))
        return cache

    monkeypatch.setattr(hashcache.HashCache, "load", classmethod(load))
    uri = local_store.random_remote_path()
    local_store.upload_directory(folder, uri)  # nothing there to compare with: no record could be used
    local_store.upload_directory(folder, uri)  # its own output there: the records written above are read
    assert loaded == [0, 20]
