"""An upload that cannot finish within the pod's grace period: the kubelet kills the publisher,
and the attempt fails saying so; nothing half-published ever looks like an output."""

from __future__ import annotations

import secrets

import pytest
from kubernetes import client

from tests.cluster.fixtures import Cluster
from tests.operator.conftest import STORAGE_SECRET, Operator, wait_for_phase
from tests.operator.test_workflows_e2e import apply_manifest

pytestmark = [pytest.mark.cluster, pytest.mark.s3]


def test_an_upload_cut_by_the_grace_period_fails_the_attempt_and_publishes_nothing(cluster: Cluster, s3, crd,
                                                                                    tmp_path):
    if cluster.emulated:
        pytest.skip("the emulated test node gives the sidecar a grace period of its own")
    namespace = f"ferry-grace-{secrets.token_hex(3)}"
    core = client.CoreV1Api(cluster.api_client())
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    core.create_namespaced_secret(namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name=STORAGE_SECRET),
        string_data={"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key}))
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
        core.delete_namespace(namespace)
    message = workflow["status"]["tasks"]["write"].get("message", "")
    assert workflow["status"]["phase"] == "Failed" and "killed before it finished" in message, workflow["status"]
    listed = s3.client().list_objects_v2(Bucket=s3.bucket, Prefix=f"runs/{namespace}/").get("Contents", [])
    assert not [o["Key"] for o in listed if o["Key"].endswith(".ferry-manifest.json")], "no complete-looking output"
