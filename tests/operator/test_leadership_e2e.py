"""Several operator replicas with --leader-elect: one acts, the others wait, and one takes over
when the leader dies."""

from __future__ import annotations

import pytest
from kubernetes import client

from tests.cluster.fixtures import Cluster, eventually
from tests.operator.fixtures import Operator, namespace_with_storage, wait_for_phase
from tests.operator.test_workflows_e2e import apply_manifest

pytestmark = [pytest.mark.cluster, pytest.mark.s3]


def echo_workflow(name: str) -> dict:
    return {"apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow", "metadata": {"name": name},
            "spec": {"tasks": [{"name": "say", "image": "busybox:1.36", "command": ["sh", "-c"],
                                "args": ["echo hi > /ferry/outputs/word"],
                                "outputs": [{"name": "word", "kind": "value"}]}]}}


def test_only_the_leader_acts_and_a_follower_takes_over(cluster: Cluster, s3, crd, tmp_path):
    namespace = namespace_with_storage(cluster, s3, "ferry-lead")
    args = (f"--namespace={namespace}", "--leader-elect", f"--leader-election-namespace={namespace}")
    first = Operator(cluster, s3, tmp_path, "operator-a", args)
    second = Operator(cluster, s3, tmp_path, "operator-b", args)
    try:
        first.start()
        eventually(lambda: "leading as" in first.log(), 30, what="the first replica to lead")
        second.start()  # live (its liveness probe answers) but standing by
        apply_manifest(cluster, namespace, echo_workflow("before"))
        assert wait_for_phase(cluster, namespace, "before", timeout=90)["status"]["phase"] == "Succeeded"
        assert "waiting to lead" in second.log() and "Handler" not in second.log()

        first.kill()
        eventually(lambda: "leading as" in second.log(), 60, what="the second replica to take over")
        apply_manifest(cluster, namespace, echo_workflow("after"))
        assert wait_for_phase(cluster, namespace, "after", timeout=90)["status"]["phase"] == "Succeeded"
    finally:
        first.stop()
        second.stop()
        client.CoreV1Api(cluster.api_client()).delete_namespace(namespace)
