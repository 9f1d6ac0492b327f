"""Reading a finished (or stuck) task pod: what happened to the attempt. Pure functions only."""

from __future__ import annotations

import dataclasses
import datetime
import json
import re

import pydantic

from ferry.api import taskpod
from ferry.core import errors
from ferry.api.resource import INFRASTRUCTURE_FAILURES, FailureReason as Reason
from ferry.api.scheduler import Attempt, parse_time

MAIN = "main"
FETCH = "ferry-fetch"
PUBLISH = "ferry-publish"
CREDENTIALS = "ferry-credentials"

FATAL_WAITING = {"InvalidImageName", "ErrImageNeverPull"}
"""Waiting reasons no retry can fix: the attempt fails at once."""
START_ERRORS = {"ErrImagePull", "ImagePullBackOff", "CreateContainerConfigError", "CreateContainerError"}
"""Waiting reasons that rarely fix themselves (a mistyped image, a missing Secret): the attempt fails
once the pod has been stuck on one for the start timeout. A slow pull (``ContainerCreating``) is
not one of them."""


_MOUNT_WAITS = re.compile(r"failed to sync \S+ cache"
                          r"|^Unable to attach or mount volumes: .*timed out waiting for the condition$")
"""FailedMount messages of a kubelet still waiting for its caches of Secrets and ConfigMaps to sync
with the API server; a missing Secret says ``secret "x" not found`` instead."""


def _mount_failure(messages: list[str], start_timeout_seconds: float | None) -> Attempt:
    if all(_MOUNT_WAITS.search(message) for message in messages):
        return _stalled(messages[0], start_timeout_seconds)
    cause = next(message for message in reversed(messages) if not _MOUNT_WAITS.search(message))
    return Attempt(True, message=f"FailedMount for more than {start_timeout_seconds:g}s: {cause}",
                   stop=True, reason=Reason.START_FAILED)


def _stalled(message: str, start_timeout_seconds: float | None) -> Attempt:
    """The node could not give the pod its Secrets (volumes, or a container's ``envFrom``) because
    its kubelet's caches wait for the API server: the infrastructure's failure, retried."""
    return Attempt(True, stop=True, reason=Reason.MOUNT_STALLED, message=(
        f"the node could not mount the pod's Secrets in {start_timeout_seconds:g}s: its kubelet could not "
        f"read them from the API server: {message}"))


def _statuses(pod: dict) -> dict[str, dict]:
    status = pod.get("status") or {}
    return {s["name"]: s for s in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]}


def _terminated(statuses: dict, name: str) -> dict | None:
    return (statuses.get(name) or {}).get("state", {}).get("terminated")


def _describe_failure(name: str, terminated: dict) -> str:
    text = f"{name} container exited with code {terminated.get('exitCode')} ({terminated.get('reason', 'Error')})"
    message = (terminated.get("message") or "").strip()
    return f"{text}: {message[-500:]}" if message else text


def stuck_starting(pod: dict, now: datetime.datetime, start_timeout_seconds: float) -> bool:
    """A scheduled pod still not running after the start timeout: worth reading its events for why
    (a missing Secret volume shows only as ``ContainerCreating`` in the pod itself)."""
    scheduled = any(c.get("type") == "PodScheduled" and c.get("status") == "True"
                    for c in (pod.get("status") or {}).get("conditions") or [])
    return (pod.get("status") or {}).get("phase") == "Pending" and scheduled and _age(pod, now) > start_timeout_seconds


