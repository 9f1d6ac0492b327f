"""Running on a cluster from the SDK: package the code, create the Workflow, follow it.

The SDK talks to the cluster through ``kubectl`` (it honours ``KUBECONFIG`` and contexts as users
expect), so ``pip install ferry-workflows`` needs no Kubernetes client. The source code travels through the
raw data store as a content-addressed archive, so a code change needs no new image.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import pathlib
import re
import secrets
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable

from ferry.api import items, resource, scheduler
from ferry.data import store as store_
from ferry.definitions import sources


class KubectlError(RuntimeError):
    def __init__(self, message: str, stderr: str = ""):
        super().__init__(message)
        self.unreachable = any(sign in stderr for sign in _UNREACHABLE)
        """Whether kubectl found no cluster to talk to (none configured, or none answering)."""


class UsageError(ValueError):
    """A question the workflow's spec says is wrongly put (``--item`` of a task that is no map, an
    item the map does not have): the command line says so as it says other usage errors."""


_UNREACHABLE = ("The connection to the server", "Unable to connect to the server",
                "no configuration has been provided", "couldn't get current server API group list")
_KLOG = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ [\w.]+:\d+\] ")
"""The start of a line kubectl logs (``E1207 23:00:27.414155 17079 memcache.go:265] ...``): it
repeats one failure five times before it says it once for people."""


def _said(stderr: str) -> str:
    """What kubectl says on stderr, without its log lines when it says more."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return "\n".join([line for line in lines if not _KLOG.match(line)] or lines)


def _command(args: tuple[str, ...] | list[str], context: str | None) -> list[str]:
    binary = shutil.which("kubectl")
    if binary is None:
        raise KubectlError("kubectl is not on PATH; install it to run workflows on a cluster")
    return [binary, *(["--context", context] if context else []), *args]


def kubectl(*args: str, input: str | None = None, context: str | None = None) -> str:
    result = subprocess.run(_command(args, context), input=input, capture_output=True, text=True)
    if result.returncode != 0:
        raise KubectlError(f"kubectl {' '.join(args)}: {_said(result.stderr)}", result.stderr)
    return result.stdout


def _namespaced(namespace: str | None) -> list[str]:
    return ["-n", namespace] if namespace else []


def package(root: pathlib.Path) -> bytes:
    """A reproducible .tar.gz of the Python sources under ``root`` (same files → same bytes)."""
    buffer = io.BytesIO()
    # gzip stamps its header with the time unless told otherwise: mtime=0 keeps the bytes reproducible.
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=6, mtime=0) as compressed, \
            tarfile.open(fileobj=compressed, mode="w") as archive:
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            if sources.SKIP & set(relative.parts) or not path.is_file() or path.suffix in (".pyc", ".pyo"):
                continue
            with open(path, "rb") as handle:  # a linked file is stored as what it links to
                info = archive.gettarinfo(arcname=relative.as_posix(), fileobj=handle)
                info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
                archive.addfile(info, handle)
    data = buffer.getvalue()
    if len(data) > sources.MAX_ARCHIVE:
        raise ValueError(f"the code under {root} packs to {len(data) >> 20} MiB (limit {sources.MAX_ARCHIVE >> 20} MiB); "
                         "move data files out of the code directory")
    return data


def upload_code(root: pathlib.Path, store: store_.Store) -> str:
    """Upload the code archive once per content; returns its URI."""
    data = package(root)
    uri = f"{store.raw_data_prefix.rstrip('/')}/code/{hashlib.sha256(data).hexdigest()}.tar.gz"
    if not store.exists(uri):
        store.backend(uri).write_bytes(uri, data)
    return uri


def create(manifest: dict, namespace: str | None, context: str | None = None) -> str:
    """Create the Workflow (a fresh name per run, from its ``name`` or ``generateName``); returns its name."""
    manifest = {**manifest, "metadata": {**manifest["metadata"]}}
    base = manifest["metadata"].pop("name", None) or manifest["metadata"].pop("generateName").rstrip("-")
    manifest["metadata"].pop("generateName", None)
    manifest["metadata"]["name"] = f"{base}-{secrets.token_hex(3)}"
    args = ["create", "-o", "name", "-f", "-", *_namespaced(namespace)]
    kubectl(*args, input=json.dumps(manifest), context=context)
    return manifest["metadata"]["name"]


