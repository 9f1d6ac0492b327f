"""A map task through the scheduler: split, item units under parallelism, gather; retries,
timeouts, failures, stops and reruns, each as the executors see them (``Step.units``, ``observe``)."""

import json
import random

from hypothesis import HealthCheck, given, settings, strategies as st

from ferry.api import items, resource, scheduler
from ferry.api.resource import FailureReason, Phase

from tests.runtime.api.test_dag import spec, task
from tests.runtime.api.test_scheduler import later

INDEX = resource.StoredResult(uri="s3://b/ns/uid/process/split/1/index.json", sha256="a" * 64, size=10)
GATHERED = resource.StoredResult(uri="s3://b/ns/uid/process/gather/1/.ferry-result.json", sha256="b" * 64, size=99)
RUNNING = scheduler.Attempt(False)
DONE = scheduler.Attempt(True, succeeded=True)


def split(count: int) -> scheduler.Attempt:
    return scheduler.Attempt(True, succeeded=True, result=INDEX,
                             outputs={"items": resource.Output(kind=resource.Kind.VALUE, value=count)})


def failed(message: str = "boom", reason: FailureReason | None = None) -> scheduler.Attempt:
    return scheduler.Attempt(True, message=message, reason=reason)


def mapped(parallelism: int | None = 2, ratio: float = 1.0, **extra) -> dict:
    return {"name": "process", "function": "pkg.mod:fn", "inputs": [{"name": "row", "fromItem": True}],
            "outputs": [{"name": "out", "kind": "value"}],
            "map": {"over": {"value": [1, 2, 3]}, "minSuccessRatio": ratio,
                    **({"parallelism": parallelism} if parallelism else {})}, **extra}


class Run:
    """A workflow run on a fake pod table: ``pods`` (name → what observe answers) is what exists;
    every unit a step starts is added to it running, and ``created`` lists every pod ever asked for."""

    def __init__(self, workflow: resource.WorkflowSpec, **options):
        self.spec, self.options = workflow, options
        self.status = resource.WorkflowStatus()
        self.pods: dict[str, scheduler.Attempt] = {}
        self.created: list[str] = []
        self.observed: list[str] = []

    def observe(self, t: resource.Task, name: str) -> scheduler.Attempt | None:
        self.observed.append(name)
        return self.pods.get(name)

    def step(self, seconds: float = 0, **changes) -> scheduler.Step:
        self.observed = []
        spec_ = self.spec.model_copy(update=changes) if changes else self.spec
        out = scheduler.step("wf", spec_, self.status, self.observe, later(seconds), **self.options)
        for unit in out.units:
            self.created.append(unit.name)
            self.pods.setdefault(unit.name, RUNNING)
        for name in out.delete:
            self.pods.pop(name, None)
        self.status = out.status
        return out

    @property
    def map(self) -> resource.MapStatus:
        return self.status.tasks["process"].map

    def phases(self) -> str:
        """Each unit's phase as a letter (P R S F K) and its attempts: ``S1 R2 P0``."""
        record = items.Record.decode(self.map.record, self.map.units)
        return " ".join(f"{record.phase(u).value[0] if record.phase(u) != Phase.SKIPPED else 'K'}{record.attempt(u)}"
                        for u in range(len(record)))


