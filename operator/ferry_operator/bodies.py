"""The newest body of each running Workflow the operator has seen, from its watch and from the
answers to its own status writes, so a reconciliation starts without a GET.

Only ever a hint: every status write is guarded by the body's resourceVersion, and a conflict
(someone wrote since) reads the Workflow afresh. Of finished workflows only a few fields are kept
(``Finished``): their pods' last events (their release) ask nothing of the API server, pods still
held can be let go (or deleted, as ``podRetention`` says) from the index alone, and a workflow
whose TTL has passed is deleted without reading it.
"""

from __future__ import annotations

from typing import NamedTuple

from ferry.api import resource, scheduler

Key = tuple[str, str]


class Finished(NamedTuple):
    """What is kept of a finished workflow."""

    uid: str
    running: frozenset[str]
    """The pods of tasks its status still has running (a failed one's, being stopped)."""
    finished_at: str | None
    ttl: int | None
    """Its own ``ttlSecondsAfterFinished``."""
    pod_retention: str
    """Its ``podRetention``, as the spec spells it."""
    succeeded: frozenset[str]
    """The pods of its succeeded attempts, with ``KeepFailed`` only (the only policy that asks)."""


def key(body: dict) -> Key:
    return body["metadata"]["namespace"], body["metadata"]["name"]


def _version(body: dict) -> int | None:
    try:
        return int(body["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return None


def newer(body: dict, than: dict | None) -> bool:
    """Whether ``body`` is a later state than ``than``. resourceVersions are etcd revisions in every
    API server there is, but the API calls them opaque: one that is not a number always wins
    (the worst case is a write refused as a conflict, then a fresh read)."""
    if than is None:
        return True
    mine, theirs = _version(body), _version(than)
    return mine is None or theirs is None or mine > theirs


def settled(body: dict) -> bool:
    """Whether the workflow has finished and nothing asks it to run again (``spec.rerun``)."""
    spec, status = body.get("spec") or {}, body.get("status") or {}
    return status.get("phase") in scheduler.DONE and not scheduler.rerun_asked(
        status.get("phase"), bool(spec.get("stop")), spec.get("rerun") or 0, status.get("rerun"))


def _finished_of(body: dict) -> Finished:
    spec, status = body.get("spec") or {}, body.get("status") or {}
    tasks = status.get("tasks") or {}
    pods_of = lambda phase: frozenset(task["podName"] for task in tasks.values()  # noqa: E731
                                      if task.get("phase") == phase and task.get("podName"))
    retention = spec.get("podRetention") or resource.PodRetention.KEEP_ALL.value
    return Finished(body["metadata"].get("uid", ""), pods_of("Running"), status.get("finishedAt"),
                    spec.get("ttlSecondsAfterFinished"), retention,
                    pods_of("Succeeded") if retention == resource.PodRetention.KEEP_FAILED else frozenset())


class Bodies:
    """The bodies known, of one operator (``handlers.State``)."""

    def __init__(self) -> None:
        self._bodies: dict[Key, dict] = {}
        self._finished: dict[Key, Finished] = {}
        self._specs: dict[Key, tuple[tuple[str, int], resource.WorkflowSpec]] = {}
        """Each running workflow's spec as read, with the uid and generation it was read at."""

    def offer(self, body: dict) -> bool:
        """Keep ``body`` if it is newer than what is known (forget the workflow if it is
        finished); whether it was."""
        if not newer(body, self._bodies.get(key(body))):
            return False
        if settled(body):
            self._bodies.pop(key(body), None)
            self._specs.pop(key(body), None)
            self._finished[key(body)] = _finished_of(body)
        else:
            self._finished.pop(key(body), None)
            self._bodies[key(body)] = body
        return True

    def spec(self, body: dict) -> resource.WorkflowSpec:
        """The body's spec, read once per generation of the workflow (only ``stop`` and ``rerun``
        change, and each change is a new generation): a reconciliation of a 1,000-task workflow, once
        per event of its pods, spent ~19 ms reading it again. Raises pydantic's ``ValidationError``."""
        meta = body["metadata"]
        if meta.get("generation") is None:
            return resource.WorkflowSpec.model_validate(body.get("spec") or {})
        at = (meta.get("uid", ""), meta["generation"])
        known = self._specs.get(key(body))
        if known is None or known[0] != at:
            known = self._specs[key(body)] = (at, resource.WorkflowSpec.model_validate(body.get("spec") or {}))
        return known[1]

    def get(self, namespace: str, name: str) -> dict | None:
        return self._bodies.get((namespace, name))

    def known(self) -> list[Key]:
        """The running workflows known."""
        return list(self._bodies)

    def finished(self, namespace: str, name: str) -> Finished | None:
        """What is kept of the workflow, when it was last seen finished (until it is deleted)."""
        return self._finished.get((namespace, name))

    def finished_keys(self) -> list[Key]:
        return list(self._finished)

    def forget(self, namespace: str, name: str) -> None:
        """A deleted workflow: a new one may take its name."""
        self._bodies.pop((namespace, name), None)
        self._finished.pop((namespace, name), None)
        self._specs.pop((namespace, name), None)
