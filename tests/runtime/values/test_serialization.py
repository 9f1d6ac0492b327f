"""Values to blob references (JSON) and back."""

from __future__ import annotations

import json

import pytest

import ferry
from ferry.values import serialization


def test_every_form_of_a_reference_loads(store, tmp_path):
    (tmp_path / "f").write_text("x")
    ref = ferry.to_blob(ferry.File(tmp_path / "f"))
    for form in (ref, ref.model_dump(mode="json"), ref.to_json()):
        loaded = ferry.from_blob(form)
        assert isinstance(loaded, ferry.File) and loaded.to_blob() == ref
    assert serialization.loads(serialization.dumps(ferry.File(ref.uri))).remote_source == ref.uri


def test_directory_round_trips_through_json(store, tree):
    text = serialization.dumps(ferry.Directory(tree))
    shape = json.loads(text)
    assert set(shape) == {"uri", "kind", "size", "file_count", "manifest_digest"} and shape["kind"] == "directory"
    again = serialization.loads(text)
    assert isinstance(again, ferry.Directory) and again.to_blob().to_json() == text


def test_from_blob_does_no_io():
    loaded = ferry.from_blob({"uri": "s3://no-such-bucket/x", "kind": "directory"})
    assert loaded.remote_source == "s3://no-such-bucket/x"


def test_kinds_without_a_loader_and_values_without_a_blob_are_refused(monkeypatch):
    monkeypatch.setattr(serialization, "_loaders", dict(serialization._loaders))
    del serialization._loaders[ferry.Kind.DIRECTORY]
    with pytest.raises(ValueError, match="no value type is registered for directory blobs"):
        ferry.from_blob({"uri": "s3://b/x", "kind": "directory"})
    serialization.register(ferry.Kind.DIRECTORY, lambda ref: ("custom", ref.uri))
    assert ferry.from_blob({"uri": "s3://b/x", "kind": "directory"}) == ("custom", "s3://b/x")
    with pytest.raises(TypeError, match="use ferry.File or ferry.Directory"):
        ferry.to_blob("just a string")
