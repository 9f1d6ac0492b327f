"""S3 and S3-compatible stores (MinIO, Ceph, R2...): requests through obstore (``s3native``),
and boto3 for what it still does best.

Most requests go through obstore: small files whole, large files' multipart uploads, large
downloads in ranged parts streamed straight to their place in the file, manifests, HEADs and
deletes. So a process that only moves data does not need boto3 at all when the bucket is
configured plainly (``s3native``). boto3 sends mid-sized files whose hash is already known, lists
prefixes, and resolves the bucket's endpoint and credentials in every other configuration (AWS's
endpoints, profiles, SSO, IRSA, instance roles). It also makes every request for the rare keys that
obstore cannot name (a control character such as a newline, an empty segment...: ``_requests``,
``s3client``).

Speed, measured in ``benchmarks/s3_transfer.py`` (figures in ``docs/benchmarks.md``):

- A small file's sha256 travels as ``x-amz-checksum-sha256``, so the server checks it on arrival.
- botocore's own checksums are off (``when_required``): Ferry hashes every file with sha256 anyway
  and checks it on every download; obstore gives each part of a large upload its sha256, which the
  server checks.
- A large file is read once: each piece is hashed into the file's sha256 as it is read, then handed
  to obstore, which sends it from there (no boto3, and 3 parts in flight instead of boto3's 10:
  a 2 GiB upload peaks at 68 MiB instead of 178, as fast). A large download writes parts in any
  order with ``pwrite`` while this thread hashes them in order.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import io
import math
import os
import pathlib
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, BinaryIO

from ferry.core import integrity, localfiles, uris
from ferry.data import settings as settings_
from ferry.data.backends import base, s3client, s3native

if TYPE_CHECKING:
    import concurrent.futures

IO_QUEUE = 16
MAX_PARTS = 10_000
"""S3's limit on the parts of one multipart upload; very large files get larger parts."""
UPLOAD_PARTS = 3
"""Parts of one large upload sent at once (fewer if ``multipart_concurrency`` is smaller): against
MinIO on 2 cores, 3 were as fast as 10, and each holds a part in memory."""


def client_config(settings: settings_.Settings):
    """Retries with backoff on throttling and 5xx, and enough pooled connections for every thread."""
    import botocore.config

    return botocore.config.Config(
        retries={"mode": "standard", "max_attempts": settings.max_attempts},
        max_pool_connections=settings.concurrency + settings.multipart_concurrency,
        tcp_keepalive=True,
        # Ferry checks sha256 end to end and gives every upload its own checksum (sha256 for small
        # files, CRC32 for the others), so botocore need not add one. (A request without a
        # checksum would have its body hashed with sha256 to sign it, even over https.)
        request_checksum_calculation="when_required",
        **({"s3": {"addressing_style": settings.s3_addressing_style}} if settings.s3_addressing_style else {}),
    )


def transfer_config(settings: settings_.Settings):
    import boto3.s3.transfer

    return boto3.s3.transfer.TransferConfig(
        multipart_threshold=settings.multipart_threshold, multipart_chunksize=settings.multipart_chunksize,
        max_concurrency=settings.multipart_concurrency, num_download_attempts=settings.max_attempts,
        max_io_queue=IO_QUEUE, preferred_transfer_client="classic")


class _Pieces(io.RawIOBase):
    """A read stream over the buffers of a native GET."""

    def __init__(self, pieces: Iterator):
        self._pieces, self._left = pieces, memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._left:
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self._left = memoryview(piece)
        count = min(len(buffer), len(self._left))
        buffer[:count] = self._left[:count]
        self._left = self._left[count:]
        return count


