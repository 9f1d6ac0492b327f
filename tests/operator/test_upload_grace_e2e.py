"""An upload that cannot finish within the pod's grace period: the kubelet kills the publisher,
and the attempt fails saying so; nothing half-published ever looks like an output."""

from __future__ import annotations

import pytest
from kubernetes import client

from tests.cluster.fixtures import Cluster
from tests.operator.fixtures import Operator, namespace_with_storage, wait_for_phase
from tests.operator.test_workflows_e2e import apply_manifest

pytestmark = [pytest.mark.cluster, pytest.mark.s3]


def test_an_upload_cut_by_the_grace_period_fails_the_attempt_and_publishes_nothing(cluster: Cluster, s3, crd,
                                                                                    tmp_path):
    if cluster.emulated:
        pytest.skip("the emulated test node gives the sidecar a grace period of its own")
    namespace = namespace_with_storage(cluster, s3, "ferry-grace")
    hurried = Operator(cluster, s3, tmp_path, "operator-hurried", (f"--namespace={namespace}",))
    hurried.env["FERRY_OPERATOR_UPLOAD_GRACE_SECONDS"] = "1"
    try:
        hurried.start()
        apply_manifest(cluster, namespace, {
            "apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow", "metadata": {"name": "big"},
            "spec": {"tasks": [{"name": "write", "image": "busybox:1.36", "command": ["sh", "-c"],
                                # Thousands of files take seconds to send; the kubelet allows at least 2 s.
                                "args": ["mkdir /ferry/outputs/data && cd /ferry/outputs/data && "
                                         "for i in $(seq 8000); do echo $i > f$i; done"],
                                "outputs": [{"name": "data", "kind": "directory"}]}]}})
        workflow = wait_for_phase(cluster, namespace, "big", timeout=180)
    finally:
        hurried.stop()
        client.CoreV1Api(cluster.api_client()).delete_namespace(namespace)
    message = workflow["status"]["tasks"]["write"].get("message", "")
    assert workflow["status"]["phase"] == "Failed" and "killed before it finished" in message, workflow["status"]
    listed = s3.client().list_objects_v2(Bucket=s3.bucket, Prefix=f"runs/{namespace}/").get("Contents", [])
    assert not [o["Key"] for o in listed if o["Key"].endswith(".ferry-manifest.json")], "no complete-looking output"
