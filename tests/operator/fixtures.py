"""Fixtures for end-to-end tests of the operator: the CRD installed, the operator running as a
process against the test cluster, and a namespace holding the storage credentials Secret. A pytest
plugin (``tests/conftest.py`` registers it), so the UI's tests share the session's operator."""

from __future__ import annotations

import concurrent.futures
import json
import os
import pathlib
import secrets
import signal
import sys
import urllib.request
from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.cluster.fixtures import REPO, Cluster, eventually
from tests.cluster.processes import Server, free_port

STORAGE_SECRET = "ferry-storage"
START_TIMEOUT_SECONDS = 15


@pytest.fixture(scope="session")
def crd(cluster: Cluster) -> None:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    # `kubectl wait` fails outright (rather than waiting) while the new CRD has no conditions yet.
    eventually(lambda: cluster.kubectl("wait", "--for=condition=Established", "--timeout=30s",
                                       "crd/workflows.ferry.dev", check=False).returncode == 0,
               60, interval=0.5, what="the Workflow CRD to be established")


class Operator:
    """``ferry-operator`` as a process: started, killed and restarted by tests."""

    def __init__(self, cluster: Cluster, s3, log_dir: pathlib.Path, name: str = "ferry-operator",
                 args: tuple[str, ...] = ("--namespace=ferry-test-*",)):
        self.name, self.args = name, args
        self.log_dir = log_dir
        self.port = free_port()
        self.metrics_port = free_port()
        self.env = {
            **os.environ,
            "KUBECONFIG": str(cluster.kubeconfig),
            "FERRY_OPERATOR_RAW_DATA_PREFIX": f"s3://{s3.bucket}/runs",
            "FERRY_OPERATOR_RUNTIME_IMAGE": "ferry:dev",
            "FERRY_OPERATOR_STORAGE_SECRET": STORAGE_SECRET,
            "FERRY_OPERATOR_START_TIMEOUT_SECONDS": str(START_TIMEOUT_SECONDS),
            "FERRY_OPERATOR_STORAGE_ENV": json.dumps({"AWS_ENDPOINT_URL": s3.endpoint_url, "AWS_REGION": s3.region,
                                                      "FERRY_S3_ADDRESSING_STYLE": "path"}),
        }
        self.server: Server | None = None

    def start(self) -> None:
        self.server = Server(self.name, [
            # By default only the suite's own namespaces: a chart-installed operator may serve others.
            sys.executable, "-m", "ferry_operator", "--log-format=plain", *self.args,
            f"--liveness=http://127.0.0.1:{self.port}/healthz", f"--metrics-port={self.metrics_port}"],
            self.log_dir, env=self.env)
        self.server.wait_until(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status == 200,
            60, "live")

    def metrics(self) -> str:
        return urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()

    def log(self) -> str:
        return self.server.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no chance to clean up, as when a node dies."""
        self.server.process.send_signal(signal.SIGKILL)
        self.server.process.wait()
        self.server.stop()

    def stop(self) -> None:
        if self.server:
            self.server.stop()


@pytest.fixture(scope="session")
def operator(cluster: Cluster, s3, crd, tmp_path_factory) -> Iterator[Operator]:
    running = Operator(cluster, s3, tmp_path_factory.mktemp("operator"))
    running.start()
    _wait_until_serving(cluster)
    yield running
    running.stop()
    assert s3.secret_key not in running.log(), "the store's secret key is in the operator's log"
    assert not stored_credentials(s3), "the store's secret key is in published objects"


def _wait_until_serving(cluster: Cluster) -> None:
    """Liveness comes before the watches: wait until the operator has handled a real Workflow."""
    core = client.CoreV1Api(cluster.api_client())
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="ferry-test-probe")))
    probe = {"apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow", "metadata": {"name": "probe"},
             "spec": {"tasks": [{"name": "a", "image": "busybox:1.36", "dependsOn": ["b"]},
                                {"name": "b", "image": "busybox:1.36", "dependsOn": ["a"]}]}}
    cluster.kubectl("apply", "-n", "ferry-test-probe", "-f", "-", input=json.dumps(probe))
    wait_for_phase(cluster, "ferry-test-probe", "probe", timeout=120)
    core.delete_namespace("ferry-test-probe")


@pytest.fixture
def workflow_namespace(namespace: str, cluster: Cluster, s3, operator) -> Iterator[str]:
    """A namespace the operator serves, with the Secret its task pods read storage credentials from;
    after the test, the store's key must be nowhere else in it."""
    client.CoreV1Api(cluster.api_client()).create_namespaced_secret(namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name=STORAGE_SECRET),
        string_data={"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key}))
    yield namespace
    assert not credential_leaks(cluster, namespace, s3.secret_key)


def namespace_with_storage(cluster: Cluster, s3, prefix: str) -> str:
    """A fresh namespace ``<prefix>-<hex>`` holding the storage Secret, for an operator a test runs
    itself (the session's operator serves only ``ferry-test-*``)."""
    namespace = f"{prefix}-{secrets.token_hex(3)}"
    core = client.CoreV1Api(cluster.api_client())
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    core.create_namespaced_secret(namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name=STORAGE_SECRET),
        string_data={"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key}))
    return namespace


def credential_leaks(cluster: Cluster, namespace: str, secret: str) -> list[str]:
    """Where ``secret`` shows in what users see of a namespace: Workflows (spec and status), events,
    pods (specs and every container's logs). Only the Secret that holds it may."""
    found = [kind for kind in ("workflows.ferry.dev", "events", "pods")
             if secret in cluster.kubectl("get", kind, "-n", namespace, "-o", "json").stdout]
    core = client.CoreV1Api(cluster.api_client())
    containers = [(pod.metadata.name, container.name) for pod in core.list_namespaced_pod(namespace).items
                  for container in [*(pod.spec.init_containers or []), *pod.spec.containers]]

    def logs(pod_and_container: tuple[str, str]) -> str:
        # Through the API, a few at once: a kubectl process per container took minutes after the
        # fault test's 150 pods on a slow machine.
        try:
            return core.read_namespaced_pod_log(pod_and_container[0], namespace, container=pod_and_container[1]) or ""
        except client.ApiException:  # a container that never started has no log
            return ""

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        found += [f"logs of {pod}/{container}" for (pod, container), text in zip(containers, pool.map(logs, containers))
                  if secret in text]
    return found


def stored_credentials(s3) -> list[str]:
    """Objects in the session's bucket that hold the store's secret key."""
    store = s3.client()
    keys = [o["Key"] for page in store.get_paginator("list_objects_v2").paginate(Bucket=s3.bucket)
            for o in page.get("Contents", [])]
    return [key for key in keys
            if s3.secret_key.encode() in store.get_object(Bucket=s3.bucket, Key=key)["Body"].read()]


def get_workflow(cluster: Cluster, namespace: str, name: str) -> dict:
    return json.loads(cluster.kubectl("get", "fwf", name, "-n", namespace, "-o", "json").stdout)


def wait_for_phase(cluster: Cluster, namespace: str, name: str, phases=("Succeeded", "Failed"),
                   timeout: float = 180) -> dict:
    def finished():
        workflow = get_workflow(cluster, namespace, name)
        return workflow if workflow.get("status", {}).get("phase") in phases else None

    try:
        return eventually(finished, timeout, interval=0.5, what=f"workflow {name} to reach {'/'.join(phases)}")
    except AssertionError:
        status = get_workflow(cluster, namespace, name).get("status")
        raise AssertionError(f"workflow {name} did not reach {phases}; status: {json.dumps(status, indent=1)}")
