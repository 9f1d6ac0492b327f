"""Building the pod of one task attempt (or of a map's unit: ``build_unit_pod``). Pure functions:
plain data in, a pod manifest out.

The pod has up to four containers sharing two volumes, ``/ferry/inputs`` and ``/ferry/outputs``:

- ``ferry-credentials`` (a native sidecar, first) is the only one given the storage Secret: it
  trades its keys for temporary ones good only for the namespace's folder and the plan's URIs,
  which the others read from ``/ferry/credentials`` (``ferry.pod.credentials``);
- ``ferry-fetch`` (init container, Ferry runtime image) downloads and verifies the inputs, and
  writes each value's file (``ferry.pod.podruntime.fetch``);
- ``main`` is the user's image and command, untouched: it needs no shell, no Python and no Ferry;
- ``ferry-publish`` (a native sidecar: an init container with ``restartPolicy: Always``) starts
  before ``main`` and idles; after ``main`` exits, the kubelet stops it with SIGTERM, and only then
  does it upload the outputs and report their references in its termination message.

Native sidecars were chosen because they need nothing from the user's image (no wrapper
entrypoint to inject) and give a clean "after main" moment that the kubelet itself defines.
The pod's ``terminationGracePeriodSeconds`` is the time the sidecar has for the upload.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import NamedTuple

from ferry.api import items, resource, scheduler, taskpod
from ferry.data import cleanup, credentials
from ferry_operator import patches, results
from ferry_operator.config import Config

LABEL_WORKFLOW, LABEL_TASK, LABEL_ATTEMPT = resource.LABEL_WORKFLOW, resource.LABEL_TASK, resource.LABEL_ATTEMPT
LABEL_ROLE, LABEL_UNIT = resource.LABEL_ROLE, resource.LABEL_UNIT
"""A map's pods: ``split``, ``item`` or ``gather``, and an item pod's unit (``scheduler.Unit``), so
that a restarted operator (and ``kubectl get pods -l``) knows what each pod is without its status."""
RESULT_FINALIZER = "ferry.dev/result"
"""Held on every task pod until the workflow's status no longer needs it: a pod that vanishes
(evicted, node reclaimed) after publishing but before the operator read its termination message
would otherwise take the attempt's result with it, and the task would run again."""
STOP_GRACE_SECONDS = 10
"""Grace given to a pod the operator stops (timeout, failure policy, its workflow deleted): its
outputs are not wanted, so it does not get the upload grace of ``terminationGracePeriodSeconds``."""
RUNTIME_USER = 10001
"""The Ferry image's own user (``USER`` in the Dockerfile)."""
HARDENED = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
"""What every container of Ferry's own gives up."""


def runtime_security(task: resource.Task, reads_outputs: bool) -> dict:
    """The security context of Ferry's own containers: no privileges, a read-only root filesystem,
    and a user that can do their job.

    With the task's user given (``securityContext.runAsUser``), they run as that user: files the
    task wrote are theirs to read, and the pod fits Pod Security ``restricted``. Otherwise the
    task runs as its image's user, unknown here, and may write outputs only it can read (``mktemp``
    makes 0600 files): the publisher then runs as root with ``DAC_OVERRIDE`` as its only
    capability (allowed by Pod Security ``baseline``), and the fetcher as the image's own user.
    """
    context = task.security_context
    if context and context.run_as_user is not None:
        group = {"runAsGroup": context.run_as_group} if context.run_as_group is not None else {}
        return {**HARDENED, "runAsUser": context.run_as_user, **group, "runAsNonRoot": context.run_as_user != 0}
    if reads_outputs:
        return {**HARDENED, "runAsUser": 0, "runAsNonRoot": False,
                "capabilities": {"drop": ["ALL"], "add": ["DAC_OVERRIDE"]}}
    return {**HARDENED, "runAsUser": RUNTIME_USER, "runAsNonRoot": True}


def release_patch(pod: dict) -> list[dict] | None:
    """The JSON patch that lets ``pod`` go (None when Ferry does not hold it)."""
    return patches.finalizer_removed(pod["metadata"], RESULT_FINALIZER)


