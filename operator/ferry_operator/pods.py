"""Building the pod of one task attempt. Pure functions: plain data in, a pod manifest out.

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

from ferry.api import resource, scheduler, taskpod
from ferry.data import cleanup, credentials
from ferry_operator import patches, results
from ferry_operator.config import Config

LABEL_WORKFLOW, LABEL_TASK, LABEL_ATTEMPT = resource.LABEL_WORKFLOW, resource.LABEL_TASK, resource.LABEL_ATTEMPT
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


def _task_security(task: resource.Task) -> dict:
    return task.security_context.dump() if task.security_context else {}


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


def releasable(owned_pods: dict[str, dict], status: resource.WorkflowStatus) -> list[dict]:
    """Held pods the status no longer needs: all but those of attempts still running."""
    running = {ts.pod_name for ts in status.tasks.values() if ts.phase == resource.Phase.RUNNING}
    return [pod for name, pod in owned_pods.items() if name not in running and release_patch(pod)]


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


def summary(pod: Mapping) -> dict | None:
    """What reconciliations read of a task pod (its metadata's few fields and its status), held in
    the operator's memory; None once nothing will read it again: it ended, its end is recorded
    (Ferry's finalizer released) and it is not being deleted. Finished pods stay in the cluster
    until their workflow goes, so keeping them all would grow with every task ever run."""
    meta, status = pod["metadata"], pod.get("status") or {}
    if (RESULT_FINALIZER not in (meta.get("finalizers") or []) and not meta.get("deletionTimestamp")
            and status.get("phase") in ("Succeeded", "Failed")):
        return None
    return {"metadata": {key: meta[key] for key in _SUMMARY_METADATA if key in meta}, "status": status}


def build_pod(workflow: dict, spec: resource.WorkflowSpec, status: resource.WorkflowStatus, task_name: str,
              attempt: int, config: Config) -> dict:
    """The pod manifest for ``attempt`` of ``task_name`` of the workflow object ``workflow``."""
    meta = workflow["metadata"]
    namespace = meta["namespace"]
    task = next(t for t in spec.tasks if t.name == task_name)
    root = config.namespace_root(namespace)
    plan = taskpod.build_plan(spec, status, task_name, attempt, workflow=meta["name"], namespace=namespace,
                              execution_id=meta["uid"], root=root)
    scoped = config.scoped(namespace)
    secret = config.namespace_secret(namespace)
    ferry_mounts = [{"name": "ferry-inputs", "mountPath": taskpod.INPUTS_DIR},
                    {"name": "ferry-outputs", "mountPath": taskpod.OUTPUTS_DIR}]
    credentials_mount = {"name": "ferry-credentials", "mountPath": credentials.CREDENTIALS_DIR, "readOnly": True}
    runtime_env = [{"name": taskpod.PLAN_ENV, "value": plan.model_dump_json(by_alias=True, exclude_none=True)},
                   {"name": "FERRY_RAW_DATA_PREFIX", "value": root},
                   *({"name": k, "value": v} for k, v in sorted(config.storage_env.items())),
                   *([{"name": "FERRY_S3_CREDENTIALS_FILE", "value": credentials.CREDENTIALS_FILE}] if scoped else [])]
    secret_env = [{"secretRef": {"name": secret}}] if secret else []
    runtime_mounts = [*ferry_mounts, {"name": "ferry-runtime", "mountPath": taskpod.RUNTIME_DIR},
                      {"name": "ferry-tmp", "mountPath": "/tmp"}, *([credentials_mount] if scoped else [])]

    def runtime(name: str, args: list[str], **extra) -> dict:
        return {"name": name, "image": config.runtime_image, "args": args, "env": runtime_env,
                "envFrom": [] if scoped else secret_env, "volumeMounts": runtime_mounts,
                "resources": config.runtime_resources.dump(),
                "securityContext": runtime_security(task, reads_outputs=name == results.PUBLISH),
                "terminationMessagePolicy": "FallbackToLogsOnError", **extra}

    def ready_when(path: str) -> dict:
        return {"exec": {"command": ["test", "-e", path]}, "periodSeconds": 1, "failureThreshold": 120}

    init = []
    runs_ferry = bool(task.function or task.plugin)
    if (plan.inputs or plan.values) and not runs_ferry:  # a value too is a file in /ferry/inputs
        init.append(runtime(results.FETCH, ["pod", "fetch"]))
    if task.outputs and not runs_ferry:
        init.append(runtime(results.PUBLISH, ["pod", "publish"], restartPolicy="Always",
                            startupProbe=ready_when(taskpod.PUBLISH_READY)))
    if scoped and (plan.inputs or task.outputs or runs_ferry):  # the pod reads or writes the store
        # First, so that every other container finds fresh credentials; the only one with the keys.
        issuer = runtime(results.CREDENTIALS, ["pod", "credentials"], restartPolicy="Always",
                         startupProbe=ready_when(credentials.CREDENTIALS_FILE), envFrom=secret_env,
                         volumeMounts=[{**credentials_mount, "readOnly": False}, {"name": "ferry-tmp", "mountPath": "/tmp"}])
        init.insert(0, issuer)
    main = {
        "name": results.MAIN,
        "image": task.image or config.runtime_image,
        "env": [{"name": name, "value": value}
                for name, value in taskpod.container_env(plan, task.env, inputs=not runs_ferry)],
        "volumeMounts": [*ferry_mounts, *({"name": f"secret-{i}", "mountPath": f"{taskpod.SECRETS_DIR}/{s}",
                                           "readOnly": True} for i, s in enumerate(task.secrets)),
                         *(m.dump() for m in task.volume_mounts)],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if runs_ferry:
        # A Python task's (or plugin's) container is Ferry's own runtime: it loads inputs lazily from the store,
        # publishes what the function returns, and reports it in its own termination message.
        main["args"] = ["pod", "run-function"]
        main["env"] = [*runtime_env, *main["env"]]
        main["envFrom"] = [] if scoped else secret_env
        main["volumeMounts"] += [{"name": "ferry-tmp", "mountPath": "/tmp"}, *([credentials_mount] if scoped else [])]
        main["securityContext"] = {**runtime_security(task, reads_outputs=False), **_task_security(task)}
    else:
        if task.command is not None:
            main["command"] = task.command
        if task.args is not None:
            main["args"] = task.args
    if task.resources:
        main["resources"] = task.resources.dump()
    if task.security_context and not runs_ferry:
        main["securityContext"] = _task_security(task)
    scratch = {"sizeLimit": task.scratch_size_limit} if task.scratch_size_limit else {}
    labels = {LABEL_WORKFLOW: resource.label_value(meta["name"]), LABEL_TASK: task.name, LABEL_ATTEMPT: str(attempt),
              "app.kubernetes.io/managed-by": "ferry"}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": scheduler.pod_name(meta["name"], task.name, attempt),
            "namespace": meta["namespace"],
            "labels": labels,
            "finalizers": [RESULT_FINALIZER],
            "ownerReferences": [{"apiVersion": resource.API_VERSION, "kind": resource.KIND, "name": meta["name"],
                                 "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": {
            "restartPolicy": "Never",
            "serviceAccountName": task.service_account_name or config.task_service_account or "default",
            "automountServiceAccountToken": bool(task.service_account_name),
            "terminationGracePeriodSeconds": config.upload_grace_seconds,
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "initContainers": init,
            "containers": [main],
            "volumes": [*({"name": v, "emptyDir": scratch if v != "ferry-runtime" else {}}
                          for v in ("ferry-inputs", "ferry-outputs", "ferry-runtime", "ferry-tmp")),
                        *([{"name": "ferry-credentials", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}]
                          if scoped else []),
                        *({"name": f"secret-{i}", "secret": {"secretName": s}} for i, s in enumerate(task.secrets)),
                        *task.volumes],
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
            "namespace": meta["namespace"],
            "labels": {LABEL_WORKFLOW: resource.label_value(meta["name"]), "app.kubernetes.io/managed-by": "ferry",
                       "app.kubernetes.io/component": "artifact-cleanup"},
            "finalizers": [RESULT_FINALIZER],
            "ownerReferences": [{"apiVersion": resource.API_VERSION, "kind": resource.KIND, "name": meta["name"],
                                 "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}],
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
                "volumeMounts": [{"name": "ferry-tmp", "mountPath": "/tmp"}],
                "resources": config.runtime_resources.dump(),
                "securityContext": {**HARDENED, "runAsUser": RUNTIME_USER, "runAsNonRoot": True},
                "terminationMessagePolicy": "FallbackToLogsOnError"}],
            "volumes": [{"name": "ferry-tmp", "emptyDir": {}}],
        },
    }
