"""Outputs in status and the blob references they stand for: one set of fields, converted in one place."""

from __future__ import annotations

import pydantic
import pytest

from ferry.api import resource
from ferry.data import blobs
from ferry.values import typed

DIGEST = "a" * 64


def test_an_output_has_every_field_of_a_blob_reference():
    shared = set(resource.Output.model_fields) & set(blobs.BlobRef.FIELDS)
    assert shared == set(blobs.BlobRef.FIELDS) and set(typed.BLOB_FIELDS) == shared - {"kind"}


@pytest.mark.parametrize("ref", [
    blobs.BlobRef(uri="s3://b/k", kind="file", size=3, file_count=1, sha256=DIGEST),
    blobs.BlobRef(uri="s3://b/d", kind="directory", size=9, file_count=2, manifest_digest="sha256:" + DIGEST),
    blobs.BlobRef(uri="file:///x", kind="asset")])
def test_a_reference_goes_into_status_and_back_unchanged(ref):
    output = typed.output_of(ref, resource.Kind(ref.kind.value))
    assert resource.Output.model_validate(output.dump()) == output  # as the status holds it, camelCase
    assert typed.blob_of(output) == ref
    assert typed.blob_of(output, blobs.Kind.FILE).kind == blobs.Kind.FILE


@pytest.mark.parametrize("field, hostile", [("sha256", "../../etc"), ("manifest_digest", "sha256:" + "G" * 64),
                                            ("uri", "no-scheme"), ("size", -1)])
def test_an_output_from_a_status_with_a_bad_reference_is_refused(field, hostile):
    """Status is written by the operator from what tasks report: a pod checks it before reading."""
    output = resource.Output.model_validate({"kind": "file", "uri": "s3://b/k", field: hostile})
    with pytest.raises(pydantic.ValidationError, match=field):
        typed.blob_of(output)
