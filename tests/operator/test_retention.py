"""What the operator deletes of finished work, and when: a finished Workflow once its TTL has
passed, and task pods the workflow's ``podRetention`` lets go, only once their attempts' ends are
in its status."""

from __future__ import annotations

import datetime

import pydantic
import pytest

from ferry.api import resource
from ferry.api.resource import Phase, PodRetention, TaskStatus, WorkflowStatus
from ferry_operator import pods, retention

FINISHED = "2030-01-01T12:00:00Z"


def at(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_workflow_s_own_ttl_wins_over_the_operator_s_default():
    assert retention.ttl(None, None) is None  # the default: finished workflows stay
    assert retention.ttl(None, 86400) == 86400
    assert retention.ttl(60, 86400) == 60
    assert retention.ttl(0, 86400) == 0  # zero is a TTL (delete at once), not "unset"
    assert retention.ttl(3600, None) == 3600


def test_a_finished_workflow_is_due_its_ttl_after_it_finished():
    assert retention.due(FINISHED, 30) == at("2030-01-01T12:00:30Z")
    assert retention.due(FINISHED, 0) == at(FINISHED)
    assert retention.due(FINISHED, None) is None  # no TTL: never
    assert retention.due(None, 30) is None  # not finished (an older operator's status): never


def test_the_ttl_is_a_non_negative_number_of_seconds():
    tasks = [{"name": "a", "image": "busybox"}]
    spec = resource.WorkflowSpec.model_validate({"tasks": tasks, "ttlSecondsAfterFinished": 0})
    assert spec.ttl_seconds_after_finished == 0
    with pytest.raises(pydantic.ValidationError, match="ttlSecondsAfterFinished"):
        resource.WorkflowSpec.model_validate({"tasks": tasks, "ttlSecondsAfterFinished": -1})
    spec = resource.WorkflowSpec.model_validate({"tasks": tasks})
    assert spec.ttl_seconds_after_finished is None and spec.pod_retention == PodRetention.KEEP_ALL
    with pytest.raises(pydantic.ValidationError, match="podRetention"):
        resource.WorkflowSpec.model_validate({"tasks": tasks, "podRetention": "OnSuccess"})


def pod(name: str, deleting: bool = False, held: bool = True) -> dict:
    meta = {"name": name, "uid": f"uid-{name}", "finalizers": [pods.RESULT_FINALIZER] if held else []}
    if deleting:
        meta["deletionTimestamp"] = FINISHED
    return {"metadata": meta, "status": {"phase": "Succeeded"}}


# A workflow whose task "ok" succeeded on its second attempt, "bad" failed for good, "slow" runs.
STATUS = WorkflowStatus(phase=Phase.RUNNING, tasks={
    "ok": TaskStatus(phase=Phase.SUCCEEDED, attempts=2, pod_name="wf-ok-2"),
    "bad": TaskStatus(phase=Phase.FAILED, attempts=1, pod_name="wf-bad-1"),
    "retrying": TaskStatus(phase=Phase.PENDING, attempts=1, pod_name="wf-retrying-1"),
    "slow": TaskStatus(phase=Phase.RUNNING, attempts=1, pod_name="wf-slow-1"),
    "skipped": TaskStatus(phase=Phase.SKIPPED),
})


def test_the_pods_of_succeeded_attempts_are_those_of_succeeded_tasks():
    assert retention.succeeded_pods(STATUS) == {"wf-ok-2"}


@pytest.mark.parametrize("policy, deleted", [
    (PodRetention.KEEP_ALL, set()),
    # A succeeded attempt's pod goes; failed attempts' pods stay for their logs, a succeeded
    # task's earlier ones (wf-ok-1) too.
    (PodRetention.KEEP_FAILED, {"wf-ok-2"}),
    (PodRetention.KEEP_NONE, {"wf-ok-1", "wf-ok-2", "wf-bad-1", "wf-retrying-1"}),
])
def test_pod_retention_deletes_released_pods_by_their_attempt_s_outcome(policy, deleted):
    released = pods.releasable({name: pod(name) for name in ("wf-ok-1", "wf-ok-2", "wf-bad-1", "wf-retrying-1",
                                                             "wf-slow-1")}, STATUS)
    succeeded = retention.succeeded_pods(STATUS)
    assert {p["metadata"]["name"] for p in released if retention.deletes(policy, p, succeeded)} == deleted
    # A running attempt's pod is never released, so never deleted: its result is not in status yet.
    assert "wf-slow-1" not in {p["metadata"]["name"] for p in released}


def test_a_pod_already_being_deleted_is_not_deleted_again():
    assert not retention.deletes(PodRetention.KEEP_NONE, pod("wf-ok-2", deleting=True), {"wf-ok-2"})
    assert not retention.deletes(PodRetention.KEEP_FAILED, pod("wf-ok-2", deleting=True), {"wf-ok-2"})


def test_a_policy_given_as_the_spec_s_text_works_and_an_unknown_one_keeps_everything():
    """A finished workflow's policy is remembered as its spec spells it (``bodies``): a value an
    older or newer CRD let through keeps the pods rather than guess."""
    assert retention.deletes("KeepNone", pod("wf-bad-1"), set())
    assert retention.deletes("KeepFailed", pod("wf-ok-2"), {"wf-ok-2"})
    assert not retention.deletes("Sometimes", pod("wf-ok-2"), {"wf-ok-2"})
