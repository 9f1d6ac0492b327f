"""The local filesystem backend (file:// and plain paths)."""

from __future__ import annotations

import pytest

from ferry.data.backends import local


def test_upload_is_atomic_and_leaves_no_temporary(tmp_path):
    backend = local.LocalBackend()
    (tmp_path / "src").write_text("data")
    uri = (tmp_path / "store" / "deep" / "f ü").as_uri()
    counted = []
    backend.upload(tmp_path / "src", uri, counted.append)
    assert counted == [4] and backend.read_bytes(uri) == b"data"
    assert [p.name for p in (tmp_path / "store" / "deep").iterdir()] == ["f ü"]


def test_plain_paths_and_file_uris_name_the_same_objects(tmp_path):
    backend = local.LocalBackend()
    backend.write_bytes(str(tmp_path / "d" / "a"), b"1")
    backend.write_bytes((tmp_path / "d" / "b" / "c").as_uri(), b"22")
    (tmp_path / "d" / ".x.ferry-tmp-123").write_text("in progress")
    assert sorted((i.path, i.size) for i in backend.list((tmp_path / "d").as_uri())) == [("a", 1), ("b/c", 2)]
    assert backend.stat(str(tmp_path / "d")) is None and backend.stat(str(tmp_path / "d" / "a")).size == 1
    backend.delete([str(tmp_path / "d" / "a"), str(tmp_path / "d" / "missing")])
    with pytest.raises(FileNotFoundError):
        backend.open(str(tmp_path / "d" / "a"))
    assert list(backend.list(tmp_path / "nowhere")) == []
