"""The handlers' scheduling of reconciliations, with the reconciliation itself replaced: event
handlers never wait for one, requests for one workflow are serialized and coalesced, and work left
running in the background reports its failures."""

from __future__ import annotations

import asyncio
import datetime
import logging

import kopf
import pytest

from ferry.api import resource, scheduler
from ferry_operator import bodies, handlers, pods
from ferry_operator.config import Config


def pod_event(name: str, workflow: str) -> kopf.Body:
    return kopf.Body({"metadata": {"name": name, "namespace": "team-a",
                                   "ownerReferences": [{"kind": resource.KIND, "name": workflow}]},
                      "status": {"phase": "Succeeded"}})


@pytest.fixture
def reconciliations(monkeypatch):
    """Replace ``reconcile_workflow`` by one that records its calls and waits until ``done`` is set."""
    calls: list[tuple[str, str]] = []
    done = asyncio.Event()

    async def reconcile(namespace: str, name: str) -> None:
        calls.append((namespace, name))
        await done.wait()

    monkeypatch.setattr(handlers, "reconcile_workflow", reconcile)
    return calls, done


def run(scenario) -> None:
    """Run a scenario; one that would wait forever fails instead."""
    asyncio.run(asyncio.wait_for(scenario, timeout=10))


async def _settle() -> None:
    while handlers._background:
        await asyncio.gather(*handlers._background)


def test_a_pod_event_is_handled_without_waiting_for_the_reconciliation(reconciliations):
    """Kopf handles one pod's events in order: a handler waiting for a reconciliation would hold back
    the pod's next event (its end, say), and the index with it."""
    calls, done = reconciliations

    async def scenario() -> None:
        done.clear()
        await asyncio.wait_for(handlers.pod_changed(namespace="team-a", name="wf-a-1", body=pod_event("wf-a-1", "wf")),
                               timeout=5)  # returns while the reconciliation it asked for is still running
        await asyncio.sleep(0)
        assert calls == [("team-a", "wf")]
        done.set()
        await _settle()

    run(scenario())


def test_requests_during_a_reconciliation_make_exactly_one_more(reconciliations):
    calls, done = reconciliations

    async def scenario() -> None:
        done.clear()
        for n in range(5):  # the first starts at once; the others arrive while it runs
            await handlers.pod_changed(namespace="team-a", name=f"wf-a-{n}", body=pod_event(f"wf-a-{n}", "wf"))
            await asyncio.sleep(0)
        assert calls == [("team-a", "wf")]
        done.set()
        await _settle()
        assert calls == [("team-a", "wf")] * 2

    run(scenario())


def test_background_work_that_fails_is_logged(caplog):
    async def failing() -> None:
        raise RuntimeError("boom")

    async def scenario() -> None:
        handlers._spawn(failing())
        await asyncio.gather(*handlers._background, return_exceptions=True)
        await asyncio.sleep(0)

    with caplog.at_level(logging.ERROR, logger="ferry.operator"):
        asyncio.run(scenario())
    assert any("background work failed" in r.message and r.exc_info and "boom" in str(r.exc_info[1])
               for r in caplog.records)


def test_pods_stuck_starting_share_one_reading_of_their_namespaces_events(monkeypatch):
    """One LIST of events per namespace and period, however many pods wait to start there."""
    reads: list[str] = []

    def mount_failures(namespace: str) -> dict[str, list[str]]:
        reads.append(namespace)
        return {"uid-1": ["MountVolume.SetUp failed: secret \"creds\" not found"]}

    monkeypatch.setattr(handlers.kube, "mount_failures", mount_failures)
    monkeypatch.setattr(handlers, "_mount_checks", {})

    async def scenario() -> None:
        found = await asyncio.gather(*(handlers._mount_failures("team-a", f"uid-{n}") for n in range(50)))
        assert found[1] == ["MountVolume.SetUp failed: secret \"creds\" not found"] and found[2] == []
        assert await handlers._mount_failures("team-a", "uid-1") == found[1]  # read again only after a while
        await handlers._mount_failures("team-b", "uid-1")

    run(scenario())
    assert reads == ["team-a", "team-b"]


# -- retention: finished workflows past their TTL, and pods their podRetention lets go -------------

