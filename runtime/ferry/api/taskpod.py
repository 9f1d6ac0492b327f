"""The contract between the operator, which builds task pods, and the runtime inside them.

A task pod has three containers sharing the ``/ferry`` volume: the runtime's init container
fetches inputs into ``INPUTS_DIR``, the user's container reads them and writes its outputs into
``OUTPUTS_DIR``, and the runtime's sidecar publishes those outputs once the user's container has
exited, reporting their references in its termination message. The ``PodPlan`` tells both
runtime containers what to do; it travels in the ``FERRY_POD_PLAN`` environment variable.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import pydantic

from ferry.api import resource, scheduler

ROOT = "/ferry"
INPUTS_DIR = f"{ROOT}/inputs"
OUTPUTS_DIR = f"{ROOT}/outputs"
SECRETS_DIR = f"{ROOT}/secrets"
RUNTIME_DIR = f"{ROOT}/runtime"
"""Private to the runtime containers (not mounted into the task's container)."""
PUBLISH_READY = f"{RUNTIME_DIR}/publish-ready"
"""Written by the publishing sidecar once it can no longer miss the kubelet's SIGTERM; its startup
probe checks it, so the task's container cannot start (and finish) before that."""
PLAN_ENV = "FERRY_POD_PLAN"
MAX_STORED_VALUE_BYTES = 64 * 1024 * 1024
"""Largest ``value`` output at all (a value is read into memory): beyond it, use a file."""
TERMINATION_LOG = "/dev/termination-log"
TERMINATION_LOG_ENV = "FERRY_TERMINATION_LOG"
"""Where to write the termination message instead (the local executor points it at a file of its own)."""
MAX_MESSAGE = 4096
"""The kubelet keeps at most this many bytes of a termination message."""
WORKDIR_ENV = "FERRY_WORKDIR"
"""The working directory of a Python task (the local executor gives each attempt its own)."""
RESULT_NAME = ".ferry-result.json"
"""``<output prefix>/.ferry-result.json``: a result too large for the termination message and
status (output names hold no ``.``, so none is called that)."""


def input_env_name(name: str) -> str:
    """``raw_data`` or ``raw-data`` → ``FERRY_INPUT_RAW_DATA``: each input's local path, for the
    user's command (the models refuse two inputs of one task spelled alike)."""
    return "FERRY_INPUT_" + resource.env_name(name)


def value_bytes(value: Any) -> bytes:
    """What a value input's file holds: a string as itself (UTF-8), anything else as its JSON; the
    same whether the value rode in the plan or was stored for its size (``values.publish_json``
    stores a value's ``json.dumps`` too)."""
    return value.encode() if isinstance(value, str) else json.dumps(value).encode()


ITEM_INDEX = "index.json"
"""``<split prefix>/index.json``: the item index a map's split stores (``ItemPlan.index`` points at it)."""


def task_folder(root: str, execution_id: str, task: str) -> str:
    """``<namespace folder>/<execution id>/<task>``: where every attempt of a task publishes."""
    return f"{root.rstrip('/')}/{execution_id}/{task}"


def item_prefix(folder: str, item: int, attempt: int) -> str:
    """``<task folder>/items/<item>/<attempt>``: where one item of a map publishes its outputs and
    its result (``RESULT_NAME``, always stored), which the gather reads."""
    return f"{folder}/items/{item}/{attempt}"


def stage_prefix(folder: str, role: str, attempt: int) -> str:
    """``<task folder>/split/<attempt>`` and ``<task folder>/gather/<attempt>``."""
    return f"{folder}/{role}/{attempt}"


class SplitPlan(resource.Model):
    """A map's split: read what it maps over once, store the item index at ``<output prefix>/index.json``
    (and its shards beside it), report the item count and a pointer to the index."""

    over: resource.Output
    """The list (a value: inline, stored, or in a stored result) or the directory or asset."""
    batch_size: int = 1


class ItemPlan(resource.Model):
    """An item unit of a map: items ``first`` .. ``first + count - 1``, each run with its item as
    input ``input`` and published under ``item_prefix(folder, item, attempt)``."""

    index: resource.StoredResult
    """The item index the split stored (its digest checked before use)."""
    input: str
    """The task input that receives the item."""
    first: int = pydantic.Field(ge=0)
    count: int = pydantic.Field(1, ge=1)
    folder: str
    """The task's folder (``task_folder``)."""
    source: str | None = None
    """The directory or asset the items' files come from, which the pod's scoped credentials let
    it read (``ferry.pod.credentials.plan_reads``); None over a list."""


class GatherPlan(resource.Model):
    """A map's gather: read each succeeded item's result (``item_prefix`` of the attempt the record
    says succeeded) and store the gathered outputs, one per output of the task."""

    index: resource.StoredResult
    record: str
    """The map's packed per-unit record (``ferry.api.items``) when its items ended."""
    units: int
    items: int
    batch_size: int = 1
    folder: str
    outputs: list[resource.TaskOutput] = []
    """The task's outputs, as each item declares them."""


class PodPlan(resource.Model):
    workflow: str
    namespace: str
    execution_id: str
    """Unique per run of a workflow (the Workflow's uid on a cluster)."""
    task: str
    attempt: int
    function: str | None = None
    """``module:function`` of a Python task."""
    plugin: resource.PluginRef | None = None
    """The task plugin to run instead of a function."""
    inputs: dict[str, resource.Output] = {}
    """Stored inputs (files, directories, assets, large values), fetched to ``INPUTS_DIR/<name>``
    for container tasks (a value as ``value_bytes``) and loaded lazily for Python tasks."""
    values: dict[str, Any] = {}
    """Values small enough to ride here (JSON), written to ``INPUTS_DIR/<name>`` for container tasks
    (``value_bytes``) and passed as they are to Python tasks."""
    outputs: list[resource.TaskOutput] = []
    output_prefix: str = pydantic.Field(min_length=1)
    """Where this attempt publishes: ``<prefix>/<output name>``; unique per attempt."""
    code: str | None = None
    """Source archive a Python task imports its function from."""
    cache_key: str | None = None
    """Set for cacheable tasks: where earlier results of the same function, version and inputs are."""
    overwrite_cache: bool = False
    role: str | None = None
    """The part of a map this pod is (``scheduler.Unit.role``): ``split``, ``item`` or ``gather``;
    None for a task's own pod."""
    split: SplitPlan | None = None
    item: ItemPlan | None = None
    gather: GatherPlan | None = None
    inline_limit: int | None = 3500
    """Largest result reported inline (the termination message keeps 4 KiB; a large workflow
    leaves each task less room in status); a larger one is stored and reported by pointer.
    None: no limit (the local executor)."""

    @property
    def checkpoint_prefix(self) -> str:
        """Shared by every attempt of the task, so the next attempt can resume: ``<prefix>/../checkpoint``."""
        return self.output_prefix.rsplit("/", 1)[0] + "/checkpoint"

    def input_env(self) -> dict[str, str]:
        """``FERRY_INPUT_<NAME>`` for a container task: each input's local path, a value's too, whatever
        its size (a value does not fit a variable once large: a variable holding either would change
        meaning when an upstream value grows); a map item's input too, which its pod fetches itself."""
        names = [*self.values, *self.inputs, *([self.item.input] if self.item else [])]
        return {input_env_name(name): f"{INPUTS_DIR}/{name}" for name in names}


def container_env(plan: PodPlan, task_env: list[resource.EnvVar], *, inputs: bool = True) -> list[tuple[str, str]]:
    """The environment of a container task's own container, in a pod and under the local executor
    alike: the task's variables, each input's (``input_env``; not for a Python task, which gets its
    inputs as arguments and no files), then which attempt of what this is and where its folders are."""
    return [*((variable.name, variable.value) for variable in task_env),
            *(sorted(plan.input_env().items()) if inputs else ()),
            ("FERRY_WORKFLOW", plan.workflow), ("FERRY_TASK", plan.task), ("FERRY_ATTEMPT", str(plan.attempt)),
            ("FERRY_INPUTS_DIR", INPUTS_DIR), ("FERRY_OUTPUTS_DIR", OUTPUTS_DIR)]


def write_termination_message(message: str, path: str | None = None, limit: int | None = MAX_MESSAGE) -> None:
    """What a runtime container tells the operator, which reads it from the container's last state:
    its result, or why it failed. Cut to the ``limit`` bytes the kubelet keeps; None: a result
    already sized for where it goes (the local executor reads it whole)."""
    data = message.encode()[:limit].decode(errors="ignore") if limit is not None else message
    with open(path or os.environ.get(TERMINATION_LOG_ENV, TERMINATION_LOG), "w") as out:
        out.write(data)


class InputError(Exception):
    """An input cannot be resolved (its producer has not published it)."""


def _kind_of_uri(uri: str, declared: resource.Kind | None) -> resource.Kind:
    return declared or (resource.Kind.DIRECTORY if uri.endswith("/") else resource.Kind.FILE)


def resolve_inputs(spec: resource.WorkflowSpec, status: resource.WorkflowStatus,
                   task: resource.Task) -> tuple[dict[str, resource.Output], dict[str, Any]]:
    """A task's inputs: stored ones (name → reference) and literal values (name → JSON). A map's
    item input (``fromItem``) is not among them: each item's pod gets its own (``ItemPlan``)."""
    stored: dict[str, resource.Output] = {}
    values: dict[str, Any] = {}
    for item in task.inputs:
        if item.from_item:
            continue
        produced = resolve_source(spec, status, item, item.kind, item.name)
        if produced.kind == resource.Kind.VALUE and produced.uri is None and produced.result is None:
            values[item.name] = produced.value
        else:
            stored[item.name] = produced
    return stored, values


def resolve_source(spec: resource.WorkflowSpec, status: resource.WorkflowStatus, source: resource.InputSource,
                   kind: resource.Kind | None, name: str) -> resource.Output:
    """What an input (or a map's ``over``) refers to, as a reference or a value; ``name`` says which
    in the error when its producer has not published it."""
    if source.from_input:
        source = next(i for i in spec.inputs if i.name == source.from_input)
        kind = kind or source.kind
    if source.from_task:
        produced = status.tasks[source.from_task.task].output(
            source.from_task.output, spec.output_kind(source.from_task.task, source.from_task.output))
        if produced is None:
            raise InputError(f"{name}: {source.from_task.task}.{source.from_task.output} was not published")
        return produced
    if source.uri:
        return resource.Output(kind=_kind_of_uri(source.uri, kind), uri=source.uri)
    return resource.Output(kind=resource.Kind.VALUE, value=source.value)


def build_plan(spec: resource.WorkflowSpec, status: resource.WorkflowStatus, task_name: str, attempt: int, *,
               workflow: str, namespace: str, execution_id: str, root: str) -> PodPlan:
    """What one attempt of a task fetches and publishes, and where: under ``root``, its namespace's
    folder (``<raw data prefix>/<namespace>`` unless the namespace has its own)."""
    task = next(t for t in spec.tasks if t.name == task_name)
    stored, values = resolve_inputs(spec, status, task)
    root = root.rstrip("/")
    prefix = f"{root}/{execution_id}/{task.name}/{attempt}"
    return PodPlan(workflow=workflow, namespace=namespace, execution_id=execution_id, task=task.name,
                   attempt=attempt, function=task.function, plugin=task.plugin, inputs=stored, values=values, outputs=task.outputs,
                   output_prefix=prefix, code=spec.code if task.function or task.plugin else None,
                   inline_limit=scheduler.room_per_task(spec),
                   cache_key=cache_key(root, task, spec.code, stored, values)
                   if task.cache else None,
                   overwrite_cache=spec.overwrite_cache)


def build_unit_plan(spec: resource.WorkflowSpec, status: resource.WorkflowStatus, unit: scheduler.Unit, *,
                    workflow: str, namespace: str, execution_id: str, root: str) -> PodPlan:
    """The plan of one pod of a map (``scheduler.Step.units``): its split (what the map goes over,
    read once), an item unit (its items of the index, the other inputs as a task's) or its gather
    (the record of which attempt of each unit succeeded). Each publishes under the task's folder
    (``task_folder``): ``split/<attempt>``, ``items/<item>/<attempt>``, ``gather/<attempt>``."""
    task = next(t for t in spec.tasks if t.name == unit.task)
    ms = status.tasks[task.name].map if task.name in status.tasks else None
    root = root.rstrip("/")
    folder = task_folder(root, execution_id, task.name)
    common = dict(workflow=workflow, namespace=namespace, execution_id=execution_id, task=task.name,
                  attempt=unit.attempt, role=unit.role, inline_limit=scheduler.room_per_task(spec))
    if unit.role == "split":
        over = resolve_source(spec, status, task.map.over, task.map.over.kind, "map.over")
        return PodPlan(**common, output_prefix=stage_prefix(folder, "split", unit.attempt),
                       split=SplitPlan(over=over, batch_size=task.map.batch_size))
    if ms is None or ms.index is None:
        raise InputError(f"{task.name}: the map has no item index yet (its split has not succeeded)")
    if unit.role == "gather":
        gathered = [resource.TaskOutput(name=o.name, kind=resource.gathered_kind(o.kind)) for o in task.outputs]
        return PodPlan(**common, outputs=gathered, output_prefix=stage_prefix(folder, "gather", unit.attempt),
                       gather=GatherPlan(index=ms.index, record=ms.record, units=ms.units, items=ms.items,
                                         batch_size=task.map.batch_size, folder=folder, outputs=task.outputs))
    first = unit.index * task.map.batch_size
    stored, values = resolve_inputs(spec, status, task)
    over = resolve_source(spec, status, task.map.over, task.map.over.kind, "map.over")
    item = ItemPlan(index=ms.index, input=next(i.name for i in task.inputs if i.from_item), first=first,
                    count=min(task.map.batch_size, ms.items - first), folder=folder,
                    source=over.uri if over.kind in (resource.Kind.DIRECTORY, resource.Kind.ASSET) else None)
    return PodPlan(**common, function=task.function, plugin=task.plugin, inputs=stored, values=values,
                   outputs=task.outputs, output_prefix=item_prefix(folder, first, unit.attempt),
                   code=spec.code if task.function or task.plugin else None, item=item,
                   cache_key=cache_key(root, task, spec.code, stored, values) if task.cache else None,
                   overwrite_cache=spec.overwrite_cache)


class PublishResult(resource.Model):
    """What the sidecar (or a Python task) writes to its termination message."""

    outputs: dict[str, resource.Output] = {}
    error: str | None = None
    cached: bool = False
    """The outputs were reused from an earlier run (the task did not run)."""
    cached_from: str | None = None
    """In a cache entry: the run (execution id) whose attempt stored it."""
    result: resource.StoredResult | None = None
    """The whole result (outputs and all) is this stored object instead: it was too large to report."""


def cache_key(root: str, task: resource.Task, code: str | None, stored: dict[str, resource.Output],
              values: dict[str, Any]) -> str:
    """``<namespace folder>/cache/<sha256>.json``: one entry per namespace, function, code archive
    (content-addressed, so changed code is another entry), image, plugin, cache version and inputs
    by content. Per namespace, so one team can neither read nor plant another's results."""
    identity = {
        "function": task.function,
        "code": code,
        "image": task.image,
        "plugin": task.plugin.dump() if task.plugin else None,
        "version": task.cache.version if task.cache else "",
        "values": values,
        "stored": {name: ref.manifest_digest or ref.sha256 or (ref.result and f"{ref.result.sha256}/{ref.result.output}")
                   or ref.uri for name, ref in sorted(stored.items())},
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
    return f"{root}/cache/{digest}.json"
