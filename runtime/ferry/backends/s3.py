"""S3 and S3-compatible stores (MinIO, Ceph, R2...) through boto3.

One client per backend (boto3 clients are thread-safe; sessions are not, so the session is made
once under a lock) and one shared transfer manager for large files, so the parts in flight, and
the memory they hold, are bounded for the whole store and not per file. Small files go through
single requests, which is much faster than the managed transfer for many of them.
"""

from __future__ import annotations

import pathlib
import threading
from collections.abc import Iterator, Sequence
from typing import BinaryIO

import boto3
import boto3.s3.transfer
import botocore.config
import botocore.exceptions
from s3transfer.subscribers import BaseSubscriber

from ferry import integrity, settings as settings_, uris
from ferry.backends import base

MISSING = {"404", "NoSuchKey", "NotFound"}
IO_QUEUE = 16


class _Progress(BaseSubscriber):
    def __init__(self, on_bytes: base.OnBytes):
        self._on_bytes = on_bytes

    def on_progress(self, future, bytes_transferred: int, **kwargs) -> None:
        self._on_bytes(bytes_transferred)


def client_config(settings: settings_.Settings) -> botocore.config.Config:
    """Retries with backoff on throttling and 5xx, and enough pooled connections for every thread."""
    return botocore.config.Config(
        retries={"mode": "standard", "max_attempts": settings.max_attempts},
        max_pool_connections=settings.concurrency + settings.multipart_concurrency,
        tcp_keepalive=True,
        **({"s3": {"addressing_style": settings.s3_addressing_style}} if settings.s3_addressing_style else {}),
    )


def transfer_config(settings: settings_.Settings) -> boto3.s3.transfer.TransferConfig:
    config = boto3.s3.transfer.TransferConfig(
        multipart_threshold=settings.multipart_threshold, multipart_chunksize=settings.multipart_chunksize,
        max_concurrency=settings.multipart_concurrency, num_download_attempts=settings.max_attempts,
        max_io_queue=IO_QUEUE, preferred_transfer_client="classic")
    # Memory held by downloads is about (parts fetched ahead of the one being written) x chunksize
    # + the write queue (IO_QUEUE x 256 KiB), shared by every large file of the store.
    config.max_in_memory_download_chunks = settings.multipart_concurrency
    return config


class S3Backend(base.Backend):
    transient_errors = (*base.Backend.transient_errors, botocore.exceptions.ConnectionError,
                        botocore.exceptions.ReadTimeoutError, botocore.exceptions.ResponseStreamingError,
                        botocore.exceptions.IncompleteReadError)

    def __init__(self, settings: settings_.Settings):
        self._settings = settings
        self._lock = threading.Lock()
        self._client = None
        self._manager = None

    @property
    def client(self):
        with self._lock:
            if self._client is None:
                s = self._settings
                session = boto3.session.Session(
                    aws_access_key_id=s.s3_access_key_id,
                    aws_secret_access_key=s.s3_secret_access_key and s.s3_secret_access_key.get_secret_value(),
                    aws_session_token=s.s3_session_token and s.s3_session_token.get_secret_value(),
                    region_name=s.s3_region)
                self._client = session.client("s3", endpoint_url=s.s3_endpoint_url, config=client_config(s))
            return self._client

    @property
    def manager(self):
        client = self.client
        with self._lock:
            if self._manager is None:
                self._manager = boto3.s3.transfer.create_transfer_manager(client, transfer_config(self._settings))
            return self._manager

    def stat(self, uri: str) -> base.ObjectInfo | None:
        bucket, key = uris.split_bucket(uri)
        try:
            head = self.client.head_object(Bucket=bucket, Key=key)
        except botocore.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") in MISSING:
                return None
            raise
        return base.ObjectInfo(uris.basename(uri), head["ContentLength"])

    def list(self, uri: str) -> Iterator[base.ObjectInfo]:
        bucket, prefix = uris.split_bucket(uris.as_directory(uri))
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                if not item["Key"].endswith("/"):  # "folder" markers made by consoles
                    yield base.ObjectInfo(item["Key"][len(prefix):], item["Size"])

    def _get(self, uri: str) -> dict:
        bucket, key = uris.split_bucket(uri)
        try:
            return self.client.get_object(Bucket=bucket, Key=key)
        except botocore.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") in MISSING:
                raise FileNotFoundError(f"no object at {uri}") from None
            raise

    def open(self, uri: str) -> BinaryIO:
        return self._get(uri)["Body"]

    def download(self, uri: str, sink: base.Sink) -> None:
        response = self._get(uri)
        with response["Body"] as body:
            if response["ContentLength"] < self._settings.multipart_threshold:
                while chunk := body.read(integrity.CHUNK):
                    sink.write(chunk)
                return
        # A non-seekable sink makes s3transfer fetch ranges in parallel but write them in order.
        self.manager.download(*uris.split_bucket(uri), sink).result()

    def upload(self, source: pathlib.Path, uri: str, on_bytes: base.OnBytes) -> None:
        bucket, key = uris.split_bucket(uri)
        size = source.stat().st_size
        if size < self._settings.multipart_threshold:
            with open(source, "rb") as body:
                self.client.put_object(Bucket=bucket, Key=key, Body=body)
            on_bytes(size)
        else:
            self.manager.upload(str(source), bucket, key, subscribers=[_Progress(on_bytes)]).result()

    def write_bytes(self, uri: str, data: bytes) -> None:
        bucket, key = uris.split_bucket(uri)
        self.client.put_object(Bucket=bucket, Key=key, Body=data)

    def delete(self, uris_: Sequence[str]) -> None:
        by_bucket: dict[str, list[str]] = {}
        for uri in uris_:
            bucket, key = uris.split_bucket(uri)
            by_bucket.setdefault(bucket, []).append(key)
        for bucket, keys in by_bucket.items():
            for start in range(0, len(keys), 1000):
                batch = [{"Key": key} for key in keys[start:start + 1000]]
                failed = self.client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True}).get("Errors")
                if failed:
                    raise OSError(f"could not delete from s3://{bucket}: {failed[:3]}")