def releasable(owned_pods: dict[str, dict], status: resource.WorkflowStatus,
               running: set[str] | None = None) -> list[dict]:
    """Held pods the status no longer needs: all but those of attempts still running (``needed``,
    given as ``running`` by a caller that has it: a map's record is decoded once)."""
    running = needed(owned_pods, status) if running is None else running
    return [pod for name, pod in owned_pods.items() if release_patch(pod) and name not in running]


def needed(owned_pods: dict[str, dict], status: resource.WorkflowStatus) -> set[str]:
    """The pods of attempts the status has running. A map's pod is known by its labels: an item
    pod until the record says its unit's attempt ended (the unit is no longer running, or runs a
    later attempt), a split or gather pod until its map leaves that stage or runs a later attempt."""
    running = {ts.pod_name for ts in status.tasks.values() if ts.phase == resource.Phase.RUNNING and not ts.map}
    records: dict[str, items.Record | None] = {}
    for name, pod in owned_pods.items():
        labels = pod["metadata"].get("labels") or {}
        if labels.get(LABEL_ROLE) and unit_running(status, labels.get(LABEL_TASK), labels[LABEL_ROLE],
                                                   _number(labels.get(LABEL_ATTEMPT)), _number(labels.get(LABEL_UNIT)),
                                                   records):
            running.add(name)
    return running


def succeeded_units(owned_pods: dict[str, dict], status: resource.WorkflowStatus) -> set[str]:
    """The map pods among ``owned_pods`` whose attempt succeeded (``podRetention: KeepFailed``
    deletes them): an item pod whose unit the record has succeeded at the pod's attempt, or whose
    containers all ended well (a unit its map's failure skipped as it ended), a split
    pod that ended well once its map is past the split, the gather's last attempt once the map
    succeeded. Only the pods held (the index's), never a name per unit of the record."""
    records: dict[str, items.Record | None] = {}
    found = set()
    for name, pod in owned_pods.items():
        labels = pod["metadata"].get("labels") or {}
        role, ts = labels.get(LABEL_ROLE), status.tasks.get(labels.get(LABEL_TASK, ""))
        if role is None or ts is None or ts.map is None:
            continue
        attempt, ms = _number(labels.get(LABEL_ATTEMPT)), ts.map
        if role == "item":
            unit = _number(labels.get(LABEL_UNIT))
            record = _record(labels[LABEL_TASK], ms, records)
            ok = ((record is not None and unit is not None and unit < len(record)
                   and record.phase(unit) == resource.Phase.SUCCEEDED and record.attempt(unit) == attempt)
                  # ended well, but its map ended first (failed, stopped) and recorded it skipped
                  or (pod.get("status") or {}).get("phase") == "Succeeded")
        elif role == "split":
            ok = ms.stage != "Split" and (pod.get("status") or {}).get("phase") == "Succeeded"
        else:
            ok = ts.phase == resource.Phase.SUCCEEDED and ms.attempts == attempt
        if ok:
            found.add(name)
    return found


def _record(task: str, ms: resource.MapStatus, records: dict[str, items.Record | None]) -> items.Record | None:
    """The map's record, decoded once per caller (``records``); None if it cannot be read."""
    if task not in records:
        try:
            records[task] = items.Record.decode(ms.record, ms.units or 0)
        except ValueError:
            records[task] = None
    return records[task]


def unit_running(status: resource.WorkflowStatus, task: str | None, role: str, attempt: int | None,
                 unit: int | None, records: dict[str, items.Record | None]) -> bool:
    """Whether the status has this attempt of a map's unit running (``records``: each map's record,
    decoded once by the caller's calls)."""
    ts = status.tasks.get(task or "")
    if ts is None or ts.map is None or ts.phase != resource.Phase.RUNNING:
        return False
    ms = ts.map
    if role != "item":
        return ms.stage.lower() == role and ms.attempts == attempt
    if ms.stage != "Items":
        return False
    record = _record(task, ms, records)
    if record is None:
        return True  # not readable: keep it held rather than lose a result
    return (unit is not None and unit < len(record) and record.phase(unit) == resource.Phase.RUNNING
            and record.attempt(unit) == attempt)


