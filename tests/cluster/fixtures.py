"""Pytest fixtures for the test cluster and the S3 server, started once per test session.

By default everything runs on this machine: etcd, kube-apiserver and kube-controller-manager
(``controlplane.py``), a node and MinIO (``s3.py``). The node is a real one (``realnode.py``:
containerd, runc, kubelet, kube-proxy, images built from the Dockerfile), and the whole session
runs in a network namespace of its own (``netns.py``), wherever the machine can run it; otherwise,
or with ``FERRY_TEST_NODE=emulated``, it is the emulated test node (``node.py``), on which no
end-to-end claim rests alone. Set
``FERRY_TEST_KUBECONFIG`` to run the same tests against a real cluster instead (for example one
made by ``tests/cluster/kind-e2e.sh``), and ``FERRY_TEST_S3_ENDPOINT`` (with the usual
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` and ``FERRY_TEST_BUCKET``) to use an existing
S3-compatible store.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
import yaml
from kubernetes import client, config

from tests.cluster import binaries, controlplane, netns, node_images, realnode, s3 as s3_server
from tests.cluster.processes import Server, free_port, interrupt_on_sigterm

REPO = pathlib.Path(__file__).resolve().parents[2]
T = TypeVar("T")


def eventually(probe: Callable[[], T], timeout: float = 60, interval: float = 0.2, what: str = "condition") -> T:
    """Call ``probe`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = probe()
            if result:
                return result
        except Exception as error:  # the probe may race with the object's creation
            last_error = error
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}" + (f": {last_error}" if last_error else ""))


@dataclasses.dataclass
class Cluster:
    kubeconfig: pathlib.Path
    kubectl_binary: str
    local: bool
    """True when pods run on this machine's node, False on a cluster given by FERRY_TEST_KUBECONFIG."""
    emulated: bool = False
    """True on the emulated test node (``node.py``), which enforces no limits or users."""
    components: dict[str, Server] = dataclasses.field(default_factory=dict)
    """The suite's own control plane and node processes by name (empty on a given cluster)."""

    def outage(self, component: str, seconds: float) -> None:
        """Stop one of the suite's components (``kube-apiserver``...) for ``seconds``, then start it
        again and wait until it answers; skips the test on a cluster the suite did not start."""
        if component not in self.components:
            pytest.skip(f"{component} is not the suite's own to stop")
        server = self.components[component]
        server.stop()
        time.sleep(seconds)
        server.start()
        eventually(lambda: self.kubectl("get", "--raw=/readyz", check=False).returncode == 0, 120,
                   what=f"{component} to be back")

    def api_client(self, kubeconfig: pathlib.Path | None = None) -> client.ApiClient:
        return config.new_client_from_config(str(kubeconfig or self.kubeconfig))

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                kubeconfig: pathlib.Path | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run([self.kubectl_binary, *args], input=input, text=True, capture_output=True,
                                env={**os.environ, "KUBECONFIG": str(kubeconfig or self.kubeconfig)}, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def kubeconfig_for(self, namespace: str, service_account: str, path: pathlib.Path) -> pathlib.Path:
        """A kubeconfig that acts as a ServiceAccount, with a token minted through TokenRequest."""
        core = client.CoreV1Api(self.api_client())
        request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[],
                                                                                     expiration_seconds=3600))
        token = core.create_namespaced_service_account_token(service_account, namespace, request).status.token
        admin = yaml.safe_load(self.kubeconfig.read_text())
        current = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])["context"]
        cluster = next(c for c in admin["clusters"] if c["name"] == current["cluster"])
        user = f"system:serviceaccount:{namespace}:{service_account}"
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "clusters": [cluster],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": user, "context": {"cluster": cluster["name"], "user": user}}],
            "current-context": user,
        }))
        return path


node_archives = functools.cache(node_images.build_all)
"""The node's images, built (or found) once per run, before entering the namespace: a source edited
while the suite runs does not start a build that needs the registries from inside it."""


def real_node() -> bool:
    """Whether this run uses the real node: ``FERRY_TEST_NODE=real`` or ``emulated``; by default the
    real one wherever this machine can run it (``realnode.missing_requirements``)."""
    if os.environ.get("FERRY_TEST_KUBECONFIG"):
        return False
    choice = os.environ.get("FERRY_TEST_NODE", "auto")
    if choice not in ("auto", "real", "emulated"):
        raise pytest.UsageError(f"FERRY_TEST_NODE={choice!r}: use real, emulated, or leave it unset (auto)")
    return choice == "real" or (choice == "auto" and not realnode.missing_requirements())


def pytest_configure(config: pytest.Config) -> None:
    interrupt_on_sigterm()  # a killed run still stops the cluster it started


def pytest_report_header(config: pytest.Config) -> str:
    if os.environ.get("FERRY_TEST_KUBECONFIG"):
        return f"cluster: {os.environ['FERRY_TEST_KUBECONFIG']}"
    if real_node():
        return "cluster: the suite's own, on a real node (containerd, runc, kubelet)"
    missing = realnode.missing_requirements()
    why = f"; the real node needs {', '.join(missing)}" if missing else ""
    return f"cluster: the suite's own, on the EMULATED test node (tests/cluster/node.py){why}"


def _wait_for_node(plane: controlplane.ControlPlane, name: str, server: Server) -> None:
    core = client.CoreV1Api(config.new_client_from_config(str(plane.kubeconfig)))

    def node_ready() -> bool:
        conditions = core.read_node(name).status.conditions or []
        return any(c.type == "Ready" and c.status == "True" for c in conditions)

    server.wait_until(node_ready, 120, "Ready")


def _start_real_node(plane: controlplane.ControlPlane) -> list[Server]:
    kubeconfigs = {"kubelet": plane.kubeconfig_of(f"system:node:{realnode.NODE_NAME}"),
                   "kube-scheduler": plane.kubeconfig_of("system:kube-scheduler"),
                   "kube-proxy": plane.kubeconfig_of("system:kube-proxy"),
                   "coredns": plane.kubeconfig_of("system:coredns")}
    servers = realnode.start(kubeconfigs, node_archives(), plane.workdir / "logs")
    kubelet = next(server for server in servers if server.name == "kubelet")
    try:
        _wait_for_node(plane, realnode.NODE_NAME, kubelet)
    except BaseException:
        for server in reversed(servers):
            server.stop()
        raise
    return servers


def _start_node(plane: controlplane.ControlPlane, workdir: pathlib.Path) -> Server:
    pki = plane.workdir / "pki"
    node = Server("test-node", [
        sys.executable, "-m", "tests.cluster.node", f"--kubeconfig={plane.kubeconfig}",
        f"--workdir={workdir}", f"--log-port={free_port()}",
        f"--tls-cert={pki / 'apiserver.crt'}", f"--tls-key={pki / 'apiserver.key'}",
    ], plane.workdir / "logs", env={**os.environ, "PYTHONPATH": str(REPO)})
    _wait_for_node(plane, "ferry-test-node", node)
    return node


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    external = os.environ.get("FERRY_TEST_KUBECONFIG")
    if external:
        yield Cluster(pathlib.Path(external), shutil.which("kubectl") or "kubectl", local=False)
        return
    workdir = tmp_path_factory.mktemp("cluster")
    started = time.monotonic()
    plane = controlplane.start(workdir, netns.host_address())
    try:
        if real_node():
            plane.servers += _start_real_node(plane)
        else:
            plane.servers.append(_start_node(plane, workdir / "node"))
        kubectl = str(binaries.build_kubernetes() / "kubectl")
        print(f"\ntest cluster ready in {time.monotonic() - started:.1f}s ({workdir})", file=sys.stderr)
        yield Cluster(plane.kubeconfig, kubectl, local=True, emulated=not real_node(),
                      components={server.name: server for server in plane.servers})
    finally:
        plane.stop()


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    """A fresh namespace per test, with its default ServiceAccount in place; deleted afterwards."""
    name = f"ferry-test-{secrets.token_hex(4)}"
    core = client.CoreV1Api(cluster.api_client())
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    eventually(lambda: core.read_namespaced_service_account("default", name), 30, what="default ServiceAccount")
    yield name
    core.delete_namespace(name)


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[s3_server.S3]:
    """An S3-compatible server with a bucket for this session; the AWS variables point at it."""
    endpoint = os.environ.get("FERRY_TEST_S3_ENDPOINT")
    if endpoint:
        server = s3_server.S3(endpoint, os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"],
                              os.environ.get("FERRY_TEST_BUCKET", "ferry-test"),
                              os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    else:
        server = s3_server.start(tmp_path_factory.mktemp("s3"))
    saved = {key: os.environ.get(key) for key in server.env()}
    os.environ.update(server.env())
    try:
        yield server
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


@dataclasses.dataclass
class Helm:
    """The pinned ``helm``, with its config, cache and data kept in a folder of this session."""

    binary: pathlib.Path
    home: pathlib.Path

    def __call__(self, *args: str, kubeconfig: pathlib.Path | None = None, check: bool = True,
                 timeout: float = 300) -> subprocess.CompletedProcess:
        env = {**os.environ, "HELM_CONFIG_HOME": str(self.home / "config"), "HELM_CACHE_HOME": str(self.home / "cache"),
               "HELM_DATA_HOME": str(self.home / "data")}
        if kubeconfig:
            env["KUBECONFIG"] = str(kubeconfig)
        result = subprocess.run([str(self.binary), *args], text=True, capture_output=True, env=env, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """``helm`` built from its Go module at ``versions.HELM`` (cached like the cluster's binaries)."""
    return Helm(binaries.build_helm(), tmp_path_factory.mktemp("helm"))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build (or find cached) the binaries the selected tests need, before any test's timeout runs."""
    used = {name for item in session.items for name in getattr(item, "fixturenames", ())}
    wanted = []
    if "cluster" in used and real_node():
        missing = realnode.missing_requirements()
        if missing:
            raise pytest.UsageError(f"FERRY_TEST_NODE=real needs {', '.join(missing)}: "
                                    f"apt-get install containerd runc containernetworking-plugins buildah mmdebstrap "
                                    f"busybox-static iptables")
        wanted += [binaries.build_node, binaries.build_coredns, node_archives]
    elif "cluster" in used and not os.environ.get("FERRY_TEST_KUBECONFIG"):
        wanted.append(binaries.build_kubernetes)
    if "s3" in used and not os.environ.get("FERRY_TEST_S3_ENDPOINT"):
        wanted.append(binaries.build_minio)
    if "helm" in used:
        wanted.append(binaries.build_helm)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    for build in wanted:
        started = time.monotonic()
        path = build()
        if reporter:
            reporter.write_line(f"{build.__name__}: {path} ({time.monotonic() - started:.1f}s)")
    if "cluster" in used and real_node():  # after the builds, which need the registries
        session.config.add_cleanup(realnode.enter())
