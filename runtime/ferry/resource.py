"""The Workflow custom resource (``ferry.dev/v1alpha1``), modelled once.

The SDK writes manifests with these models, the operator reads and validates them, and
``ferry_operator.crd`` renders them into the CustomResourceDefinition in ``crds/``. Field names
are snake_case in Python and camelCase in YAML, as Kubernetes resources are.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any

import pydantic
from pydantic.alias_generators import to_camel

GROUP = "ferry.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "Workflow"
PLURAL = "workflows"
SHORT_NAME = "fwf"

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
Name = Annotated[str, pydantic.Field(min_length=1, max_length=40, pattern=NAME_PATTERN)]
"""Task, input and output names: DNS labels short enough to name pods and env vars after."""


class Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", use_attribute_docstrings=True)

    def dump(self) -> dict[str, Any]:
        """The resource's JSON shape: camelCase, without unset optional fields."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class Kind(str, enum.Enum):
    FILE = "file"
    DIRECTORY = "directory"
    ASSET = "asset"
    VALUE = "value"


class TaskOutputRef(Model):
    task: Name
    """The task that produces the output."""
    output: Name
    """The name of that task's output."""


class InputSource(Model):
    """Where an input comes from: exactly one of ``value``, ``uri``, ``from_task``, ``from_input``."""

    value: Any = None
    """A literal (string, number, boolean, list or object), passed to the task as JSON."""
    uri: str | None = pydantic.Field(None, max_length=2048)
    """A remote file or directory (``s3://``, ``gs://``, ``https://``...), passed by reference."""
    from_task: TaskOutputRef | None = None
    """Another task's output; this also orders the tasks."""
    from_input: Name | None = None
    """One of the workflow's own inputs."""


class TaskInput(InputSource):
    name: Name
    kind: Kind | None = None
    """What the task expects; checked against the source when both are known."""


class TaskOutput(Model):
    name: Name
    kind: Kind = Kind.FILE
    """``file``/``directory``/``asset`` are uploaded from ``/ferry/outputs/<name>``; ``value`` is the
    file's content (at most 1 KiB) carried in status."""


class EnvVar(Model):
    name: str = pydantic.Field(min_length=1, max_length=256, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
    value: str = ""


class Resources(Model):
    requests: dict[str, str] | None = None
    limits: dict[str, str] | None = None


class RetryPolicy(Model):
    limit: int = pydantic.Field(0, ge=0, le=20)
    """Attempts after the first one; each attempt is a new pod."""
    backoff_seconds: int = pydantic.Field(5, ge=0, le=3600)
    """Wait before the first retry; doubles each time, up to ``max_backoff_seconds``."""
    max_backoff_seconds: int = pydantic.Field(300, ge=0, le=86400)


class Task(Model):
    name: Name
    image: str | None = pydantic.Field(None, min_length=1, max_length=512)
    """The container image. Any image works: Ferry adds nothing to it."""
    command: list[str] | None = None
    args: list[str] | None = None
    function: str | None = pydantic.Field(None, pattern=r"^[\w.]+:[\w.]+$")
    """A Python task (``module:function``) run by the Ferry runtime image instead of ``command``."""
    env: list[EnvVar] = []
    resources: Resources | None = None
    service_account_name: str | None = None
    """Defaults to the operator's task ServiceAccount, which has no API access."""
    secrets: list[Name] = []
    """Kubernetes Secrets mounted read-only at ``/ferry/secrets/<name>``."""
    retries: RetryPolicy = RetryPolicy()
    timeout_seconds: int | None = pydantic.Field(None, ge=1)
    """Wall time of one attempt; an attempt that runs longer is stopped and fails."""
    inputs: list[TaskInput] = []
    outputs: list[TaskOutput] = []
    depends_on: list[Name] = []
    """Tasks that must succeed first, in addition to those whose outputs are inputs here."""


class WorkflowInput(InputSource):
    name: Name
    kind: Kind = Kind.VALUE


class WorkflowOutput(Model):
    name: Name
    from_task: TaskOutputRef


class FailurePolicy(str, enum.Enum):
    STOP = "Stop"
    """On a task's final failure, stop running tasks and start no new ones."""
    CONTINUE = "Continue"
    """Let running and independent tasks finish; the workflow still fails."""


class WorkflowSpec(Model):
    inputs: list[WorkflowInput] = []
    tasks: list[Task] = pydantic.Field(min_length=1, max_length=1000)
    outputs: list[WorkflowOutput] = []
    failure_policy: FailurePolicy = FailurePolicy.STOP


class Phase(str, enum.Enum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"
    """Never ran: the workflow failed or was stopped first."""


class StatusModel(Model):
    """Status is written by the operator only; unknown fields (from a newer operator) are kept out."""

    model_config = pydantic.ConfigDict(extra="ignore")


class Output(StatusModel):
    """An output in status: a blob reference (file, directory, asset) or a small value."""

    kind: Kind
    uri: str | None = None
    size: int | None = None
    file_count: int | None = None
    manifest_digest: str | None = None
    sha256: str | None = None
    value: Any = None


class TaskStatus(StatusModel):
    phase: Phase = Phase.PENDING
    attempts: int = 0
    """Attempts started so far; the pod of attempt N is ``pod_name`` while it runs."""
    pod_name: str | None = None
    message: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    next_attempt_at: str | None = None
    """When a retry waits for its back-off, the time it may start."""
    outputs: dict[str, Output] = {}


class WorkflowStatus(StatusModel):
    phase: Phase = Phase.PENDING
    progress: str | None = None
    """Finished tasks out of all, like ``3/5``."""
    message: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    observed_generation: int | None = None
    tasks: dict[str, TaskStatus] = {}
    outputs: dict[str, Output] = {}