def test_a_map_splits_then_runs_its_units_under_its_parallelism_then_gathers():
    run = Run(spec(mapped(), outputs=[{"name": "all", "fromTask": {"task": "process", "output": "out"}}]))
    first = run.step()
    assert [(u.task, u.role, u.attempt, u.index, u.name) for u in first.units] == [
        ("process", "split", 1, None, "wf-process-split-1")]
    assert first.create == [] and run.map.stage == "Split" and run.status.tasks["process"].phase == Phase.RUNNING
    assert run.status.message == "running: process (split)"

    run.pods["wf-process-split-1"] = split(5)
    second = run.step(1)
    assert [u.name for u in second.units] == ["wf-process-0-1", "wf-process-1-1"]
    assert (run.map.stage, run.map.items, run.map.units, run.map.index) == ("Items", 5, 5, INDEX)
    assert (run.map.pending, run.map.running, run.map.succeeded) == (3, 2, 0)
    assert run.phases() == "R1 R1 P0 P0 P0"

    run.pods["wf-process-1-1"] = DONE
    third = run.step(2)
    assert [u.name for u in third.units] == ["wf-process-2-1"], "one finished: room for one more"
    assert run.observed == ["wf-process-0-1", "wf-process-1-1"], "only running units are observed"
    assert run.status.message == "running: process (1/5)"
    assert run.status.tasks["process"].message == "1/5 items succeeded, 2 running"
    for name in ("wf-process-0-1", "wf-process-2-1"):
        run.pods[name] = DONE
    run.step(3)
    run.pods["wf-process-3-1"] = run.pods["wf-process-4-1"] = DONE
    gather = run.step(4)
    assert [(u.role, u.name) for u in gather.units] == [("gather", "wf-process-gather-1")]
    assert run.map.stage == "Gather" and run.status.message == "running: process (gather)"
    assert run.status.tasks["process"].phase == Phase.RUNNING

    run.pods["wf-process-gather-1"] = scheduler.Attempt(True, succeeded=True, result=GATHERED)
    run.step(5)
    ts = run.status.tasks["process"]
    assert (ts.phase, ts.result, ts.message) == (Phase.SUCCEEDED, GATHERED, "5 of 5 items succeeded")
    assert run.status.phase == Phase.SUCCEEDED and run.status.progress == "1/1"
    assert run.status.outputs["all"].result == GATHERED.model_copy(update={"output": "out"})
    assert len(set(run.created)) == len(run.created) == 1 + 5 + 1, "every pod asked for once"


def test_the_executor_s_parallelism_applies_unless_the_map_says():
    run = Run(spec(mapped(parallelism=None)), default_parallelism=3)
    run.step()
    run.pods["wf-process-split-1"] = split(10)
    assert len(run.step(1).units) == 3
    own = Run(spec(mapped(parallelism=4)), default_parallelism=3)
    own.step()
    own.pods["wf-process-split-1"] = split(10)
    assert len(own.step(1).units) == 4


def test_a_failed_unit_waits_for_its_back_off_in_its_place_then_runs_as_a_new_attempt():
    run = Run(spec(mapped(retries={"limit": 1, "backoffSeconds": 10})))
    run.step()
    run.pods["wf-process-split-1"] = split(3)
    run.step(1)
    run.pods["wf-process-0-1"] = failed("exit 3: bad row")
    waiting = run.step(2)
    assert waiting.units == [], "the unit waiting to retry holds its place under parallelism 2"
    assert run.map.retry_at == {"0": "2026-01-01T00:00:12Z"} and run.phases() == "P1 R1 P0"
    assert [(f.unit, f.attempt, f.reason, f.message) for f in run.map.failures] == [
        (0, 1, FailureReason.TASK_FAILED, "exit 3: bad row")]
    assert scheduler.next_deadline(run.spec, run.status) == later(12)
    assert "1 waiting to retry" in run.status.tasks["process"].message
    assert run.step(11).units == []
    retry = run.step(12)
    assert [u.name for u in retry.units] == ["wf-process-0-2"] and run.map.retry_at == {}
    run.pods["wf-process-0-2"] = failed("exit 3: bad row again")
    run.step(13)
    assert run.status.tasks["process"].phase == Phase.FAILED, "its one retry spent: it fails for good"
    assert run.status.tasks["process"].message == \
        "1 of 3 items failed (min success ratio 1): first: unit 0: exit 3: bad row again"
    assert "wf-process-1-1" not in run.pods, "the map cannot succeed any more: its running unit is stopped"
    assert run.phases() == "F2 K1 K0"


