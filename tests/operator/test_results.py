import datetime
import json

import pytest

from ferry.api import resource
from ferry.api import scheduler
from ferry_operator import results

from tests.runtime.api.test_dag import spec, task


def pod(phase: str, **containers: dict) -> dict:
    init = [{"name": n, "state": s} for n, s in containers.items() if n.startswith("ferry")]
    main = [{"name": n, "state": s} for n, s in containers.items() if not n.startswith("ferry")]
    return {"status": {"phase": phase, "initContainerStatuses": init, "containerStatuses": main}}


def done(code: int, message: str = "") -> dict:
    return {"terminated": {"exitCode": code, "message": message, "reason": "Completed" if code == 0 else "Error"}}


def test_failed_fetch_is_reported_before_main():
    attempt = results.read_attempt(pod("Failed", **{"ferry-fetch": done(1, "IntegrityError: size differs"),
                                                    "main": {"waiting": {"reason": "PodInitializing"}}}), [])
    assert attempt.finished and not attempt.succeeded
    assert "fetching inputs failed" in attempt.message and "IntegrityError" in attempt.message


def test_publish_error_and_missing_outputs_fail_the_attempt():
    error = json.dumps({"error": "output 'x': the task did not write /ferry/outputs/x"})
    attempt = results.read_attempt(pod("Succeeded", main=done(0), **{"ferry-publish": done(1, error)}), ["x"])
    assert not attempt.succeeded and "did not write /ferry/outputs/x" in attempt.message
    partial = json.dumps({"outputs": {"x": {"kind": "value", "value": 1}}})
    attempt = results.read_attempt(pod("Succeeded", main=done(0), **{"ferry-publish": done(0, partial)}), ["x", "y"])
    assert not attempt.succeeded and "not published: y" in attempt.message


def test_a_pod_that_reports_a_malformed_digest_fails_its_attempt_naming_the_field():
    """A Python task writes its own report: a digest the next pod would refuse never reaches status
    (where the CRD's patterns would make the API server refuse the operator's whole status write)."""
    report = json.dumps({"outputs": {"out": {"kind": "file", "uri": "s3://b/k", "sha256": "../../etc"}}})
    attempt = results.read_attempt(pod("Succeeded", main=done(0), **{"ferry-publish": done(0, report)}), ["out"])
    assert attempt.finished and not attempt.succeeded and attempt.outputs == {}
    assert "outputs.out.sha256" in attempt.message and "pattern" in attempt.message


def test_a_publisher_killed_at_the_end_of_its_grace_says_how_to_give_it_more():
    killed = {"terminated": {"exitCode": 137, "reason": "Error", "message": ""}}
    attempt = results.read_attempt(pod("Succeeded", main=done(0), **{"ferry-publish": killed}), ["x"])
    assert not attempt.succeeded and "killed before it finished" in attempt.message
    assert "FERRY_OPERATOR_UPLOAD_GRACE_SECONDS" in attempt.message


def test_unfixable_waiting_reasons_finish_the_attempt():
    stuck = pod("Pending", main={"waiting": {"reason": "InvalidImageName", "message": "bad ref"}})
    attempt = results.read_attempt(stuck, [])
    assert attempt.finished and "InvalidImageName" in attempt.message
    pulling = pod("Pending", main={"waiting": {"reason": "ErrImagePull", "message": "not found"}})
    attempt = results.read_attempt(pulling, [])
    assert not attempt.finished and "ErrImagePull" in attempt.message


CREATED = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def created(pod: dict) -> dict:
    return {**pod, "metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"}}


@pytest.mark.parametrize("reason", ["ErrImagePull", "ImagePullBackOff", "CreateContainerConfigError",
                                    "CreateContainerError"])
def test_a_pod_stuck_on_a_start_error_fails_after_the_start_timeout(reason):
    """A mistyped image or a missing Secret never resolves by itself: without a bound the attempt hangs."""
    stuck = created(pod("Pending", main={"waiting": {"reason": reason, "message": "secret \"creds\" not found"}}))
    early = results.read_attempt(stuck, [], CREATED + datetime.timedelta(seconds=59), start_timeout_seconds=60)
    assert not early.finished and reason in early.message
    late = results.read_attempt(stuck, [], CREATED + datetime.timedelta(seconds=61), start_timeout_seconds=60)
    assert late.finished and not late.succeeded and late.stop
    assert late.message == f'main: {reason} for more than 60s: secret "creds" not found'