def unit_of(workflow: str, task: str, pod_name: str) -> scheduler.Unit | None:
    """The map unit that ``pod_name`` names (``scheduler.unit_name``), or None."""
    head, _, attempt = pod_name.rpartition("-")
    part = head.rpartition("-")[2]
    role = part if part in ("split", "gather") else "item"
    index = int(part) if role == "item" and part.isascii() and part.isdigit() else None
    if not (attempt.isascii() and attempt.isdigit()) or (role == "item" and index is None):
        return None
    unit = scheduler.Unit(task, role, int(attempt), index, pod_name)
    return unit if scheduler.unit_name(workflow, task, role, unit.attempt, index) == pod_name else None


def strays(owned_pods: dict[str, dict], status: resource.WorkflowStatus) -> list[str]:
    """Pods of maps that are no longer running which still run: started by a step whose status was
    not written (``handlers.MIN_WRITE_INTERVAL``) before the map failed or was stopped, so no record
    names them for the scheduler to stop."""
    return [name for name, pod in owned_pods.items()
            if (pod["metadata"].get("labels") or {}).get(LABEL_ROLE)
            and not pod["metadata"].get("deletionTimestamp")
            and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            and (ts := status.tasks.get(pod["metadata"]["labels"].get(LABEL_TASK, ""))) is not None
            and ts.map is not None and ts.phase != resource.Phase.RUNNING]


def _number(label: str | None) -> int | None:
    """A label's count (``ferry.dev/attempt``, ``ferry.dev/unit``); None for one the operator did
    not write (anyone who may create pods may label one)."""
    return int(label) if label and label.isascii() and label.isdigit() and len(label) < 10 else None


def owned(listed: list[dict], uid: str) -> dict[str, dict]:
    """The pods, by name, that the workflow with ``uid`` owns (a same-named older one's are not)."""
    return {p["metadata"]["name"]: p for p in listed
            if any(o.get("uid") == uid for o in p["metadata"].get("ownerReferences") or [])}


def owner_name(pod: Mapping) -> str | None:
    """The name of the Workflow owning ``pod``: the owner reference, not the label, which a long
    name's is cut (``resource.label_value``)."""
    owner = next((o for o in pod["metadata"].get("ownerReferences") or [] if o.get("kind") == resource.KIND), None)
    return owner and owner.get("name")


_SUMMARY_METADATA = ("name", "uid", "ownerReferences", "finalizers", "creationTimestamp", "deletionTimestamp")
_SUMMARY_LABELS = (LABEL_TASK, LABEL_ATTEMPT, LABEL_ROLE, LABEL_UNIT)


def summary(pod: Mapping) -> dict | None:
    """What reconciliations read of a task pod (its metadata's few fields and its status), held in
    the operator's memory; None once nothing will read it again: it ended, its end is recorded
    (Ferry's finalizer released) and it is not being deleted. Finished pods stay in the cluster
    until their workflow goes, so keeping them all would grow with every task ever run."""
    meta, status = pod["metadata"], pod.get("status") or {}
    if (RESULT_FINALIZER not in (meta.get("finalizers") or []) and not meta.get("deletionTimestamp")
            and status.get("phase") in ("Succeeded", "Failed")):
        return None
    kept = {key: meta[key] for key in _SUMMARY_METADATA if key in meta}
    labels = {key: value for key, value in (meta.get("labels") or {}).items() if key in _SUMMARY_LABELS}
    return {"metadata": {**kept, **({"labels": labels} if labels else {})}, "status": status}


class Runtime(NamedTuple):
    """What Ferry's own containers of one pod share."""

    image: str
    env: list[dict]
    """The plan, the namespace's folder, the storage settings and (scoped) where the credentials are."""
    secret_env: list[dict]
    """The namespace's storage Secret as ``envFrom`` (empty with IRSA): the credentials sidecar's alone
    when ``scoped``, every Ferry container's otherwise."""
    scoped: bool
    resources: dict


def runtime_of(plan: taskpod.PodPlan, namespace: str, config: Config) -> Runtime:
    """The shared part of Ferry's containers in a pod of ``namespace`` running ``plan``."""
    scoped, secret = config.scoped(namespace), config.namespace_secret(namespace)
    env = [{"name": taskpod.PLAN_ENV, "value": plan.model_dump_json(by_alias=True, exclude_none=True)},
           {"name": "FERRY_RAW_DATA_PREFIX", "value": config.namespace_root(namespace)},
           *({"name": k, "value": v} for k, v in sorted(config.storage_env.items())),
           *([{"name": "FERRY_S3_CREDENTIALS_FILE", "value": credentials.CREDENTIALS_FILE}] if scoped else [])]
    return Runtime(config.runtime_image, env, [{"secretRef": {"name": secret}}] if secret else [], scoped,
                   config.runtime_resources.dump())