def test_a_unit_s_failure_message_is_kept_short_and_only_the_first_failures_are_kept():
    """What a pod reports is the task's to write: a huge message must not grow the status."""
    run = Run(spec(mapped(parallelism=10, ratio=0.0)))
    run.step()
    run.pods["wf-process-split-1"] = split(10)
    run.step(1)
    run.pods.update({f"wf-process-{u}-1": failed("Traceback " + "x" * 10_000 + f" ValueError: row {u}")
                     for u in range(10)})
    run.step(2)
    kept = run.map.failures
    assert [f.unit for f in kept] == list(range(resource.MAP_FAILURES_KEPT)) and run.map.failed == 10
    assert all(len(f.message) == scheduler.FAILURE_MESSAGE and f.message.endswith(f"row {f.unit}") for f in kept)


def test_infrastructure_failures_of_a_unit_have_their_own_budget():
    run = Run(spec(mapped(parallelism=1, retries={"limit": 0, "infrastructure": 1, "backoffSeconds": 0})))
    run.step()
    run.pods["wf-process-split-1"] = split(2)
    run.step(1)
    del run.pods["wf-process-0-1"]  # the node went away with it
    lost = run.step(2)
    assert [u.name for u in lost.units] == ["wf-process-0-2"]
    assert run.map.failures[0].reason == FailureReason.POD_LOST and "disappeared" in run.map.failures[0].message
    run.pods["wf-process-0-2"] = failed("the store did not answer", FailureReason.STORE_UNAVAILABLE)
    run.step(3)
    assert run.status.tasks["process"].phase == Phase.FAILED, "the infrastructure budget is spent"


def test_an_own_failure_after_an_infrastructure_one_is_not_retried_with_no_retries():
    run = Run(spec(mapped(parallelism=1, ratio=0.0, retries={"limit": 0, "infrastructure": 2, "backoffSeconds": 0})))
    run.step()
    run.pods["wf-process-split-1"] = split(1)
    run.step(1)
    run.pods["wf-process-0-1"] = failed("lost", FailureReason.POD_LOST)
    run.step(2)
    run.pods["wf-process-0-2"] = failed("exit 1")
    run.step(3)
    assert run.phases() == "F2" and run.map.stage == "Gather", "min success ratio 0: the gather runs anyway"


def test_a_unit_running_longer_than_the_timeout_is_stopped_and_fails():
    run = Run(spec(mapped(parallelism=1, ratio=0.5, timeoutSeconds=5)))
    run.step()
    run.pods["wf-process-split-1"] = split(2)
    run.step(1)
    run.pods["wf-process-0-1"] = scheduler.Attempt(False, started=later(2))
    early = run.step(4)
    assert early.delete == [] and early.deadline == later(7)
    assert scheduler.next_deadline(run.spec, run.status, early.deadline) == later(7)
    late = run.step(8)
    assert late.delete == ["wf-process-0-1"] and [u.name for u in late.units] == ["wf-process-1-1"]
    assert (run.map.failures[0].reason, run.map.failures[0].message) == (FailureReason.TIMED_OUT, "timed out after 5s")
    unstarted = run.step(100)
    assert unstarted.delete == [] and unstarted.deadline is None, "a pod not started yet has no timeout"


def test_a_stuck_unit_s_pod_is_deleted():
    run = Run(spec(mapped(parallelism=1, ratio=0.0)))
    run.step()
    run.pods["wf-process-split-1"] = split(1)
    run.step(1)
    run.pods["wf-process-0-1"] = scheduler.Attempt(True, message="ErrImagePull for more than 60s", stop=True)
    assert "wf-process-0-1" in run.step(2).delete