def _unschedulable(message: str) -> dict:
    return {**created(pod("Pending")), "status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}]}}


def test_a_pod_no_node_can_take_fails_after_the_start_timeout():
    unschedulable = _unschedulable("0/3 nodes are available: 1 Insufficient memory, 2 node(s) didn't match "
                                   "Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 "
                                   "Preemption is not helpful for scheduling.")
    assert not results.read_attempt(unschedulable, [], CREATED, start_timeout_seconds=60).finished
    late = results.read_attempt(unschedulable, [], CREATED + datetime.timedelta(seconds=61), start_timeout_seconds=60)
    assert late.finished and "Unschedulable for more than 60s: 0/3 nodes are available" in late.message


def test_a_pod_waiting_for_room_on_full_nodes_waits_with_the_reason():
    """Found by the fault suite: 50 workflows at once fill a node; a queue is not a failure."""
    full = _unschedulable("0/2 nodes are available: 1 Insufficient cpu, 1 Too many pods. preemption: 0/2 nodes "
                          "are available: 2 No preemption victims found for incoming pod.")
    waiting = results.read_attempt(full, [], CREATED + datetime.timedelta(hours=1), start_timeout_seconds=60)
    assert not waiting.finished and "Insufficient cpu" in waiting.message
    v1_34 = _unschedulable("0/1 nodes are available: 1 Insufficient cpu. no new claims to deallocate, preemption: "
                           "0/1 nodes are available: 1 No preemption victims found for incoming pod.")
    assert not results.read_attempt(v1_34, [], CREATED + datetime.timedelta(hours=1), start_timeout_seconds=60).finished


def test_a_pod_deleted_while_running_whose_grace_is_over_failed_its_attempt():
    """Its node is gone: nothing will ever report its end, and Ferry's finalizer keeps the object."""
    lost = {**pod("Running", main={"running": {}}), "metadata": {"creationTimestamp": "2026-01-01T00:00:00Z",
                                                                "deletionTimestamp": "2026-01-01T00:10:00Z"}}
    assert not results.read_attempt(lost, [], CREATED + datetime.timedelta(minutes=9)).finished
    attempt = results.read_attempt(lost, [], CREATED + datetime.timedelta(minutes=11))
    assert attempt.finished and not attempt.succeeded and "deleted before the task finished" in attempt.message


def test_a_slow_image_pull_is_not_a_start_error():
    pulling = created(pod("Pending", main={"waiting": {"reason": "ContainerCreating"}}))
    assert not results.read_attempt(pulling, [], CREATED + datetime.timedelta(hours=1), start_timeout_seconds=60).finished


def test_status_of_a_thousand_task_workflow_stays_small():
    """The API server refuses objects over ~1.5 MiB; status holds references, never file lists."""
    wf = spec(*(task(f"task-{i:04d}", outputs=("data",)) for i in range(1000)))
    status = scheduler.step("a-workflow-with-a-long-name", wf, resource.WorkflowStatus(), {},
                            scheduler.parse_time("2026-01-01T00:00:00Z")).status
    for name, ts in status.tasks.items():
        ts.phase, ts.finished_at = resource.Phase.SUCCEEDED, ts.started_at
        ts.outputs = {"data": resource.Output(kind=resource.Kind.DIRECTORY, size=10**12, file_count=10**6,
                                              uri=f"s3://a-bucket/ferry/namespace/0f8fad5b-d9cb-469f-a165-70867728950e/{name}/1/data",
                                              manifest_digest="sha256:" + "0" * 64)}
    size = len(json.dumps({"spec": wf.dump(), "status": status.dump()}))
    print(f"1000-task workflow: {size} bytes")
    assert size < 1024 * 1024


def test_each_failure_carries_a_reason_a_program_can_match():
    """Infrastructure (the store did not answer) must not read like the task's own failure."""
    Reason = resource.FailureReason
    oom = {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}
    outage = json.dumps({"error": "StoreUnavailableError: the store did not answer for 121s"})
    cases = {
        Reason.TASK_FAILED: pod("Failed", main=done(2)),
        Reason.OOM_KILLED: pod("Failed", main=oom),
        Reason.FETCH_FAILED: pod("Failed", **{"ferry-fetch": done(1, "IntegrityError: size differs")}),
        Reason.PUBLISH_FAILED: pod("Succeeded", main=done(0), **{"ferry-publish": done(1, json.dumps({"error": "x"}))}),
        Reason.STORE_UNAVAILABLE: pod("Succeeded", main=done(0), **{"ferry-publish": done(1, outage)}),
        Reason.START_FAILED: pod("Pending", main={"waiting": {"reason": "InvalidImageName", "message": "bad"}}),
    }
    for reason, case in cases.items():
        attempt = results.read_attempt(case, ["x"])
        assert attempt.finished and attempt.reason == reason, (reason, attempt)


@pytest.mark.parametrize("message, reason", [
    ("PermissionError: the store refused to issue credentials scoped to this namespace", resource.FailureReason.START_FAILED),
    ("StoreUnavailableError: the store's STS did not answer for 120s", resource.FailureReason.STORE_UNAVAILABLE)])
def test_credentials_that_cannot_be_issued_fail_the_attempt_with_why(message, reason):
    """The kubelet restarts the failed sidecar forever: the pod would wait without end."""
    crashed = pod("Pending", **{"ferry-credentials": {"waiting": {"reason": "CrashLoopBackOff"}},
                                "main": {"waiting": {"reason": "PodInitializing"}}})
    crashed["status"]["initContainerStatuses"][0]["lastState"] = done(1, message)
    attempt = results.read_attempt(crashed, ["out"])
    assert attempt.finished and not attempt.succeeded and attempt.stop
    assert attempt.reason == reason and message in attempt.message
    running = pod("Running", **{"ferry-credentials": {"running": {}}, "main": {"running": {}}})
    assert not results.read_attempt(running, ["out"]).finished


def test_a_stored_result_is_recorded_as_a_pointer_and_passed_on():
    """The operator never reads the store: the pointer goes into status and into the plans of the
    tasks that use the outputs, whose pods check its digest."""
    from ferry.api import taskpod

    pointer = resource.StoredResult(uri="s3://b/p/ns/uid/up/1/.ferry-result.json", sha256="a" * 64, size=9000)
    message = taskpod.PublishResult(result=pointer).model_dump_json(exclude_none=True)
    attempt = results.read_attempt(pod("Succeeded", main=done(0), **{"ferry-publish": done(0, message)}), ["out"])
    assert attempt.succeeded and attempt.result == pointer and attempt.outputs == {}

    wf = spec(task("up", outputs=("out",)),
              {"name": "down", "image": "x", "inputs": [{"name": "f", "fromTask": {"task": "up", "output": "out"}}]})
    status = scheduler.step("wf", wf, resource.WorkflowStatus(), {}, scheduler.parse_time("2026-01-01T00:00:00Z")).status
    status = scheduler.step("wf", wf, status, lambda t, p: attempt, scheduler.parse_time("2026-01-01T00:00:10Z")).status
    assert status.tasks["up"].result == pointer and status.tasks["up"].outputs == {}
    plan = taskpod.build_plan(wf, status, "down", 1, workflow="wf", namespace="ns", execution_id="uid", root="s3://b/p/ns")
    assert plan.inputs["f"].result == pointer.model_copy(update={"output": "out"})
    assert plan.inputs["f"].kind == resource.Kind.FILE


def test_a_value_inside_a_stored_result_is_fetched_not_passed_as_null():
    from ferry.api import taskpod

    pointer = resource.StoredResult(uri="s3://b/p/ns/uid/up/1/.ferry-result.json", sha256="a" * 64, size=9000)
    wf = spec({"name": "up", "image": "x", "outputs": [{"name": "v", "kind": "value"}]},
              {"name": "down", "image": "x", "inputs": [{"name": "v", "fromTask": {"task": "up", "output": "v"}}]})
    status = resource.WorkflowStatus(tasks={"up": resource.TaskStatus(phase="Succeeded", result=pointer)})
    plan = taskpod.build_plan(wf, status, "down", 1, workflow="wf", namespace="ns", execution_id="uid", root="s3://b/p/ns")
    assert "v" not in plan.values and plan.inputs["v"].result.output == "v"
    assert plan.input_env()["FERRY_INPUT_V"] == "/ferry/inputs/v"


def test_a_pod_someone_else_deleted_lost_its_attempt_to_the_infrastructure():
    """Evicted, drained, deleted by hand: the kubelet stops the task (exit 143), which is not the task's
    failure; it is retried from retries.infrastructure. A pod that published before it went still counts."""
    killed = pod("Failed", main=done(143))
    killed["metadata"] = {"deletionTimestamp": "2026-01-01T00:00:00Z"}
    attempt = results.read_attempt(killed, [])
    assert attempt.finished and attempt.reason == resource.FailureReason.POD_LOST
    assert attempt.message.startswith("the pod was deleted while the task ran") and "code 143" in attempt.message
    published = pod("Succeeded", main=done(0))
    published["metadata"] = {"deletionTimestamp": "2026-01-01T00:00:00Z"}
    assert results.read_attempt(published, []).succeeded
    assert results.read_attempt(pod("Failed", main=done(143)), []).reason == resource.FailureReason.TASK_FAILED


def test_a_pod_s_deadline_is_its_start_timeout_or_the_end_of_its_grace():
    pending = created(pod("Pending"))
    assert results.deadline(pending, 60) == CREATED + datetime.timedelta(seconds=60)
    gone = {**pending, "metadata": {**pending["metadata"], "deletionTimestamp": "2026-01-01T00:10:00Z"}}
    assert results.deadline(gone, 60) == scheduler.parse_time("2026-01-01T00:10:00Z")
    assert results.deadline(created(pod("Running")), 60) is None
    assert results.deadline(created(pod("Succeeded")), 60) is None


def test_a_pod_that_cannot_mount_a_missing_secret_fails_after_the_start_timeout():
    """The pod itself says only ContainerCreating; its FailedMount events say why."""
    stuck = created(pod("Pending", main={"waiting": {"reason": "ContainerCreating"}}))
    stuck["status"]["conditions"] = [{"type": "PodScheduled", "status": "True"}]
    failure = 'MountVolume.SetUp failed for volume "secret-0" : secret "nope" not found'
    early = CREATED + datetime.timedelta(seconds=30)
    assert not results.stuck_starting(stuck, early, 60), "its events are read only after the start timeout"
    late = CREATED + datetime.timedelta(seconds=61)
    assert results.stuck_starting(stuck, late, 60)
    attempt = results.read_attempt(stuck, [], late, 60, [failure])
    assert attempt.finished and attempt.stop and attempt.reason == resource.FailureReason.START_FAILED
    assert attempt.message == f"FailedMount for more than 60s: {failure}"
    assert not results.read_attempt(stuck, [], late, 60, []).finished, "a slow image pull is not an error"


def test_a_pod_whose_node_could_not_read_its_secrets_from_the_api_server_failed_for_the_infrastructure():
    """After an outage of the API server, the kubelet's mounts wait for its caches of Secrets to
    sync again, backing off: a pod may pass its start timeout with nothing wrong in its spec. That
    is the cluster's failure (retried from ``retries.infrastructure``), not the task's."""
    stuck = created(pod("Pending", main={"waiting": {"reason": "ContainerCreating"}}))
    stuck["status"]["conditions"] = [{"type": "PodScheduled", "status": "True"}]
    late = CREATED + datetime.timedelta(seconds=61)
    waits = ['MountVolume.SetUp failed for volume "ferry-credentials" : failed to sync secret cache: timed out '
             'waiting for the condition',
             "Unable to attach or mount volumes: unmounted volumes=[ferry-credentials], unattached volumes=[]: "
             "timed out waiting for the condition"]
    attempt = results.read_attempt(stuck, [], late, 60, waits)
    assert attempt.finished and attempt.stop and attempt.reason == resource.FailureReason.MOUNT_STALLED
    assert attempt.reason in resource.INFRASTRUCTURE_FAILURES
    assert "could not read them from the API server" in attempt.message and waits[0] in attempt.message
    missing = ['MountVolume.SetUp failed for volume "secret-0" : secret "nope" not found', *waits]
    assert results.read_attempt(stuck, [], late, 60, missing).reason == resource.FailureReason.START_FAILED, (
        "a Secret that is not there is the workflow's to fix, whatever else the kubelet said")


def test_a_container_whose_secret_env_the_kubelet_could_not_read_from_the_api_server_failed_for_the_infrastructure():
    """The same wait as a stalled mount, for a container's ``envFrom`` Secret: the kubelet reports
    ``CreateContainerConfigError: failed to sync secret cache`` until its cache syncs (seen on the
    real node after an API server restart, under load). A Secret that is not there stays the task's."""
    late = CREATED + datetime.timedelta(seconds=61)
    stalled = created(pod("Pending", **{"ferry-credentials": {"waiting": {
        "reason": "CreateContainerConfigError",
        "message": "failed to sync secret cache: timed out waiting for the condition"}}}))
    attempt = results.read_attempt(stalled, [], late, 60)
    assert attempt.finished and attempt.stop and attempt.reason == resource.FailureReason.MOUNT_STALLED, attempt
    assert "could not read them from the API server" in attempt.message
    missing = created(pod("Pending", **{"ferry-credentials": {"waiting": {
        "reason": "CreateContainerConfigError", "message": 'secret "store-keys" not found'}}}))
    assert results.read_attempt(missing, [], late, 60).reason == resource.FailureReason.START_FAILED
    assert not results.read_attempt(stalled, [], CREATED + datetime.timedelta(seconds=30), 60).finished


def test_a_cleanup_pod_is_reported_once_it_ends_or_cannot_start():
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    created = {"creationTimestamp": "2026-01-01T00:00:00Z"}
    running = {"metadata": created, "status": {"phase": "Running", "containerStatuses": [
        {"name": "ferry-cleanup", "state": {"running": {}}}]}}
    assert results.cleanup_outcome(running, now, 60) is None
    ended = {"metadata": created, **pod("Succeeded", **{"ferry-cleanup": done(0, "deleted 4 objects (8 bytes)")})}
    assert results.cleanup_outcome(ended, now, 60) == ("Normal", "ArtifactsDeleted", "deleted 4 objects (8 bytes)")
    failed = {"metadata": created, **pod("Failed", **{"ferry-cleanup": done(1, "cleaning s3://b/x/ failed: Denied")})}
    kind, reason, message = results.cleanup_outcome(failed, now, 60)
    assert (kind, reason) == ("Warning", "ArtifactCleanupFailed") and "Denied" in message and "ferry gc" in message
    pulling = {"metadata": created, "status": {"phase": "Pending", "containerStatuses": [
        {"name": "ferry-cleanup", "state": {"waiting": {"reason": "ErrImagePull", "message": "no such image"}}}]}}
    kind, reason, message = results.cleanup_outcome(pulling, now, 60)
    assert (kind, reason) == ("Warning", "ArtifactCleanupFailed") and "ErrImagePull: no such image" in message


# -- a map's pods: the split reports its items and index, items and the gather a pointer or nothing --

INDEX = {"uri": "s3://b/ns/uid/m/split/1/index.json", "sha256": "a" * 64, "size": 90}
GATHERED = {"uri": "s3://b/ns/uid/m/gather/1/.ferry-result.json", "sha256": "b" * 64, "size": 900}


def test_a_split_that_stored_its_index_reports_its_item_count_and_the_index():
    split = json.dumps({"outputs": {"items": {"kind": "value", "value": 200}}, "result": INDEX})
    attempt = results.read_attempt(pod("Succeeded", main=done(0, split)), [], role="split")
    assert attempt.succeeded and attempt.outputs["items"].value == 200 and attempt.result.uri == INDEX["uri"]


@pytest.mark.parametrize("message", ["", json.dumps({"result": INDEX}),
                                     json.dumps({"outputs": {"items": {"kind": "value", "value": 3}}})])
def test_a_split_that_reports_no_count_or_no_index_failed_to_publish(message):
    attempt = results.read_attempt(pod("Succeeded", main=done(0, message)), [], role="split")
    assert attempt.finished and not attempt.succeeded and attempt.reason == resource.FailureReason.PUBLISH_FAILED
    assert "split" in attempt.message


def test_a_failed_split_is_its_own_failure_with_its_message():
    attempt = results.read_attempt(pod("Failed", main=done(1, "ValueError: map.over is not a list")), [], role="split")
    assert not attempt.succeeded and attempt.reason == resource.FailureReason.TASK_FAILED
    assert "map.over is not a list" in attempt.message


@pytest.mark.parametrize("message", ["", json.dumps({}), json.dumps({"cached": True})])
def test_an_item_pod_succeeds_on_its_exit_its_outputs_are_in_its_stored_result_not_the_message(message):
    python = pod("Succeeded", main=done(0, message))
    container = pod("Succeeded", main=done(0), **{"ferry-publish": done(0, message)})
    for unit in (python, container):
        attempt = results.read_attempt(unit, ["out"], role="item")
        assert attempt.finished and attempt.succeeded and attempt.outputs == {}, message
        assert (attempt.message == "outputs reused from the cache") == ("cached" in message)


def test_an_item_pod_that_failed_says_which_item_and_why():
    error = json.dumps({"error": "item 17: FileNotFoundError: x"})
    for unit in (pod("Failed", main=done(1, error)), pod("Failed", main=done(0), **{"ferry-publish": done(1, error)}),
                 pod("Succeeded", main=done(0), **{"ferry-publish": done(0, error)})):
        attempt = results.read_attempt(unit, ["out"], role="item")
        assert attempt.finished and not attempt.succeeded and "item 17: FileNotFoundError" in attempt.message


def test_an_item_pod_whose_publisher_was_killed_stored_no_result():
    killed = {"terminated": {"exitCode": 137, "reason": "Error"}}
    attempt = results.read_attempt(pod("Failed", main=done(0), **{"ferry-publish": killed}), [], role="item")
    assert not attempt.succeeded and attempt.reason == resource.FailureReason.PUBLISH_FAILED


def test_a_gather_reports_a_pointer_to_the_gathered_outputs():
    attempt = results.read_attempt(pod("Succeeded", main=done(0, json.dumps({"result": GATHERED}))), ["out"],
                                   role="gather")
    assert attempt.succeeded and attempt.result.uri == GATHERED["uri"] and attempt.outputs == {}
    nothing = results.read_attempt(pod("Succeeded", main=done(0)), [], role="gather")
    assert nothing.succeeded and nothing.result is None  # a map without outputs gathers nothing


def test_a_unit_stuck_starting_fails_as_a_task_s_pod_does():
    now = datetime.datetime(2026, 1, 1, 1, tzinfo=datetime.timezone.utc)
    stuck = pod("Pending", main={"waiting": {"reason": "ImagePullBackOff", "message": "no such image"}})
    stuck["metadata"] = {"creationTimestamp": "2026-01-01T00:00:00Z"}
    attempt = results.read_attempt(stuck, [], now, 300, role="item")
    assert attempt.finished and attempt.stop and attempt.reason == resource.FailureReason.START_FAILED
    assert attempt.started is None, "it never started: no timeout runs"


def test_a_unit_s_start_is_when_its_pod_started_not_when_it_waited_for_room():
    running = pod("Running", main={"running": {}})
    running["metadata"] = {"creationTimestamp": "2026-01-01T00:00:00Z"}
    running["status"]["startTime"] = "2026-01-01T00:05:00Z"
    attempt = results.read_attempt(running, [], role="item")
    assert not attempt.finished and attempt.started == scheduler.parse_time("2026-01-01T00:05:00Z")
    queued = pod("Pending")
    queued["status"]["conditions"] = [{"type": "PodScheduled", "status": "False", "message": "0/3 nodes are "
                                       "available: 3 Insufficient cpu."}]
    assert results.read_attempt(queued, [], role="item").started is None
