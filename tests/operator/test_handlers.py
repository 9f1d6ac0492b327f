"""The handlers' scheduling of reconciliations, with the reconciliation itself replaced: event
handlers never wait for one, requests for one workflow are serialized and coalesced, and work left
running in the background reports its failures."""

from __future__ import annotations

import asyncio
import logging

import kopf
import pytest

from ferry import resource
from ferry_operator import handlers


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