def test_with_a_min_success_ratio_the_map_succeeds_with_some_items_failed():
    run = Run(spec(mapped(parallelism=4, ratio=0.5)))
    run.step()
    run.pods["wf-process-split-1"] = split(4)
    run.step(1)
    run.pods.update({"wf-process-0-1": failed("a"), "wf-process-1-1": DONE, "wf-process-2-1": failed("c"),
                     "wf-process-3-1": DONE})
    gather = run.step(2)
    assert [u.role for u in gather.units] == ["gather"] and (run.map.failed, run.map.succeeded) == (2, 2)
    run.pods["wf-process-gather-1"] = scheduler.Attempt(True, succeeded=True, result=GATHERED)
    run.step(3)
    assert run.status.tasks["process"].message == "2 of 4 items succeeded (2 failed, min success ratio 0.5)"
    assert run.status.phase == Phase.SUCCEEDED


def test_below_the_min_success_ratio_the_map_fails_once_it_cannot_reach_it():
    run = Run(spec(mapped(parallelism=2, ratio=0.5)))
    run.step()
    run.pods["wf-process-split-1"] = split(6)
    run.step(1)
    run.pods.update({"wf-process-0-1": failed("first"), "wf-process-1-1": failed("second")})
    run.step(2)
    assert run.status.tasks["process"].phase == Phase.RUNNING, "3 of 6 may fail"
    run.pods.update({"wf-process-2-1": failed("third"), "wf-process-3-1": failed("fourth")})
    done = run.step(3)
    ts = run.status.tasks["process"]
    assert ts.phase == Phase.FAILED and ts.message == "4 of 6 items failed (min success ratio 0.5): first: unit 0: first"
    assert done.units == [] and run.phases() == "F1 F1 F1 F1 K0 K0"
    assert run.status.message.startswith("task process failed: 4 of 6 items failed")


def test_batches_are_counted_as_units():
    run = Run(spec(mapped(parallelism=10, **{"map": {"over": {"value": [1]}, "batchSize": 10}})))
    run.step()
    run.pods["wf-process-split-1"] = split(25)
    started = run.step(1)
    assert (run.map.items, run.map.units) == (25, 3) and [u.index for u in started.units] == [0, 1, 2]
    assert run.status.tasks["process"].message == "0/3 units (batches of 10 items) succeeded, 3 running"


def test_a_map_over_no_items_goes_straight_to_its_gather():
    run = Run(spec(mapped()))
    run.step()
    run.pods["wf-process-split-1"] = split(0)
    out = run.step(1)
    assert [u.name for u in out.units] == ["wf-process-gather-1"] and run.map.units == 0


def test_a_failed_split_is_retried_with_the_task_s_budget_then_fails_the_map():
    run = Run(spec(mapped(retries={"limit": 1, "backoffSeconds": 5})))
    run.step()
    run.pods["wf-process-split-1"] = failed("map.over is not a list: a dict")
    waiting = run.step(1)
    ts = run.status.tasks["process"]
    assert waiting.units == [] and ts.phase == Phase.RUNNING and ts.next_attempt_at == "2026-01-01T00:00:06Z"
    assert ts.message == "split attempt 1 failed: map.over is not a list: a dict; retrying in 5s"
    assert scheduler.next_deadline(run.spec, run.status) == later(6)
    assert [u.name for u in run.step(6).units] == ["wf-process-split-2"]
    run.pods["wf-process-split-2"] = failed("map.over is not a list: a dict")
    run.step(7)
    assert (run.status.tasks["process"].phase, run.status.tasks["process"].message) == (
        Phase.FAILED, "split attempt 2 failed: map.over is not a list: a dict")


def test_a_split_that_reports_no_count_is_a_failure_and_one_too_large_says_to_batch():
    bad = Run(spec(mapped()))
    bad.step()
    bad.pods["wf-process-split-1"] = scheduler.Attempt(True, succeeded=True, outputs={})
    bad.step(1)
    assert "no item count" in bad.status.tasks["process"].message
    huge = Run(spec(mapped()))
    huge.step()
    huge.pods["wf-process-split-1"] = split(250_000)
    huge.step(1)
    assert huge.status.tasks["process"].message == \
        "map over 250,000 items needs 250,000 pods, more than 100,000: set map.batchSize to 3 or more"


