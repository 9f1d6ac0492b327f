"""The S3 backend against the real S3-compatible server (MinIO)."""

from __future__ import annotations

import os
import secrets
import tracemalloc

import pytest

import ferry
from ferry.backends import s3 as s3_backend
from tests.runtime.conftest import make_settings

MiB = 1024 * 1024


def test_client_and_transfer_configuration():
    settings = ferry.Settings(s3_addressing_style="path", max_attempts=7, concurrency=20, multipart_concurrency=4,
                              multipart_threshold=6 * MiB, multipart_chunksize=5 * MiB)
    config = s3_backend.client_config(settings)
    assert config.s3 == {"addressing_style": "path"} and config.retries == {"mode": "standard", "max_attempts": 7}
    assert config.max_pool_connections == 24
    transfer = s3_backend.transfer_config(settings)
    assert (transfer.multipart_threshold, transfer.multipart_chunksize, transfer.max_request_concurrency,
            transfer.max_in_memory_download_chunks) == (6 * MiB, 5 * MiB, 4, 4)


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
