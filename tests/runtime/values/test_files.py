"""ferry.File: local files uploaded when they leave a task, stored ones passed by reference."""

from __future__ import annotations

import json
import os
import pathlib

import pytest

import ferry
from tests.runtime.helpers import spy_on


def other_pod(store: ferry.Store, tmp_path: pathlib.Path, name: str = "pod2") -> ferry.Store:
    """A store as the next task's pod sees it: same raw data, its own local disk."""
    return ferry.Store(store.settings.model_copy(update={"local_dir": tmp_path / name}))


def test_local_file_is_uploaded_when_it_leaves_the_task(store, tmp_path):
    (tmp_path / "model.bin").write_bytes(b"weights")
    file = ferry.File(tmp_path / "model.bin")
    assert file.remote_source is None and file.path == tmp_path / "model.bin"
    ref = ferry.to_blob(file)
    assert ref.uri.startswith(store.raw_data_prefix) and ref.uri.endswith("/model.bin")
    assert ferry.to_blob(file) == ref and file.remote_source == ref.uri  # uploaded once

    with ferry.use_store(other_pod(store, tmp_path)):
        received = ferry.from_blob(json.loads(ref.to_json()))
        assert received.remote_source == ref.uri and not received.path.exists()
        with open(received, "rb") as f:  # __fspath__ downloads on first use
            assert f.read() == b"weights"
        assert received.path.is_relative_to(tmp_path / "pod2")
        assert pathlib.Path(received).read_bytes() == b"weights"


def test_remote_path_overrides_the_destination(store, tmp_path):
    (tmp_path / "a.txt").write_text("v1")
    target = store.random_remote_path("fixed/a.txt")
    assert ferry.to_blob(ferry.File(tmp_path / "a.txt", remote_path=target)).uri == target
    (tmp_path / "a.txt").write_text("v2")
    ferry.to_blob(ferry.File(tmp_path / "a.txt", remote_path=target))
    with ferry.File(target).open("r") as f:
        assert f.read() == "v2"


def test_remote_uri_passes_by_reference_without_io(store, tmp_path):
    spy = spy_on(store)
    uri = store.random_remote_path("never-read.bin")  # does not even exist: nothing is touched
    file = ferry.File(uri)
    assert ferry.to_blob(file) == ferry.BlobRef(uri=uri, kind="file")
    assert file.remote_source == uri and spy.uploads == []
    assert not store.exists(uri)


def test_open_streams_without_downloading(store, tmp_path):
    (tmp_path / "rows.csv").write_text("a,b\n1,2\n")
    received = ferry.from_blob(ferry.to_blob(ferry.File(tmp_path / "rows.csv")))
    with received.open("r") as f:
        assert f.readline() == "a,b\n"
    assert not received.path.exists()
    with pytest.raises(ValueError, match="read-only here"):
        received.open("w")


def test_corrupt_remote_file_fails_on_download_and_on_stream(store, tmp_path):
    (tmp_path / "f").write_text("precious")
    ref = ferry.to_blob(ferry.File(tmp_path / "f"))
    store.backend(ref.uri).write_bytes(ref.uri, b"precioUs")
    with pytest.raises(ferry.IntegrityError, match="sha256 mismatch"):
        ferry.File.from_blob(ref).download()
    with pytest.raises(ferry.IntegrityError, match="sha256 mismatch"):
        ferry.File.from_blob(ref).open().read()


def test_local_file_is_used_in_place(tmp_path):
    (tmp_path / "x").write_text("here")
    file = ferry.File(str(tmp_path / "x"))
    assert file.download() == tmp_path / "x" and os.fspath(file) == str(tmp_path / "x")
    with file.open("r") as f:
        assert f.read() == "here"


def test_from_blob_refuses_a_directory_reference():
    with pytest.raises(ValueError, match="load it as a Directory"):
        ferry.File.from_blob(ferry.BlobRef(uri="s3://b/d", kind="directory"))
