"""The largest workflows against the real API server, which refuses objects over ~1.5 MiB (etcd's
limit) and metadata.annotations over 256 KiB in total."""

from __future__ import annotations

import datetime
import json
import secrets

import pytest
import yaml
from kubernetes import client

from ferry.api import resource, scheduler
from ferry_operator import results
from tests.cluster.fixtures import Cluster, eventually
from tests.operator.fixtures import get_workflow

pytestmark = [pytest.mark.cluster]
TASKS = 1000


def largest_spec(command_bytes: int) -> dict:
    """1,000 tasks in a chain (so one runs at a time), each with a long command, retries and an output."""
    return {"failurePolicy": "Continue", "tasks": [
        {"name": f"task-{i:04d}-{'x' * 29}", "image": "busybox:1.36", "command": ["sh", "-c", "x" * command_bytes],
         "retries": {"limit": 5}, "outputs": [{"name": "out", "kind": "file"}],
         **({"dependsOn": [f"task-{i - 1:04d}-{'x' * 29}"]} if i else {})} for i in range(TASKS)]}


@pytest.fixture
def unserved_namespace(cluster: Cluster, crd):
    """A namespace no operator serves: the test writes the status itself."""
    name = f"ferry-size-{secrets.token_hex(3)}"
    core = client.CoreV1Api(cluster.api_client())
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def test_the_worst_status_of_the_largest_workflow_is_accepted(cluster: Cluster, unserved_namespace: str):
    """Every one of 1,000 tasks failing with the longest message a pod can report (a 4 KiB
    termination message), retried, then failed for good: the status still fits."""
    namespace = unserved_namespace
    manifest = {"apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow",
                "metadata": {"name": "a-workflow-whose-name-is-as-long-as-kubernetes-lets-it-be-63c", "namespace": namespace},
                "spec": largest_spec(command_bytes=40)}
    cluster.kubectl("create", "-f", "-", input=json.dumps(manifest))
    spec = resource.WorkflowSpec.model_validate(manifest["spec"])
    huge = "Traceback (most recent call last):\n" + "E" * 4096
    dying = {"status": {"phase": "Failed", "containerStatuses": [
        {"name": results.MAIN, "state": {"terminated": {"exitCode": 1, "reason": "Error", "message": huge}}}]}}
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    status = resource.WorkflowStatus()
    for _ in range(20):  # every task is started at once (observe finishes each attempt at once)
        status = scheduler.step(manifest["metadata"]["name"], spec.model_copy(update={"tasks": [
            t.model_copy(update={"depends_on": []}) for t in spec.tasks]}), status,
            lambda task, pod: results.read_attempt(dying, ["out"]), now).status
        now += datetime.timedelta(hours=1)
    assert status.phase == resource.Phase.FAILED and all(t.attempts == 6 for t in status.tasks.values())
    size = len(json.dumps(status.dump()))
    print(f"worst status of {TASKS} tasks: {size} bytes")
    body = get_workflow(cluster, namespace, manifest["metadata"]["name"])
    body["status"] = status.dump()
    custom = client.CustomObjectsApi(cluster.api_client())
    custom.replace_namespaced_custom_object_status(resource.GROUP, resource.VERSION, namespace, resource.PLURAL,
                                                   manifest["metadata"]["name"], body)
    stored = get_workflow(cluster, namespace, manifest["metadata"]["name"])
    assert stored["status"]["phase"] == "Failed" and len(stored["status"]["tasks"]) == TASKS


def test_a_workflow_with_a_large_spec_runs(cluster: Cluster, workflow_namespace: str, operator):
    """A spec over the 256 KiB that all annotations share: the operator's own bookkeeping must not
    copy it into an annotation (Kopf's last-handled-configuration does by default)."""
    manifest = {"apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow", "metadata": {"name": "large"},
                "spec": largest_spec(command_bytes=300)}
    assert len(json.dumps(manifest["spec"])) > 256 * 1024
    # kubectl apply would copy the spec into its own annotation and be refused: create it.
    cluster.kubectl("create", "-n", workflow_namespace, "-f", "-", input=yaml.safe_dump(manifest))

    def first_task_started():
        status = get_workflow(cluster, workflow_namespace, "large").get("status") or {}
        return status.get("phase") == "Running" and status["tasks"][f"task-0000-{'x' * 29}"]["attempts"] >= 1

    eventually(first_task_started, 90, what="the first task of the large workflow to start")
    annotations = get_workflow(cluster, workflow_namespace, "large")["metadata"].get("annotations") or {}
    assert sum(len(k) + len(v) for k, v in annotations.items()) < 4096, annotations.keys()
    assert "Too long" not in operator.log() and "must have at most 262144 bytes" not in operator.log()
    cluster.kubectl("delete", "fwf", "large", "-n", workflow_namespace, "--wait=true", "--timeout=60s")
