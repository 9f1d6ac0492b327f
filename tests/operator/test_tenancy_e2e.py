"""Namespaces as tenants, on the cluster: a task holds only credentials scoped to its own
namespace, never the store's keys, and a workflow cannot read another namespace's outputs."""

from __future__ import annotations

import hashlib
import json

import pytest
from kubernetes import client

from tests.cluster.fixtures import Cluster
from tests.operator.fixtures import get_workflow, namespace_with_storage, wait_for_phase
from tests.operator.test_python_tasks_e2e import SAMPLES, created_name, ferry, run_remote
from tests.operator.test_workflows_e2e import apply_manifest

pytestmark = [pytest.mark.cluster, pytest.mark.s3]


@pytest.fixture
def other_namespace(cluster: Cluster, s3, operator):
    """A second namespace the session's operator serves, with an output published there."""
    namespace = namespace_with_storage(cluster, s3, "ferry-test-other")
    try:
        apply_manifest(cluster, namespace, {
            "apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow", "metadata": {"name": "theirs"},
            "spec": {"tasks": [{"name": "write", "image": "busybox:1.36", "command": ["sh", "-c"],
                                "args": ["echo private > /ferry/outputs/report"],
                                "outputs": [{"name": "report", "kind": "file"}]}]}})
        workflow = wait_for_phase(cluster, namespace, "theirs", timeout=120)
        assert workflow["status"]["phase"] == "Succeeded", workflow["status"]
        yield namespace, workflow["status"]["tasks"]["write"]["outputs"]["report"]["uri"]
    finally:
        client.CoreV1Api(cluster.api_client()).delete_namespace(namespace)


def test_a_python_task_holds_no_store_keys_and_reaches_only_its_namespace(cluster: Cluster, workflow_namespace: str,
                                                                           other_namespace, s3):
    theirs, uri = other_namespace
    assert f"/runs/{theirs}/" in uri
    result = run_remote(cluster, s3, workflow_namespace, f"{SAMPLES}:reach_other", "--other", uri.removeprefix("s3://"),
                        "--needle-sha256", hashlib.sha256(s3.secret_key.encode()).hexdigest())
    report = json.loads(result.stdout.split(" = ", 1)[1])
    if cluster.emulated:  # its containers are host processes: /proc shows the suite's own environment
        report["key_found"] = False
    assert report == {"key_found": False, "read_refused": True, "write_refused": True,
                      "raw_data_prefix": f"s3://{s3.bucket}/runs/{workflow_namespace}"}
    drives = s3.client().list_objects_v2(Bucket=s3.bucket, Prefix=f"runs/{workflow_namespace}/drives/notes/")
    assert drives.get("KeyCount", 0) > 0, "a drive lives in its namespace's folder"


def test_a_workflow_naming_another_namespace_s_output_fails_naming_the_field(cluster: Cluster,
                                                                             workflow_namespace: str, other_namespace):
    _, uri = other_namespace
    apply_manifest(cluster, workflow_namespace, {
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow", "metadata": {"name": "borrow"},
        "spec": {"tasks": [{"name": "read", "image": "busybox:1.36", "command": ["cat", "/ferry/inputs/x"],
                            "inputs": [{"name": "x", "uri": uri}]}]}})
    workflow = wait_for_phase(cluster, workflow_namespace, "borrow", timeout=60)
    assert workflow["status"]["phase"] == "Failed"
    assert f"spec.tasks[0].inputs[0].uri: {uri} is in another namespace's folder" in workflow["status"]["message"]
    assert not workflow["status"].get("tasks", {}).get("read", {}).get("attempts"), "no pod ever ran"
    assert get_workflow(cluster, workflow_namespace, "borrow")["status"]["phase"] == "Failed"


def test_a_task_reporting_another_namespace_s_output_as_its_own_fails(cluster: Cluster, workflow_namespace: str,
                                                                       other_namespace, s3):
    """Were the forged reference taken, the next task's scoped credentials would read team B's data."""
    _, uri = other_namespace
    result = ferry(cluster, s3, "run", "--remote", f"{SAMPLES}:borrow_through_a_report", "-n", workflow_namespace,
                   "--store", f"s3://{s3.bucket}/runs", "--other", uri.removeprefix("s3://"))
    assert result.returncode != 0 and "private" not in result.stdout
    workflow = get_workflow(cluster, workflow_namespace, created_name(result))
    message = workflow["status"]["tasks"]["claims"]["message"]
    assert f"output 'o0': {uri} is in another namespace's folder" in message, message
    assert not workflow["status"]["tasks"]["text-of"].get("attempts"), "no pod was given access to it"
