"""URI helpers."""

from __future__ import annotations

import pathlib

import pytest

from ferry.core import uris


def test_scheme_and_is_uri():
    assert [uris.scheme(u) for u in ("s3://b/k", "FILE:///x", "abfss://c@a/p", "/plain", "rel/path", "C:\\x")] == \
        ["s3", "file", "abfss", "", "", ""]
    assert uris.is_uri("file:///tmp") and not uris.is_uri(pathlib.Path("/tmp"))


def test_join_keeps_object_keys_raw_and_encodes_urls():
    assert uris.join("s3://b/data/", "sub dir/ü.txt") == "s3://b/data/sub dir/ü.txt"
    assert uris.join("https://h/d", "sub dir/ü.txt") == "https://h/d/sub%20dir/%C3%BC.txt"
    assert uris.join("file:///srv/raw", "a b") == "file:///srv/raw/a%20b"
    assert uris.join("s3://b/x") == "s3://b/x"


def test_relative_and_basename_decode_urls():
    assert uris.relative("https://h/d", "https://h/d/sub%20dir/x.csv") == "sub dir/x.csv"
    assert uris.relative("s3://b/d/", "s3://b/d/a%20b") == "a%20b"
    assert uris.basename("https://h/d/a%20b.csv") == "a b.csv" and uris.basename("s3://b/k/") == "k"
    with pytest.raises(ValueError, match="not inside"):
        uris.relative("s3://b/d", "s3://b/other/x")


def test_local_path_round_trips_file_uris(tmp_path):
    path = tmp_path / "a b ü"
    assert uris.local_path(path.as_uri()) == path
    assert uris.local_path(uris.join(tmp_path.as_uri(), "a b ü")) == path
    assert uris.local_path("relative/x") == pathlib.Path("relative/x")
    with pytest.raises(ValueError, match="must name this machine"):
        uris.local_path("file://otherhost/x")


def test_split_bucket():
    assert uris.split_bucket("s3://bucket/a/b") == ("bucket", "a/b")
    with pytest.raises(ValueError, match="BUCKET/KEY"):
        uris.split_bucket("s3:///nobucket")
