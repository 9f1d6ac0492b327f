"""End to end: a workflow's life after ``kubectl apply``, through the CLI a user has: ``ferry stop``,
``ferry retry`` (what succeeded is kept), ``ferry logs`` of Ferry's own containers, ``ferry delete``."""

from __future__ import annotations

import json

import pytest

from tests.cluster.fixtures import Cluster, eventually
from tests.operator.fixtures import get_workflow, wait_for_phase
from tests.operator.test_python_tasks_e2e import ferry
from tests.operator.test_workflows_e2e import apply_manifest, workflow_pods

pytestmark = [pytest.mark.cluster, pytest.mark.s3]


def sh(name: str, script: str, **fields) -> dict:
    return {"name": name, "image": "busybox:1.36", "command": ["sh", "-c", script],
            "outputs": [{"name": "v", "kind": "value"}], **fields}


def from_(task: str) -> list[dict]:
    return [{"name": "v", "fromTask": {"task": task, "output": "v"}}]


def test_a_stopped_workflow_is_retried_from_what_did_not_succeed(cluster: Cluster, workflow_namespace: str, s3):
    ns = workflow_namespace
    # ``second`` hangs on its first attempt only: stopped there, it succeeds when run again.
    apply_manifest(cluster, ns, {"apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow", "metadata": {"name": "life"},
                                 "spec": {"tasks": [
                                     sh("first", "echo 5 > /ferry/outputs/v"),
                                     sh("second", '[ "$FERRY_ATTEMPT" -gt 1 ] || sleep 600; '
                                                  'echo $(($(cat "$FERRY_INPUT_V") + 1)) > /ferry/outputs/v', inputs=from_("first")),
                                     sh("third", 'echo $(($(cat "$FERRY_INPUT_V") + 1)) > /ferry/outputs/v', inputs=from_("second"))],
                                     "outputs": [{"name": "result", "fromTask": {"task": "third", "output": "v"}}]}})

    def second_running():
        pod = next((p for p in workflow_pods(cluster, ns, "life") if p.metadata.name == "life-second-1"), None)
        return pod and any(s.state.running for s in pod.status.container_statuses or [] if s.name == "main")

    eventually(second_running, 120, what="the second task to run")
    stopped = ferry(cluster, s3, "stop", "life", "-n", ns)
    assert stopped.returncode == 0, stopped.stderr
    # kubectl wait sees the Stopped condition; the hanging pod is stopped, not waited for.
    waited = cluster.kubectl("wait", "fwf/life", "-n", ns, "--for=condition=Stopped", "--timeout=60s", check=False)
    assert waited.returncode == 0, waited.stderr
    status = get_workflow(cluster, ns, "life")["status"]
    assert (status["phase"], status["message"], status["progress"]) == ("Stopped", "stopped on request", "1/3")
    tasks = status["tasks"]
    assert (tasks["second"]["phase"], tasks["second"]["reason"], tasks["third"]["phase"]) == ("Failed", "Stopped", "Skipped")
    eventually(lambda: not any(p.metadata.name == "life-second-1" for p in workflow_pods(cluster, ns, "life")), 60,
               what="the stopped attempt's pod to go")

    retried = ferry(cluster, s3, "retry", "life", "-n", ns, "--follow")
    assert retried.returncode == 0, retried.stderr
    assert "running 2 tasks again (second, third)" in retried.stdout
    workflow = wait_for_phase(cluster, ns, "life", timeout=120)
    status = workflow["status"]
    assert (status["phase"], status["outputs"]["result"]["value"], status["rerun"]) == ("Succeeded", 7, 1)
    attempts = {name: (t["attempts"], t.get("earlierAttempts")) for name, t in status["tasks"].items()}
    assert attempts == {"first": (1, None), "second": (2, 1), "third": (1, None)}, "first kept, not run again"
    assert sorted(p.metadata.name for p in workflow_pods(cluster, ns, "life")) == [
        "life-first-1", "life-second-2", "life-third-1"]

    again = ferry(cluster, s3, "retry", "life", "-n", ns)
    assert again.returncode == 1 and "succeeded: nothing to run again" in again.stderr
    # Ferry's own containers' logs are one option away; a finished task's log is followed to its end.
    publish = ferry(cluster, s3, "logs", "life", "third", "-n", ns, "-c", "publish")
    assert publish.returncode == 0, publish.stderr
    fetch = ferry(cluster, s3, "logs", "life", "third", "-n", ns, "-c", "fetch")  # it wrote the value's file
    assert fetch.returncode == 0, fetch.stderr
    fetch = ferry(cluster, s3, "logs", "life", "first", "-n", ns, "-c", "fetch")  # no inputs: no fetch
    assert fetch.returncode == 1 and "has no ferry-fetch container: only container tasks with inputs" in fetch.stderr
    followed = ferry(cluster, s3, "logs", "life", "third", "-n", ns, "--follow")
    assert followed.returncode == 0, followed.stderr

    deleted = ferry(cluster, s3, "delete", "life", "-n", ns)
    assert deleted.returncode == 0 and "deleted" in deleted.stdout, deleted.stderr
    eventually(lambda: not workflow_pods(cluster, ns, "life"), 90, what="the pods to go with the workflow")


