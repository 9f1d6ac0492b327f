"""The newest body of each running Workflow the operator has seen, from its watch and from the
answers to its own status writes, so a reconciliation starts without a GET.

Only ever a hint: every status write is guarded by the body's resourceVersion, and a conflict
(someone wrote since) reads the Workflow afresh. Of finished workflows only the uid and the pods
of tasks still running are kept: their pods' last events (their release) ask nothing of the API
server, and pods still held can be let go from the index alone.
"""

from __future__ import annotations

from ferry import scheduler

Key = tuple[str, str]
_bodies: dict[Key, dict] = {}
_finished: dict[Key, tuple[str, frozenset[str]]] = {}
"""Finished workflows: uid, and the pods of tasks its status still has running (a failed one's, being stopped)."""


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


def offer(body: dict) -> bool:
    """Keep ``body`` if it is newer than what is known (forget the workflow if it is finished);
    whether it was."""
    if not newer(body, _bodies.get(key(body))):
        return False
    if (body.get("status") or {}).get("phase") in scheduler.DONE:
        _bodies.pop(key(body), None)
        tasks = (body.get("status") or {}).get("tasks") or {}
        _finished[key(body)] = (body["metadata"].get("uid", ""), frozenset(
            task.get("podName") for task in tasks.values() if task.get("phase") == "Running" and task.get("podName")))
    else:
        _bodies[key(body)] = body
    return True


def get(namespace: str, name: str) -> dict | None:
    return _bodies.get((namespace, name))


def known() -> list[Key]:
    """The running workflows known."""
    return list(_bodies)


def finished(namespace: str, name: str) -> tuple[str, frozenset[str]] | None:
    """The uid of the workflow and the pods its status still has running, when it was last seen
    finished (until it is deleted)."""
    return _finished.get((namespace, name))


def finished_keys() -> list[Key]:
    return list(_finished)


def forget(namespace: str, name: str) -> None:
    """A deleted workflow: a new one may take its name."""
    _bodies.pop((namespace, name), None)
    _finished.pop((namespace, name), None)
