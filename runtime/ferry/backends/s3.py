"""S3 and S3-compatible stores (MinIO, Ceph, R2...) through boto3.

One client per backend (boto3 clients are thread-safe; sessions are not, so the session is made
once under a lock), and for large files one pool of part workers and one limit on the parts in
flight, shared by the whole store, so the memory they hold is bounded for the store and not per
file. Small files go through single requests, which is much faster than the managed transfer
for many of them.

Speed, measured in ``benchmarks/s3_transfer.py`` (figures in ``docs/benchmarks.md``):

- botocore's own checksums are off (``when_required``): Ferry hashes every file with sha256
  anyway and checks it on every download. A small file's sha256 travels as
  ``x-amz-checksum-sha256``, so the server also checks it on arrival, for free.
- A large file is read once: each part is hashed into the file's sha256 as it is read, then
  sent from memory, instead of hashing the whole file before sending it.
- Small objects skip botocore's per-call pipeline (``_Direct``): with thousands of small files
  the transfer is bound by CPU, and that pipeline costs about twice the rest of a request.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import datetime
import hashlib
import itertools
import math
import os
import pathlib
import threading
from collections.abc import Iterator, Sequence
from typing import BinaryIO

import boto3
import boto3.s3.transfer
import botocore
import botocore.config
import botocore.credentials
import botocore.exceptions
from s3transfer.subscribers import BaseSubscriber

import ferry
from ferry import integrity, localfiles, settings as settings_, uris
from ferry.backends import base

MISSING = {"404", "NoSuchKey", "NotFound"}
IO_QUEUE = 16
PIECE = 256 * 1024
"""Pieces in which a part of a large download arrives from the native client: small enough to
stay in the CPU's cache between the write and the hash."""
MAX_PARTS = 10_000
"""S3's limit on the parts of one multipart upload; very large files get larger parts."""
USER_AGENT = f"ferry/{ferry.__version__}"


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
        # Ferry checks sha256 end to end and gives every upload its own checksum (sha256 for small
        # files, CRC32 for the others), so botocore need not add one. (A request without a
        # checksum would have its body hashed with sha256 to sign it, even over https.) Response
        # validation stays as it is: Ferry's reads skip it (direct GETs, ranged GETs without a
        # checksum), and with it off s3transfer 0.19 deadlocks downloading to a non-seekable
        # sink with few parts allowed in memory.
        request_checksum_calculation="when_required",
        **({"s3": {"addressing_style": settings.s3_addressing_style}} if settings.s3_addressing_style else {}),
    )


def part_client_config(settings: settings_.Settings) -> botocore.config.Config:
    """For sending parts of large files: each part carries a CRC32 that the server checks, so its
    body is not also hashed with sha256 to sign it (what botocore does over plain http; over
    https it does the same as here). Ferry's sha256 of the whole file still guards every download."""
    return client_config(settings).merge(botocore.config.Config(
        max_pool_connections=settings.multipart_concurrency,
        s3={"payload_signing_enabled": False,
            **({"addressing_style": settings.s3_addressing_style} if settings.s3_addressing_style else {})}))


def transfer_config(settings: settings_.Settings) -> boto3.s3.transfer.TransferConfig:
    config = boto3.s3.transfer.TransferConfig(
        multipart_threshold=settings.multipart_threshold, multipart_chunksize=settings.multipart_chunksize,
        max_concurrency=settings.multipart_concurrency, num_download_attempts=settings.max_attempts,
        max_io_queue=IO_QUEUE, preferred_transfer_client="classic")
    # Memory held by downloads is about (parts fetched ahead of the one being written) x chunksize
    # + the write queue (IO_QUEUE x 256 KiB), shared by every large file of the store.
    config.max_in_memory_download_chunks = settings.multipart_concurrency
    return config