def finished_workflow(name: str, finished_ago: float, spec: dict | None = None, tasks: dict | None = None) -> dict:
    finished_at = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=finished_ago)
    return {"metadata": {"namespace": "team-a", "name": name, "uid": f"uid-{name}", "resourceVersion": "7"},
            "spec": spec or {}, "status": {"phase": "Succeeded", "finishedAt": scheduler.timestamp(finished_at),
                                           "tasks": tasks or {}}}


def held_pod(name: str, workflow: str) -> dict:
    return {"metadata": {"name": name, "uid": f"uid-{name}", "finalizers": [pods.RESULT_FINALIZER],
                         "ownerReferences": [{"kind": resource.KIND, "name": workflow, "uid": f"uid-{workflow}"}]},
            "status": {"phase": "Succeeded"}}


@pytest.fixture
def api(monkeypatch):
    """The operator's state emptied, a configuration with no default TTL, and the API calls it makes
    recorded instead of made."""
    calls: list[tuple] = []
    monkeypatch.setattr(handlers, "_config", Config(raw_data_prefix="s3://bucket/ferry"))
    monkeypatch.setattr(handlers, "_task_pods", {})
    monkeypatch.setattr(handlers, "_unseen", set())
    monkeypatch.setattr(handlers, "_deleting", {})
    monkeypatch.setattr(handlers, "_wakeups", {})
    monkeypatch.setattr(handlers.kube, "delete_workflow", lambda *args: calls.append(("delete workflow", *args)))
    monkeypatch.setattr(handlers.kube, "delete_pod", lambda namespace, name: calls.append(("delete pod", name)))
    monkeypatch.setattr(handlers.kube, "patch_pod", lambda namespace, name, patch: calls.append(("release pod", name)))
    yield calls
    for handle in handlers._wakeups.values():
        handle.cancel()
    bodies._bodies.clear()
    bodies._finished.clear()


def test_a_finished_workflow_past_its_ttl_is_deleted_and_one_before_it_wakes_then(api, monkeypatch):
    bodies.offer(finished_workflow("old", finished_ago=10, spec={"ttlSecondsAfterFinished": 5}))
    bodies.offer(finished_workflow("young", finished_ago=0, spec={"ttlSecondsAfterFinished": 3600}))
    bodies.offer(finished_workflow("kept", finished_ago=10**6))  # no TTL, and none by default

    async def scenario() -> None:
        for name in ("old", "young", "kept"):
            await handlers.reconcile_workflow("team-a", name)
        armed = handlers._wakeups[("team-a", "young")]
        assert 3590 < armed.when() - asyncio.get_running_loop().time() <= 3600 + handlers.DEADLINE_MARGIN_SECONDS

    run(scenario())
    assert api == [("delete workflow", "team-a", "old", "uid-old")]  # by uid: never a same-named successor
    assert set(handlers._wakeups) == {("team-a", "young")}

    monkeypatch.setattr(handlers, "_config", Config(raw_data_prefix="s3://bucket/ferry", ttl_seconds_after_finished=60))
    run(handlers.reconcile_workflow("team-a", "kept"))  # the operator's default applies to it
    assert api[-1] == ("delete workflow", "team-a", "kept", "uid-kept")


def test_a_finished_workflow_with_a_ttl_seen_at_the_operator_s_start_is_reconciled(reconciliations, api):
    calls, done = reconciliations

    async def scenario() -> None:
        done.set()
        for name, spec in (("timed", {"ttlSecondsAfterFinished": 60}), ("kept", {})):
            body = finished_workflow(name, finished_ago=1, spec=spec)
            await handlers.workflow_changed(type=None, body=kopf.Body(body), namespace="team-a", name=name,
                                            uid=body["metadata"]["uid"], status=body["status"])
        await _settle()

    run(scenario())
    assert calls == [("team-a", "timed")]  # which arms its wake-up (or deletes it); "kept" needs nothing


def test_pods_the_retention_deletes_are_deleted_before_they_are_let_go(api):
    """Deleted first: released first, a pod would leave the operator's index and never be deleted
    if the operator stopped in between. Held, it is deleted and let go by the next reconciliation."""
    held = [held_pod("wf-ok-1", "wf"), held_pod("wf-bad-1", "wf")]
    handlers._task_pods[("team-a", "wf")] = held
    run(handlers._release("team-a", held, lambda pod: pod["metadata"]["name"] == "wf-ok-1"))
    assert api == [("delete pod", "wf-ok-1"), ("release pod", "wf-ok-1"), ("release pod", "wf-bad-1")]


