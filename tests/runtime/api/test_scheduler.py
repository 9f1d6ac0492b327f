import datetime

from ferry.api import resource, scheduler
from ferry.api.resource import Phase

from tests.runtime.api.test_dag import spec, task

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def later(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def finished_pod(exit_code: int, outputs: dict | None = None, message: str = "") -> scheduler.Attempt:
    """An attempt as an executor reports it once finished (outputs: what was published)."""
    if exit_code != 0:
        return scheduler.Attempt(True, message=f"main container exited with code {exit_code}: {message}")
    if outputs is None:
        return scheduler.Attempt(True, message="the outputs were not published")
    return scheduler.Attempt(True, succeeded=True, outputs=outputs)


RUNNING = scheduler.Attempt(False)


def observing(attempts: dict[str, scheduler.Attempt]) -> scheduler.Observe:
    return lambda task, pod_name: attempts.get(pod_name)


OUT = {"out": {"kind": "file", "uri": "s3://b/k/out", "size": 3, "sha256": "0" * 64}}


def test_chain_runs_in_order_and_collects_outputs():
    wf = spec(task("a"), task("b", ("a",)), outputs=[{"name": "final", "fromTask": {"task": "b", "output": "out"}}])
    first = scheduler.step("wf", wf, resource.WorkflowStatus(), observing({}), T0)
    assert first.create == [("a", 1)]
    assert first.status.phase == Phase.RUNNING and first.status.progress == "0/2"
    second = scheduler.step("wf", wf, first.status, observing({"wf-a-1": finished_pod(0, OUT)}), later(1))
    assert second.create == [("b", 1)]
    assert second.status.tasks["a"].outputs["out"].uri == "s3://b/k/out"
    third = scheduler.step("wf", wf, second.status, observing({"wf-a-1": finished_pod(0, OUT), "wf-b-1": finished_pod(0, OUT)}),
                           later(2))
    assert third.status.phase == Phase.SUCCEEDED and third.status.progress == "2/2"
    assert third.status.outputs["final"].uri == "s3://b/k/out"
    assert scheduler.step("wf", wf, third.status, observing({}), later(3)).status == third.status


def test_a_step_leaves_the_status_it_is_given_as_it_was():
    """Steps change a copy (the operator diffs the two into its status patch), and a step that
    changes nothing gives back an equal status: no write."""
    value = {"kind": "value", "value": {"rows": [1, 2.5, None, "x"], "nested": {"ok": True}}}
    wf = spec(task("a", retries={"limit": 1}), task("b", ("a",)))
    first = scheduler.step("wf", wf, resource.WorkflowStatus(), observing({}), T0)
    given = first.status.model_copy(deep=True)
    failed = scheduler.step("wf", wf, first.status, observing({"wf-a-1": finished_pod(1)}), later(1))
    assert first.status == given and failed.status != given
    retried = scheduler.step("wf", wf, failed.status, observing({}), later(60))
    done = scheduler.step("wf", wf, retried.status, observing({"wf-a-2": finished_pod(0, {"out": value})}), later(61))
    kept = done.status.model_copy(deep=True)
    again = scheduler.step("wf", wf, done.status, observing({"wf-a-2": finished_pod(0, {"out": value}),
                                                           "wf-b-1": RUNNING}), later(62))
    assert done.status == kept and again.status == done.status and again.status is not done.status
    assert again.status.tasks["a"].outputs["out"].value == value["value"]


def test_zero_exit_without_published_outputs_is_a_failure():
    wf = spec(task("a"))
    first = scheduler.step("wf", wf, resource.WorkflowStatus(), observing({}), T0)
    done = scheduler.step("wf", wf, first.status, observing({"wf-a-1": finished_pod(0)}), later(1))
    assert done.status.phase == Phase.FAILED
    assert "not published" in done.status.tasks["a"].message


def test_failure_retries_with_backoff_as_a_new_attempt():
    wf = spec(task("a", retries={"limit": 1, "backoffSeconds": 10}))
    first = scheduler.step("wf", wf, resource.WorkflowStatus(), observing({}), T0)
    failed = scheduler.step("wf", wf, first.status, observing({"wf-a-1": finished_pod(2, message="boom")}), later(1))
    assert failed.create == []
    assert failed.status.tasks["a"].phase == Phase.PENDING
    assert "exited with code 2" in failed.status.tasks["a"].message and "boom" in failed.status.tasks["a"].message
    waiting = scheduler.step("wf", wf, failed.status, observing({"wf-a-1": finished_pod(2)}), later(5))
    assert waiting.create == []
    retry = scheduler.step("wf", wf, waiting.status, observing({"wf-a-1": finished_pod(2)}), later(12))
    assert retry.create == [("a", 2)] and retry.status.tasks["a"].pod_name == "wf-a-2"
    final = scheduler.step("wf", wf, retry.status, observing({"wf-a-2": finished_pod(2)}), later(13))
    assert final.status.phase == Phase.FAILED and final.status.tasks["a"].attempts == 2


def test_timeout_stops_the_pod_and_fails_the_attempt():
    wf = spec(task("a", timeoutSeconds=5))
    first = scheduler.step("wf", wf, resource.WorkflowStatus(), observing({}), T0)
    running = {"wf-a-1": RUNNING}
    assert scheduler.step("wf", wf, first.status, observing(running), later(3)).delete == []
    late = scheduler.step("wf", wf, first.status, observing(running), later(6))
    assert late.delete == ["wf-a-1"]
    assert late.status.phase == Phase.FAILED and "timed out after 5s" in late.status.message


def test_an_attempt_stuck_before_starting_has_its_pod_deleted():
    """A pod stuck on a mistyped image would retry its pull forever; an ordinary failed pod stays
    for its logs."""
    wf = spec(task("a"), task("b"))
    first = scheduler.step("wf", wf, resource.WorkflowStatus(), observing({}), T0)
    stuck = scheduler.Attempt(True, message="main: ErrImagePull for more than 60s: not found", stop=True)
    done = scheduler.step("wf", wf, first.status, observing({"wf-a-1": stuck, "wf-b-1": finished_pod(1)}), later(61))
    assert done.delete == ["wf-a-1"] and "ErrImagePull" in done.status.tasks["a"].message


def test_stop_policy_stops_siblings_and_skips_the_rest():
    wf = spec(task("a"), task("b"), task("c", ("a",)))
    first = scheduler.step("wf", wf, resource.WorkflowStatus(), observing({}), T0)
    assert sorted(first.create) == [("a", 1), ("b", 1)]
    pods = {"wf-a-1": finished_pod(1), "wf-b-1": RUNNING}
    stopped = scheduler.step("wf", wf, first.status, observing(pods), later(1))
    assert stopped.delete == ["wf-b-1"]
    assert stopped.status.tasks["c"].phase == Phase.SKIPPED
    assert stopped.status.phase == Phase.FAILED


def test_continue_policy_lets_independent_tasks_finish():
    wf = spec(task("a"), task("b"), task("c", ("a",)), failurePolicy="Continue")
    first = scheduler.step("wf", wf, resource.WorkflowStatus(), observing({}), T0)
    pods = {"wf-a-1": finished_pod(1), "wf-b-1": RUNNING}
    going = scheduler.step("wf", wf, first.status, observing(pods), later(1))
    assert going.delete == [] and going.status.phase == Phase.RUNNING
    assert going.status.tasks["c"].phase == Phase.SKIPPED


def test_invalid_workflow_fails_with_the_problem():
    wf = spec(task("a", ("b",)), task("b", ("a",)))
    result = scheduler.step("wf", wf, resource.WorkflowStatus(), observing({}), T0)
    assert result.create == [] and result.status.phase == Phase.FAILED
    assert "cycle" in result.status.message


def test_a_vanished_pod_fails_its_attempt_instead_of_running_it_again():
    wf = spec(task("a"))
    first = scheduler.step("wf", wf, resource.WorkflowStatus(), observing({}), T0)
    gone = scheduler.step("wf", wf, first.status, observing({}), later(1))
    assert gone.create == [] and "disappeared" in gone.status.tasks["a"].message


def test_long_names_make_valid_unique_pod_names():
    long = "w" * 60
    name = scheduler.pod_name(long, "task", 3)
    assert len(name) <= 63 and name.endswith("-task-3")
    assert name != scheduler.pod_name("w" * 61, "task", 3)


def test_the_task_status_says_why_its_last_attempt_failed():
    wf = spec(task("a", timeoutSeconds=5, retries={"limit": 1, "backoffSeconds": 0}))
    first = scheduler.step("wf", wf, resource.WorkflowStatus(), observing({}), T0)
    late = scheduler.step("wf", wf, first.status, observing({"wf-a-1": RUNNING}), later(6))
    assert late.status.tasks["a"].reason == resource.FailureReason.TIMED_OUT and late.create == [("a", 2)]
    done = scheduler.step("wf", wf, late.status, observing({"wf-a-2": finished_pod(0, OUT)}), later(8))
    assert done.status.tasks["a"].phase == Phase.SUCCEEDED and done.status.tasks["a"].reason is None


def test_infrastructure_failures_have_their_own_retry_budget():
    """A lost node or an unreachable store is not the task's failure: it is retried even with no
    retries of the task's own, up to ``retries.infrastructure`` times (as Flyte's system retries)."""
    wf = spec(task("a", retries={"limit": 0, "infrastructure": 1, "backoffSeconds": 0}))
    lost = scheduler.Attempt(True, message="the pod was deleted before the task finished",
                             reason=resource.FailureReason.POD_LOST)
    first = scheduler.step("wf", wf, resource.WorkflowStatus(), observing({}), T0)
    retried = scheduler.step("wf", wf, first.status, observing({"wf-a-1": lost}), later(1))
    assert retried.create == [("a", 2)] and retried.status.tasks["a"].infrastructure_failures == 1
    again = scheduler.step("wf", wf, retried.status, observing({"wf-a-2": lost}), later(2))
    assert again.status.tasks["a"].phase == Phase.FAILED, "the infrastructure budget is spent"

    own = scheduler.step("wf", wf, retried.status, observing({"wf-a-2": finished_pod(1)}), later(2))
    assert own.status.tasks["a"].phase == Phase.FAILED and own.status.tasks["a"].reason == "TaskFailed"


def test_long_messages_are_cut_keeping_their_start_and_end():
    message = "fetching inputs failed: " + "x" * 5000 + " ValueError: the real reason"
    cut = scheduler.bounded(message, 600)
    assert len(cut) == 600 and cut.startswith("fetching inputs failed: ") and cut.endswith("the real reason")
    assert scheduler.bounded("short", 600) == "short" and scheduler.bounded(None, 600) is None



def test_each_task_s_room_in_status_shrinks_with_the_workflow():
    def workflow(tasks: int, command: int = 10):
        return resource.WorkflowSpec.model_validate({"tasks": [
            {"name": f"t{i}", "image": "x", "command": ["x" * command]} for i in range(tasks)]})

    assert scheduler.room_per_task(workflow(1)) == 3500
    big = scheduler.room_per_task(workflow(1000))
    assert 800 < big < 1100
    assert scheduler.room_per_task(workflow(1000, command=1000)) == 256, "a huge spec leaves the minimum"


def test_the_next_deadline_is_the_earliest_back_off_or_timeout():
    wf = spec(task("a", timeoutSeconds=60), task("b"), task("c"))
    status = resource.WorkflowStatus(tasks={
        "a": resource.TaskStatus(phase=Phase.RUNNING, started_at="2026-01-01T00:00:00Z"),
        "b": resource.TaskStatus(phase=Phase.PENDING, next_attempt_at="2026-01-01T00:00:30Z"),
        "c": resource.TaskStatus(phase=Phase.RUNNING, started_at="2026-01-01T00:00:00Z")})
    assert scheduler.next_deadline(wf, status) == scheduler.parse_time("2026-01-01T00:00:30Z")
    status.tasks["b"].phase = Phase.SUCCEEDED
    assert scheduler.next_deadline(wf, status) == scheduler.parse_time("2026-01-01T00:01:00Z")
    status.tasks["a"].phase = Phase.SUCCEEDED
    assert scheduler.next_deadline(wf, status) is None, "nothing to wait for but events"


def conditions(status: resource.WorkflowStatus) -> dict[str, tuple[str, str | None, str | None]]:
    return {c.type: (c.status, c.reason, c.last_transition_time) for c in status.conditions}


def test_conditions_say_running_then_succeeded_for_kubectl_wait():
    wf = spec(task("a"), task("b", ("a",)))
    first = scheduler.step("wf", wf, resource.WorkflowStatus(), observing({}), T0)
    start = scheduler.timestamp(T0)
    assert conditions(first.status) == {"Running": ("True", "TasksRunning", start),
                                        "Succeeded": ("False", "TasksRunning", start),
                                        "Failed": ("False", "TasksRunning", start),
                                        "Stopped": ("False", "TasksRunning", start)}
    second = scheduler.step("wf", wf, first.status, observing({"wf-a-1": finished_pod(0, OUT)}), later(1))
    assert conditions(second.status) == conditions(first.status)  # no transition, no new time
    done = scheduler.step("wf", wf, second.status,
                          observing({"wf-a-1": finished_pod(0, OUT), "wf-b-1": finished_pod(0, OUT)}), later(2))
    end = scheduler.timestamp(later(2))
    # Reasons follow the workflow; a time moves only when its condition's status does.
    assert conditions(done.status) == {"Running": ("False", "Succeeded", end), "Succeeded": ("True", "Succeeded", end),
                                       "Failed": ("False", "Succeeded", start), "Stopped": ("False", "Succeeded", start)}


def test_a_failed_workflow_has_the_failed_condition_with_its_message():
    wf = spec(task("a"))
    first = scheduler.step("wf", wf, resource.WorkflowStatus(), observing({}), T0)
    done = scheduler.step("wf", wf, first.status, observing({"wf-a-1": finished_pod(3, message="boom")}), later(1))
    failed = next(c for c in done.status.conditions if c.type == "Failed")
    assert (failed.status, failed.reason) == ("True", "TaskFailed") and "boom" in failed.message
    assert conditions(done.status)["Succeeded"][:2] == conditions(done.status)["Running"][:2] == ("False", "TaskFailed")


def test_while_running_the_message_names_the_running_tasks():
    wf = spec(task("a"), task("b"), task("c"), task("d"), task("e", ("a",)))
    first = scheduler.step("wf", wf, resource.WorkflowStatus(), observing({}), T0)
    assert first.status.message == "running: a, b, c (+1 more)"
    pods = {"wf-a-1": finished_pod(0, OUT), "wf-b-1": RUNNING, "wf-c-1": RUNNING, "wf-d-1": RUNNING}
    assert scheduler.step("wf", wf, first.status, observing(pods), later(1)).status.message == \
        "running: b, c, d (+1 more)"


def test_a_stopped_workflow_stops_its_running_tasks_and_starts_no_other():
    wf = spec(task("a"), task("b"), task("c", ("a",)))
    first = scheduler.step("wf", wf, resource.WorkflowStatus(), observing({}), T0)
    # b finished as the stop came: its success is kept; a's pod is stopped; c never starts.
    stopped = scheduler.step("wf", wf.model_copy(update={"stop": True}), first.status,
                             observing({"wf-a-1": RUNNING, "wf-b-1": finished_pod(0, OUT)}), later(1))
    st = stopped.status
    assert (st.phase, st.message, st.progress) == (Phase.STOPPED, "stopped on request", "1/3")
    assert stopped.delete == ["wf-a-1"] and stopped.create == []
    assert {n: (t.phase, t.reason) for n, t in st.tasks.items()} == {
        "a": (Phase.FAILED, resource.FailureReason.STOPPED), "b": (Phase.SUCCEEDED, None), "c": (Phase.SKIPPED, None)}
    assert conditions(st)["Stopped"][:2] == ("True", "Stopped") and conditions(st)["Failed"][0] == "False"
    assert ("Normal", "Stopped", "workflow stopped on request (1/3 tasks had succeeded)") in stopped.events
    # Finished: later steps change nothing, not even a stop lifted without a rerun.
    assert scheduler.step("wf", wf, st, observing({}), later(2)).status == st


def test_a_rerun_runs_what_did_not_succeed_again_and_keeps_what_did():
    wf = spec(task("a"), task("b", ("a",), retries={"limit": 1, "backoffSeconds": 10}), task("c", ("b",)),
              outputs=[{"name": "final", "fromTask": {"task": "c", "output": "out"}}])
    s1 = scheduler.step("wf", wf, resource.WorkflowStatus(), observing({}), T0)
    s2 = scheduler.step("wf", wf, s1.status, observing({"wf-a-1": finished_pod(0, OUT)}), later(1))
    s3 = scheduler.step("wf", wf, s2.status, observing({"wf-b-1": finished_pod(1)}), later(2))
    s4 = scheduler.step("wf", wf, s3.status, observing({}), later(20))
    failed = scheduler.step("wf", wf, s4.status, observing({"wf-b-2": finished_pod(1)}), later(21)).status
    assert failed.phase == Phase.FAILED and failed.tasks["b"].attempts == 2 and failed.tasks["c"].phase == Phase.SKIPPED
    assert scheduler.step("wf", wf, failed, observing({}), later(22)).status == failed, "no rerun unless asked"

    again = scheduler.step("wf", wf.model_copy(update={"rerun": 1}), failed, observing({}), later(30))
    st = again.status
    assert (st.phase, st.rerun, st.finished_at) == (Phase.RUNNING, 1, None)
    assert again.create == [("b", 3)], "a succeeded and is kept; b goes on from attempt 3: no pod name reused"
    assert st.tasks["a"] == failed.tasks["a"]
    assert (st.tasks["b"].earlier_attempts, st.tasks["c"].phase, st.tasks["c"].attempts) == (2, Phase.PENDING, 0)
    assert any(reason == "Rerun" for _, reason, _ in again.events)
    # Its retry budget is fresh: one failure is retried again, as in the first run.
    retried = scheduler.step("wf", wf.model_copy(update={"rerun": 1}), st, observing({"wf-b-3": finished_pod(1)}),
                             later(31)).status
    assert retried.tasks["b"].phase == Phase.PENDING and "retrying in 10s" in retried.tasks["b"].message
    rerun = wf.model_copy(update={"rerun": 1})
    s5 = scheduler.step("wf", rerun, retried, observing({}), later(45))
    s6 = scheduler.step("wf", rerun, s5.status, observing({"wf-b-4": finished_pod(0, OUT)}), later(46))
    done = scheduler.step("wf", rerun, s6.status, observing({"wf-c-1": finished_pod(0, OUT)}), later(47)).status
    assert (done.phase, done.outputs["final"].uri, done.progress) == (Phase.SUCCEEDED, "s3://b/k/out", "3/3")
    assert scheduler.step("wf", wf.model_copy(update={"rerun": 2}), done, observing({}), later(48)).status == done, \
        "a succeeded workflow has nothing to run again"


def test_a_rerun_asked_while_running_is_not_acted_on_later():
    wf = spec(task("a"))
    running = scheduler.step("wf", wf.model_copy(update={"rerun": 1}), resource.WorkflowStatus(), observing({}), T0)
    failed = scheduler.step("wf", wf.model_copy(update={"rerun": 1}), running.status,
                            observing({"wf-a-1": finished_pod(1)}), later(1)).status
    assert failed.phase == Phase.FAILED and failed.rerun == 1
    assert scheduler.step("wf", wf.model_copy(update={"rerun": 1}), failed, observing({}), later(2)).status == failed


def test_a_stopped_workflow_can_be_rerun():
    wf = spec(task("a"), task("b", ("a",)))
    first = scheduler.step("wf", wf, resource.WorkflowStatus(), observing({}), T0)
    stopped = scheduler.step("wf", wf.model_copy(update={"stop": True}), first.status, observing({"wf-a-1": RUNNING}),
                             later(1)).status
    assert scheduler.step("wf", wf.model_copy(update={"stop": True, "rerun": 1}), stopped, observing({}),
                          later(2)).status == stopped, "still asked to stop: no rerun"
    again = scheduler.step("wf", wf.model_copy(update={"rerun": 1}), stopped, observing({}), later(3))
    assert again.create == [("a", 2)] and again.status.phase == Phase.RUNNING


def test_a_workflow_the_executor_cannot_run_fails_before_any_task_starts():
    wf = spec(task("a"), task("b", ("a",)))
    out = scheduler.refuse(wf, resource.WorkflowStatus(), "task b runs image x: no container runtime found",
                           "NoContainerRuntime", T0)
    st = out.status
    assert (st.phase, st.message, st.progress) == (Phase.FAILED, "task b runs image x: no container runtime found", "0/2")
    assert st.started_at == st.finished_at == scheduler.timestamp(T0) and not out.create
    assert {name: (ts.phase, ts.attempts) for name, ts in st.tasks.items()} == {
        "a": (Phase.SKIPPED, 0), "b": (Phase.SKIPPED, 0)}
    failed = next(c for c in st.conditions if c.type == "Failed")
    assert (failed.status, failed.reason) == ("True", "NoContainerRuntime")
    assert out.events == [("Warning", "NoContainerRuntime", st.message)]
    assert scheduler.step("wf", wf, st, observing({}), later(1)).status == st, "nothing more happens"