class _Native:
    """Small GETs and PUTs through obstore (Rust ``object_store``): signing, HTTP and the
    connection pool run in native code outside the GIL, so thousands of small files are not bound
    by Python's per-request work (botocore's pipeline costs about 1.5 ms of CPU per request; the
    whole request here costs a tenth of that in Python).

    It talks to the bucket exactly as the boto3 client does: the same endpoint, addressing style
    (read off a URL the client presigns), region and credentials (refreshable ones included).
    A transient failure (no connection, a 5xx after obstore's own short retries) is raised as
    ``ConnectionError``, so Ferry's retries through an outage apply as to every request.
    """

    PROBE = "ferry-probe"
    REFRESH = datetime.timedelta(minutes=5)
    """How often refreshable credentials are read again (botocore refreshes them before expiry)."""

    def __init__(self, client, credentials, settings: settings_.Settings):
        self._client, self._credentials, self._settings = client, credentials, settings
        self._stores: dict[str, object] = {}
        self._lock = threading.Lock()

    def _credential(self) -> dict:
        frozen = self._credentials.get_frozen_credentials()
        refreshable = isinstance(self._credentials, botocore.credentials.RefreshableCredentials)
        return {"access_key_id": frozen.access_key, "secret_access_key": frozen.secret_key, "token": frozen.token,
                "expires_at": datetime.datetime.now(datetime.timezone.utc) + self.REFRESH if refreshable else None}

    def store(self, bucket: str):
        """The obstore store of ``bucket``, made on first use."""
        with self._lock:
            if bucket not in self._stores:
                self._stores[bucket] = self._make(bucket)
            return self._stores[bucket]

    def _make(self, bucket: str):
        from obstore.store import S3Store

        url = self._client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": self.PROBE})
        base = url.split("?", 1)[0][:-len(self.PROBE)].rstrip("/")
        path_style = base.endswith("/" + bucket)
        timeout = datetime.timedelta(seconds=self._settings.retry_seconds)
        return S3Store(
            bucket, endpoint=base[:-len(bucket) - 1] if path_style else base,
            virtual_hosted_style_request=not path_style, region=self._client.meta.region_name or "us-east-1",
            credential_provider=self._credential if self._credentials is not None else None,
            skip_signature=self._credentials is None, checksum_algorithm="sha256",
            client_options={"allow_http": base.startswith("http://"), "user_agent": USER_AGENT,
                            "connect_timeout": datetime.timedelta(seconds=10), "timeout": datetime.timedelta(minutes=5)},
            retry_config={"max_retries": 2, "retry_timeout": min(timeout, datetime.timedelta(seconds=10)),
                          "backoff": {"init_backoff": datetime.timedelta(milliseconds=100),
                                      "max_backoff": datetime.timedelta(seconds=1), "base": 2}})

    @staticmethod
    @contextlib.contextmanager
    def _errors(uri: str) -> Iterator[None]:
        import obstore.exceptions

        try:
            yield
        except obstore.exceptions.GenericError as error:  # no connection, or 5xx after retries
            raise ConnectionError(f"{uri}: {_first_line(error)}") from None
        except (obstore.exceptions.PermissionDeniedError, obstore.exceptions.UnauthenticatedError) as error:
            raise PermissionError(f"{uri}: {_first_line(error)}") from None
        except obstore.exceptions.BaseError as error:
            raise OSError(f"{uri}: {_first_line(error)}") from None

    def put(self, uri: str, data: bytes) -> None:
        """Store ``data``; obstore sends its sha256 as ``x-amz-checksum-sha256``, which the server checks."""
        import obstore

        bucket, key = uris.split_bucket(uri)
        with self._errors(uri):
            obstore.put(self.store(bucket), key, data, use_multipart=False)

    def get(self, uri: str, limit: int) -> bytes | None:
        """The object's bytes (a buffer, not copied into Python), or None if it holds more than ``limit``."""
        import obstore

        bucket, key = uris.split_bucket(uri)
        with self._errors(uri):
            result = obstore.get(self.store(bucket), key)
            if result.meta["size"] > limit:
                return None
            return result.bytes()

    def head(self, uri: str) -> tuple[int, str | None]:
        """The object's size and ETag."""
        import obstore

        bucket, key = uris.split_bucket(uri)
        with self._errors(uri):
            meta = obstore.head(self.store(bucket), key)
        return meta["size"], meta["e_tag"]

    def stream(self, uri: str, span: tuple[int, int] | None = None, etag: str | None = None) -> Iterator:
        """The object's bytes (``span``: from its first to before its second offset; of version
        ``etag`` when given) as buffers of about ``PIECE`` bytes, in order: collecting a large
        answer into one buffer first would cost a copy of it."""
        import obstore

        bucket, key = uris.split_bucket(uri)
        options = {**({"range": span} if span else {}), **({"if_match": etag} if etag else {})}
        with self._errors(uri):
            yield from obstore.get(self.store(bucket), key, options=options).stream(PIECE)


