"""The operator's settings, read once from ``FERRY_OPERATOR_*`` environment variables.

Storage location and credentials live here (set by the Helm chart), never in Workflow specs.
"""

from __future__ import annotations

from collections.abc import Mapping

import pydantic

import ferry
from ferry.api import resource
from ferry.data import settings

ENV_PREFIX = "FERRY_OPERATOR_"
CODE_FOLDER = "code"
"""``<raw_data_prefix>/code/``: content-addressed code archives of ``ferry run --remote``, which any
namespace may read by name (the runtime checks each against the digest in its name)."""


class NamespaceStorage(pydantic.BaseModel):
    """Where one namespace's data lives, and with which keys, when not the operator's defaults."""

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    raw_data_prefix: str | None = pydantic.Field(None, pattern=r"^[a-z0-9+]+://[^/]+")
    """The namespace's own folder, used as it is (``s3://team-a/ferry``). Default:
    ``<raw_data_prefix>/<namespace>``."""

    storage_secret: str | None = None
    """The Secret (in that namespace) with its keys. Default: the operator's ``storage_secret``."""


class Config(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    raw_data_prefix: str = pydantic.Field(min_length=1)
    """Where task outputs are published, e.g. ``s3://bucket/ferry``; each attempt gets its own folder."""

    runtime_image: str = f"ghcr.io/ferry-dev/ferry:{ferry.__version__}"
    """The Ferry image that fetches inputs and publishes outputs in every task pod."""

    storage_env: dict[str, str] = {}
    """Settings for the runtime containers only (``FERRY_S3_ENDPOINT_URL``, ``AWS_REGION``...), as JSON."""

    storage_secret: str | None = None
    """A Secret in the workflow's namespace whose keys (``AWS_ACCESS_KEY_ID``...) only the pod's
    ``ferry-credentials`` container gets (all of Ferry's containers, with ``scoped_credentials``
    off). Unset with IRSA/workload identity."""

    namespaces: dict[str, NamespaceStorage] = {}
    """Namespaces with a folder (bucket) or keys of their own, as JSON."""

    scoped_credentials: bool = True
    """Task pods get temporary credentials good only for their namespace's folder and the URIs
    their plan names (``ferry.pod.credentials``), never the Secret's keys. Needs an S3 store with STS
    (AWS, MinIO, Ceph) and a ``storage_secret``."""

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

    map_parallelism: int = pydantic.Field(100, ge=1, le=resource.MAX_MAP_UNITS)
    """Most pods of one map running at once, for maps that set no ``parallelism`` of their own: the
    rest wait for room in the record, not as Pending pods (chart ``operator.mapParallelism``)."""

    task_events: bool = False
    """Post a Kubernetes Event when each task starts and when it succeeds. Retries, failures and the
    workflow's own start and end are always posted; these two cost two API writes per task and tell
    what the status already holds, so they are off unless asked for."""

    ttl_seconds_after_finished: int | None = pydantic.Field(None, ge=0)
    """Seconds after a workflow finished when it is deleted (and its pods with it), for workflows
    that set no ``ttlSecondsAfterFinished`` of their own. Unset: finished workflows stay until
    deleted."""

    def posts(self, kind: str, reason: str) -> bool:
        """Whether an event of ``kind`` and ``reason`` (``scheduler.Step.events``) is posted."""
        return self.task_events or kind != "Normal" or not reason.startswith("Task")

    def namespace_root(self, namespace: str) -> str:
        """The folder of ``namespace``'s outputs, cache and drives."""
        own = self.namespaces.get(namespace)
        return (own and own.raw_data_prefix or f"{self.raw_data_prefix.rstrip('/')}/{namespace}").rstrip("/")

    def namespace_secret(self, namespace: str) -> str | None:
        own = self.namespaces.get(namespace)
        return own and own.storage_secret or self.storage_secret

    def scoped(self, namespace: str) -> bool:
        """Whether ``namespace``'s task pods trade the Secret's keys for scoped ones."""
        return (self.scoped_credentials and self.namespace_secret(namespace) is not None
                and self.namespace_root(namespace).startswith("s3://"))

    def foreign_folder(self, uri: str, namespace: str) -> bool:
        """Whether ``uri`` lies in Ferry's folder of a namespace other than ``namespace``."""
        inside = lambda folder: (uri.rstrip("/") + "/").startswith(folder.rstrip("/") + "/")  # noqa: E731
        if inside(self.namespace_root(namespace)):
            return False
        others = [self.namespace_root(n) for n in self.namespaces if n != namespace]
        shared = self.raw_data_prefix.rstrip("/")
        return any(map(inside, others)) or (inside(shared) and not inside(f"{shared}/{CODE_FOLDER}"))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        return settings.from_environ(cls, ENV_PREFIX, environ, "operator configuration")
