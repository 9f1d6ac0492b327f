"""The handlers' scheduling of reconciliations, with the reconciliation itself replaced: event
handlers never wait for one, requests for one workflow are serialized and coalesced, and work left
running in the background reports its failures."""

from __future__ import annotations

import asyncio
import json
import datetime
import logging

import kopf
import pytest

from ferry.api import resource, scheduler
from ferry_operator import handlers, pods
from ferry_operator.config import Config


def pod_event(name: str, workflow: str) -> kopf.Body:
    return kopf.Body({"metadata": {"name": name, "namespace": "team-a",
                                   "ownerReferences": [{"kind": resource.KIND, "name": workflow}]},
                      "status": {"phase": "Succeeded"}})


class FakeAPI:
    """The API calls the handlers make, recorded in ``calls`` instead of made (a test sets the others
    it expects on its instance)."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def delete_workflow(self, *args) -> None:
        self.calls.append(("delete workflow", *args))

    def delete_pod(self, namespace: str, name: str) -> None:
        self.calls.append(("delete pod", name))

    def patch_pod(self, namespace: str, name: str, patch: list[dict]) -> None:
        self.calls.append(("release pod", name))


@pytest.fixture
def state():
    """The operator's state as its start makes it, with a configuration with no default TTL, an
    empty index and a fake API."""
    made = handlers.State(Config(raw_data_prefix="s3://bucket/ferry"), FakeAPI(), {})
    yield made
    for handle in made.wakeups.values():
        handle.cancel()


@pytest.fixture
def memo(state):
    return kopf.Memo(state=state)


@pytest.fixture
def reconciliations(monkeypatch):
    """Replace ``reconcile_workflow`` by one that records its calls and waits until ``done`` is set."""
    calls: list[tuple[str, str]] = []
    done = asyncio.Event()

    async def reconcile(state: handlers.State, namespace: str, name: str) -> None:
        calls.append((namespace, name))
        await done.wait()

    monkeypatch.setattr(handlers, "reconcile_workflow", reconcile)
    return calls, done


def run(scenario) -> None:
    """Run a scenario; one that would wait forever fails instead."""
    asyncio.run(asyncio.wait_for(scenario, timeout=10))


async def _settle(state: handlers.State) -> None:
    while state.background:
        await asyncio.gather(*state.background)


def test_a_pod_event_is_handled_without_waiting_for_the_reconciliation(reconciliations, state, memo):
    """Kopf handles one pod's events in order: a handler waiting for a reconciliation would hold back
    the pod's next event (its end, say), and the index with it."""
    calls, done = reconciliations

    async def scenario() -> None:
        done.clear()
        # It returns while the reconciliation it asked for is still running.
        await asyncio.wait_for(handlers.pod_changed(namespace="team-a", name="wf-a-1", body=pod_event("wf-a-1", "wf"),
                                                    memo=memo), timeout=5)
        await asyncio.sleep(0)
        assert calls == [("team-a", "wf")]
        done.set()
        await _settle(state)

    run(scenario())


def test_requests_during_a_reconciliation_make_exactly_one_more(reconciliations, state, memo):
    calls, done = reconciliations

    async def scenario() -> None:
        done.clear()
        for n in range(5):  # the first starts at once; the others arrive while it runs
            await handlers.pod_changed(namespace="team-a", name=f"wf-a-{n}", body=pod_event(f"wf-a-{n}", "wf"),
                                       memo=memo)
            await asyncio.sleep(0)
        assert calls == [("team-a", "wf")]
        done.set()
        await _settle(state)
        assert calls == [("team-a", "wf")] * 2

    run(scenario())


def test_background_work_that_fails_is_logged(caplog, state):
    async def failing() -> None:
        raise RuntimeError("boom")

    async def scenario() -> None:
        handlers._spawn(state, failing())
        await asyncio.gather(*state.background, return_exceptions=True)
        await asyncio.sleep(0)

    with caplog.at_level(logging.ERROR, logger="ferry.operator"):
        asyncio.run(scenario())
    assert any("background work failed" in r.message and r.exc_info and "boom" in str(r.exc_info[1])
               for r in caplog.records)