def get(name: str, namespace: str | None, context: str | None = None) -> dict:
    args = ["get", f"{resource.PLURAL}.{resource.GROUP}", name, "-o", "json", *_namespaced(namespace)]
    return json.loads(kubectl(*args, context=context))


def follow(name: str, namespace: str | None, report: Callable[[str, str, str], None], context: str | None = None,
           poll_seconds: float = 1.0) -> resource.WorkflowStatus:
    """Report each task's transitions until the workflow finishes; returns its final status."""
    seen: dict[str, tuple] = {}
    while True:
        status = resource.WorkflowStatus.model_validate(get(name, namespace, context).get("status") or {})
        for task, state in status.tasks.items():
            key = (state.phase, state.attempts)
            if seen.get(task) != key:
                seen[task] = key
                report(*_event(task, state))
        if status.phase in scheduler.DONE:
            return status
        time.sleep(poll_seconds)


def _event(task: str, state: resource.TaskStatus) -> tuple[str, str, str]:
    phase = state.phase
    if phase == resource.Phase.RUNNING:
        return "Normal", "TaskStarted", f"task {task} attempt {state.attempts}: pod {state.pod_name}"
    if phase == resource.Phase.SUCCEEDED:
        return "Normal", "TaskSucceeded", f"task {task} succeeded (attempt {state.attempts})"
    if phase == resource.Phase.FAILED:
        return "Warning", "TaskFailed", f"task {task}: {state.message}"
    if phase == resource.Phase.PENDING and state.attempts:
        return "Warning", "TaskRetrying", f"task {task}: {state.message}"
    return "Normal", phase.value, f"task {task}: {phase.value.lower()}"


def stop(name: str, namespace: str | None, context: str | None = None) -> None:
    """Ask the operator to stop the workflow (``spec.stop``): its running tasks' pods are stopped."""
    kubectl("patch", f"{resource.PLURAL}.{resource.GROUP}", name, "--type", "merge", "-p",
            json.dumps({"spec": {"stop": True}}), *_namespaced(namespace), context=context)


def rerun(name: str, namespace: str | None, context: str | None = None) -> list[str]:
    """Ask the operator to run a failed or stopped workflow's unfinished tasks again (``spec.rerun``
    raised by one); returns those tasks. What succeeded is kept, its outputs reused."""
    workflow = get(name, namespace, context)
    status = resource.WorkflowStatus.model_validate(workflow.get("status") or {})
    if status.phase == resource.Phase.SUCCEEDED:
        raise KubectlError(f"workflow {name} succeeded: nothing to run again")
    if status.phase not in scheduler.DONE:
        raise KubectlError(f"workflow {name} is {status.phase.value}: retry it once it has failed or stopped "
                           f"(ferry stop {name} stops it)")
    spec = workflow.get("spec") or {}
    # The resourceVersion makes the patch a compare-and-swap: two retries at once raise it once.
    patch = {"metadata": {"resourceVersion": workflow["metadata"]["resourceVersion"]},
             "spec": {"stop": False, "rerun": (spec.get("rerun") or 0) + 1}}
    kubectl("patch", f"{resource.PLURAL}.{resource.GROUP}", name, "--type", "merge", "-p", json.dumps(patch),
            *_namespaced(namespace), context=context)
    return sorted(task for task, state in status.tasks.items() if state.phase != resource.Phase.SUCCEEDED)


def delete(names: list[str], namespace: str | None, context: str | None = None) -> str:
    """Delete workflows; their pods go with them (the operator stops running ones first)."""
    return kubectl("delete", f"{resource.PLURAL}.{resource.GROUP}", *names, *_namespaced(namespace), context=context)


CONTAINERS = {"main": "main", "fetch": "ferry-fetch", "publish": "ferry-publish"}
"""``ferry logs -c``'s names for a task pod's containers: the task's own, and Ferry's two."""


def logs(pod: str, namespace: str | None, context: str | None = None, container: str = "main",
         follow: bool = False) -> str:
    """The log of one container (``CONTAINERS``) of ``pod`` (``log_pod`` says which), while the pod
    exists. With ``follow``, streamed to stdout until the container ends (waiting for it to start),
    and an empty string returned."""
    args = ["logs", pod, "-c", CONTAINERS[container], *_namespaced(namespace)]
    try:
        if not follow:
            return kubectl(*args, context=context)
        return _follow(args, context)
    except KubectlError as error:
        if "is not valid for pod" not in str(error):
            raise
        raise KubectlError(f"pod {pod} has no {CONTAINERS[container]} container: {ABSENT[container]}") from None