def read_attempt(pod: dict, declared_outputs: list[str], now: datetime.datetime | None = None,
                 start_timeout_seconds: float | None = None, mount_failures: list[str] = (),
                 role: str | None = None) -> Attempt:
    """Succeeded only when the main container exited 0 and every declared output was published.

    A map's pod (``role``, ``scheduler.Unit.role``) reports otherwise: its split the item count
    (``items``) and the index it stored (``result``); an item pod and the gather at most a pointer,
    their outputs being in the store (each item's result, the gathered one). Each attempt's
    ``started`` is its pod's start (``status.startTime``: the kubelet took it), for a map unit's
    timeout: a pod waiting for room on the nodes is not running yet.

    A pod stuck on a start error (``START_ERRORS``, or unschedulable) for more than
    ``start_timeout_seconds`` since it was created fails the attempt, with the reason, and so does a
    pod ``stuck_starting`` with ``mount_failures`` (its FailedMount events' messages): the
    infrastructure's failure when they only say that the kubelet waited for the API server. A pod deleted
    by someone else (evicted, its node drained, ``kubectl delete``) that did not succeed lost its
    attempt to the infrastructure: the operator's own stops are recorded before it deletes.
    """
    attempt = _read_attempt(pod, declared_outputs, now, start_timeout_seconds, role)
    started = (pod.get("status") or {}).get("startTime")
    if started:
        attempt = dataclasses.replace(attempt, started=parse_time(started))
    if mount_failures and not attempt.finished:  # given only for a pod ``stuck_starting``
        return _mount_failure(list(mount_failures), start_timeout_seconds)
    deleted = (pod.get("metadata") or {}).get("deletionTimestamp")
    if deleted and attempt.finished and not attempt.succeeded and attempt.reason not in INFRASTRUCTURE_FAILURES:
        return dataclasses.replace(attempt, reason=Reason.POD_LOST, message=(
            f"the pod was deleted while the task ran (evicted, its node drained or lost, or deleted by hand): "
            f"{attempt.message}"))
    return attempt


def _read_attempt(pod: dict, declared_outputs: list[str], now: datetime.datetime | None,
                  start_timeout_seconds: float | None, role: str | None = None) -> Attempt:
    statuses = _statuses(pod)
    phase = (pod.get("status") or {}).get("phase")
    deleted = (pod.get("metadata") or {}).get("deletionTimestamp")
    if phase not in ("Succeeded", "Failed") and deleted and now and now > parse_time(deleted):
        # Its grace is over and no kubelet reported an end: its node is gone. The pod stays (Ferry's
        # finalizer) only so that a finished attempt is read; this one never finished.
        return Attempt(True, message="the pod was deleted before the task finished (its node was lost, or it "
                                     "was evicted)", reason=Reason.POD_LOST)
    issuer = _issuer_failure(statuses)
    if issuer and phase not in ("Succeeded", "Failed"):
        return Attempt(True, message=f"{CREDENTIALS}: {issuer}", stop=True,
                       reason=_reason(issuer, Reason.START_FAILED))
    if phase not in ("Succeeded", "Failed"):
        for name, status in statuses.items():
            waiting = status.get("state", {}).get("waiting") or {}
            if waiting.get("reason") in FATAL_WAITING:
                return Attempt(True, message=f"{name}: {waiting['reason']}: {waiting.get('message', '')}".strip(),
                               stop=True, reason=Reason.START_FAILED)
        stuck = _start_error(pod, statuses)
        if stuck and _age(pod, now) > (start_timeout_seconds if start_timeout_seconds is not None else float("inf")):
            where, reason, detail = stuck
            if reason == "CreateContainerConfigError" and _MOUNT_WAITS.search(detail):
                return _stalled(f"{where}{detail}", start_timeout_seconds)
            return Attempt(True, message=f"{where}{reason} for more than {start_timeout_seconds:g}s: {detail}".rstrip(": "),
                           stop=True, reason=Reason.START_FAILED)
        return Attempt(False, message=_waiting_message(statuses) or (stuck and f"{stuck[0]}{stuck[1]}: {stuck[2]}")
                       or _queued(pod))
    fetch = _terminated(statuses, FETCH)
    if fetch and fetch.get("exitCode") != 0:
        message = f"fetching inputs failed: {_describe_failure(FETCH, fetch)}"
        return Attempt(True, message=message, reason=_reason(message, Reason.FETCH_FAILED))
    main = _terminated(statuses, MAIN)
    if main is None:
        reason = (pod.get("status") or {}).get("reason") or "the pod failed before the task ran"
        return Attempt(True, message=f"{reason}: {(pod.get('status') or {}).get('message', '')}".rstrip(": "),
                       reason=Reason.POD_LOST if reason == "Evicted" else Reason.START_FAILED)
    if main.get("exitCode") != 0:
        # The task's own container: its message is the task's to write, so it names no infrastructure.
        reason = Reason.OOM_KILLED if main.get("reason") == "OOMKilled" else Reason.TASK_FAILED
        return Attempt(True, message=_describe_failure(MAIN, main), reason=reason)
    if role is not None:
        return _unit_result(role, _terminated(statuses, PUBLISH) if PUBLISH in statuses else main)
    if not declared_outputs:
        return Attempt(True, succeeded=True)
    # Container tasks publish from the sidecar; Python tasks from the main container itself.
    publisher = _terminated(statuses, PUBLISH) if PUBLISH in statuses else main
    result = _publish_result(publisher)
    if result is None and (publisher or {}).get("exitCode") == 137:
        return Attempt(True, message="the outputs were not published: the publisher was killed before it finished, "
                                     "at the end of the pod's grace period; raise the upload grace "
                                     "(FERRY_OPERATOR_UPLOAD_GRACE_SECONDS, chart operator.uploadGraceSeconds)",
                       reason=Reason.PUBLISH_FAILED)
    if result is None:
        return Attempt(True, message="the outputs were not published (the ferry-publish sidecar reported nothing)",
                       reason=Reason.PUBLISH_FAILED)
    if result.error:
        message = f"publishing outputs failed: {result.error}"
        return Attempt(True, message=message, reason=_reason(message, Reason.PUBLISH_FAILED))
    if result.result is not None:
        # Stored because too large to report: the runtime stores it only once every declared output
        # was published, and the pods that read it check its digest. The operator never reads it.
        return Attempt(True, succeeded=True, result=result.result,
                       message="outputs reused from the cache" if result.cached else None)
    missing = [name for name in declared_outputs if name not in result.outputs]
    if missing:
        return Attempt(True, message=f"declared outputs were not published: {', '.join(missing)}",
                       reason=Reason.PUBLISH_FAILED)
    return Attempt(True, succeeded=True, outputs=result.outputs,
                   message="outputs reused from the cache" if result.cached else None)