def test_pods_stuck_starting_share_one_reading_of_their_namespaces_events(state):
    """One LIST of events per namespace and period, however many pods wait to start there."""
    reads: list[str] = []

    def mount_failures(namespace: str) -> dict[str, list[str]]:
        reads.append(namespace)
        return {"uid-1": ["MountVolume.SetUp failed: secret \"creds\" not found"]}

    state.api.mount_failures = mount_failures

    async def scenario() -> None:
        found = await asyncio.gather(*(handlers._mount_failures(state, "team-a", f"uid-{n}") for n in range(50)))
        assert found[1] == ["MountVolume.SetUp failed: secret \"creds\" not found"] and found[2] == []
        assert await handlers._mount_failures(state, "team-a", "uid-1") == found[1]  # read again only after a while
        await handlers._mount_failures(state, "team-b", "uid-1")

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
def api(state):
    """The API calls the operator makes."""
    return state.api.calls


def test_a_finished_workflow_past_its_ttl_is_deleted_and_one_before_it_wakes_then(api, state):
    state.bodies.offer(finished_workflow("old", finished_ago=10, spec={"ttlSecondsAfterFinished": 5}))
    state.bodies.offer(finished_workflow("young", finished_ago=0, spec={"ttlSecondsAfterFinished": 3600}))
    state.bodies.offer(finished_workflow("kept", finished_ago=10**6))  # no TTL, and none by default

    async def scenario() -> None:
        for name in ("old", "young", "kept"):
            await handlers.reconcile_workflow(state, "team-a", name)
        armed = state.wakeups[("team-a", "young")]
        assert 3590 < armed.when() - asyncio.get_running_loop().time() <= 3600 + handlers.DEADLINE_MARGIN_SECONDS

    run(scenario())
    assert api == [("delete workflow", "team-a", "old", "uid-old")]  # by uid: never a same-named successor
    assert set(state.wakeups) == {("team-a", "young")}

    state.config = Config(raw_data_prefix="s3://bucket/ferry", ttl_seconds_after_finished=60)
    run(handlers.reconcile_workflow(state, "team-a", "kept"))  # the operator's default applies to it
    assert api[-1] == ("delete workflow", "team-a", "kept", "uid-kept")


def test_a_finished_workflow_with_a_ttl_seen_at_the_operator_s_start_is_reconciled(reconciliations, state, memo):
    calls, done = reconciliations

    async def scenario() -> None:
        done.set()
        for name, spec in (("timed", {"ttlSecondsAfterFinished": 60}), ("kept", {})):
            body = finished_workflow(name, finished_ago=1, spec=spec)
            await handlers.workflow_changed(type=None, body=kopf.Body(body), namespace="team-a", name=name,
                                            uid=body["metadata"]["uid"], status=body["status"], memo=memo)
        await _settle(state)

    run(scenario())
    assert calls == [("team-a", "timed")]  # which arms its wake-up (or deletes it); "kept" needs nothing


def test_pods_the_retention_deletes_are_deleted_before_they_are_let_go(api, state):
    """Deleted first: released first, a pod would leave the operator's index and never be deleted
    if the operator stopped in between. Held, it is deleted and let go by the next reconciliation."""
    held = [held_pod("wf-ok-1", "wf"), held_pod("wf-bad-1", "wf")]
    state.task_pods[("team-a", "wf")] = held
    run(handlers._release(state, "team-a", held, lambda pod: pod["metadata"]["name"] == "wf-ok-1"))
    assert api == [("delete pod", "wf-ok-1"), ("release pod", "wf-ok-1"), ("release pod", "wf-bad-1")]


def test_a_pod_deleted_and_released_is_not_released_again_on_its_deletion_s_event(api, state, memo, monkeypatch):
    """Deleting then releasing makes two events; the first (deletionTimestamp set, the finalizer
    still on) reached the index while the release was still to come, and a reconciliation then
    deleted and patched the pod a second time: at a map's scale, ~1 extra request per item."""
    monkeypatch.setattr(handlers, "request", lambda *args: asyncio.sleep(0))
    held = held_pod("wf-ok-1", "wf")
    state.task_pods[("team-a", "wf")] = [held]
    deleting = lambda pod: True  # noqa: E731
    run(handlers._release(state, "team-a", [held], deleting))
    being_deleted = {**held, "metadata": {**held["metadata"], "deletionTimestamp": "2026-12-08T00:00:00Z"}}
    state.task_pods[("team-a", "wf")] = [being_deleted]
    run(handlers.pod_changed(namespace="team-a", name="wf-ok-1", body=kopf.Body(being_deleted), memo=memo,
                             type="MODIFIED"))
    run(handlers._release(state, "team-a", [being_deleted], deleting))
    assert api == [("delete pod", "wf-ok-1"), ("release pod", "wf-ok-1")], "once"
    released = {**being_deleted, "metadata": {**being_deleted["metadata"], "finalizers": []}}
    run(handlers.pod_changed(namespace="team-a", name="wf-ok-1", body=kopf.Body(released), memo=memo,
                             type="MODIFIED"))
    assert ("team-a", "wf-ok-1") not in state.releasing, "let go once seen without the finalizer"


