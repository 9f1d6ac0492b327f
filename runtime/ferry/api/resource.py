"""The Workflow custom resource (``ferry.dev/v1alpha1``), modelled once.

The SDK writes manifests with these models, the operator reads and validates them, and
``ferry_operator.crd`` renders them into the CustomResourceDefinition in ``crds/``. Field names
are snake_case in Python and camelCase in YAML, as Kubernetes resources are.
"""

from __future__ import annotations

import enum
import hashlib
import re
from typing import Annotated, Any, Literal

import pydantic
from pydantic.alias_generators import to_camel

from ferry.core import blobs, digests, records

GROUP = "ferry.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "Workflow"
PLURAL = "workflows"
SHORT_NAME = "fwf"

LABEL_WORKFLOW = "ferry.dev/workflow"
LABEL_TASK = "ferry.dev/task"
LABEL_ATTEMPT = "ferry.dev/attempt"
LABEL_ROLE = "ferry.dev/role"
LABEL_UNIT = "ferry.dev/unit"
"""Labels of every task pod (role and unit: a map's pods: ``split``, ``item`` with its unit, ``gather``): the operator watches by them, the UI and the CLI select a workflow's pods by them."""


def label_value(text: str) -> str:
    """``text`` as a label value (at most 63 characters): kept when it fits, else cut and suffixed
    with a digest of the whole, so two long names never share a label."""
    if len(text) <= 63:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return f"{text[:52].rstrip('-_.')}-{digest}"


NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
"""A DNS label: what Kubernetes accepts as a pod's, container's or volume's name (or part of one)."""
MAX_NAME_LENGTH = 40
TaskName = Annotated[str, pydantic.Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=NAME_PATTERN)]
"""Task names: DNS labels short enough to name pods after (``<workflow>-<task>-<attempt>``), so
no underscores or capitals."""
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
"""Names of Kubernetes objects such as ServiceAccounts."""
IO_NAME_PATTERN = r"^[A-Za-z0-9_]([-A-Za-z0-9_]*[A-Za-z0-9_])?$"
IOName = Annotated[str, pydantic.Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=IO_NAME_PATTERN)]
"""Input and output names: a Python name as written (``row_count``, ``maxRows``) or a DNS label
(``row-count``): ASCII letters, digits, ``_`` and ``-`` (never first or last). Each is one segment of a
path (``/ferry/inputs/<name>``, ``ferry outputs``' ``out/<name>``) and of an environment variable
(``FERRY_INPUT_<NAME>``); ``io_name_clash`` keeps two in one list from sharing either."""


def io_name_problem(name: str) -> str | None:
    """What keeps ``name`` from naming an input or output, or None: the ``IOName`` rules in words,
    for messages that come before any model does (a Python parameter or field name)."""
    if len(name) > MAX_NAME_LENGTH:
        return f"is longer than {MAX_NAME_LENGTH} characters"
    if not re.fullmatch(IO_NAME_PATTERN, name):
        return "cannot name an input or output: use ASCII letters, digits, _ and - (never - first or last)"
    return None


MAX_OBJECT_NAME_LENGTH = 253


def object_name_problem(name: str, limit: int = MAX_OBJECT_NAME_LENGTH) -> str | None:
    """What keeps ``name`` from naming a Workflow, as the API server checks ``metadata.name`` (a
    DNS-1123 subdomain), or None. Such a name is safe as one segment of a path: no ``/``, never
    ``..``, and short enough for a file name."""
    if len(name) > limit:
        return f"is longer than {limit} characters: shorten it"
    if not re.fullmatch(DNS_SUBDOMAIN_PATTERN, name):
        return ("is not a DNS subdomain: use lowercase letters, digits, '-' and '.', starting and ending "
                "with a letter or digit (e.g. 'etl-daily')")
    return None


def env_name(name: str) -> str:
    """An input or output name as environment variables spell it: ``row_count``, ``row-count`` and
    ``Row_Count`` are all ``ROW_COUNT``. Two names spelled alike would share a variable, and a folder
    on a disk that ignores case."""
    return name.replace("-", "_").upper()