ABSENT = {"main": "it is not a task pod",
          "fetch": "only container tasks with inputs have one (Python tasks fetch in main)",
          "publish": "only tasks with outputs have one (Python tasks publish in main)"}


def _follow(args: list[str], context: str | None) -> str:
    while True:  # stdout straight through: lines show as the task writes them
        done = subprocess.run(_command([*args, "-f"], context), stderr=subprocess.PIPE, text=True)
        if done.returncode == 0:
            return ""
        # Still starting: wait. Anything else, a failed image pull included, will not get better.
        if "ContainerCreating" not in done.stderr and "PodInitializing" not in done.stderr:
            raise KubectlError(f"kubectl {' '.join(args)} -f: {_said(done.stderr)}", done.stderr)
        time.sleep(1)


def log_pod(name: str, workflow: dict, task: str, attempt: int | None, item: int | None) -> str:
    """The pod of the task's latest attempt, or of ``attempt``; of a map, of the unit that runs
    ``item`` (``item // batchSize``), its latest attempt the one its status's record holds. A map
    asked without ``item``, or an item asked of a task that is no map, is a ``UsageError``."""
    state = resource.WorkflowStatus.model_validate(workflow.get("status") or {}).tasks.get(task)
    defined = next((t for t in (workflow.get("spec") or {}).get("tasks") or [] if t.get("name") == task), {})
    if defined.get("map") is not None:
        return _unit_pod(name, defined, state, attempt, item)
    if item is not None:
        raise UsageError(f"--item {item}: task {task!r} of workflow {name} is not a map; drop --item")
    if state is None or not state.pod_name:
        raise KubectlError(f"task {task!r} of workflow {name} has not started")
    if attempt is None:
        return state.pod_name
    if not 1 <= attempt <= state.attempts:
        raise KubectlError(f"task {task!r} of workflow {name} has no attempt {attempt} "
                           f"(attempts so far: {state.attempts})")
    return scheduler.pod_name(name, task, attempt)


def map_item(name: str, task: dict, state: resource.TaskStatus | None, item: int | None) -> tuple[int, int, int]:
    """``(unit, first, count)``: the unit of map ``task`` that runs ``item``, and the items it runs.
    Without ``item``, a ``UsageError`` that says to give one (naming the first unit that failed)."""
    progress = state.map if state is not None else None
    where = f"task {task['name']!r} of workflow {name}"
    if progress is None or progress.items is None:
        if item is None:
            raise UsageError(f"{where} is a map still splitting its items: pass --item N for one item's log once "
                             "it has")
        raise KubectlError(f"{where} has not split its items yet")
    batch, count = int((task.get("map") or {}).get("batchSize") or 1), progress.items
    last = f"0 to {count - 1}"
    if item is None:
        if not count:
            raise UsageError(f"{where} is a map over no items: no item has a log")
        failed = next(iter(progress.failures), None)
        first = f"; the first that failed: --item {failed.unit * batch} ({failed.message or failed.reason})" \
            if failed is not None else ""
        raise UsageError(f"{where} is a map of {count:,} items, {'a pod each' if batch == 1 else f'{batch} a pod'}: "
                         f"pass --item N ({last}) for one item's log{first}")
    if not 0 <= item < count:
        raise UsageError(f"--item {item}: {where} has {count:,} items" + (f" (--item {last})" if count else ""))
    unit = item // batch
    return unit, unit * batch, min(batch, count - unit * batch)


def _unit_pod(name: str, task: dict, state: resource.TaskStatus | None, attempt: int | None,
              item: int | None) -> str:
    unit, _, _ = map_item(name, task, state, item)
    where = f"item {item} of task {task['name']!r} of workflow {name}"
    try:
        latest = items.Record.decode(state.map.record, state.map.units).attempt(unit)
    except (ValueError, TypeError, IndexError) as error:
        raise KubectlError(f"the status of task {task['name']!r} of workflow {name} holds a damaged map record: "
                           f"{error}") from None
    if not latest:
        raise KubectlError(f"{where} has not started")
    if attempt is not None and not 1 <= attempt <= latest:
        raise KubectlError(f"{where} has no attempt {attempt} (attempts so far: {latest})")
    return scheduler.unit_name(name, task["name"], "item", attempt or latest, unit)