def test_a_finished_workflow_s_held_pods_are_let_go_as_its_pod_retention_says(api, state):
    """A release that failed after the last status write (or an operator restarted then) is done
    from what is remembered of the finished workflow: its succeeded attempts' pods are deleted."""
    tasks = {"ok": {"phase": "Succeeded", "podName": "wf-ok-1"}, "bad": {"phase": "Failed", "podName": "wf-bad-1"}}
    state.bodies.offer(finished_workflow("wf", finished_ago=1, spec={"podRetention": "KeepFailed"}, tasks=tasks))
    state.task_pods[("team-a", "wf")] = [held_pod("wf-ok-1", "wf"), held_pod("wf-bad-1", "wf")]
    run(handlers.reconcile_workflow(state, "team-a", "wf"))
    assert sorted(api) == [("delete pod", "wf-ok-1"), ("release pod", "wf-bad-1"), ("release pod", "wf-ok-1")]


# -- deletion: artifactCleanup runs a cleanup pod before the workflow may go ----------------------

def test_a_deleted_workflow_with_artifact_cleanup_goes_once_its_cleanup_pod_ended(api, state, memo, monkeypatch):
    deleting = finished_workflow("wf", finished_ago=1, spec={"artifactCleanup": "OnDeletion"})
    deleting["metadata"].update(deletionTimestamp="2026-01-01T00:00:00Z", finalizers=[handlers.WORKFLOW_FINALIZER])
    events, created, reads = [], [], []
    state.api.get_workflow = lambda namespace, name: reads.append(name) or deleting
    state.api.list_workflows = lambda namespace: [deleting]
    state.api.create_pod = lambda pod: created.append(pod)
    state.api.patch_workflow = lambda namespace, name, ops, version=None: \
        api.append(("patch workflow", name, ops[-1]["op"])) or {"metadata": {}}
    monkeypatch.setattr(handlers.kopf, "event", lambda body, type, reason, message: events.append((reason, message)))
    cleaner = {"metadata": {"name": "wf-cleanup-0", "uid": "uid-c", "finalizers": [pods.RESULT_FINALIZER],
                            "creationTimestamp": scheduler.timestamp(datetime.datetime.now(datetime.timezone.utc)),
                            "ownerReferences": [{"kind": resource.KIND, "name": "wf", "uid": "uid-wf"}]},
               "status": {"phase": "Running", "containerStatuses": [{"name": "ferry-cleanup", "state": {"running": {}}}]}}

    async def changed() -> None:  # as Kopf calls it: the workflow's event, then each of its pods'
        await handlers.workflow_changed(type="MODIFIED", body=kopf.Body(deleting), namespace="team-a", name="wf",
                                        uid="uid-wf", status=deleting["status"], memo=memo)
        await _settle(state)

    async def scenario() -> None:
        await changed()
        assert [pod["metadata"]["name"] for pod in created] == ["wf-cleanup-0"] and api == []
        state.task_pods[("team-a", "wf")] = [cleaner]  # its events: running, then ended
        state.unseen.clear()
        await handlers.pod_changed(namespace="team-a", name="wf-cleanup-0", body=kopf.Body(cleaner), memo=memo)
        await _settle(state)
        assert api == [] and len(created) == 1, "held while it runs; not started twice"
        cleaner["status"] = {"phase": "Succeeded", "containerStatuses": [{"name": "ferry-cleanup", "state": {
            "terminated": {"exitCode": 0, "message": "deleted 3 objects (9 bytes); kept 0 still referenced"}}}]}
        await handlers.pod_changed(namespace="team-a", name="wf-cleanup-0", body=kopf.Body(cleaner), memo=memo)
        await _settle(state)

    run(scenario())
    assert events == [("ArtifactsDeleted", "deleted 3 objects (9 bytes); kept 0 still referenced")]
    assert api == [("release pod", "wf-cleanup-0"), ("patch workflow", "wf", "remove")], api
    # Its body came with its event: none of its pods' events reads it again (1,000 pods, 1,000 GETs).
    assert reads == [] and ("team-a", "wf") not in state.deleting