def test_a_failed_gather_is_retried_as_its_next_attempt():
    run = Run(spec(mapped(retries={"limit": 1, "backoffSeconds": 0})))
    run.step()
    run.pods["wf-process-split-1"] = split(1)
    run.step(1)
    run.pods["wf-process-0-1"] = DONE
    run.step(2)
    run.pods["wf-process-gather-1"] = failed("the store refused")
    assert [u.name for u in run.step(3).units] == ["wf-process-gather-2"]
    run.pods["wf-process-gather-2"] = scheduler.Attempt(True, succeeded=True)  # no result: not gathered
    run.step(4)
    assert "no result" in run.status.tasks["process"].message and run.status.phase == Phase.FAILED


def test_stopping_the_workflow_deletes_running_units_and_skips_pending_ones():
    run = Run(spec(mapped(parallelism=2)))
    run.step()
    run.pods["wf-process-split-1"] = split(5)
    run.step(1)
    run.pods["wf-process-0-1"] = DONE
    stopped = run.step(2, stop=True)
    assert sorted(stopped.delete) == ["wf-process-1-1"] and stopped.units == []
    assert run.phases() == "S1 K1 K0 K0 K0" and run.status.phase == Phase.STOPPED
    ts = run.status.tasks["process"]
    assert (ts.phase, ts.reason, run.map.succeeded) == (Phase.FAILED, FailureReason.STOPPED, 1)


def test_another_task_failing_stops_the_map_with_failure_policy_stop():
    run = Run(spec(mapped(parallelism=2), task("other")))
    run.step()
    run.pods["wf-other-1"] = failed("exit 1")  # the map's split is still running: its pod is stopped
    out = run.step(1)
    assert out.delete == ["wf-process-split-1"] and run.status.tasks["process"].reason == FailureReason.STOPPED


def test_a_rerun_keeps_succeeded_units_and_runs_the_others_as_new_attempts():
    run = Run(spec(mapped(parallelism=3, retries={"limit": 0})))
    run.step()
    run.pods["wf-process-split-1"] = split(4)
    run.step(1)
    run.pods.update({"wf-process-0-1": DONE, "wf-process-1-1": failed("flaky")})
    run.step(2)
    assert run.status.phase == Phase.FAILED and run.phases() == "S1 F1 K1 K0"
    again = run.step(3, rerun=1)
    assert [u.name for u in again.units] == ["wf-process-1-2", "wf-process-2-2", "wf-process-3-1"], \
        "attempt numbers go on: no pod name reused; the split is not run again"
    assert run.map.failures == [] and run.status.tasks["process"].phase == Phase.RUNNING
    for name in ("wf-process-1-2", "wf-process-2-2", "wf-process-3-1"):
        run.pods[name] = DONE
    run.spec = run.spec.model_copy(update={"rerun": 1})
    assert [u.name for u in run.step(4).units] == ["wf-process-gather-1"]
    assert run.phases() == "S1 S2 S2 S1"


def test_a_rerun_after_a_failed_split_or_gather_goes_on_from_its_attempts():
    run = Run(spec(mapped(parallelism=1, retries={"limit": 0})))
    run.step()
    run.pods["wf-process-split-1"] = failed("no store")
    run.step(1)
    assert [u.name for u in run.step(2, rerun=1).units] == ["wf-process-split-2"]
    run.spec = run.spec.model_copy(update={"rerun": 1})
    run.pods["wf-process-split-2"] = split(1)
    run.step(3)
    run.pods["wf-process-0-1"] = DONE
    run.step(4)
    run.pods["wf-process-gather-1"] = failed("no store")
    run.step(5)
    assert run.status.phase == Phase.FAILED
    assert [u.name for u in run.step(6, rerun=2).units] == ["wf-process-gather-2"], "its unit stays succeeded"