def io_name_clash(names: list[str], what: str, variable: str = "") -> str | None:
    """Why ``names`` (one list of inputs or outputs, ``what`` saying which) cannot all be used: the
    first two that ``env_name`` spells alike (``row-count`` and ``row_count``), or None."""
    seen: dict[str, str] = {}
    for name in names:
        spelled = env_name(name)
        if spelled in seen:
            alike = (f"would both be {variable}{spelled}" if variable else
                     f"are both {spelled} where case and - against _ are lost (environment variables, disks that "
                     "ignore case)")
            return (f"{what} {seen[spelled]!r} and {name!r} {alike}; rename one (names in one list must differ in "
                    "more than case or - against _)")
        seen[spelled] = name
    return None


class Model(pydantic.BaseModel):
    """The resource's models. Each builds its validator on first use (``defer_build``): a task's pod
    validates only its plan, and never pays for the Workflow's models. The field docstrings become
    the CRD's descriptions when the CRD is generated (``ferry_operator.crd``), not at import."""

    model_config = pydantic.ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", defer_build=True)

    def dump(self) -> dict[str, Any]:
        """The resource's JSON shape: camelCase, without unset optional fields."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class Kind(str, enum.Enum):
    """What an input or output holds: a ``file``, a ``directory``, an ``asset`` (a named collection of
    files) or a small JSON ``value``."""

    FILE = "file"
    DIRECTORY = "directory"
    ASSET = "asset"
    VALUE = "value"


class TaskOutputRef(Model):
    task: TaskName
    """The task that produces the output."""
    output: IOName
    """The name of that task's output."""


class InputSource(Model):
    """Where an input comes from: exactly one of ``value``, ``uri``, ``from_task``, ``from_input``."""

    value: Any = None
    """A literal (string, number, boolean, list or object), passed to the task as JSON."""
    uri: str | None = pydantic.Field(None, max_length=2048)
    """A remote file or directory (``s3://``, ``gs://``, ``https://``...), passed by reference."""
    from_task: TaskOutputRef | None = None
    """Another task's output; this also orders the tasks."""
    from_input: IOName | None = None
    """One of the workflow's own inputs."""


class TaskInput(InputSource):
    from_item: bool | None = None
    """``true``: the item of the task's ``map`` (one element of the list, or one file of the
    directory or asset, it maps over) instead of a value, ``uri``, ``fromTask`` or ``fromInput``."""
    name: IOName
    """The input's name, a Python name as written ('max_rows') or a DNS label ('max-rows'): the task
    finds it at ``/ferry/inputs/<name>`` (a value as its text), and that path in the environment variable
    ``FERRY_INPUT_<NAME>`` (``-`` as ``_``, upper case: 'FERRY_INPUT_MAX_ROWS'), so no two of a task's
    inputs may differ only in case or ``-`` against ``_``."""
    kind: Kind | None = None
    """What the task expects; checked against the source when both are known."""


class TaskOutput(Model):
    name: IOName
    """The output's name, a Python name as written ('row_count') or a DNS label ('row-count'): the
    task writes it to ``/ferry/outputs/<name>``."""
    kind: Kind = Kind.FILE
    """``file``/``directory``/``asset`` are uploaded from ``/ferry/outputs/<name>``; ``value`` is the
    file's content (at most 1 KiB) carried in status."""