class S3Backend(base.Backend):
    def __init__(self, settings: settings_.Settings):
        self._settings = settings
        self._lock = threading.Lock()
        self._client = self._credentials = self._manager = None
        self._native = s3native.NativeS3(settings, self._client_target)
        self._by_client = s3client.ClientS3(lambda: self.client)
        self._part_pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._parts_in_flight = threading.BoundedSemaphore(settings.multipart_concurrency)
        """Parts held in memory (read and not yet sent, or fetched and not yet hashed), over all
        large transfers of the store."""
        self._reserving = threading.Lock()
        """Held while one upload takes its places in ``_parts_in_flight`` one by one."""

    @property
    def transient_errors(self) -> tuple[type[BaseException], ...]:
        """botocore's connection errors too, once boto3 is in use (they cannot happen before)."""
        if "botocore.exceptions" not in sys.modules:
            return base.Backend.transient_errors
        import botocore.exceptions as failed

        return (*base.Backend.transient_errors, failed.ConnectionError, failed.ReadTimeoutError,
                failed.ResponseStreamingError, failed.IncompleteReadError)

    @property
    def client(self):
        """The boto3 client, made on first use (boto3 costs about 200 ms to import and set up)."""
        with self._lock:
            if self._client is None:
                import boto3

                s = self._settings
                session = boto3.session.Session(
                    aws_access_key_id=s.s3_access_key_id,
                    aws_secret_access_key=s.s3_secret_access_key and s.s3_secret_access_key.get_secret_value(),
                    aws_session_token=s.s3_session_token and s.s3_session_token.get_secret_value(),
                    region_name=s.s3_region)
                if s.s3_credentials_file:
                    session._session._credentials = _refreshable(s.s3_credentials_file)
                self._credentials = session.get_credentials()
                self._client = session.client("s3", endpoint_url=s.s3_endpoint_url, config=client_config(s))
            return self._client

    def _client_target(self, bucket: str) -> s3native.Target:
        client = self.client
        return s3native.client_target(client, self._credentials, bucket)

    def _requests(self, uri: str) -> s3native.NativeS3 | s3client.ClientS3:
        """Who makes the requests for ``uri``: obstore, unless it cannot name the key (the only
        place this is decided)."""
        return self._native if s3native.names(uris.split_bucket(uri)[1]) else self._by_client

    @property
    def manager(self):
        client = self.client
        with self._lock:
            if self._manager is None:
                import boto3.s3.transfer

                self._manager = boto3.s3.transfer.create_transfer_manager(client, transfer_config(self._settings))
            return self._manager

    def stat(self, uri: str) -> base.ObjectInfo | None:
        try:
            size, _ = self._requests(uri).head(uri)
        except FileNotFoundError:
            return None
        return base.ObjectInfo(uris.basename(uri), size)

    def list(self, uri: str) -> Iterator[base.ObjectInfo]:
        bucket, prefix = uris.split_bucket(uris.as_directory(uri))
        # botocore asks for the keys URL-encoded and decodes them (EncodingType=url), so a key with
        # a control character comes back intact (XML would turn a carriage return into a newline).
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                if not item["Key"].endswith("/"):  # "folder" markers made by consoles
                    yield base.ObjectInfo(item["Key"][len(prefix):], item["Size"], item["LastModified"].timestamp())

    def open(self, uri: str) -> BinaryIO:
        try:
            return _Pieces(self._requests(uri).stream(uri))
        except FileNotFoundError:
            raise FileNotFoundError(f"no object at {uri}") from None

    def read_bytes(self, uri: str) -> bytes:
        try:
            return bytes(self._requests(uri).get(uri))
        except FileNotFoundError:
            raise FileNotFoundError(f"no object at {uri}") from None

    def download_hashing(self, uri: str, fd: int, on_bytes: base.OnBytes, expected: int | None = None
                         ) -> tuple[int, str]:
        """Download the object (of ``expected`` bytes, when known) into the open file ``fd``: the
        size and hex sha256 of what was written.

        The store's part workers fetch ranges natively (pinned to one version with If-Match) and
        write each straight to its place in the file, in any order; this thread hashes the parts
        in order as they arrive. A part stays in memory until it is hashed, and at most
        ``multipart_concurrency`` parts of the whole store do.
        """
        chunk, requests = self._settings.multipart_chunksize, self._requests(uri)
        if expected is not None and expected <= chunk:  # one GET, no HEAD
            digest, size = hashlib.sha256(), 0
            for piece in requests.stream(uri):
                os.write(fd, piece)
                digest.update(piece)
                size += len(piece)
                on_bytes(len(piece))
            return size, digest.hexdigest()
        import concurrent.futures  # not at import: only large files use it (with logging, ~10 ms)

        size, etag = requests.head(uri)
        starts = collections.deque(range(0, size, chunk))
        pending: collections.deque[concurrent.futures.Future] = collections.deque()
        digest = hashlib.sha256()

        def fetch(start: int) -> list:
            pieces, at = [], start
            for piece in requests.stream(uri, (start, min(start + chunk, size)), etag):
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
            from s3transfer.subscribers import BaseSubscriber

            class Progress(BaseSubscriber):
                def on_progress(self, future, bytes_transferred: int, **kwargs) -> None:
                    on_bytes(bytes_transferred)

            with localfiles.open_regular(source) as body:
                self.manager.upload(body, bucket, key, extra_args={"ChecksumAlgorithm": "CRC32"},
                                    subscribers=[Progress()]).result()

    def put_small(self, uri: str, data: bytes, sha256: str) -> None:
        """Store ``data`` (hex sha256 ``sha256``, which the server checks on arrival) in one request."""
        self._requests(uri).put(uri, data)

    def read_small(self, uri: str, limit: int) -> bytes | None:
        """The bytes of an object expected to hold at most ``limit`` bytes, or None if it holds
        more. FileNotFoundError when there is none."""
        return self._requests(uri).get(uri, limit)

    def upload_hashing(self, source: pathlib.Path, uri: str, on_bytes: base.OnBytes) -> tuple[int, str]:
        """Upload a large file in parts, reading it once: the size and hex sha256 of the bytes sent.

        The file is read in order on the calling thread and each piece hashed as obstore takes it;
        obstore sends the parts, ``UPLOAD_PARTS`` at once, and aborts the upload if one fails. The
        parts it may hold take their places in the store-wide limit for the whole upload.
        """
        s = self._settings
        chunk = max(s.multipart_chunksize, math.ceil(source.stat().st_size / MAX_PARTS))
        in_flight = max(1, min(UPLOAD_PARTS, s.multipart_concurrency - 1))
        digest, size = hashlib.sha256(), 0

        def pieces() -> Iterator[bytes]:
            nonlocal size
            while data := reader.read(integrity.CHUNK):
                digest.update(data)
                size += len(data)
                on_bytes(len(data))
                yield data

        # obstore holds the parts in flight and the one it is filling
        with self._holding(min(in_flight + 1, s.multipart_concurrency)), localfiles.open_regular(source) as reader:
            self._requests(uri).put_parts(uri, pieces(), chunk, in_flight)
        return size, digest.hexdigest()

    @contextlib.contextmanager
    def _holding(self, parts: int) -> Iterator[None]:
        """Take ``parts`` places in the store-wide limit on parts in memory until the block ends.
        One upload at a time takes them, so two cannot each wait for the other's places; those
        holding places (part downloads, uploads that have all theirs) never wait while they do."""
        taken = 0
        try:
            with self._reserving:
                while taken < parts:
                    self._parts_in_flight.acquire()
                    taken += 1
            yield
        finally:
            for _ in range(taken):
                self._parts_in_flight.release()

    def _parts(self) -> concurrent.futures.ThreadPoolExecutor:
        import concurrent.futures

        with self._lock:
            if self._part_pool is None:
                self._part_pool = concurrent.futures.ThreadPoolExecutor(
                    self._settings.multipart_concurrency, thread_name_prefix="ferry-part")
            return self._part_pool

    def write_bytes(self, uri: str, data: bytes) -> None:
        self.put_small(uri, data, hashlib.sha256(data).hexdigest())

    def put_if_absent(self, uri: str, data: bytes) -> bool:
        """S3's conditional write (``If-None-Match: *``): the store refuses it if the key exists."""
        import botocore.exceptions

        bucket, key = uris.split_bucket(uri)
        for attempt in range(5):
            try:
                self.client.put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
                return True
            except botocore.exceptions.ClientError as error:
                code = error.response.get("Error", {}).get("Code")
                if code in ("PreconditionFailed", "412"):
                    return False
                if code != "ConditionalRequestConflict":  # AWS asks to retry this one
                    raise
                time.sleep(0.1 * 2 ** attempt)
        raise TimeoutError(f"{uri}: the store kept reporting conflicting writes; try again")

    def delete(self, uris_: Sequence[str]) -> None:
        by_requests: dict[object, list[str]] = {}
        for uri in uris_:
            by_requests.setdefault(self._requests(uri), []).append(uri)
        for requests, some in by_requests.items():
            requests.delete(some)


def _refreshable(path: str):
    """botocore credentials read from Ferry's credentials file (``ferry.data.credentials``) and read
    again as they near expiry (the pod's sidecar renews the file long before)."""
    import botocore.credentials

    from ferry.data import credentials

    return botocore.credentials.RefreshableCredentials.create_from_metadata(
        metadata=credentials.read(path), refresh_using=lambda: credentials.read(path), method="ferry-credentials-file")
