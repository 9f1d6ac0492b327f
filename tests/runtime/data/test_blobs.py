"""The blob reference: the JSON that travels in a Workflow's status."""

from __future__ import annotations

import json

import pytest

import ferry


def test_json_shape_round_trips():
    ref = ferry.BlobRef(uri="s3://b/x", kind="directory", size=10, file_count=2, manifest_digest="sha256:" + "a" * 64)
    assert json.loads(ref.to_json()) == {"uri": "s3://b/x", "kind": "directory", "size": 10, "file_count": 2,
                                         "manifest_digest": "sha256:" + "a" * 64}
    assert ferry.BlobRef.model_validate_json(ref.to_json()) == ref


def test_by_reference_blob_has_only_uri_and_kind():
    assert json.loads(ferry.BlobRef(uri="https://h/f", kind="file").to_json()) == {"uri": "https://h/f", "kind": "file"}


@pytest.mark.parametrize("bad", [{"uri": "/local/path", "kind": "file"}, {"uri": "s3://b/k", "kind": "table"},
                                 {"uri": "s3://b/k", "kind": "file", "sha256": "nothex"},
                                 {"uri": "s3://b/k", "kind": "file", "extra": 1}])
def test_bad_references_are_refused(bad):
    with pytest.raises(ValueError):
        ferry.BlobRef.model_validate(bad)