def test_a_running_step_of_a_large_map_observes_only_its_running_units():
    """The work of a step is its running units', not its items': 100,000 units, 50 observed."""
    run = Run(spec(mapped(parallelism=50)))
    run.step()
    run.pods["wf-process-split-1"] = split(100_000)
    assert len(run.step(1).units) == 50
    run.pods.update({f"wf-process-{u}-1": DONE for u in range(10)})
    out = run.step(2)
    assert len(run.observed) == 50 and [u.index for u in out.units] == list(range(50, 60))
    assert run.status.message == "running: process (10/100,000)"


def test_a_damaged_record_fails_the_map_with_a_message():
    run = Run(spec(mapped()))
    run.step()
    run.pods["wf-process-split-1"] = split(3)
    run.step(1)
    run.status.tasks["process"].map.record = "not a record"
    run.step(2)
    assert "its status is damaged" in run.status.tasks["process"].message and run.status.phase == Phase.FAILED
    run.step(3, rerun=1)
    assert "its status is damaged" in run.status.tasks["process"].message and run.status.phase == Phase.FAILED, \
        "a rerun cannot mend it either, and says so"


def test_the_status_of_a_map_round_trips_through_json():
    run = Run(spec(mapped(retries={"limit": 1})))
    run.step()
    run.pods["wf-process-split-1"] = split(3)
    run.step(1)
    run.pods["wf-process-0-1"] = failed("x")
    run.step(2)
    again = resource.WorkflowStatus.model_validate(json.loads(json.dumps(run.status.dump())))
    assert again == run.status


def outcome(seed: int, unit: int, attempt: int) -> str:
    """What attempt ``attempt`` of ``unit`` does, the same whenever it is asked."""
    roll = random.Random(f"{seed}/{unit}/{attempt}").random()
    return "ok" if roll < 0.7 else "fail" if roll < 0.88 else "lost" if roll < 0.95 else "stuck"


def expected(seed: int, unit: int, limit: int, infrastructure: int) -> tuple[Phase, int]:
    """Where a unit ends under the retry policy, and after how many attempts."""
    own = lost = 0
    for attempt in range(1, 100):
        result = outcome(seed, unit, attempt)
        if result == "ok":
            return Phase.SUCCEEDED, attempt
        own, lost = (own + 1, lost) if result in ("fail", "stuck") else (own, lost + 1)
        if own > limit or lost > infrastructure:
            return Phase.FAILED, attempt
    raise AssertionError("unreachable")


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(0, 2**32 - 1))
def test_a_map_of_2000_units_through_restarts_starts_each_attempt_once_and_ends_each_unit_right(seed):
    """An executor that crashes between creating pods and writing status (a random step's status
    is lost, its pods are not) runs its next step from the last status written: it asks again for
    the pods it made (the API server refuses a second one of a name), never for one that ended.
    Pods go only once the status records their end (the operator's finalizer on each pod)."""
    units, parallelism, limit, infrastructure = 2000, 50, 1, 1
    wf = spec(mapped(parallelism=parallelism, ratio=0.0, retries={
        "limit": limit, "infrastructure": infrastructure, "backoffSeconds": 1, "maxBackoffSeconds": 2}))
    rng = random.Random(seed)
    status, pods, ever, seconds = resource.WorkflowStatus(), {}, set(), 0
    while status.phase not in scheduler.DONE:
        seconds += 1
        assert seconds < 5000, "the map does not finish"
        for name, pod in list(pods.items()):  # running pods end now and then, as their script says
            if pod is not RUNNING or rng.random() < 0.5:
                continue
            if "-split-" in name:
                pods[name] = split(units)
            elif "-gather-" in name:
                pods[name] = scheduler.Attempt(True, succeeded=True, result=GATHERED)
            else:
                unit, attempt = map(int, name.split("-")[-2:])
                pods[name] = {"ok": DONE, "fail": failed(), "lost": failed("node lost", FailureReason.POD_LOST),
                              "stuck": scheduler.Attempt(True, message="ErrImagePull", stop=True)}[
                    outcome(seed, unit, attempt)]
        out = scheduler.step("wf", wf, status, lambda t, name: pods.get(name), later(seconds))
        names = [u.name for u in out.units]
        assert len(set(names)) == len(names)
        for name in names:
            assert name in pods or name not in ever, f"{name} ended and was asked for again"
            if name not in ever:
                ever.add(name)
                pods[name] = RUNNING
        ms = out.status.tasks["process"].map
        if ms.stage == "Items":
            assert ms.running + len(ms.retry_at) <= parallelism
            assert ms.pending + ms.running + ms.succeeded + ms.failed == units
        if rng.random() < 0.15 and out.status.phase not in scheduler.DONE:
            continue  # crashed before the status write: its pods stay, its deletions were not made
        for name in out.delete:
            pods.pop(name, None)
        status = out.status
    ms = status.tasks["process"].map
    assert status.phase == Phase.SUCCEEDED, status.message
    record = items.Record.decode(ms.record, units)
    ends = [expected(seed, u, limit, infrastructure) for u in range(units)]
    assert [(record.phase(u), record.attempt(u)) for u in range(units)] == ends
    assert ever == {"wf-process-split-1", "wf-process-gather-1"} | {
        f"wf-process-{u}-{a}" for u, (_, last) in enumerate(ends) for a in range(1, last + 1)}
    assert (ms.succeeded, ms.failed) == (sum(p == Phase.SUCCEEDED for p, _ in ends),
                                         sum(p == Phase.FAILED for p, _ in ends))


