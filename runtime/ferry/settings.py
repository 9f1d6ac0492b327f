"""Typed settings of the data plane, read from ``FERRY_*`` environment variables.

Every field ``name`` is read from ``FERRY_<NAME>`` (``raw_data_prefix`` from
``FERRY_RAW_DATA_PREFIX``). S3 fields left unset fall back to boto3's own chain (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_DEFAULT_REGION``, ``~/.aws/config``...), so a pod configured the usual
AWS way needs no Ferry variable at all.
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
from collections.abc import Mapping
from typing import Literal, TypeVar

import pydantic

from ferry import uris

ENV_PREFIX = "FERRY_"
MiB = 1024 * 1024


def _default_cache_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache") / "ferry"


class Settings(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")  # no use_attribute_docstrings: see blobs

    cache_dir: pathlib.Path = pydantic.Field(default_factory=_default_cache_dir)
    """Ferry's cache; the embedded raw data store lives under it unless ``raw_data_prefix`` says otherwise."""

    raw_data_prefix: str = ""
    """Where outputs without ``remote_directory=`` go, each under a fresh random name
    (``s3://bucket/ferry-data``, ``file:///srv/ferry``; a plain path means ``file://``).
    Empty means ``file://<cache_dir>/raw``."""

    local_dir: pathlib.Path = pydantic.Field(default_factory=lambda: pathlib.Path(tempfile.gettempdir()) / "ferry")
    """Where remote values are downloaded to when the task does not say where."""

    hash_cache: bool = True
    """Keep the sha256 of published files under ``cache_dir``, so publishing a folder again reads
    only the files whose size, mtime, ctime or inode changed (``ferry.hashcache``)."""

    local_fork: bool = True
    """``ferry run`` forks task processes from a warm interpreter (``ferry.forkserver``), about
    200 ms faster per task than starting Python afresh; false starts each task afresh."""

    concurrency: int = pydantic.Field(32, ge=1, le=1024)
    """Files transferred in parallel by one upload or download."""

    max_attempts: int = pydantic.Field(5, ge=1, le=50)
    """Attempts per request or file on transient errors (network, throttling, 5xx), with backoff."""

    retry_seconds: float = pydantic.Field(120.0, ge=0)
    """How long a file keeps being retried, with backoff, while the store does not answer (an
    outage, a restart, a network cut), after ``max_attempts`` are spent too."""

    multipart_threshold: int = pydantic.Field(16 * MiB, ge=5 * MiB)
    """Files at least this large move in parts, in parallel, streamed from and to disk."""

    multipart_chunksize: int = pydantic.Field(8 * MiB, ge=5 * MiB)
    """Size of one part. Large downloads hold at most ``multipart_concurrency`` parts in memory
    (plus a 4 MiB write queue), shared by all large files of a store."""

    multipart_concurrency: int = pydantic.Field(10, ge=1, le=256)
    """Parts in memory at once, shared by all large files of a store. One large upload sends at
    most 3 parts at once and holds a fourth as it reads it (``ferry.backends.s3.UPLOAD_PARTS``)."""

    s3_endpoint_url: str | None = None
    """S3 endpoint (MinIO, Ceph...). Unset: ``AWS_ENDPOINT_URL`` or AWS itself."""

    s3_region: str | None = None
    """S3 region. Unset: ``AWS_REGION``/``AWS_DEFAULT_REGION``."""

    s3_addressing_style: Literal["auto", "path", "virtual"] | None = None
    """``path`` for most self-hosted stores; unset: boto3's default (``auto``)."""

    s3_access_key_id: str | None = None
    """Static credentials; unset: the AWS credential chain (env, profile, IRSA, instance role)."""

    s3_secret_access_key: pydantic.SecretStr | None = None
    s3_session_token: pydantic.SecretStr | None = None

    s3_credentials_file: pathlib.Path | None = None
    """Temporary credentials kept fresh by another process (a task pod's ``ferry-credentials``
    sidecar, see ``ferry.credentials``); read again as they near expiry. Wins over the above."""

    s3_role_arn: str | None = None
    """Role whose temporary credentials a task pod's ``ferry-credentials`` sidecar asks for (AWS).
    Unset: ``GetFederationToken`` on AWS; S3-compatible stores scope the caller's own identity."""

    http_timeout: float = pydantic.Field(60.0, gt=0)
    """Seconds before an http(s) request gives up (then it is retried)."""

    @pydantic.model_validator(mode="after")
    def _normalize_raw_data_prefix(self) -> Settings:
        prefix = uris.to_uri(self.raw_data_prefix or self.cache_dir / "raw")
        object.__setattr__(self, "raw_data_prefix", prefix if prefix.endswith(":///") else prefix.rstrip("/"))
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``FERRY_*`` variables; a bad value names its variable."""
        return from_environ(cls, ENV_PREFIX, environ, "Ferry settings in the environment")


Model = TypeVar("Model", bound=pydantic.BaseModel)


def from_environ(cls: type[Model], prefix: str, environ: Mapping[str, str] | None, what: str) -> Model:
    """A settings model from ``<PREFIX><FIELD>`` variables; lists and mappings are given as JSON.
    A bad value raises ``ValueError`` naming its variable."""
    environ = os.environ if environ is None else environ
    values = {}
    for name in cls.model_fields:
        raw = environ.get(prefix + name.upper())
        if raw is not None:
            values[name] = json.loads(raw) if raw.lstrip()[:1] in ("{", "[") else raw
    try:
        return cls.model_validate(values)
    except pydantic.ValidationError as error:
        problems = "; ".join(f"{prefix}{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors())
        raise ValueError(f"invalid {what}: {problems}") from None