def _unit_result(role: str, publisher: dict | None) -> Attempt:
    """How a map's pod that ran to its end went, from what its publisher reported: the split its
    item count and index; an item its error, if any (its result is stored); the gather a pointer."""
    result = _publish_result(publisher)
    if result is None and (publisher or {}).get("exitCode") not in (0, None):
        return Attempt(True, reason=Reason.PUBLISH_FAILED,
                       message=f"the item's result was not stored: {_describe_failure(PUBLISH, publisher)}")
    result = result or taskpod.PublishResult()
    if result.error:  # the main container exited 0: its publishing failed
        message = f"publishing the {role}'s result failed: {result.error}"
        return Attempt(True, message=message, reason=_reason(message, Reason.PUBLISH_FAILED))
    if role == "split":
        count = result.outputs.get("items")
        if count is None or type(count.value) is not int or result.result is None:
            return Attempt(True, message="the split reported no item count and index", reason=Reason.PUBLISH_FAILED)
        return Attempt(True, succeeded=True, outputs={"items": count}, result=result.result)
    return Attempt(True, succeeded=True, result=result.result,
                   message="outputs reused from the cache" if result.cached else None)


def deadline(pod: dict, start_timeout_seconds: float) -> datetime.datetime | None:
    """When ``read_attempt`` may judge ``pod`` otherwise with no change to the pod: a pod not yet
    running reaches the start timeout; a deleted one, the end of its grace."""
    meta, phase = pod.get("metadata") or {}, (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        return None
    if meta.get("deletionTimestamp"):
        return parse_time(meta["deletionTimestamp"])
    if phase in (None, "Pending") and meta.get("creationTimestamp"):
        return parse_time(meta["creationTimestamp"]) + datetime.timedelta(seconds=start_timeout_seconds)
    return None


def _issuer_failure(statuses: dict) -> str | None:
    """Why ``ferry-credentials`` could not issue the pod's credentials, once it failed (the kubelet
    restarts it, so the failure is in its last state): nothing in the pod can work without them."""
    status = statuses.get(CREDENTIALS) or {}
    for state in (status.get("state") or {}, status.get("lastState") or {}):
        ended = state.get("terminated")
        if ended and ended.get("exitCode") not in (0, None):
            return (ended.get("message") or "").strip()[-500:] or f"exited with code {ended.get('exitCode')}"
    return None


def _reason(message: str, default: Reason) -> Reason:
    """The store's outage, named by the error of Ferry's fetch or publish container, is the
    infrastructure's failure, not the task's."""
    return Reason.STORE_UNAVAILABLE if errors.StoreUnavailableError.__name__ in message else default


def _publish_result(terminated: dict | None) -> taskpod.PublishResult | None:
    if not terminated or not (terminated.get("message") or "").strip():
        return None
    try:
        return taskpod.PublishResult.model_validate(json.loads(terminated["message"]))
    except pydantic.ValidationError as error:  # what a Python task reports itself, a digest no pod would read
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        return taskpod.PublishResult(error=f"unreadable result: {where}: {problem['msg']}: "
                                           f"{terminated['message'][:200]}")
    except ValueError:
        return taskpod.PublishResult(error=f"unreadable result: {terminated['message'][:200]}")


def _start_error(pod: dict, statuses: dict) -> tuple[str, str, str] | None:
    """(container prefix, reason, message) of what keeps the pod from starting, if it is an error."""
    for name, status in statuses.items():
        waiting = status.get("state", {}).get("waiting") or {}
        if waiting.get("reason") in START_ERRORS:
            return f"{name}: ", waiting["reason"], waiting.get("message", "")
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if (condition.get("type") == "PodScheduled" and condition.get("status") == "False"
                and not waits_for_capacity(condition.get("message", ""))):
            return "", condition.get("reason") or "Unschedulable", condition.get("message", "")
    return None


_CAPACITY = re.compile(r"\d+ (Insufficient \S+|Too many pods)")


def _queued(pod: dict) -> str | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return f"waiting for room on the nodes: {condition.get('message', '')}".rstrip(": ")
    return None


def waits_for_capacity(message: str) -> bool:
    """Whether the scheduler's message says only that the nodes are full (``0/3 nodes are available:
    2 Insufficient cpu, 1 Too many pods. preemption: ...``): a queue, as for a Job, not an error;
    nodes that can never take the pod (selectors, affinity, taints) are."""
    first = re.search(r"nodes are available: (.*?)\.(?: |$)", message)
    reasons = [r.strip() for r in first.group(1).split(",")] if first else []
    return bool(reasons) and all(_CAPACITY.fullmatch(r) for r in reasons)


def _age(pod: dict, now: datetime.datetime | None) -> float:
    created = (pod.get("metadata") or {}).get("creationTimestamp")
    if now is None or not created:
        return 0.0
    return (now - parse_time(created)).total_seconds()


def _waiting_message(statuses: dict) -> str | None:
    for name, status in statuses.items():
        waiting = status.get("state", {}).get("waiting") or {}
        if waiting.get("reason") not in (None, "PodInitializing", "ContainerCreating"):
            return f"{name}: {waiting['reason']}: {waiting.get('message', '')}".rstrip(": ")
    return None


CLEANUP = "ferry-cleanup"
"""The container of a deleted workflow's cleanup pod (``pods.build_cleanup_pod``)."""


def cleanup_outcome(pod: dict, now: datetime.datetime, start_timeout_seconds: float) -> tuple[str, str, str] | None:
    """The Event (type, reason, message) that reports how a cleanup pod ended; None while it runs.
    One that cannot start (its image, its Secret) has failed too: the Workflow must not wait for it."""
    statuses = _statuses(pod)
    terminated = _terminated(statuses, CLEANUP)
    if terminated is None:
        found = _start_error(pod, statuses)
        if found is None and not stuck_starting(pod, now, start_timeout_seconds):
            return None
        why = f"{found[1]}: {found[2]}" if found else "it did not start in time"
        return "Warning", "ArtifactCleanupFailed", f"the cleanup pod could not run ({why}); the objects stay: ferry gc"
    message = (terminated.get("message") or "").strip()
    if terminated.get("exitCode") == 0:
        return "Normal", "ArtifactsDeleted", message or "the workflow's objects were deleted"
    return "Warning", "ArtifactCleanupFailed", f"{_describe_failure(CLEANUP, terminated)}; the objects stay: ferry gc"
