"""Values to blob references (JSON) and back."""

from __future__ import annotations

import json
import os
import subprocess
import sys

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
    monkeypatch.delitem(serialization.VALUE_TYPES, ferry.Kind.DIRECTORY)
    with pytest.raises(ValueError, match="^s3://b/x: no value type is registered for directory blobs"):
        ferry.from_blob({"uri": "s3://b/x", "kind": "directory"})
    with pytest.raises(TypeError, match="use ferry.File or ferry.Directory"):
        ferry.to_blob("just a string")


@pytest.mark.parametrize("kind", ["file", "directory", "asset"])
def test_from_blob_finds_every_value_type_in_a_fresh_process(kind, tmp_path):
    """Nothing imported ``ferry.values.assets`` (or files, directories) before: the type is found by its kind."""
    ref = {"kind": kind, "uri": f"file://{tmp_path}/x" + ("" if kind == "file" else "/"),
           **({"sha256": "0" * 64} if kind == "file" else {"manifest_digest": "sha256:" + "0" * 64})}
    code = f"import ferry, json; print(type(ferry.from_blob(json.loads({json.dumps(json.dumps(ref))}))).__name__)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == {"file": "File", "directory": "Directory", "asset": "Asset"}[kind]