class EnvVar(Model):
    name: str = pydantic.Field(min_length=1, max_length=256, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
    """The environment variable's name."""
    value: str = ""


Quantity = Annotated[str, pydantic.Field(max_length=64)]
"""A Kubernetes quantity such as ``500m``, ``2`` or ``1Gi``."""


QUANTITY_PATTERN = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
"""What the API server accepts as a quantity (its own regular expression): ``500m``, ``2``, ``1Gi``."""
RESERVED_VOLUMES = ("ferry-", "secret-")
"""Volume names Ferry gives its own volumes (the task's folders, credentials and Secrets)."""


class Toleration(Model):
    """A taint the task's pod tolerates, as in a pod spec."""

    key: str | None = pydantic.Field(None, max_length=253)
    """The taint's key; empty with ``Exists`` tolerates every taint."""
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = pydantic.Field(None, max_length=63)
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """Which taints' effect it tolerates; all when empty."""
    toleration_seconds: int | None = None
    """With ``NoExecute``: how long the pod stays on a node after the taint appears."""


class VolumeMount(Model):
    """Where one of the task's ``volumes`` appears in its container."""

    name: str = pydantic.Field(max_length=63)
    """The volume's name, from the task's ``volumes``."""
    mount_path: str = pydantic.Field(min_length=2, max_length=1024, pattern=r"^/")
    read_only: bool | None = None
    sub_path: str | None = pydantic.Field(None, max_length=1024)
    """A folder inside the volume to mount instead of its root."""

    @pydantic.field_validator("mount_path")
    @classmethod
    def _not_ferry_s(cls, path: str) -> str:
        if path.rstrip("/") == "/ferry" or path.startswith("/ferry/"):
            raise ValueError(f"{path} is under /ferry, where Ferry mounts the task's inputs, outputs and "
                             "secrets; mount it elsewhere, e.g. /data")
        return path


class Resources(Model):
    """Compute resources of the task's container, as in a pod spec."""

    requests: dict[str, Quantity] | None = pydantic.Field(None, max_length=16)
    """The least the container needs (``cpu``, ``memory``...); the scheduler reserves it."""
    limits: dict[str, Quantity] | None = pydantic.Field(None, max_length=16)
    """The most the container may use."""


class Capabilities(Model):
    add: list[Annotated[str, pydantic.Field(max_length=64)]] | None = pydantic.Field(None, max_length=64)
    """Linux capabilities to add, e.g. ``NET_BIND_SERVICE``."""
    drop: list[Annotated[str, pydantic.Field(max_length=64)]] | None = pydantic.Field(None, max_length=64)
    """Linux capabilities to drop, e.g. ``ALL``."""


class SecurityContext(Model):
    """The task container's security settings, as in a container spec. Ferry's own containers in the
    pod run as the same user, so they can read what the task wrote: give ``run_as_user`` in a
    namespace that enforces Pod Security ``restricted``."""

    run_as_user: int | None = pydantic.Field(None, ge=0, le=2147483647)
    """The user id the task runs as (default: the image's)."""
    run_as_group: int | None = pydantic.Field(None, ge=0, le=2147483647)
    """The group id the task runs as (default: the image's)."""
    run_as_non_root: bool | None = None
    """Refuse to start the container as root."""
    read_only_root_filesystem: bool | None = None
    """Mount the image's filesystem read-only."""
    allow_privilege_escalation: bool | None = None
    """Whether a process may gain more privileges than its parent (setuid binaries)."""
    capabilities: Capabilities | None = None
    """Linux capabilities to add or drop."""


class RetryPolicy(Model):
    limit: int = pydantic.Field(0, ge=0, le=20)
    """Attempts after the first one; each attempt is a new pod."""
    infrastructure: int = pydantic.Field(3, ge=0, le=20)
    """More attempts after failures that are not the task's own (the object store did not answer,
    the pod's node was lost); they do not count against ``limit``."""
    backoff_seconds: int = pydantic.Field(5, ge=0, le=3600)
    """Wait before the first retry; doubles each time, up to ``max_backoff_seconds``."""
    max_backoff_seconds: int = pydantic.Field(300, ge=0, le=86400)
    """The longest wait between two attempts."""


class PluginRef(Model):
    type: str = pydantic.Field(min_length=1, max_length=63, pattern=NAME_PATTERN)
    """The plugin's task type, e.g. ``object-store-sensor``."""
    config: dict[str, Any] = {}
    """The plugin's own settings; each plugin documents and checks them."""
    module: str | None = pydantic.Field(None, max_length=256, pattern=r"^[\w.]+$")
    """The Python module that defines the plugin, when it ships with the workflow's code."""


class Cache(Model):
    version: str = pydantic.Field("", max_length=128)
    """Part of the cache key with the function and its inputs' digests: change it to stop reusing
    results of an older version of the code."""


MAX_MAP_UNITS = 100_000
"""Most pods one map may run (its items, or batches of ``batchSize`` items): what the status's
per-unit record and the operator are measured at (docs/fan-out.md)."""
MAX_MAP_ITEMS = 10_000_000
"""Most items one map may have, batched."""


class MapOver(InputSource):
    """What a map goes over: a list (a JSON array value, a task's ``value`` output, a workflow
    input), or the files of a directory or asset (each item is one ``file``)."""

    kind: Kind | None = None
    """``value`` (a list), ``directory`` or ``asset``; checked against the source when both are known."""


class Map(Model):
    """Run the task once per item of ``over``, each in a pod of its own (or ``batchSize`` items per
    pod); the input with ``fromItem: true`` receives the item, the others are the same for all.
    The task's outputs, as others read them, gather the items': a ``value`` output becomes the list
    of the items' values (``null`` for an item that failed), a ``file``, ``directory`` or ``asset``
    output one ``directory`` holding every item's under its index, without copying them."""

    over: MapOver
    """The list, or the directory or asset whose files are the items."""
    parallelism: int | None = pydantic.Field(None, ge=1, le=MAX_MAP_UNITS)
    """Most pods of this map running at once; default: the operator's (``map.parallelism`` in the
    chart), on a laptop a few per core."""
    min_success_ratio: float = pydantic.Field(1.0, ge=0.0, le=1.0)
    """The share of items that must succeed for the task to succeed (``0.9``: up to one in ten may
    fail for good, and is ``null`` or missing in the gathered outputs)."""
    batch_size: int = pydantic.Field(1, ge=1, le=10_000)
    """Items per pod, run one after the other: for items too small to be worth a pod each (Python
    tasks; a container task runs one item per pod)."""


class Task(Model):
    """One step of the workflow, run as one pod per attempt (a map: one per item)."""

    name: TaskName
    """The task's name, unique in the workflow; other tasks refer to it by this name. A DNS label
    (lower case, digits and ``-``), as it names the task's pods."""
    image: str | None = pydantic.Field(None, min_length=1, max_length=512)
    """The container image. Any image works: Ferry adds nothing to it."""
    command: list[str] | None = None
    """The entry point, as in a container spec; defaults to the image's."""
    args: list[str] | None = None
    """Arguments to the entry point, as in a container spec; default to the image's."""
    function: str | None = pydantic.Field(None, pattern=r"^[\w.]+:[\w.]+$")
    """A Python task (``module:function``) run by the Ferry runtime image instead of ``command``."""
    env: list[EnvVar] = []
    """Environment variables of the task's container."""
    resources: Resources | None = None
    security_context: SecurityContext | None = None
    """User, group and privileges of the task's container; Ferry's own containers take its user."""
    service_account_name: str | None = pydantic.Field(None, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)
    """Defaults to the operator's task ServiceAccount, which has no API access."""
    secrets: list[Annotated[str, pydantic.Field(max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]] = \
        pydantic.Field([], max_length=32)
    """Kubernetes Secrets (in the workflow's namespace) mounted read-only at ``/ferry/secrets/<name>``."""
    retries: RetryPolicy = pydantic.Field(default_factory=RetryPolicy)
    """How often and when to try again after a failed attempt."""
    timeout_seconds: int | None = pydantic.Field(None, ge=1)
    """Wall time of one attempt; an attempt that runs longer is stopped and fails."""
    inputs: list[TaskInput] = pydantic.Field([], max_length=256)
    """What the task reads: literals, remote URIs, other tasks' outputs or the workflow's inputs."""
    outputs: list[TaskOutput] = pydantic.Field([], max_length=64)
    """What the task writes and publishes for other tasks and the workflow's outputs."""
    depends_on: list[TaskName] = pydantic.Field([], max_length=256)
    """Tasks that must succeed first, in addition to those whose outputs are inputs here."""
    plugin: PluginRef | None = None
    """A task plugin run by the Ferry runtime image instead of ``function`` or ``command``."""
    cache: Cache | None = None
    """Reuse the outputs of an earlier run of the same function with the same inputs (Python tasks);
    in a map, per item."""
    map: Map | None = None
    """Run the task once per item of a list or of a directory's files (``retries`` and
    ``timeoutSeconds`` then apply to each item's pod)."""
    node_selector: dict[str, Annotated[str, pydantic.Field(max_length=63)]] | None = pydantic.Field(None, max_length=32)
    """Labels a node must have to run the task's pods, as in a pod spec."""
    tolerations: list[Toleration] = pydantic.Field([], max_length=32)
    """Taints the task's pods tolerate."""
    affinity: dict[str, Any] | None = None
    """Node and pod (anti-)affinity, as in a pod spec; the API server checks it when the pod is made."""
    image_pull_secrets: list[Annotated[str, pydantic.Field(max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]] = \
        pydantic.Field([], max_length=16)
    """Secrets (in the workflow's namespace) the kubelet pulls the task's image with."""
    volumes: list[dict[str, Any]] = pydantic.Field([], max_length=32)
    """More volumes for the task's pod, as in a pod spec (a PersistentVolumeClaim, a ConfigMap...);
    names starting with ``ferry-`` or ``secret-`` are Ferry's own."""
    volume_mounts: list[VolumeMount] = pydantic.Field([], max_length=32)
    """Where the task's container mounts its ``volumes`` (never under ``/ferry``)."""
    scratch_size_limit: str | None = pydantic.Field(None, max_length=64, pattern=QUANTITY_PATTERN)
    """The most each of the pod's scratch folders (``/ferry/inputs``, ``/ferry/outputs`` and the
    runtime's ``/tmp``) may hold, e.g. ``10Gi``; the kubelet evicts a pod that writes more."""

    @pydantic.field_validator("volumes")
    @classmethod
    def _named_and_not_ferry_s(cls, volumes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for volume in volumes:
            name = volume.get("name")
            if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name):
                raise ValueError(f"each volume needs a name (a DNS label, e.g. 'models'), got {name!r}")
            if name.startswith(RESERVED_VOLUMES):
                raise ValueError(f"{name!r} is reserved: Ferry names its own volumes ferry-* and secret-*")
        return volumes

    @pydantic.field_validator("scratch_size_limit", mode="wrap")
    @classmethod
    def _a_quantity(cls, value: Any, handler) -> str | None:
        try:
            return handler(value)
        except pydantic.ValidationError:
            raise ValueError(f"{value!r} is not a quantity: write it as Kubernetes does, e.g. 500Mi or 10Gi") from None

    @pydantic.model_validator(mode="after")
    def _mounts_name_volumes(self) -> Task:
        named = {v["name"] for v in self.volumes}
        for mount in self.volume_mounts:
            if mount.name not in named:
                raise ValueError(f"volumeMounts: no volume named {mount.name!r} in volumes "
                                 f"(there: {', '.join(sorted(named)) or 'none'})")
        return self

    @pydantic.model_validator(mode="after")
    def _one_variable_per_input(self) -> Task:
        clash = (io_name_clash([i.name for i in self.inputs], "inputs", "FERRY_INPUT_")
                 or io_name_clash([o.name for o in self.outputs], "outputs"))
        if clash:
            raise ValueError(f"task {self.name}: {clash}")
        return self


class WorkflowInput(InputSource):
    """An input of the whole workflow, which tasks take with ``from_input``; change its ``value`` or
    ``uri`` to run the workflow on other data."""

    name: IOName
    """The input's name, unique among the workflow's inputs."""
    kind: Kind = Kind.VALUE


class WorkflowOutput(Model):
    """A result of the whole workflow: one task's output, reported in ``status.outputs``."""

    name: IOName
    """The output's name in ``status.outputs``."""
    from_task: TaskOutputRef
    """The task output it is."""


class FailurePolicy(str, enum.Enum):
    STOP = "Stop"
    """On a task's final failure, stop running tasks and start no new ones."""
    CONTINUE = "Continue"
    """Let running and independent tasks finish; the workflow still fails."""


class ArtifactCleanup(str, enum.Enum):
    """What happens to the workflow's objects in the store (its folder, ``<namespace folder>/<uid>/``)
    when the Workflow is deleted."""

    NEVER = "Never"
    """Keep them (``ferry gc`` removes them later)."""
    ON_DELETION = "OnDeletion"
    """Delete them, but for what is still referenced: by another Workflow of the namespace, a cache
    entry, or the manifest of a directory or asset one of those names."""


class PodRetention(str, enum.Enum):
    """Which finished task pods the operator deletes before their workflow goes (all go with it).
    A pod is deleted only once its attempt's end is recorded in status, so no result is lost; its
    logs go with it."""

    KEEP_ALL = "KeepAll"
    """Delete none: every pod stays until the workflow is deleted."""
    KEEP_FAILED = "KeepFailed"
    """Delete the pod of each attempt that succeeded; keep those of failed attempts (a retried
    task's earlier ones too) for their logs."""
    KEEP_NONE = "KeepNone"
    """Delete every pod once its attempt's end is recorded, succeeded or failed."""


class WorkflowSpec(Model):
    inputs: list[WorkflowInput] = pydantic.Field([], max_length=256)
    """The workflow's inputs, which tasks take with ``from_input``."""
    tasks: list[Task] = pydantic.Field(min_length=1, max_length=1000)
    """The tasks; their inputs and ``depends_on`` order them into a graph."""
    outputs: list[WorkflowOutput] = pydantic.Field([], max_length=256)
    """The workflow's results, taken from its tasks' outputs."""
    code: str | None = pydantic.Field(None, max_length=2048)
    """A source archive (``.tar.gz``) that Python tasks import their functions from; ``ferry run
    --remote`` uploads it, so a code change needs no new image."""
    overwrite_cache: bool = False
    """Run cached tasks again and replace their cached results."""
    failure_policy: FailurePolicy = FailurePolicy.STOP
    """What happens when a task fails for good: ``Stop`` stops running tasks and starts no new ones;
    ``Continue`` lets running and independent tasks finish. The workflow fails either way."""
    ttl_seconds_after_finished: int | None = pydantic.Field(None, ge=0)
    """Seconds after the workflow finished (``status.finishedAt``) when the operator deletes it, and
    its pods with it; default: the operator's (none unless set: it stays until deleted)."""
    pod_retention: PodRetention = PodRetention.KEEP_ALL
    """Which finished task pods (and their logs) are deleted before the workflow goes:
    ``KeepAll`` none, ``KeepFailed`` those of succeeded attempts, ``KeepNone`` every one."""
    artifact_cleanup: ArtifactCleanup = ArtifactCleanup.NEVER
    """``OnDeletion``: deleting the Workflow deletes its objects in the store, except those still
    referenced (the Workflow goes once that is done, an operator restart notwithstanding)."""
    stop: bool = False
    """Stop the workflow (``ferry stop``): running tasks' pods are stopped, no task starts, and the
    workflow ends ``Stopped``. Ignored once it has finished."""
    rerun: int = pydantic.Field(0, ge=0)
    """Raised by one (``ferry retry``) to run a ``Failed`` or ``Stopped`` workflow's unfinished
    tasks again, with fresh retry budgets; what succeeded is kept and its outputs reused."""

    @pydantic.field_validator("inputs", "outputs")
    @classmethod
    def _one_folder_per_name(cls, named: list, info: pydantic.ValidationInfo) -> list:
        clash = io_name_clash([item.name for item in named], f"workflow {info.field_name}")
        if clash:
            raise ValueError(clash)
        return named

    def output_kind(self, task: str, output: str) -> Kind:
        """The kind of ``task``'s ``output`` as its readers get it (a value if it declares none): a
        map's outputs are gathered (``gathered_kind``)."""
        declared = next((t for t in self.tasks if t.name == task), None)
        if declared is None:
            return Kind.VALUE
        kind = next((o.kind for o in declared.outputs if o.name == output), Kind.VALUE)
        return gathered_kind(kind) if declared.map else kind


def gathered_kind(kind: Kind) -> Kind:
    """What a map makes of its items' outputs of ``kind``: values a list (a ``value``), files,
    directories and assets one ``directory`` of them all."""
    return Kind.VALUE if kind == Kind.VALUE else Kind.DIRECTORY


class Phase(str, enum.Enum):
    """Where a workflow or task stands: ``Pending``, ``Running``, ``Succeeded``, ``Failed``,
    ``Stopped`` (workflows only: stopped on request), or ``Skipped`` (tasks only: never ran because
    the workflow failed or was stopped first)."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    STOPPED = "Stopped"
    """The workflow was stopped on request (``spec.stop``)."""
    SKIPPED = "Skipped"
    """Never ran: the workflow failed or was stopped first."""


class FailureReason(str, enum.Enum):
    """Why a task's last attempt failed, in one word a program can match (``message`` says it in
    words). ``StoreUnavailable``, ``PodLost`` and ``MountStalled`` are the infrastructure's failures,
    not the task's."""

    TASK_FAILED = "TaskFailed"
    """The task's container exited with another code than 0."""
    OOM_KILLED = "OOMKilled"
    """The task ran out of its memory limit."""
    TIMED_OUT = "TimedOut"
    """The attempt ran longer than ``timeoutSeconds``."""
    START_FAILED = "StartFailed"
    """The pod never started: its image, a Secret, or no node to run it."""
    FETCH_FAILED = "FetchFailed"
    """An input could not be fetched or did not match its digest."""
    PUBLISH_FAILED = "PublishFailed"
    """The outputs were missing, refused, or could not be published in time."""
    STORE_UNAVAILABLE = "StoreUnavailable"
    """The object store did not answer within the retry budget."""
    POD_LOST = "PodLost"
    """The pod went away (node lost, evicted) before the attempt ended."""
    MOUNT_STALLED = "MountStalled"
    """The pod's node could not mount its Secrets within the start timeout: its kubelet could not
    read them from the API server (after an outage of the API server, or cut off from it)."""
    STOPPED = "Stopped"
    """Stopped because another task failed (failure policy ``Stop``) or the workflow was stopped."""


INFRASTRUCTURE_FAILURES = frozenset({FailureReason.STORE_UNAVAILABLE, FailureReason.POD_LOST,
                                     FailureReason.MOUNT_STALLED})


class StatusModel(Model):
    """Status is written by the operator only; unknown fields (from a newer operator) are kept out."""

    model_config = pydantic.ConfigDict(extra="ignore")


class StoredResult(StatusModel):
    """A task's result kept in the store because it did not fit in status (too many outputs, or
    too large for the room each task has): the operator never reads it, the pods that use it do,
    checking its digest."""

    uri: str
    sha256: str = pydantic.Field(pattern=digests.SHA256)
    size: int
    output: str | None = None
    """Which output of that result is meant (in a workflow's outputs and in a pod's plan)."""


def _stored_reference() -> type[StatusModel]:
    """A model of the fields an output shares with a blob reference, from their one declaration
    (``ferry.core.blobs``); ``kind`` first, where status has always had it."""
    fields = records.fields(blobs.BlobRef, partial=True)
    return pydantic.create_model("StoredReference", __base__=StatusModel, kind=fields.pop("kind"), **fields)


class Output(_stored_reference()):
    """An output in status: a blob reference (file, directory, asset) or a small value."""

    # What it shares with a blob reference is declared once, in ferry.core.blobs, with the
    # patterns that make the API server refuse a status with a digest no pod would read.

    kind: Kind
    value: Any = None
    """The value itself (``value`` outputs)."""
    result: StoredResult | None = None
    """Where the reference is when the producing task's result is stored (``TaskStatus.result``)."""

    def blob(self, kind: blobs.Kind | None = None) -> blobs.BlobRef:
        """The stored reference this output stands for (a stored value's: ``kind=Kind.FILE``), checked
        as a pod checks what it reads (``uri`` too, which a spec may name unchecked)."""
        fields = {name: getattr(self, name) for name in blobs.BlobRef.FIELDS}
        return blobs.BlobRef(**fields | {"kind": kind or self.kind.value})

    @classmethod
    def of(cls, ref: blobs.BlobRef, kind: Kind) -> Output:
        """A stored reference as an output of ``kind`` (checked when it was made: not again)."""
        fields = {name: value for name, value in ref.model_dump().items() if value is not None}
        return cls.model_construct(**fields | {"kind": kind})


MAP_FAILURES_KEPT = 8
"""Failures of a map's units kept with their messages (``MapStatus.failures``); the rest are counted."""


class ItemFailure(StatusModel):
    """One of the first failures of a map's units, kept with its message."""

    unit: int
    """The unit (item, or batch of ``batchSize`` items) that failed, counted from 0."""
    attempt: int
    reason: FailureReason | None = None
    message: str | None = None


class MapStatus(StatusModel):
    """How a map goes, in a size that does not grow with its items: counts, one packed record of
    every unit's phase and attempts (``ferry.api.items``), and its first failures.

    A map runs in three stages, each a pod on a cluster: ``Split`` reads what it maps over once and
    stores the item index (``index``), so that each item's pod reads only its own item; ``Items``
    runs the units; ``Gather`` stores the gathered outputs (the task's ``result``)."""

    stage: Literal["Split", "Items", "Gather"] = "Split"
    attempts: int = 0
    """Attempts of the current stage's pod (``Split`` or ``Gather``); units count their own."""
    items: int | None = None
    """How many items, known once split."""
    units: int | None = None
    """Pods the items need: ``ceil(items / batchSize)``."""
    index: StoredResult | None = None
    """The item index the split stored: where each item is, with digests."""
    record: str | None = None
    """Each unit's phase and attempts, packed (``ferry.api.items``)."""
    pending: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    """Units that failed for good."""
    retry_at: dict[str, str] = {}
    """Units waiting for a retry's back-off (unit → time); at most the running ones."""
    failures: list[ItemFailure] = pydantic.Field([], max_length=MAP_FAILURES_KEPT)
    """The first units that failed (for good or before a retry), with why."""


class TaskStatus(StatusModel):
    """How one task went."""

    phase: Phase = Phase.PENDING
    attempts: int = 0
    """Attempts started so far; the pod of attempt N is ``pod_name`` while it runs."""
    pod_name: str | None = None
    """The pod of the latest attempt."""
    message: str | None = None
    """Why the task is where it is, when there is more to say than its phase."""
    reason: FailureReason | None = None
    """Why the last attempt failed, while the task is retrying or once it failed."""
    infrastructure_failures: int | None = None
    """Attempts that failed through no fault of the task's (``StoreUnavailable``, ``PodLost``);
    unset while there are none, to keep a large workflow's status small."""
    started_at: str | None = None
    """When the first attempt started."""
    finished_at: str | None = None
    """When the task succeeded, failed for good or was skipped."""
    next_attempt_at: str | None = None
    """When a retry waits for its back-off, the time it may start."""
    outputs: dict[str, Output] = {}
    """The task's published outputs, by name; empty when they are in ``result``."""
    result: StoredResult | None = None
    """The task's outputs, kept in the store when they did not fit in status."""
    earlier_attempts: int | None = None
    """Attempts made before the workflow's last rerun (``spec.rerun``): the retry budget counts
    from there, and attempt numbers (and pod names) go on after them."""
    map: MapStatus | None = None
    """A map's progress (``Task.map``); its gathered outputs are in ``result``."""

    def output(self, name: str, kind: Kind) -> Output | None:
        """Output ``name``: its reference, or a pointer into the stored result."""
        if name in self.outputs:
            return self.outputs[name]
        if self.result is not None:
            return Output(kind=kind, result=self.result.model_copy(update={"output": name}))
        return None


class Condition(StatusModel):
    """A Kubernetes condition (``Running``, ``Succeeded``, ``Failed``): what ``kubectl wait
    --for=condition=Succeeded`` and other tools that follow the API's conventions read."""

    type: str = pydantic.Field(max_length=32)
    status: str = pydantic.Field(pattern=r"^(True|False|Unknown)$")
    reason: str | None = pydantic.Field(None, max_length=64)
    """One word a program can match: ``TasksRunning``, ``Succeeded``, or why it failed (``TaskFailed``...)."""
    message: str | None = None
    last_transition_time: str | None = None
    """When ``status`` last changed."""


class WorkflowStatus(StatusModel):
    """How the workflow went, written by the operator."""

    phase: Phase = Phase.PENDING
    progress: str | None = None
    """Succeeded tasks out of all, like ``3/5``."""
    message: str | None = None
    """Which tasks are running; once finished, why it failed: the first failure, or a problem with the spec."""
    conditions: list[Condition] = pydantic.Field([], max_length=8, json_schema_extra={
        "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]})
    """``Running``, ``Succeeded`` and ``Failed``, each ``True`` or ``False``."""
    started_at: str | None = None
    """When the workflow started running."""
    finished_at: str | None = None
    """When the workflow succeeded or failed."""
    observed_generation: int | None = None
    """The ``metadata.generation`` this status describes."""
    rerun: int | None = None
    """The last ``spec.rerun`` acted on."""
    tasks: dict[str, TaskStatus] = {}
    """Each task's status, by task name."""
    outputs: dict[str, Output] = {}
    """The workflow's outputs, by name."""