def stored_keys(s3, folder: str) -> list[str]:
    """The keys under the ``s3://`` folder, relative to it."""
    bucket, _, prefix = folder.removeprefix("s3://").partition("/")
    pages = s3.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"][len(prefix):] for page in pages for o in page.get("Contents", []))


def test_deleting_a_workflow_deletes_its_objects_but_what_another_still_reads(cluster: Cluster, workflow_namespace: str,
                                                                              s3):
    ns = workflow_namespace
    make = {"name": "make", "image": "busybox:1.36",
            "command": ["sh", "-c", "mkdir -p /ferry/outputs/kept /ferry/outputs/free && echo k > /ferry/outputs/kept/k "
                                    "&& echo f > /ferry/outputs/free/f && echo x > /ferry/outputs/file"],
            "outputs": [{"name": "kept", "kind": "directory"}, {"name": "free", "kind": "directory"},
                        {"name": "file", "kind": "file"}]}
    apply_manifest(cluster, ns, {"apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow", "metadata": {"name": "maker"},
                                 "spec": {"artifactCleanup": "OnDeletion", "tasks": [make]}})
    made = wait_for_phase(cluster, ns, "maker", timeout=120)
    outputs = made["status"]["tasks"]["make"]["outputs"]
    uid = made["metadata"]["uid"]
    folder = outputs["kept"]["uri"].split(f"/{uid}/")[0] + f"/{uid}/"
    # Another workflow reads one output by its URI: that output must outlive its maker.
    apply_manifest(cluster, ns, {"apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow", "metadata": {"name": "user"},
                                 "spec": {"tasks": [{"name": "read", "image": "busybox:1.36",
                                                     "command": ["cat", "/ferry/inputs/kept/k"],
                                                     "inputs": [{"name": "kept", "uri": outputs["kept"]["uri"],
                                                                 "kind": "directory"}]}]}})
    assert wait_for_phase(cluster, ns, "user", timeout=120)["status"]["phase"] == "Succeeded"
    before = stored_keys(s3, folder)
    assert any(key.startswith("make/1/free/") for key in before) and any("file" in key for key in before), before

    cluster.kubectl("delete", "fwf", "maker", "-n", ns, "--wait=false")
    eventually(lambda: cluster.kubectl("get", "fwf", "maker", "-n", ns, check=False).returncode != 0, 180,
               what="the workflow to go once its objects are deleted")
    kept_prefix = outputs["kept"]["uri"].removeprefix(folder) + "/"
    left = stored_keys(s3, folder)
    assert left and all(key.startswith(kept_prefix) for key in left), left
    assert left == [key for key in before if key.startswith(kept_prefix)], "what the other workflow reads, whole"
    reasons = cluster.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.name=maker",
                              "-o", "json").stdout
    deleted = [e["message"] for e in json.loads(reasons)["items"] if e["reason"] == "ArtifactsDeleted"]
    assert deleted and f"deleted {len(before) - len(left)} objects" in deleted[0], deleted
    eventually(lambda: not workflow_pods(cluster, ns, "maker"), 60, what="the cleanup pod to go with the workflow")