def test_the_operator_s_start_makes_the_state_every_handler_finds_in_its_memo(monkeypatch, reconciliations):
    """Nothing lives in a module: what the handlers keep is made at the start, in Kopf's memo."""
    calls, done = reconciliations
    fake, index = FakeAPI(), {("team-a", "wf"): [held_pod("wf-a-1", "wf")]}
    monkeypatch.setattr(handlers.kube, "login", lambda: fake)
    monkeypatch.setenv("FERRY_OPERATOR_RAW_DATA_PREFIX", "s3://bucket/started")
    memo = kopf.Memo(exact_namespaces=True)

    async def scenario() -> None:
        done.set()
        settings = kopf.OperatorSettings()
        await handlers.configure(settings=settings, logger=logging.getLogger("test"), memo=memo, task_pods=index)
        state = memo.state
        assert (state.config.raw_data_prefix, state.api, state.task_pods) == ("s3://bucket/started", fake, index)
        assert settings.scanning.disabled
        await handlers.pod_changed(namespace="team-a", name="wf-a-1", body=pod_event("wf-a-1", "wf"),
                                   memo=kopf.Memo(memo))  # Kopf hands each object a copy of the memo
        await asyncio.sleep(0)
        assert calls[-1] == ("team-a", "wf") and ("team-a", "wf-a-1") not in state.unseen
        for task in state.background:  # the resync, which would run for ever
            task.cancel()
        await asyncio.gather(*state.background, return_exceptions=True)

    run(scenario())


# -- a running workflow: held, its pods created as the scheduler says, its status written ---------

def test_a_new_workflow_is_held_then_its_first_pod_made_and_a_conflicting_write_read_again(state, memo,
                                                                                            monkeypatch):
    body = {"metadata": {"namespace": "team-a", "name": "wf", "uid": "uid-wf", "resourceVersion": "1",
                         "generation": 1},
            "spec": {"tasks": [{"name": "a", "image": "busybox"},
                               {"name": "b", "image": "busybox", "dependsOn": ["a"]}]}}
    versions, created, reads, written_status, events = iter(range(2, 100)), [], [], [], []

    def patch_workflow(namespace, name, ops, version=None):
        assert ops[-1] == {"op": "add", "path": "/metadata/finalizers", "value": [handlers.WORKFLOW_FINALIZER]}
        return {**body, "metadata": {**body["metadata"], "finalizers": [handlers.WORKFLOW_FINALIZER],
                                     "resourceVersion": str(next(versions))}}

    conflicts = [True]

    def patch_status(namespace, name, patch, version):
        if conflicts.pop(0) if conflicts else False:
            return None  # someone else wrote first
        assert patch[0]["path"] == "/status", "a workflow without a status gets one whole"
        written = {**state.bodies.get(namespace, name), "status": patch[0]["value"]}
        written_status.append((version, written["status"]))
        written["metadata"] = {**written["metadata"], "resourceVersion": str(next(versions))}
        return written

    def get_workflow(namespace, name):
        reads.append(name)
        return state.bodies.get(namespace, name)

    state.api.patch_workflow, state.api.patch_status = patch_workflow, patch_status
    state.api.get_workflow, state.api.create_pod = get_workflow, created.append
    monkeypatch.setattr(handlers.kopf, "event", lambda body, type, reason, message: events.append(reason))

    async def scenario() -> None:
        await handlers.workflow_changed(type="ADDED", body=kopf.Body(body), namespace="team-a", name="wf",
                                        uid="uid-wf", status={}, memo=memo)
        await _settle(state)

    run(scenario())
    assert [pod["metadata"]["name"] for pod in created] == ["wf-a-1"], "created once, though written twice"
    assert reads == ["wf"], "read again after the conflict"
    ((version, status),) = written_status
    assert version == "2" and status["phase"] == "Running" and status["tasks"]["a"]["phase"] == "Running"
    assert status["observedGeneration"] == 1 and status["tasks"]["b"]["phase"] == "Pending"
    assert events == ["Started"], "posted once, from the write that took"
    assert ("team-a", "wf-a-1") in state.unseen, "until its event reaches the index"


# -- maps: their units' pods, a full ResourceQuota, and status writes coalesced while they run --------

from ferry.api import items  # noqa: E402
from ferry_operator import kube  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402