def test_a_finished_workflow_s_held_pods_are_let_go_as_its_pod_retention_says(api):
    """A release that failed after the last status write (or an operator restarted then) is done
    from what is remembered of the finished workflow: its succeeded attempts' pods are deleted."""
    tasks = {"ok": {"phase": "Succeeded", "podName": "wf-ok-1"}, "bad": {"phase": "Failed", "podName": "wf-bad-1"}}
    bodies.offer(finished_workflow("wf", finished_ago=1, spec={"podRetention": "KeepFailed"}, tasks=tasks))
    handlers._task_pods[("team-a", "wf")] = [held_pod("wf-ok-1", "wf"), held_pod("wf-bad-1", "wf")]
    run(handlers.reconcile_workflow("team-a", "wf"))
    assert sorted(api) == [("delete pod", "wf-ok-1"), ("release pod", "wf-bad-1"), ("release pod", "wf-ok-1")]


# -- deletion: artifactCleanup runs a cleanup pod before the workflow may go ----------------------

def test_a_deleted_workflow_with_artifact_cleanup_goes_once_its_cleanup_pod_ended(api, monkeypatch):
    deleting = finished_workflow("wf", finished_ago=1, spec={"artifactCleanup": "OnDeletion"})
    deleting["metadata"].update(deletionTimestamp="2026-01-01T00:00:00Z", finalizers=[handlers.WORKFLOW_FINALIZER])
    events, created, reads = [], [], []
    monkeypatch.setattr(handlers.kube, "get_workflow", lambda namespace, name: reads.append(name) or deleting)
    monkeypatch.setattr(handlers.kube, "list_workflows", lambda namespace: [deleting])
    monkeypatch.setattr(handlers.kube, "create_pod", lambda pod: created.append(pod))
    monkeypatch.setattr(handlers.kube, "patch_workflow", lambda namespace, name, ops, version=None:
                        api.append(("patch workflow", name, ops[-1]["op"])) or {"metadata": {}})
    monkeypatch.setattr(handlers.kopf, "event", lambda body, type, reason, message: events.append((reason, message)))
    cleaner = {"metadata": {"name": "wf-cleanup-0", "uid": "uid-c", "finalizers": [pods.RESULT_FINALIZER],
                            "creationTimestamp": scheduler.timestamp(datetime.datetime.now(datetime.timezone.utc)),
                            "ownerReferences": [{"kind": resource.KIND, "name": "wf", "uid": "uid-wf"}]},
               "status": {"phase": "Running", "containerStatuses": [{"name": "ferry-cleanup", "state": {"running": {}}}]}}

    async def changed() -> None:  # as Kopf calls it: the workflow's event, then each of its pods'
        await handlers.workflow_changed(type="MODIFIED", body=kopf.Body(deleting), namespace="team-a", name="wf",
                                        uid="uid-wf", status=deleting["status"])
        await _settle()

    async def scenario() -> None:
        await changed()
        assert [pod["metadata"]["name"] for pod in created] == ["wf-cleanup-0"] and api == []
        handlers._task_pods[("team-a", "wf")] = [cleaner]  # its events: running, then ended
        handlers._unseen.clear()
        await handlers.pod_changed(namespace="team-a", name="wf-cleanup-0", body=kopf.Body(cleaner))
        await _settle()
        assert api == [] and len(created) == 1, "held while it runs; not started twice"
        cleaner["status"] = {"phase": "Succeeded", "containerStatuses": [{"name": "ferry-cleanup", "state": {
            "terminated": {"exitCode": 0, "message": "deleted 3 objects (9 bytes); kept 0 still referenced"}}}]}
        await handlers.pod_changed(namespace="team-a", name="wf-cleanup-0", body=kopf.Body(cleaner))
        await _settle()

    run(scenario())
    assert events == [("ArtifactsDeleted", "deleted 3 objects (9 bytes); kept 0 still referenced")]
    assert api == [("release pod", "wf-cleanup-0"), ("patch workflow", "wf", "remove")], api
    # Its body came with its event: none of its pods' events reads it again (1,000 pods, 1,000 GETs).
    assert reads == [] and ("team-a", "wf") not in handlers._deleting