def _first_line(error: BaseException) -> str:
    """obstore's message without its multi-line debug dump or the server's XML."""
    return str(error).split("\n", 1)[0].split(": <?xml", 1)[0]


class S3Backend(base.Backend):
    transient_errors = (*base.Backend.transient_errors, botocore.exceptions.ConnectionError,
                        botocore.exceptions.ReadTimeoutError, botocore.exceptions.ResponseStreamingError,
                        botocore.exceptions.IncompleteReadError)

    def __init__(self, settings: settings_.Settings):
        self._settings = settings
        self._lock = threading.Lock()
        self._client = None
        self._native: _Native | None = None
        self._part_client = None
        self._manager = None
        self._part_pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._parts_in_flight = threading.BoundedSemaphore(settings.multipart_concurrency)
        """Parts read but not yet sent, over all large uploads of the store (each holds a part's bytes)."""

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
                if s.s3_credentials_file:
                    from ferry import credentials

                    session._session._credentials = credentials.refreshable(s.s3_credentials_file)
                self._client = session.client("s3", endpoint_url=s.s3_endpoint_url, config=client_config(s))
                self._part_client = session.client("s3", endpoint_url=s.s3_endpoint_url, config=part_client_config(s))
                self._native = _Native(self._client, session.get_credentials(), s)
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

    def download_hashing(self, uri: str, fd: int, on_bytes: base.OnBytes, expected: int | None = None
                         ) -> tuple[int, str]:
        """Download the object (of ``expected`` bytes, when known) into the open file ``fd``: the
        size and hex sha256 of what was written.

        The store's part workers fetch ranges natively (pinned to one version with If-Match) and
        write each straight to its place in the file, in any order; this thread hashes the parts
        in order as they arrive. A part stays in memory until it is hashed, and at most
        ``multipart_concurrency`` parts of the whole store do.
        """
        self.client  # made on first use, with the native request path
        chunk = self._settings.multipart_chunksize
        if expected is not None and expected <= chunk:  # one GET, no HEAD
            digest, size = hashlib.sha256(), 0
            for piece in self._native.stream(uri):
                os.write(fd, piece)
                digest.update(piece)
                size += len(piece)
                on_bytes(len(piece))
            return size, digest.hexdigest()
        size, etag = self._native.head(uri)
        starts = collections.deque(range(0, size, chunk))
        pending: collections.deque[concurrent.futures.Future] = collections.deque()
        digest = hashlib.sha256()

        def fetch(start: int) -> list:
            pieces, at = [], start
            for piece in self._native.stream(uri, (start, min(start + chunk, size)), etag):
                view, written = memoryview(piece), 0
                while written < len(view):
                    written += os.pwrite(fd, view[written:], at + written)
                at += written
                on_bytes(written)
                pieces.append(piece)
            return pieces

        try:
            while starts or pending:
                while starts and self._parts_in_flight.acquire(blocking=not pending):
                    pending.append(self._parts().submit(fetch, starts.popleft()))
                pieces = pending[0].result()
                pending.popleft()
                for piece in pieces:
                    digest.update(piece)
                del pieces
                self._parts_in_flight.release()
        finally:
            for future in pending:
                future.cancel()
            concurrent.futures.wait(pending)
            for _ in pending:
                self._parts_in_flight.release()
        return size, digest.hexdigest()

    def upload(self, source: pathlib.Path, uri: str, on_bytes: base.OnBytes) -> None:
        bucket, key = uris.split_bucket(uri)
        size = source.stat().st_size
        if size < self._settings.multipart_threshold:
            with localfiles.open_regular(source) as body:
                self.client.put_object(Bucket=bucket, Key=key, Body=body, ChecksumAlgorithm="CRC32")
            on_bytes(size)
        else:
            with localfiles.open_regular(source) as body:
                self.manager.upload(body, bucket, key, extra_args={"ChecksumAlgorithm": "CRC32"},
                                    subscribers=[_Progress(on_bytes)]).result()

    def put_small(self, uri: str, data: bytes, sha256: str) -> None:
        """Store ``data`` (hex sha256 ``sha256``, which the server checks on arrival) in one request."""
        self.client  # made on first use, with the native request path
        self._native.put(uri, data)

    def read_small(self, uri: str, limit: int) -> bytes | None:
        """The bytes of an object expected to hold at most ``limit`` bytes, or None if it holds
        more. FileNotFoundError when there is none."""
        self.client
        return self._native.get(uri, limit)

    def upload_hashing(self, source: pathlib.Path, uri: str, on_bytes: base.OnBytes) -> tuple[int, str]:
        """Upload a large file in parts, reading it once: the size and hex sha256 of the bytes sent.

        Parts are read in order on the calling thread, hashed, and sent by the store's part
        workers; at most ``multipart_concurrency`` parts of the whole store are held in memory.
        """
        bucket, key = uris.split_bucket(uri)
        s = self._settings
        chunk = max(s.multipart_chunksize, math.ceil(source.stat().st_size / MAX_PARTS))
        digest, size, sent = hashlib.sha256(), 0, []
        upload_id = self.client.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="CRC32")["UploadId"]
        try:
            with localfiles.open_regular(source) as reader:
                for number in itertools.count(1):
                    failed = next((f for f in sent if f.done() and f.exception()), None)
                    if failed:
                        failed.result()
                    self._parts_in_flight.acquire()
                    try:
                        data = reader.read(chunk)
                        if not data and number > 1:
                            self._parts_in_flight.release()
                            break
                        digest.update(data)
                        size += len(data)
                        sent.append(self._parts().submit(self._send_part, bucket, key, upload_id, number, data, on_bytes))
                    except BaseException:
                        self._parts_in_flight.release()
                        raise
                    if len(data) < chunk:
                        break
            parts = [future.result() for future in sent]
            self.client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                                  MultipartUpload={"Parts": parts})
        except BaseException:
            for future in sent:
                if future.cancel():  # never started: its part's hold on memory ends here
                    self._parts_in_flight.release()
            concurrent.futures.wait(sent)
            try:
                self.client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
                pass  # the upload failed anyway; a bucket lifecycle rule cleans what is left
            raise
        return size, digest.hexdigest()

    def _parts(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._part_pool is None:
                self._part_pool = concurrent.futures.ThreadPoolExecutor(
                    self._settings.multipart_concurrency, thread_name_prefix="ferry-part")
            return self._part_pool

    def _send_part(self, bucket: str, key: str, upload_id: str, number: int, data: bytes,
                   on_bytes: base.OnBytes) -> dict:
        try:
            sent = self._part_client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                                                 Body=data, ChecksumAlgorithm="CRC32")
        finally:
            self._parts_in_flight.release()
        on_bytes(len(data))
        return {"ETag": sent["ETag"], "PartNumber": number, "ChecksumCRC32": sent["ChecksumCRC32"]}

    def write_bytes(self, uri: str, data: bytes) -> None:
        self.put_small(uri, data, hashlib.sha256(data).hexdigest())

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
