"""Hashing while streaming, and the errors raised when bytes are not what was promised."""

from __future__ import annotations

import hashlib
import io

import pytest

import ferry
from ferry.core import integrity

DATA = b"0123456789" * 100_000
SHA = hashlib.sha256(DATA).hexdigest()


def test_hashing_writer_hashes_what_passes_and_is_not_seekable():
    out = io.BytesIO()
    counted: list[int] = []
    writer = integrity.HashingWriter(out, counted.append)
    for start in range(0, len(DATA), 4096):
        writer.write(DATA[start:start + 4096])
    assert (writer.size, writer.sha256, out.getvalue()) == (len(DATA), SHA, DATA)
    assert sum(counted) == len(DATA) and not writer.seekable()


def test_verifying_reader_passes_good_streams():
    reader = io.BufferedReader(integrity.VerifyingReader(io.BytesIO(DATA), "x", len(DATA), SHA))
    assert reader.read() == DATA


def test_verifying_reader_raises_at_the_end_of_a_corrupt_stream():
    bad = bytearray(DATA)
    bad[500] ^= 1
    reader = io.BufferedReader(integrity.VerifyingReader(io.BytesIO(bytes(bad)), "s3://b/x", len(DATA), SHA))
    with pytest.raises(ferry.IntegrityError, match=r"s3://b/x: sha256 mismatch, expected " + SHA):
        while reader.read(65536):
            pass


def test_verify_names_the_file_and_both_values():
    with pytest.raises(ferry.IntegrityError) as caught:
        integrity.verify("dir/f.bin", 10, None, 9, "ab")
    assert (caught.value.name, caught.value.what, caught.value.expected, caught.value.actual) == \
        ("dir/f.bin", "size", "10 bytes", "9 bytes")
    integrity.verify("unknown", None, None, 9, "ab")  # nothing promised, nothing to check


def test_sha256_stream(tmp_path):
    (tmp_path / "f").write_bytes(DATA)
    with open(tmp_path / "f", "rb") as stream:
        assert integrity.sha256_stream(stream) == (len(DATA), SHA)
