"""A node played by KWOK (sigs.k8s.io/kwok), as controller authors measure at scale.

KWOK runs as a plain process against the API server and plays the kubelet of one node by the
stages in ``kwok-stages.yaml``: the node turns Ready, every pod bound to it finishes at once with
each container exited 0, and a deleted pod is removed once its finalizers allow. Pods are not
run: ``benchmarks/orchestration.py`` uses it so that the API server, the scheduler and the
operator do their real work at a scale this machine's real node could not run; the end-to-end
tests run the same pods for real. ``virtualnode.py`` does the same in Python, inside the test
process, for the suite's load test (it needs no build).
"""

from __future__ import annotations

import contextlib
import pathlib

from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.cluster import binaries
from tests.cluster.processes import Server, free_port

NAME = "ferry-kwok-node"
STAGES = pathlib.Path(__file__).with_name("kwok-stages.yaml")


class KwokNode:
    def __init__(self, api: client.ApiClient, kubeconfig: pathlib.Path, log_dir: pathlib.Path):
        self.core = client.CoreV1Api(api)
        self.kubeconfig, self.log_dir = kubeconfig, log_dir
        self.server: Server | None = None

    def start(self) -> None:
        kwok = binaries.build_kwok()
        with contextlib.suppress(ApiException):
            self.core.delete_node(NAME)
        self.core.create_node(client.V1Node(metadata=client.V1ObjectMeta(
            name=NAME, labels={"kubernetes.io/hostname": NAME, "kubernetes.io/os": "linux"})))
        self.server = Server("kwok", [
            str(kwok), f"--kubeconfig={self.kubeconfig}", f"--config={STAGES}", f"--manage-single-node={NAME}",
            "--node-lease-duration-seconds=40", f"--server-address=127.0.0.1:{free_port()}"], self.log_dir)
        self.server.wait_until(lambda: any(c.type == "Ready" and c.status == "True" for c in
                                           self.core.read_node(NAME).status.conditions or []), 60, "its node Ready")

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        with contextlib.suppress(ApiException):
            self.core.delete_node(NAME)
