"""The operator's settings, read once from ``FERRY_OPERATOR_*`` environment variables.

Storage location and credentials live here (set by the Helm chart), never in Workflow specs.
"""

from __future__ import annotations

from collections.abc import Mapping

import pydantic

import ferry
from ferry import resource, settings

ENV_PREFIX = "FERRY_OPERATOR_"


class Config(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    raw_data_prefix: str = pydantic.Field(min_length=1)
    """Where task outputs are published, e.g. ``s3://bucket/ferry``; each attempt gets its own folder."""

    runtime_image: str = f"ghcr.io/ferry-dev/ferry:{ferry.__version__}"
    """The Ferry image that fetches inputs and publishes outputs in every task pod."""

    storage_env: dict[str, str] = {}
    """Settings for the runtime containers only (``FERRY_S3_ENDPOINT_URL``, ``AWS_REGION``...), as JSON."""

    storage_secret: str | None = None
    """A Secret in the workflow's namespace whose keys (``AWS_ACCESS_KEY_ID``...) become the runtime
    containers' environment. Unset with IRSA/workload identity."""

    task_service_account: str | None = None
    """ServiceAccount for task pods that do not name one; the chart's has no API access."""

    upload_grace_seconds: int = pydantic.Field(600, ge=1)
    """How long the publishing sidecar may take after the task's container exits."""

    runtime_resources: resource.Resources = resource.Resources(requests={"cpu": "50m", "memory": "64Mi"},
                                                               limits={"memory": "1Gi"})
    """Requests and limits of Ferry's own containers in task pods (fetch, publish), as JSON; namespaces
    with a ResourceQuota on cpu or memory need them."""

    start_timeout_seconds: int = pydantic.Field(300, ge=1)
    """How long a task pod may stay stuck on a start error (``results.START_ERRORS``, unschedulable)
    before its attempt fails with that reason."""


    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        return settings.from_environ(cls, ENV_PREFIX, environ, "operator configuration")
