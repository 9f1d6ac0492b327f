"""What the operator deletes of finished work, and when. Pure functions: the handlers call the API.

- A finished Workflow is deleted ``ttlSecondsAfterFinished`` (its own, else the operator's
  default; none by default) after ``status.finishedAt``; its pods go with it through their owner
  references. ``due`` is a deadline like ``scheduler.next_deadline``'s: the handlers arm a wake-up
  for it, nothing polls.
- ``podRetention`` deletes task pods earlier, each when it is released (``pods.releasable``): only
  once its attempt's end is recorded in status, so a result is never lost with its pod.
"""

from __future__ import annotations

import datetime
from collections.abc import Collection

from ferry.api import resource, scheduler


def ttl(own: int | None, default: int | None) -> int | None:
    """The workflow's own TTL, else the operator's default; None: it stays until deleted."""
    return own if own is not None else default


def due(finished_at: str | None, seconds: int | None) -> datetime.datetime | None:
    """When a workflow that finished at ``finished_at`` is deleted (None: never)."""
    if finished_at is None or seconds is None:
        return None
    return scheduler.parse_time(finished_at) + datetime.timedelta(seconds=seconds)


def succeeded_pods(status: resource.WorkflowStatus) -> frozenset[str]:
    """The pods of attempts that succeeded: each succeeded task's last one (every earlier attempt
    of a task failed, or it would not have been retried)."""
    return frozenset(ts.pod_name for ts in status.tasks.values()
                     if ts.phase == resource.Phase.SUCCEEDED and ts.pod_name)


def deletes(policy: resource.PodRetention | str, pod: dict, succeeded: Collection[str]) -> bool:
    """Whether the released ``pod`` (its attempt's end recorded) is deleted now. ``policy`` may be
    the spec's text; one this operator does not know keeps the pod rather than guess."""
    if pod["metadata"].get("deletionTimestamp"):
        return False
    if policy == resource.PodRetention.KEEP_NONE:
        return True
    return policy == resource.PodRetention.KEEP_FAILED and pod["metadata"]["name"] in succeeded
