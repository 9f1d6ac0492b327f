"""Reading a finished (or stuck) task pod: what happened to the attempt. Pure functions only."""

from __future__ import annotations

import json

import pydantic

from ferry import taskpod
from ferry.scheduler import Attempt

MAIN = "main"
FETCH = "ferry-fetch"
PUBLISH = "ferry-publish"

FATAL_WAITING = {"InvalidImageName", "ErrImageNeverPull"}
"""Waiting reasons no retry can fix; other waiting states are reported and left to the timeout."""


def _statuses(pod: dict) -> dict[str, dict]:
    status = pod.get("status") or {}
    return {s["name"]: s for s in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]}


def _terminated(statuses: dict, name: str) -> dict | None:
    return (statuses.get(name) or {}).get("state", {}).get("terminated")


def _describe_failure(name: str, terminated: dict) -> str:
    text = f"{name} container exited with code {terminated.get('exitCode')} ({terminated.get('reason', 'Error')})"
    message = (terminated.get("message") or "").strip()
    return f"{text}: {message[-500:]}" if message else text


def read_attempt(pod: dict, declared_outputs: list[str]) -> Attempt:
    """Succeeded only when the main container exited 0 and every declared output was published."""
    statuses = _statuses(pod)
    phase = (pod.get("status") or {}).get("phase")
    if phase not in ("Succeeded", "Failed"):
        for name, status in statuses.items():
            waiting = status.get("state", {}).get("waiting") or {}
            if waiting.get("reason") in FATAL_WAITING:
                return Attempt(True, message=f"{name}: {waiting['reason']}: {waiting.get('message', '')}".strip())
        return Attempt(False, message=_waiting_message(statuses))
    fetch = _terminated(statuses, FETCH)
    if fetch and fetch.get("exitCode") != 0:
        return Attempt(True, message=f"fetching inputs failed: {_describe_failure(FETCH, fetch)}")
    main = _terminated(statuses, MAIN)
    if main is None:
        reason = (pod.get("status") or {}).get("reason") or "the pod failed before the task ran"
        return Attempt(True, message=f"{reason}: {(pod.get('status') or {}).get('message', '')}".rstrip(": "))
    if main.get("exitCode") != 0:
        return Attempt(True, message=_describe_failure(MAIN, main))
    if not declared_outputs:
        return Attempt(True, succeeded=True)
    # Container tasks publish from the sidecar; Python tasks from the main container itself.
    result = _publish_result(_terminated(statuses, PUBLISH) if PUBLISH in statuses else main)
    if result is None:
        return Attempt(True, message="the outputs were not published (the ferry-publish sidecar reported nothing)")
    if result.error:
        return Attempt(True, message=f"publishing outputs failed: {result.error}")
    missing = [name for name in declared_outputs if name not in result.outputs]
    if missing:
        return Attempt(True, message=f"declared outputs were not published: {', '.join(missing)}")
    return Attempt(True, succeeded=True, outputs=result.outputs,
                   message="outputs reused from the cache" if result.cached else None)


def _publish_result(terminated: dict | None) -> taskpod.PublishResult | None:
    if not terminated or not (terminated.get("message") or "").strip():
        return None
    try:
        return taskpod.PublishResult.model_validate(json.loads(terminated["message"]))
    except (ValueError, pydantic.ValidationError):
        return taskpod.PublishResult(error=f"unreadable result: {terminated['message'][:200]}")


def _waiting_message(statuses: dict) -> str | None:
    for name, status in statuses.items():
        waiting = status.get("state", {}).get("waiting") or {}
        if waiting.get("reason") not in (None, "PodInitializing", "ContainerCreating"):
            return f"{name}: {waiting['reason']}: {waiting.get('message', '')}".rstrip(": ")
    return None
