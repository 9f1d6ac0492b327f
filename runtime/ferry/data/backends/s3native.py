"""S3 requests through obstore (Rust ``object_store``): signing, HTTP and the connection pool run
in native code outside the GIL, so thousands of files are not bound by Python's per-request work
(botocore's pipeline costs about 1.5 ms of CPU per request; a request here costs a tenth of
that in Python), and a large answer streams to disk without being copied into Python objects.

Where the bucket is reached is resolved without boto3 when the settings or the environment say
it plainly: an endpoint (``FERRY_S3_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_S3`` or
``AWS_ENDPOINT_URL``) with path-style addressing, and keys from the settings, Ferry's scoped
credentials file, or ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, with no AWS config file or
profile that could say otherwise. Then a process that moves data never imports boto3 (about
200 ms of start-up with its client). Anything else (AWS's own endpoints, profiles, SSO, IRSA,
instance roles) is resolved by the boto3 client exactly as boto3 would, and handed over.

A transient failure (no connection, a 5xx after obstore's own short retries) is raised as
``ConnectionError``, so Ferry's retries through an outage apply as to every request; a refusal
as ``PermissionError``; a missing object as ``FileNotFoundError``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from ferry.core import uris
from ferry.data import settings as settings_

PIECE = 256 * 1024
"""Pieces in which a streamed answer arrives: collecting a large one whole costs a copy of it."""
REFRESH = datetime.timedelta(minutes=5)
"""How often credentials that can change (a refreshed file, botocore's refreshable ones) are read again."""

Credential = dict
"""What obstore's credential provider returns: access_key_id, secret_access_key, token, expires_at."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def names(key: str) -> bool:
    """Whether obstore can name ``key`` exactly: every key S3 allows but those with an ASCII
    control character (a newline, a tab...) or an empty, '.' or '..' segment, which its paths
    refuse, and those with a '/' at either end, which they drop. (Under a microsecond for an
    ordinary key: a printable one has no control character, so the regex is left for the rest.)"""
    wrapped = f"/{key}/"
    return not ("//" in wrapped or "/./" in wrapped or "/../" in wrapped
                or not key.isprintable() and _CONTROL.search(key))


@dataclasses.dataclass(frozen=True)
class Target:
    """How obstore reaches one bucket."""
    endpoint: str
    """The service URL (path style) or the bucket's own URL (virtual-hosted style)."""
    virtual: bool
    region: str
    credentials: Callable[[], Credential] | None
    """None: unsigned requests (a public bucket)."""


def plain_target(settings: settings_.Settings, environ: Mapping[str, str]) -> Target | None:
    """The target every bucket shares when settings and environment say it plainly (see the
    module docstring), or None when only boto3 can tell."""
    if environ.get("AWS_PROFILE") or os.path.exists(
            environ.get("AWS_CONFIG_FILE") or os.path.expanduser("~/.aws/config")):
        return None
    endpoint = settings.s3_endpoint_url or environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")
    if not endpoint or settings.s3_addressing_style == "virtual":
        return None
    credentials = plain_credentials(settings, environ)
    if credentials is None:
        return None
    region = settings.s3_region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return Target(endpoint.rstrip("/"), False, region, credentials)


def plain_credentials(settings: settings_.Settings, environ: Mapping[str, str]) -> Callable[[], Credential] | None:
    """Keys in the order boto3 would take them here: Ferry's credentials file, the settings, the environment."""
    if settings.s3_credentials_file:
        from ferry.data import credentials

        path = settings.s3_credentials_file

        def from_file() -> Credential:
            issued = credentials.read(path)
            return {"access_key_id": issued["access_key"], "secret_access_key": issued["secret_key"],
                    "token": issued["token"], "expires_at": _now() + REFRESH}
        return from_file
    if settings.s3_access_key_id and settings.s3_secret_access_key:
        static = {"access_key_id": settings.s3_access_key_id,
                  "secret_access_key": settings.s3_secret_access_key.get_secret_value(),
                  "token": settings.s3_session_token and settings.s3_session_token.get_secret_value(),
                  "expires_at": None}
    elif environ.get("AWS_ACCESS_KEY_ID") and environ.get("AWS_SECRET_ACCESS_KEY"):
        static = {"access_key_id": environ["AWS_ACCESS_KEY_ID"], "secret_access_key": environ["AWS_SECRET_ACCESS_KEY"],
                  "token": environ.get("AWS_SESSION_TOKEN") or None, "expires_at": None}
    else:
        return None
    return lambda: dict(static)


def client_target(client, credentials, bucket: str) -> Target:
    """The target as a boto3 client addresses ``bucket``: endpoint and addressing style read off
    a URL it presigns, its region, and its (possibly refreshable) credentials."""
    probe = "ferry-probe"
    url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": probe})
    base = url.split("?", 1)[0][:-len(probe)].rstrip("/")
    path_style = base.endswith("/" + bucket)

    def from_client() -> Credential:
        frozen = credentials.get_frozen_credentials()
        changing = hasattr(credentials, "refresh_needed")  # botocore's RefreshableCredentials
        return {"access_key_id": frozen.access_key, "secret_access_key": frozen.secret_key, "token": frozen.token,
                "expires_at": _now() + REFRESH if changing else None}

    return Target(base[:-len(bucket) - 1] if path_style else base, not path_style,
                  client.meta.region_name or "us-east-1", from_client if credentials is not None else None)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _first_line(error: BaseException) -> str:
    """obstore's message without its multi-line debug dump or the server's XML."""
    return str(error).split("\n", 1)[0].split(": <?xml", 1)[0]


@contextlib.contextmanager
def _errors(uri: str) -> Iterator[None]:
    import obstore.exceptions

    try:
        yield
    except obstore.exceptions.GenericError as error:  # no connection, or 5xx after obstore's retries
        raise ConnectionError(f"{uri}: {_first_line(error)}") from None
    except (obstore.exceptions.PermissionDeniedError, obstore.exceptions.UnauthenticatedError) as error:
        raise PermissionError(f"{uri}: {_first_line(error)}") from None
    except obstore.exceptions.BaseError as error:
        raise OSError(f"{uri}: {_first_line(error)}") from None


class NativeS3:
    """obstore stores, one per bucket, made on first use. Thread-safe."""

    def __init__(self, settings: settings_.Settings, from_client: Callable[[str], Target],
                 environ: Mapping[str, str] = os.environ):
        self._settings = settings
        self._plain = plain_target(settings, environ)
        self._from_client = from_client
        self._stores: dict[str, object] = {}
        self._lock = threading.Lock()

    def store(self, bucket: str):
        with self._lock:
            if bucket not in self._stores:
                self._stores[bucket] = self._make(bucket, self._plain or self._from_client(bucket))
            return self._stores[bucket]

    def _make(self, bucket: str, target: Target):
        import ferry
        from obstore.store import S3Store

        retry_timeout = min(datetime.timedelta(seconds=self._settings.retry_seconds), datetime.timedelta(seconds=10))
        return S3Store(
            bucket, endpoint=target.endpoint, virtual_hosted_style_request=target.virtual, region=target.region,
            credential_provider=target.credentials, skip_signature=target.credentials is None,
            checksum_algorithm="sha256",
            client_options={"allow_http": target.endpoint.startswith("http://"),
                            "user_agent": f"ferry/{ferry.__version__}",
                            "connect_timeout": datetime.timedelta(seconds=10), "timeout": datetime.timedelta(minutes=5)},
            # Short: Ferry's own retries ride out longer outages, within its retry budget.
            retry_config={"max_retries": 2, "retry_timeout": retry_timeout,
                          "backoff": {"init_backoff": datetime.timedelta(milliseconds=100),
                                      "max_backoff": datetime.timedelta(seconds=1), "base": 2}})

    def _split(self, uri: str):
        bucket, key = uris.split_bucket(uri)
        return self.store(bucket), key

    def put(self, uri: str, data: bytes) -> None:
        """Store ``data`` in one request; obstore sends its sha256 as ``x-amz-checksum-sha256``,
        which the server checks on arrival."""
        import obstore

        store, key = self._split(uri)
        with _errors(uri):
            obstore.put(store, key, data, use_multipart=False)

    def put_parts(self, uri: str, pieces: Iterable, part_size: int, in_flight: int) -> None:
        """Store the bytes ``pieces`` yields as a multipart upload of ``part_size`` parts, sending at
        most ``in_flight`` at once (obstore holds about that many parts in memory, and no copy of
        them in Python). A failure, or an error raised by ``pieces``, aborts the upload."""
        import obstore

        store, key = self._split(uri)
        with _errors(uri):
            obstore.put(store, key, pieces, use_multipart=True, chunk_size=part_size, max_concurrency=in_flight)

    def get(self, uri: str, limit: int | None = None):
        """The object's bytes (a buffer, not copied into Python), or None if it holds more than ``limit``."""
        import obstore

        store, key = self._split(uri)
        with _errors(uri):
            result = obstore.get(store, key)
            if limit is not None and result.meta["size"] > limit:
                return None
            return result.bytes()

    def stream(self, uri: str, span: tuple[int, int] | None = None, etag: str | None = None) -> Iterator:
        """The object's bytes (``span``: from its first offset to before its second; of version
        ``etag`` when given) as buffers of about ``PIECE`` bytes, in order. The request is made
        here, so a missing object raises here."""
        import obstore

        store, key = self._split(uri)
        options = {**({"range": span} if span else {}), **({"if_match": etag} if etag else {})}
        with _errors(uri):
            result = obstore.get(store, key, options=options)
        return self._pieces(uri, result.stream(PIECE))

    @staticmethod
    def _pieces(uri: str, stream) -> Iterator:
        with _errors(uri):
            yield from stream

    def head(self, uri: str) -> tuple[int, str | None]:
        """The object's size and ETag."""
        import obstore

        store, key = self._split(uri)
        with _errors(uri):
            meta = obstore.head(store, key)
        return meta["size"], meta["e_tag"]

    def delete(self, uris_: Sequence[str]) -> None:
        """Remove objects (in batches of up to 1,000 per request); missing ones are fine."""
        import obstore

        by_bucket: dict[str, list[str]] = {}
        for uri in uris_:
            bucket, key = uris.split_bucket(uri)
            by_bucket.setdefault(bucket, []).append(key)
        for bucket, keys in by_bucket.items():
            with _errors(f"s3://{bucket}"):
                obstore.delete(self.store(bucket), keys)