def test_the_status_of_a_workflow_with_a_map_of_100000_units_in_progress_stays_under_512_kib():
    """The worst realistic mix: 60% of the units done, 1 in 20 failed and 1 in 7 retried at random
    (nothing zlib finds runs in), 60 running and 40 waiting to retry, 8 failures with long
    messages, beside 20 ordinary tasks with outputs."""
    rng = random.Random(7)
    units = 100_000
    record = items.Record(units)
    for u in range(60_000):
        record.set(u, Phase.FAILED if rng.random() < 0.05 else Phase.SUCCEEDED, rng.choice([1] * 6 + [2, 3]))
    for u in range(60_000, 60_100):
        record.set(u, Phase.RUNNING if u < 60_060 else Phase.PENDING, rng.choice([1, 2, 3]))
        record.failures[u] = rng.choice([0, 1, 2])
    ms = resource.MapStatus(
        stage="Items", attempts=0, items=units, units=units, index=INDEX, record=record.encode(),
        pending=record.count(Phase.PENDING), running=60, succeeded=record.count(Phase.SUCCEEDED),
        failed=record.count(Phase.FAILED), retry_at={str(u): "2026-01-01T00:05:00Z" for u in range(60_060, 60_100)},
        failures=[resource.ItemFailure(unit=rng.randrange(units), attempt=3, reason=FailureReason.TASK_FAILED,
                                       message="x" * scheduler.FAILURE_MESSAGE) for _ in range(8)])
    out = {"out": resource.Output(kind=resource.Kind.FILE, uri="s3://bucket/ferry/ns/" + "u" * 36 + "/t/1/out",
                                  size=123456, sha256="0" * 64)}
    tasks = {f"task-{i}": resource.TaskStatus(phase=Phase.SUCCEEDED, attempts=1, pod_name=f"wf-task-{i}-1",
                                              started_at="2026-01-01T00:00:00Z", finished_at="2026-01-01T00:01:00Z",
                                              outputs=out) for i in range(20)}
    tasks["process"] = resource.TaskStatus(phase=Phase.RUNNING, started_at="2026-01-01T00:00:00Z", map=ms,
                                           message="59,990/100,000 items succeeded, 60 running, 40 waiting")
    status = resource.WorkflowStatus(phase=Phase.RUNNING, progress="20/21", tasks=tasks,
                                     message="running: process (57,012/100,000)")
    size = len(json.dumps(status.dump()))
    print(f"status of a 100,000-unit map in progress: {size:,} bytes (record {len(ms.record):,})")
    assert size < 512 * 1024
