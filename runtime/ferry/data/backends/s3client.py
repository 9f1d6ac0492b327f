"""The requests ``s3native`` makes, made through the boto3 client instead, for the keys obstore's
paths cannot name: a control character (a newline, a tab...), an empty, '.' or '..' segment, a
leading or trailing '/'. Such keys are legal in S3 and rare, so this side is plain rather than fast.

The same answers and errors as ``s3native``: a missing object is ``FileNotFoundError``, a refusal
``PermissionError``, a 5xx after botocore's retries ``ConnectionError`` (its own connection errors
are among the backend's transient ones).
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence

from ferry.core import uris
from ferry.data.backends import s3native


@contextlib.contextmanager
def _errors(uri: str) -> Iterator[None]:
    import botocore.exceptions

    try:
        yield
    except botocore.exceptions.ClientError as error:
        code = str(error.response.get("Error", {}).get("Code"))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        if code in ("404", "NoSuchKey") or status == 404:
            raise FileNotFoundError(f"{uri}: {error}") from None
        if code in ("403", "AccessDenied") or status in (401, 403):
            raise PermissionError(f"{uri}: {error}") from None
        if status >= 500:
            raise ConnectionError(f"{uri}: {error}") from None
        raise OSError(f"{uri}: {error}") from None


class ClientS3:
    """``s3native.NativeS3``'s requests through a boto3 client, made on first use."""

    def __init__(self, client: Callable[[], object]):
        self._client = client

    def put(self, uri: str, data: bytes) -> None:
        """Store ``data`` in one request, with its sha256 for the server to check."""
        bucket, key = uris.split_bucket(uri)
        with _errors(uri):
            self._client().put_object(Bucket=bucket, Key=key, Body=data, ChecksumAlgorithm="SHA256")

    def put_parts(self, uri: str, pieces: Iterable, part_size: int, in_flight: int) -> None:
        """Store the bytes ``pieces`` yields as a multipart upload of ``part_size`` parts, at most
        ``in_flight`` of them sent (and held) at once. A failure aborts the upload."""
        import concurrent.futures

        client, (bucket, key) = self._client(), uris.split_bucket(uri)
        with _errors(uri):
            upload = client.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256")["UploadId"]

        def send(number: int, body: bytes) -> dict:
            with _errors(uri):
                answer = client.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=body,
                                            ChecksumAlgorithm="SHA256")
            return {"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": answer["ChecksumSHA256"]}

        try:
            sent, pending = [], collections.deque()
            with concurrent.futures.ThreadPoolExecutor(in_flight, thread_name_prefix="ferry-part") as pool:
                try:
                    for number, body in enumerate(_parts(pieces, part_size), 1):
                        if len(pending) == in_flight:
                            sent.append(pending.popleft().result())
                        pending.append(pool.submit(send, number, body))
                    sent.extend(future.result() for future in pending)
                finally:
                    for future in pending:
                        future.cancel()
            with _errors(uri):
                client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload,
                                                 MultipartUpload={"Parts": sent})
        except BaseException:
            with contextlib.suppress(Exception):
                client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)
            raise

    def get(self, uri: str, limit: int | None = None) -> bytes | None:
        """The object's bytes, or None if it holds more than ``limit``."""
        bucket, key = uris.split_bucket(uri)
        with _errors(uri):
            answer = self._client().get_object(Bucket=bucket, Key=key)
            with contextlib.closing(answer["Body"]) as body:
                return None if limit is not None and answer["ContentLength"] > limit else body.read()

    def stream(self, uri: str, span: tuple[int, int] | None = None, etag: str | None = None) -> Iterator:
        """As ``NativeS3.stream``: the request is made here, so a missing object raises here."""
        bucket, key = uris.split_bucket(uri)
        options = {**({"Range": f"bytes={span[0]}-{span[1] - 1}"} if span else {}),
                   **({"IfMatch": etag} if etag else {})}
        with _errors(uri):
            body = self._client().get_object(Bucket=bucket, Key=key, **options)["Body"]
        return self._pieces(uri, body)

    @staticmethod
    def _pieces(uri: str, body) -> Iterator[bytes]:
        with _errors(uri), contextlib.closing(body):
            yield from body.iter_chunks(s3native.PIECE)

    def head(self, uri: str) -> tuple[int, str | None]:
        """The object's size and ETag."""
        bucket, key = uris.split_bucket(uri)
        with _errors(uri):
            answer = self._client().head_object(Bucket=bucket, Key=key)
        return answer["ContentLength"], answer.get("ETag")

    def delete(self, uris_: Sequence[str]) -> None:
        """Remove objects one request each: DeleteObjects names them in XML, where a carriage return
        would arrive as a newline and most other control characters cannot be written at all."""
        for uri in uris_:
            bucket, key = uris.split_bucket(uri)
            with _errors(uri):
                self._client().delete_object(Bucket=bucket, Key=key)


def _parts(pieces: Iterable, size: int) -> Iterator[bytes]:
    """The bytes of ``pieces`` regrouped in parts of ``size`` (the last one shorter; one empty part
    when there are no bytes, as an upload needs a part)."""
    part, whole = bytearray(), 0
    for piece in pieces:
        part += piece
        while len(part) >= size:
            yield bytes(part[:size])
            del part[:size]
            whole += 1
    if part or not whole:
        yield bytes(part)