from tests.operator.test_pods import INDEX  # noqa: E402


def map_body(version: int = 1, status: dict | None = None) -> dict:
    return {"metadata": {"namespace": "team-a", "name": "wf", "uid": "uid-wf", "resourceVersion": str(version),
                         "generation": 1, "finalizers": [handlers.WORKFLOW_FINALIZER]},
            "spec": {"tasks": [{"name": "m", "image": "busybox", "inputs": [{"name": "x", "fromItem": True}],
                                "map": {"over": {"value": list(range(50))}}},
                               {"name": "after", "image": "busybox", "dependsOn": ["m"]}]},
            **({"status": status} if status is not None else {})}


class FakeMapScheduler:
    """``scheduler.step`` for a map of 50 units, as the contract has it: the units ``running``
    are observed by their pods' names, each step starts ``start`` more (recorded as running), and
    ``done`` units count as succeeded in the status (so every step changes it)."""

    def __init__(self) -> None:
        self.running: list[tuple[int, int]] = []  # (unit, attempt)
        self.start: list[int] = []
        self.done = 0
        self.observed: list[tuple[str, scheduler.Attempt]] = []
        self.finish = False

    def __call__(self, name, spec, status, observe, now, **options):
        assert options == {"default_parallelism": 100}, "the operator's map parallelism, for maps that set none"
        out = scheduler.Step(resource.WorkflowStatus.model_validate(status.dump()))
        ms = resource.MapStatus(stage="Items", items=50, units=50, index=INDEX, succeeded=self.done)
        out.status.phase = resource.Phase.RUNNING
        out.status.tasks = {"m": resource.TaskStatus(phase=resource.Phase.SUCCEEDED if self.finish
                                                     else resource.Phase.RUNNING, map=ms),
                            "after": resource.TaskStatus()}
        task = spec.tasks[0]
        for unit, attempt in self.running:
            self.observed.append((scheduler.unit_name(name, "m", "item", attempt, unit),
                                  observe(task, scheduler.unit_name(name, "m", "item", attempt, unit))))
        for unit in self.start:
            out.units.append(scheduler.Unit("m", "item", 1, unit, scheduler.unit_name(name, "m", "item", 1, unit)))
            self.running.append((unit, 1))
        self.start = []
        record = items.Record(50)
        for unit, attempt in self.running:
            record.set(unit, resource.Phase.RUNNING, attempt)
        ms.record = record.encode()
        return out


def applied(document: dict, patch: list[dict]) -> dict:
    """``patch`` (``patches.diff``'s adds and removes) applied to a copy of ``document``."""
    document = json.loads(json.dumps(document))
    for op in patch:
        *parents, last = [part.replace("~1", "/").replace("~0", "~") for part in op["path"].split("/")[1:]]
        target = document
        for part in parents:
            target = target[part]
        if op["op"] == "remove":
            del target[last]
        else:
            target[last] = op["value"]
    return document


@pytest.fixture
def map_api(state, monkeypatch):
    """A fake API server holding the workflow ``map_body``: status patches and pod creations recorded."""

    fake = FakeMapScheduler()
    monkeypatch.setattr(handlers.scheduler, "step", fake)
    events: list[tuple[str, str]] = []
    monkeypatch.setattr(handlers.kopf, "event", lambda body, type, reason, message: events.append((reason, message)))
    made, written, versions = [], [], iter(range(2, 10_000))

    def patch_status(namespace, name, patch, version):
        body = state.bodies.get(namespace, name)
        assert version == body["metadata"]["resourceVersion"], "every write is guarded by the version it read"
        written.append(patch)
        return applied({**body, "metadata": {**body["metadata"], "resourceVersion": str(next(versions))}}, patch)

    state.api.patch_status, state.api.create_pod = patch_status, lambda pod: made.append(pod["metadata"]["name"])
    state.bodies.offer(map_body())
    return fake, made, written, events