def _ferry_mounts() -> list[dict]:
    return [{"name": "ferry-inputs", "mountPath": taskpod.INPUTS_DIR},
            {"name": "ferry-outputs", "mountPath": taskpod.OUTPUTS_DIR}]


def _credentials_mount(writable: bool = False) -> dict:
    return {"name": "ferry-credentials", "mountPath": credentials.CREDENTIALS_DIR, "readOnly": not writable}


def _tmp_mount() -> dict:
    return {"name": "ferry-tmp", "mountPath": "/tmp"}


def _ready_when(path: str) -> dict:
    return {"exec": {"command": ["test", "-e", path]}, "periodSeconds": 1, "failureThreshold": 120}


def runtime_container(name: str, args: list[str], task: resource.Task, runtime: Runtime, **extra) -> dict:
    """One of Ferry's own containers (``ferry pod <args>``), unprivileged, with the pod's plan."""
    return {"name": name, "image": runtime.image, "args": args, "env": runtime.env,
            "envFrom": [] if runtime.scoped else runtime.secret_env,
            "volumeMounts": [*_ferry_mounts(), {"name": "ferry-runtime", "mountPath": taskpod.RUNTIME_DIR},
                             _tmp_mount(), *([_credentials_mount()] if runtime.scoped else [])],
            "resources": runtime.resources,
            "securityContext": runtime_security(task, reads_outputs=name == results.PUBLISH),
            "terminationMessagePolicy": "FallbackToLogsOnError", **extra}


def fetch_container(task: resource.Task, runtime: Runtime) -> dict:
    """Downloads and verifies the inputs into ``/ferry/inputs`` before the task starts."""
    return runtime_container(results.FETCH, ["pod", "fetch"], task, runtime)


def publish_container(task: resource.Task, runtime: Runtime) -> dict:
    """Idles beside the task, then uploads ``/ferry/outputs`` once the kubelet stops it."""
    return runtime_container(results.PUBLISH, ["pod", "publish"], task, runtime, restartPolicy="Always",
                             startupProbe=_ready_when(taskpod.PUBLISH_READY))


def credentials_container(task: resource.Task, runtime: Runtime) -> dict:
    """The only container with the Secret's keys: it trades them for scoped ones in ``/ferry/credentials``."""
    return runtime_container(results.CREDENTIALS, ["pod", "credentials"], task, runtime, restartPolicy="Always",
                             startupProbe=_ready_when(credentials.CREDENTIALS_FILE), envFrom=runtime.secret_env,
                             volumeMounts=[_credentials_mount(writable=True), _tmp_mount()])


def runs_ferry(task: resource.Task) -> bool:
    """Whether the task's own container is Ferry's runtime (a Python function, or a plugin)."""
    return bool(task.function or task.plugin)


def init_containers(task: resource.Task, plan: taskpod.PodPlan, runtime: Runtime) -> list[dict]:
    """Ferry's containers beside a task's: fetch (inputs, and the files of values) and publish only
    for a container task that needs them, the credentials sidecar first (every other one finds
    fresh credentials) when the pod reads or writes the store."""
    found = []
    # A map's item is an input, and its result is always stored (the gather reads it).
    if (plan.inputs or plan.values or plan.item) and not runs_ferry(task):  # a value too is a file in /ferry/inputs
        found.append(fetch_container(task, runtime))
    if (task.outputs or plan.item) and not runs_ferry(task):
        found.append(publish_container(task, runtime))
    if runtime.scoped and (plan.inputs or task.outputs or plan.item or runs_ferry(task)):  # it reads or writes the store
        found.insert(0, credentials_container(task, runtime))
    return found


