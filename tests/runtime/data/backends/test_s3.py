"""The S3 backend against the real S3-compatible server (MinIO)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import secrets
import tracemalloc

import botocore.credentials
import pytest

import ferry
from ferry.core import errors
from ferry.data.backends import s3 as s3_backend
from tests.runtime.conftest import make_settings

MiB = 1024 * 1024


def test_client_and_transfer_configuration():
    settings = ferry.Settings(s3_addressing_style="path", max_attempts=7, concurrency=20, multipart_concurrency=4,
                              multipart_threshold=6 * MiB, multipart_chunksize=5 * MiB)
    config = s3_backend.client_config(settings)
    assert config.s3 == {"addressing_style": "path"} and config.retries == {"mode": "standard", "max_attempts": 7}
    assert config.max_pool_connections == 24
    transfer = s3_backend.transfer_config(settings)
    assert (transfer.multipart_threshold, transfer.multipart_chunksize, transfer.max_request_concurrency) == (
        6 * MiB, 5 * MiB, 4)


def test_botocore_checksums_give_way_to_ferrys_own():
    settings = ferry.Settings(s3_addressing_style="path", concurrency=20, multipart_concurrency=4)
    config = s3_backend.client_config(settings)
    assert config.request_checksum_calculation == "when_required"


@pytest.mark.s3
def test_explicit_settings_work_without_aws_variables(s3, tmp_path, monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    store = ferry.Store(make_settings(
        tmp_path, f"s3://{s3.bucket}/explicit", s3_endpoint_url=s3.endpoint_url, s3_region=s3.region,
        s3_addressing_style="path", s3_access_key_id=s3.access_key, s3_secret_access_key=s3.secret_key))
    (tmp_path / "f").write_text("explicit")
    ref = store.upload_file(tmp_path / "f")
    assert s3.client().get_object(Bucket=s3.bucket, Key=ref.uri.split("/", 3)[3])["Body"].read() == b"explicit"


@pytest.mark.s3
def test_large_file_moves_in_parts_hashed_while_streaming(s3, tmp_path):
    store = ferry.Store(make_settings(tmp_path, f"s3://{s3.bucket}/{secrets.token_hex(4)}", multipart_threshold=5 * MiB,
                                      multipart_chunksize=5 * MiB, multipart_concurrency=2))
    data = os.urandom(40 * MiB)
    (tmp_path / "big.bin").write_bytes(data)
    seen = []
    ref = store.upload_file(tmp_path / "big.bin", progress=seen.append)
    assert seen[-1].bytes_done == len(data) and len(seen) > 2
    bucket, key = ref.uri[5:].split("/", 1)
    assert s3.client().head_object(Bucket=bucket, Key=key)["ETag"].endswith('-8"')  # a multipart upload

    tracemalloc.start()
    try:
        out = store.download_file(ref, tmp_path / "back.bin")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out.read_bytes() == data
    assert peak < 16 * MiB, f"download held {peak / MiB:.1f} MiB; parts in memory must stay bounded"

    body = bytearray(data)
    body[33 * MiB] ^= 1
    s3.client().put_object(Bucket=bucket, Key=key, Body=bytes(body))
    with pytest.raises(ferry.IntegrityError, match="big.bin: sha256 mismatch"):
        store.download_file(ref, tmp_path / "again.bin")


@pytest.mark.s3
def test_an_object_replaced_during_a_large_download_fails_it_and_leaves_nothing(s3, tmp_path, monkeypatch):
    store = ferry.Store(make_settings(tmp_path, f"s3://{s3.bucket}/{secrets.token_hex(4)}", multipart_threshold=5 * MiB,
                                      multipart_chunksize=5 * MiB, multipart_concurrency=2, max_attempts=1))
    (tmp_path / "big.bin").write_bytes(os.urandom(20 * MiB))
    ref = store.upload_file(tmp_path / "big.bin")
    backend = store.backend(ref.uri)
    backend.client  # noqa: B018 - made on first use, with its native path
    real = backend._native.stream

    def replacing(uri, span=None, etag=None):
        if span and span[0] == 10 * MiB:  # a later part: the object changes under the download
            bucket, key = uri[5:].split("/", 1)
            s3.client().put_object(Bucket=bucket, Key=key, Body=os.urandom(20 * MiB))
        return real(uri, span, etag)

    monkeypatch.setattr(backend._native, "stream", replacing)
    with pytest.raises(OSError, match="[Pp]recondition"):
        store.download_file(ref, tmp_path / "out" / "big.bin")
    assert os.listdir(tmp_path / "out") == []  # no partial file, no temporary left
    assert all(backend._parts_in_flight.acquire(blocking=False) for _ in range(2))


@pytest.mark.s3
def test_objects_stat_list_and_missing(s3, s3_store):
    backend = s3_store.backend("s3://")
    base = s3_store.random_remote_path()
    client = s3.client()
    prefix = base.split("/", 3)[3]
    for key, body in (("a.txt", b"1"), ("sub/b.txt", b"22"), ("folder/", b"")):
        client.put_object(Bucket=s3.bucket, Key=f"{prefix}/{key}", Body=body)
    assert sorted((i.path, i.size) for i in backend.list(base)) == [("a.txt", 1), ("sub/b.txt", 2)]
    assert backend.stat(f"{base}/sub/b.txt").size == 2 and backend.stat(f"{base}/nothing") is None
    with pytest.raises(FileNotFoundError, match="no object at"):
        backend.open(f"{base}/nothing")
    backend.delete([f"{base}/a.txt", f"{base}/never-existed"])
    assert backend.stat(f"{base}/a.txt") is None


@pytest.mark.s3
def test_small_objects_travel_natively_and_the_server_checks_their_sha256(s3, s3_store):
    backend = s3_store.backend("s3://")
    uri = s3_store.random_remote_path("a.txt")
    backend.put_small(uri, b"native", hashlib.sha256(b"native").hexdigest())
    head = s3.client().head_object(Bucket=s3.bucket, Key=uri.split("/", 3)[3], ChecksumMode="ENABLED")
    assert base64.b64decode(head["ChecksumSHA256"]) == hashlib.sha256(b"native").digest()
    assert bytes(backend.read_small(uri, 6)) == b"native"
    assert backend.read_small(uri, 5) is None  # larger than promised: the caller streams it to tell its size
    with pytest.raises(FileNotFoundError):
        backend.read_small(uri + "-missing", 8)


@pytest.mark.s3
def test_native_requests_refused_by_the_store_fail_clearly(s3, s3_store):
    backend = s3_store.backend("s3://")
    backend._native._plain = dataclasses.replace(backend._native._plain, credentials=lambda: {
        "access_key_id": "not-a-key", "secret_access_key": "not-a-secret", "token": None, "expires_at": None})
    uri = s3_store.random_remote_path("b.txt")
    with pytest.raises(PermissionError, match=r"b\.txt: .*403 Forbidden$") as raised:
        backend.put_small(uri, b"refused", hashlib.sha256(b"refused").hexdigest())
    assert "\n" not in str(raised.value) and "<?xml" not in str(raised.value)


@pytest.mark.s3
@pytest.mark.parametrize("name", ["new\nline.txt", "tab\tcr\r\x01\x7f", "dir\n/x"])
def test_keys_obstore_cannot_name_take_every_request_through_boto3(s3, tmp_path, name):
    """Issue 13: S3 keys with a control character are legal but obstore refuses them; every
    request for them goes through the boto3 client instead, and ordinary keys beside them stay
    with obstore. (Keys with an empty or '.' segment go the same way; MinIO refuses them.)"""
    store = ferry.Store(make_settings(tmp_path, f"s3://{s3.bucket}/{secrets.token_hex(4)}", multipart_threshold=5 * MiB,
                                      multipart_chunksize=5 * MiB, multipart_concurrency=2))
    backend, base = store.backend("s3://"), store.random_remote_path()
    uri, plain = f"{base}/{name}", f"{base}/plain.txt"
    assert backend._requests(uri) is backend._by_client and backend._requests(plain) is backend._native
    key = uri.split("/", 3)[3]

    backend.put_small(uri, b"small", hashlib.sha256(b"small").hexdigest())
    head = s3.client().head_object(Bucket=s3.bucket, Key=key, ChecksumMode="ENABLED")
    assert base64.b64decode(head["ChecksumSHA256"]) == hashlib.sha256(b"small").digest()
    assert bytes(backend.read_small(uri, 5)) == b"small" and backend.read_small(uri, 4) is None
    assert backend.read_bytes(uri) == b"small" and backend.open(uri).read() == b"small"
    assert backend.stat(uri).size == 5 and backend.stat(uri + "-missing") is None
    with pytest.raises(FileNotFoundError):
        backend.read_small(uri + "-missing", 8)
    with pytest.raises(FileNotFoundError, match="no object at"):
        backend.open(uri + "-missing")

    data = os.urandom(12 * MiB + 1)
    (tmp_path / "big.bin").write_bytes(data)
    assert backend.upload_hashing(tmp_path / "big.bin", uri, lambda n: None) == (
        len(data), hashlib.sha256(data).hexdigest())
    head = s3.client().head_object(Bucket=s3.bucket, Key=key, ChecksumMode="ENABLED")
    assert head["ETag"].endswith('-3"') and head["ChecksumSHA256"].endswith("-3")  # parts, each checked
    assert all(backend._parts_in_flight.acquire(blocking=False) for _ in range(2))
    for _ in range(2):
        backend._parts_in_flight.release()
    for expected in (None, len(data)):  # ranged parts pinned to the version, or one GET
        fd = os.open(tmp_path / "back.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            assert backend.download_hashing(uri, fd, lambda n: None, expected) == (
                len(data), hashlib.sha256(data).hexdigest())
        finally:
            os.close(fd)
        assert (tmp_path / "back.bin").read_bytes() == data
    backend.upload(tmp_path / "big.bin", f"{uri}.2", lambda n: None)  # boto3's own uploads take any key
    backend.write_bytes(plain, b"plain")

    assert sorted(i.path for i in backend.list(base)) == sorted([name, f"{name}.2", "plain.txt"])
    backend.delete([uri, plain, f"{uri}.2", f"{uri}.never"])
    assert list(backend.list(base)) == []


@pytest.mark.s3
def test_a_failed_upload_of_a_key_obstore_cannot_name_is_aborted(s3, s3_store):
    backend, uri = s3_store.backend("s3://"), s3_store.random_remote_path("new\nline.bin")

    def pieces():
        for _ in range(3):
            yield os.urandom(4 * MiB)
        raise OSError("disk on fire")

    with pytest.raises(OSError, match="disk on fire"):
        backend._requests(uri).put_parts(uri, pieces(), 5 * MiB, 2)
    uploads = s3.client().list_multipart_uploads(Bucket=s3.bucket).get("Uploads", [])
    assert not [u for u in uploads if u["Key"] == uri.split("/", 3)[3]] and backend.stat(uri) is None

def test_obstore_names_every_key_but_those_with_control_characters_or_odd_segments():
    from ferry.data.backends import s3native
    from tests.runtime.values.test_directories import POSIX_NAMES

    assert [name for name in POSIX_NAMES if s3native.names(f"run/{name}")] == [
        name for name in POSIX_NAMES if not any(ord(c) < 32 or ord(c) == 127 for c in name)]
    assert not any(s3native.names(key) for key in ["a//b", "/a", "a/", "a/./b", "a/../b", ".", "..", "", "a\x7f"])
    assert all(s3native.names(key) for key in ["...", "a/.x/b", "a..", "a\x85b", "a\\b"])


def _large_upload(s3, tmp_path, **settings):
    store = ferry.Store(make_settings(tmp_path, f"s3://{s3.bucket}/{secrets.token_hex(4)}", multipart_threshold=5 * MiB,
                                      multipart_chunksize=5 * MiB, multipart_concurrency=2, max_attempts=1, **settings))
    (tmp_path / "big.bin").write_bytes(os.urandom(30 * MiB))
    return store, store.backend("s3://")


def _watching_pieces(backend, monkeypatch, look):
    """Call ``look(count)`` before each piece a large upload hands to obstore."""
    real = backend._native.put_parts

    def watched(uri, pieces, part_size, in_flight):
        def counted():
            for count, piece in enumerate(pieces, 1):
                look(count)
                yield piece
        return real(uri, counted(), part_size, in_flight)

    monkeypatch.setattr(backend._native, "put_parts", watched)


@pytest.mark.s3
def test_failed_part_aborts_the_upload_and_frees_its_memory(s3, tmp_path, monkeypatch):
    store, backend = _large_upload(s3, tmp_path)

    def fail(count):
        if count == 12:  # in the third part, after two were sent
            raise OSError("disk on fire")

    _watching_pieces(backend, monkeypatch, fail)
    with pytest.raises(OSError, match="disk on fire"):
        store.upload_file(tmp_path / "big.bin", f"s3://{s3.bucket}/aborted.bin")
    assert not s3.client().list_multipart_uploads(Bucket=s3.bucket).get("Uploads")
    assert not store.exists(f"s3://{s3.bucket}/aborted.bin")
    assert all(backend._parts_in_flight.acquire(blocking=False) for _ in range(2))


@pytest.mark.s3
def test_a_large_upload_holds_its_parts_places_in_the_store_wide_limit(s3, tmp_path, monkeypatch):
    store, backend = _large_upload(s3, tmp_path)
    free = []
    _watching_pieces(backend, monkeypatch, lambda count: free.append(backend._parts_in_flight.acquire(blocking=False)))
    ref = store.upload_file(tmp_path / "big.bin")
    assert len(free) == 30 and not any(free)  # one part in flight and one being filled: both places
    assert all(backend._parts_in_flight.acquire(blocking=False) for _ in range(2))
    assert ref.sha256 == hashlib.sha256((tmp_path / "big.bin").read_bytes()).hexdigest()
    bucket, key = ref.uri[5:].split("/", 1)
    head = s3.client().head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head["ETag"].endswith('-6"')  # parts of 5 MiB
    assert head["ChecksumSHA256"].endswith("-6")  # each part's sha256, checked by the server on arrival


@pytest.mark.s3
def test_many_large_files_at_once_share_the_part_limit(s3, tmp_path):
    store = ferry.Store(make_settings(tmp_path, f"s3://{s3.bucket}/{secrets.token_hex(4)}", multipart_threshold=5 * MiB,
                                      multipart_chunksize=5 * MiB, multipart_concurrency=2, concurrency=4))
    tree = tmp_path / "tree"
    tree.mkdir()
    for i in range(4):
        (tree / f"{i}.bin").write_bytes(os.urandom(12 * MiB + i))
    ref = store.upload_directory(tree)
    out = store.download_directory(ref, tmp_path / "out")
    assert all((out / f"{i}.bin").read_bytes() == (tree / f"{i}.bin").read_bytes() for i in range(4))


def _tree(root, count: int = 50):
    root.mkdir()
    for i in range(count):
        (root / f"f{i}.txt").write_text(f"file {i}\n")
    return root


@pytest.mark.s3
@pytest.mark.timeout(120)
def test_an_upload_rides_out_a_store_outage(s3, tmp_path):
    """The store goes away for a few seconds (a restart, a network blip) while files are sent."""
    if s3.server is None:
        pytest.skip("needs the suite's own S3 server, which it can stop")
    store = ferry.Store(make_settings(tmp_path, f"s3://{s3.bucket}/{secrets.token_hex(4)}", retry_seconds=60))
    tree = _tree(tmp_path / "tree")
    with s3.outage(4):
        ref = store.upload_directory(tree)
    assert ref.file_count == 50
    store.download_directory(ref, tmp_path / "back")
    assert (tmp_path / "back" / "f49.txt").read_text() == "file 49\n"


@pytest.mark.s3
@pytest.mark.timeout(120)
def test_a_longer_outage_fails_clearly_after_the_retry_budget(s3, tmp_path):
    if s3.server is None:
        pytest.skip("needs the suite's own S3 server, which it can stop")
    store = ferry.Store(make_settings(tmp_path, f"s3://{s3.bucket}/{secrets.token_hex(4)}", retry_seconds=1,
                                      max_attempts=2))
    tree = _tree(tmp_path / "tree", 3)
    with s3.outage(20), pytest.raises(errors.StoreUnavailableError, match=r"did not answer for \d+s"):
        store.upload_directory(tree)
