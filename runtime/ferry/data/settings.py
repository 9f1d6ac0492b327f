"""Typed settings of the data plane, read from ``FERRY_*`` environment variables.

Every field ``name`` is read from ``FERRY_<NAME>`` (``raw_data_prefix`` from
``FERRY_RAW_DATA_PREFIX``). S3 fields left unset fall back to boto3's own chain (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_DEFAULT_REGION``, ``~/.aws/config``...), so a pod configured the usual
AWS way needs no Ferry variable at all.
"""

from __future__ import annotations

import os
import pathlib
import tempfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from ferry.core import records, uris

if TYPE_CHECKING:  # the generated model evaluates the annotations with pydantic (records.model_of)
    import pydantic

ENV_PREFIX = "FERRY_"
MiB = 1024 * 1024


def _default_cache_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache") / "ferry"


def _default_local_dir() -> pathlib.Path:
    return pathlib.Path(tempfile.gettempdir()) / "ferry"


def _normalized(raw_data_prefix: str, cache_dir: pathlib.Path) -> str:
    prefix = uris.to_uri(raw_data_prefix or cache_dir / "raw")
    return prefix if prefix.endswith(":///") else prefix.rstrip("/")


class Settings(records.Record):
    """The data plane's settings (see the module docstring). A ``records.Record``: plainly right
    values (those of ``FERRY_*`` variables included) are checked without pydantic; its model is
    generated from these fields (annotation, check, default)."""

    cache_dir: pathlib.Path = records.field(records.path, records.Factory(_default_cache_dir))
    """Ferry's cache; the embedded raw data store lives under it unless ``raw_data_prefix`` says otherwise."""

    raw_data_prefix: str = records.field(records.text, "")
    """Where outputs without ``remote_directory=`` go, each under a fresh random name
    (``s3://bucket/ferry-data``, ``file:///srv/ferry``; a plain path means ``file://``).
    Empty means ``file://<cache_dir>/raw``."""

    local_dir: pathlib.Path = records.field(records.path, records.Factory(_default_local_dir))
    """Where remote values are downloaded to when the task does not say where."""

    hash_cache: bool = records.field(records.boolean, True)
    """Keep the sha256 of published files under ``cache_dir``, so publishing a folder again reads
    only the files whose size, mtime, ctime or inode changed (``ferry.data.hashcache``)."""

    local_fork: bool = records.field(records.boolean, True)
    """``ferry run`` forks task processes from a warm interpreter (``ferry.execution.forkserver``), about
    200 ms faster per task than starting Python afresh; false starts each task afresh."""

    concurrency: int = records.field(records.integer(1, 1024), 32)
    """Files transferred in parallel by one upload or download (1 to 1024; default 32)."""

    max_attempts: int = records.field(records.integer(1, 50), 5)
    """Attempts per request or file on transient errors (network, throttling, 5xx), with backoff (1 to 50; 5)."""

    retry_seconds: float = records.field(records.number(0), 120.0)
    """How long a file keeps being retried, with backoff, while the store does not answer (an
    outage, a restart, a network cut), after ``max_attempts`` are spent too (default 120)."""

    multipart_threshold: int = records.field(records.integer(5 * MiB), 16 * MiB)
    """Files at least this large move in parts, in parallel, streamed from and to disk (at least
    5 MiB; 16 MiB)."""

    multipart_chunksize: int = records.field(records.integer(5 * MiB), 8 * MiB)
    """Size of one part (at least 5 MiB; 8 MiB). Large downloads hold at most
    ``multipart_concurrency`` parts in memory (plus a 4 MiB write queue), shared by all large files
    of a store."""

    multipart_concurrency: int = records.field(records.integer(1, 256), 10)
    """Parts in memory at once, shared by all large files of a store (1 to 256; 10). One large
    upload sends at most 3 parts at once and holds a fourth as it reads it
    (``ferry.data.backends.s3.UPLOAD_PARTS``)."""

    s3_endpoint_url: str | None = records.field(records.optional(records.text), None)
    """S3 endpoint (MinIO, Ceph...). Unset: ``AWS_ENDPOINT_URL`` or AWS itself."""

    s3_region: str | None = records.field(records.optional(records.text), None)
    """S3 region. Unset: ``AWS_REGION``/``AWS_DEFAULT_REGION``."""

    s3_addressing_style: Literal["auto", "path", "virtual"] | None = records.field(
        records.optional(records.choice("auto", "path", "virtual")), None)
    """``path`` for most self-hosted stores; unset: boto3's default (``auto``)."""

    s3_access_key_id: str | None = records.field(records.optional(records.text), None)
    """Static credentials; unset: the AWS credential chain (env, profile, IRSA, instance role)."""

    s3_secret_access_key: pydantic.SecretStr | None = records.field(records.absent, None)
    """Given as a string, kept as a ``pydantic.SecretStr``, so it never shows in a repr or log."""
    s3_session_token: pydantic.SecretStr | None = records.field(records.absent, None)

    s3_credentials_file: pathlib.Path | None = records.field(records.optional(records.path), None)
    """Temporary credentials kept fresh by another process (a task pod's ``ferry-credentials``
    sidecar, see ``ferry.pod.credentials``); read again as they near expiry. Wins over the above."""

    s3_role_arn: str | None = records.field(records.optional(records.text), None)
    """Role whose temporary credentials a task pod's ``ferry-credentials`` sidecar asks for (AWS).
    Unset: ``GetFederationToken`` on AWS; S3-compatible stores scope the caller's own identity."""

    http_timeout: float = records.field(records.number(0, above=True), 60.0)
    """Seconds before an http(s) request gives up (then it is retried; default 60)."""

    @classmethod
    def _validate(cls, fields: dict[str, Any]) -> dict[str, Any]:
        return {**fields, "raw_data_prefix": _normalized(fields["raw_data_prefix"], fields["cache_dir"])}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``FERRY_*`` variables; a bad value names its variable."""
        return from_environ(cls, ENV_PREFIX, environ, "Ferry settings in the environment")


Model = TypeVar("Model")


def from_environ(cls: type[Model], prefix: str, environ: Mapping[str, str] | None, what: str) -> Model:
    """A settings model (pydantic's, or a ``records.Record``) from ``<PREFIX><FIELD>`` variables;
    lists and mappings are given as JSON. A bad value raises ``ValueError`` naming its variable."""
    import json

    environ = os.environ if environ is None else environ
    values = {}
    for name in cls.FIELDS if issubclass(cls, records.Record) else cls.model_fields:
        raw = environ.get(prefix + name.upper())
        if raw is not None:
            values[name] = json.loads(raw) if raw.lstrip()[:1] in ("{", "[") else raw
    try:
        return cls.model_validate(values)
    except ValueError as error:
        import pydantic  # imported already if it raised this

        if not isinstance(error, pydantic.ValidationError):
            raise
        problems = "; ".join(f"{prefix}{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors())
        raise ValueError(f"invalid {what}: {problems}") from None