def task_container(task: resource.Task, plan: taskpod.PodPlan, runtime: Runtime) -> dict:
    """The ``main`` container: the user's image and command, untouched, given its inputs as
    variables and paths. A Python task's (or plugin's) is Ferry's own runtime instead: it loads
    inputs lazily from the store, publishes what the function returns, and reports it in its own
    termination message."""
    main = {
        "name": results.MAIN,
        "image": task.image or runtime.image,
        "env": [{"name": name, "value": value}
                for name, value in taskpod.container_env(plan, task.env, inputs=not runs_ferry(task))],
        "volumeMounts": [*_ferry_mounts(), *({"name": f"secret-{i}", "mountPath": f"{taskpod.SECRETS_DIR}/{s}",
                                              "readOnly": True} for i, s in enumerate(task.secrets)),
                         *(m.dump() for m in task.volume_mounts)],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    own_security = task.security_context.dump() if task.security_context else {}
    if runs_ferry(task):
        main["args"] = ["pod", "run-function"]
        main["env"] = [*runtime.env, *main["env"]]
        main["envFrom"] = [] if runtime.scoped else runtime.secret_env
        main["volumeMounts"] += [_tmp_mount(), *([_credentials_mount()] if runtime.scoped else [])]
        main["securityContext"] = {**runtime_security(task, reads_outputs=False), **own_security}
    else:
        if task.command is not None:
            main["command"] = task.command
        if task.args is not None:
            main["args"] = task.args
        if own_security:
            main["securityContext"] = own_security
    if task.resources:
        main["resources"] = task.resources.dump()
    return main


def volumes(task: resource.Task, scoped: bool) -> list[dict]:
    """Ferry's scratch volumes (sized as the task asks, but for the runtime's own), the in-memory
    credentials volume, the task's Secrets and the task's own volumes."""
    scratch = {"sizeLimit": task.scratch_size_limit} if task.scratch_size_limit else {}
    return [*({"name": v, "emptyDir": scratch if v != "ferry-runtime" else {}}
              for v in ("ferry-inputs", "ferry-outputs", "ferry-runtime", "ferry-tmp")),
            *([{"name": "ferry-credentials", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}] if scoped else []),
            *({"name": f"secret-{i}", "secret": {"secretName": s}} for i, s in enumerate(task.secrets)),
            *task.volumes]


def _owned_by(meta: dict) -> dict:
    """The metadata every pod of the workflow with ``meta`` has: held by Ferry, owned by the workflow."""
    return {"namespace": meta["namespace"], "finalizers": [RESULT_FINALIZER],
            "ownerReferences": [{"apiVersion": resource.API_VERSION, "kind": resource.KIND, "name": meta["name"],
                                 "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}]}


def build_pod(workflow: dict, spec: resource.WorkflowSpec, status: resource.WorkflowStatus, task_name: str,
              attempt: int, config: Config) -> dict:
    """The pod manifest for ``attempt`` of ``task_name`` of the workflow object ``workflow``."""
    meta = workflow["metadata"]
    task = next(t for t in spec.tasks if t.name == task_name)
    plan = taskpod.build_plan(spec, status, task_name, attempt, workflow=meta["name"], namespace=meta["namespace"],
                              execution_id=meta["uid"], root=config.namespace_root(meta["namespace"]))
    return _pod(meta, task, plan, config, scheduler.pod_name(meta["name"], task.name, attempt), {})


def build_unit_pod(workflow: dict, spec: resource.WorkflowSpec, status: resource.WorkflowStatus,
                   unit: scheduler.Unit, config: Config) -> dict:
    """The pod of one of a map's units (``scheduler.Step.units``), named ``unit.name``. An item
    pod is the task's own pod with the item's plan (its fetch and publish containers get the
    item); the split and the gather are Ferry's code only: the runtime image running ``ferry pod
    split`` / ``ferry pod gather`` with the plan, beside the credentials sidecar, as a Python
    task's pod, with none of the task's own containers, Secrets or volumes."""
    meta = workflow["metadata"]
    task = next(t for t in spec.tasks if t.name == unit.task)
    plan = taskpod.build_unit_plan(spec, status, unit, workflow=meta["name"], namespace=meta["namespace"],
                                   execution_id=meta["uid"], root=config.namespace_root(meta["namespace"]))
    labels = {LABEL_ROLE: unit.role, **({LABEL_UNIT: str(unit.index)} if unit.role == "item" else {})}
    if unit.role == "item":
        return _pod(meta, task, plan, config, unit.name, labels)
    runtime = runtime_of(plan, meta["namespace"], config)
    main = {"name": results.MAIN, "image": runtime.image, "args": ["pod", unit.role],
            "env": [*runtime.env, *({"name": n, "value": v} for n, v in taskpod.container_env(plan, [], inputs=False))],
            "envFrom": [] if runtime.scoped else runtime.secret_env,
            "volumeMounts": [_tmp_mount(), *([_credentials_mount()] if runtime.scoped else [])],
            "resources": runtime.resources, "securityContext": runtime_security(task, reads_outputs=False),
            "terminationMessagePolicy": "FallbackToLogsOnError"}
    own = task.model_copy(update={"secrets": [], "volumes": [], "volume_mounts": [], "image": None})
    return _pod(meta, own, plan, config, unit.name, labels, main=main)


def _pod(meta: dict, task: resource.Task, plan: taskpod.PodPlan, config: Config, name: str, labels: dict[str, str],
         main: dict | None = None) -> dict:
    """A pod of the workflow with metadata ``meta`` running ``plan`` for ``task``: the task's own
    container (or ``main``), and Ferry's beside it."""
    runtime = runtime_of(plan, meta["namespace"], config)
    labels = {LABEL_WORKFLOW: resource.label_value(meta["name"]), LABEL_TASK: task.name,
              LABEL_ATTEMPT: str(plan.attempt), **labels, "app.kubernetes.io/managed-by": "ferry"}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels, **_owned_by(meta)},
        "spec": {
            "restartPolicy": "Never",
            "serviceAccountName": task.service_account_name or config.task_service_account or "default",
            "automountServiceAccountToken": bool(task.service_account_name),
            "terminationGracePeriodSeconds": config.upload_grace_seconds,
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "initContainers": ([credentials_container(task, runtime)] if runtime.scoped else []) if main
            else init_containers(task, plan, runtime),
            "containers": [main or task_container(task, plan, runtime)],
            "volumes": volumes(task, runtime.scoped),
            **placement(task),
        },
    }


def placement(task: resource.Task) -> dict:
    """Where the task's pods may run and how their image is pulled: only what the task sets."""
    found = {"nodeSelector": task.node_selector, "tolerations": [t.dump() for t in task.tolerations],
             "affinity": task.affinity, "imagePullSecrets": [{"name": s} for s in task.image_pull_secrets]}
    return {key: value for key, value in found.items() if value}


def cleanup_pod_name(workflow: str) -> str:
    """The pod that deletes a deleted workflow's objects: attempt 0, which no task ever has."""
    return scheduler.pod_name(workflow, "cleanup", 0)


def build_cleanup_pod(workflow: dict, plan: dict, config: Config) -> dict:
    """The pod that runs ``ferry pod cleanup`` with ``plan`` (``cleanup.plan``) for the deleted
    ``workflow``. It runs Ferry's code only, so it gets the namespace's storage Secret itself; held
    by ``RESULT_FINALIZER`` like a task pod, until its end is reported."""
    meta = workflow["metadata"]
    secret = config.namespace_secret(meta["namespace"])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": cleanup_pod_name(meta["name"]),
            "labels": {LABEL_WORKFLOW: resource.label_value(meta["name"]), "app.kubernetes.io/managed-by": "ferry",
                       "app.kubernetes.io/component": "artifact-cleanup"},
            **_owned_by(meta),
        },
        "spec": {
            "restartPolicy": "Never",
            "serviceAccountName": config.task_service_account or "default",
            "automountServiceAccountToken": False,
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "ferry-cleanup", "image": config.runtime_image, "args": ["pod", "cleanup"],
                "env": [{"name": cleanup.PLAN_ENV, "value": json.dumps(plan)},
                        {"name": "FERRY_RAW_DATA_PREFIX", "value": plan["root"]},
                        *({"name": k, "value": v} for k, v in sorted(config.storage_env.items()))],
                "envFrom": [{"secretRef": {"name": secret}}] if secret else [],
                "volumeMounts": [_tmp_mount()],
                "resources": config.runtime_resources.dump(),
                "securityContext": {**HARDENED, "runAsUser": RUNTIME_USER, "runAsNonRoot": True},
                "terminationMessagePolicy": "FallbackToLogsOnError"}],
            "volumes": [{"name": "ferry-tmp", "emptyDir": {}}],
        },
    }