def test_a_map_s_unit_pods_are_made_labelled_never_twice(map_api, state):
    fake, made, written, events = map_api
    fake.start = [0, 1, 2]
    run(handlers.reconcile_workflow(state, "team-a", "wf"))
    assert made == ["wf-m-0-1", "wf-m-1-1", "wf-m-2-1"]
    run(handlers.reconcile_workflow(state, "team-a", "wf"))  # their events have not come: unseen, not made again
    assert made == ["wf-m-0-1", "wf-m-1-1", "wf-m-2-1"]
    assert [attempt.finished for _, attempt in fake.observed] == [False] * 3
    ended = {"metadata": {"name": "wf-m-0-1", "uid": "u0", "finalizers": [pods.RESULT_FINALIZER],
                          "labels": {pods.LABEL_TASK: "m", pods.LABEL_ATTEMPT: "1", pods.LABEL_ROLE: "item",
                                     pods.LABEL_UNIT: "0"},
                          "ownerReferences": [{"kind": resource.KIND, "name": "wf", "uid": "uid-wf"}]},
             "status": {"phase": "Succeeded", "containerStatuses": [
                 {"name": "main", "state": {"terminated": {"exitCode": 0, "message": '{"cached": true}'}}}]}}
    state.task_pods[("team-a", "wf")] = [ended]
    fake.observed.clear()
    run(handlers.reconcile_workflow(state, "team-a", "wf"))
    attempt = dict(fake.observed)["wf-m-0-1"]
    assert attempt.succeeded and attempt.message == "outputs reused from the cache", "read as an item's pod"


def test_a_full_resource_quota_leaves_units_to_be_created_later_and_is_told_once(map_api, state):
    fake, made, written, events = map_api
    room = [2]

    def create_pod(pod):
        if room[0] == 0:
            error = ApiException(status=403, reason="Forbidden")
            error.body = json.dumps({"message": f'pods "{pod["metadata"]["name"]}" is forbidden: exceeded quota: '
                                                f'q, requested: pods=1, used: pods=2, limited: pods=2'})
            raise kube.Refused("create a task pod", error)
        room[0] -= 1
        made.append(pod["metadata"]["name"])

    state.api.create_pod = create_pod
    fake.start = [0, 1, 2, 3, 4]
    run(handlers.reconcile_workflow(state, "team-a", "wf"))
    assert made == ["wf-m-0-1", "wf-m-1-1"], "the first refusal ends this reconciliation's creations"
    assert ("team-a", "wf") not in state.refusals and written, "a wait, not a refusal: the status is written"
    status = state.bodies.get("team-a", "wf")["status"]
    assert status["phase"] == status["tasks"]["m"]["phase"] == "Running" and "quota" not in json.dumps(status)
    state.clock = lambda: 10.0 ** 6  # later: the status may be written again
    run(handlers.reconcile_workflow(state, "team-a", "wf"))  # still full
    assert made == ["wf-m-0-1", "wf-m-1-1"]
    assert [reason for reason, _ in events if reason == "WaitingForQuota"] == ["WaitingForQuota"], "told once"
    assert "exceeded quota" in events[-1][1] and "ServiceAccount" not in events[-1][1]
    assert state.wakeups[("team-a", "wf")].when() - asyncio.new_event_loop().time() < handlers.QUOTA_RETRY_SECONDS + 1
    room[0] = 10
    run(handlers.reconcile_workflow(state, "team-a", "wf"))  # room again: the units with no pod are made
    assert made == ["wf-m-0-1", "wf-m-1-1", "wf-m-2-1", "wf-m-3-1", "wf-m-4-1"]
    assert ("team-a", "wf") not in state.quota_waits


def test_while_a_map_runs_its_status_is_written_at_most_once_a_second_and_its_pods_made_at_once(map_api, state):
    fake, made, written, events = map_api
    now = [100.0]
    state.clock = lambda: now[0]
    fake.start = [0]
    run(handlers.reconcile_workflow(state, "team-a", "wf"))
    assert len(written) == 1
    for n in range(1, 20):  # twenty pod events within the second: each step changes the status
        now[0] = 100.0 + n * 0.04
        fake.done, fake.start = n, [n]
        run(handlers.reconcile_workflow(state, "team-a", "wf"))
    assert len(written) == 1, "one patch for the second"
    assert made == [f"wf-m-{n}-1" for n in range(20)], "creations never wait for a write"
    assert ("team-a", "wf") in state.wakeups, "woken to write what waits, if no event comes"
    now[0] = 101.01
    fake.done = 20
    run(handlers.reconcile_workflow(state, "team-a", "wf"))
    assert len(written) == 2 and {"op": "add", "path": "/status/tasks/m/map/succeeded", "value": 20} in written[1]
    now[0] = 101.02
    fake.finish = True  # a task that ends is written at once: others wait for it
    run(handlers.reconcile_workflow(state, "team-a", "wf"))
    assert len(written) == 3
