"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager.

The same shape as controller-runtime's envtest, plus the controller manager (garbage collection,
Deployments → ReplicaSets → Pods, default ServiceAccounts). Pods run on the real node
(``realnode.py``: kubelet, scheduler, kube-proxy, which then listens on the node's address) or on
the emulated test node (``node.py``). Authentication uses a static token file (an admin in
``system:masters``, and each component's own identity); authorization is RBAC;
ServiceAccount tokens are signed with a key generated per run, so TokenRequest works.
"""

from __future__ import annotations

import base64
import dataclasses
import pathlib
import secrets
import ssl
import subprocess
import urllib.request

import yaml

from tests.cluster import binaries, netns
from tests.cluster.processes import Server, free_port

SERVICE_CIDR = netns.SERVICE_CIDR
NODE_NAME = "ferry-node"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"


@dataclasses.dataclass
class ControlPlane:
    workdir: pathlib.Path
    api_port: int
    ca_file: pathlib.Path
    admin_token: str
    servers: list[Server]

    address: str = "127.0.0.1"
    tokens: dict[str, str] = dataclasses.field(default_factory=dict)
    """Bearer token of each identity the suite's own components use, by user name."""

    @property
    def server_url(self) -> str:
        return f"https://{self.address}:{self.api_port}"

    def kubeconfig_of(self, user: str) -> pathlib.Path:
        """A kubeconfig for one of the components' identities (``system:kube-scheduler``...)."""
        path = self.workdir / f"{user.replace(':', '-')}.kubeconfig"
        path.write_text(yaml.safe_dump(kubeconfig(self.server_url, self.ca_file, self.tokens[user], user)))
        return path

    @property
    def kubeconfig(self) -> pathlib.Path:
        return self.workdir / "admin.kubeconfig"

    def stop(self) -> None:
        for server in reversed(self.servers):
            server.stop()


def _openssl(*args: str, cwd: pathlib.Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(pki: pathlib.Path, address: str) -> None:
    """A CA, a serving certificate for the API server and the ServiceAccount signing key pair."""
    pki.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "3650", "-subj", "/CN=ferry-test-ca", cwd=pki)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "apiserver.key", "-out", "apiserver.csr",
             "-subj", "/CN=kube-apiserver", cwd=pki)
    names = ["IP:127.0.0.1", f"IP:{address}", "IP:10.0.0.1", "DNS:localhost", "DNS:kubernetes", "DNS:kubernetes.default",
             "DNS:kubernetes.default.svc", "DNS:kubernetes.default.svc.cluster.local"]
    (pki / "san.ext").write_text(f"subjectAltName={','.join(names)}\n")
    _openssl("x509", "-req", "-in", "apiserver.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "apiserver.crt", "-days", "3650", "-extfile", "san.ext", cwd=pki)
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def kubeconfig(server: str, ca_file: pathlib.Path, token: str, user: str) -> dict:
    ca_data = base64.b64encode(ca_file.read_bytes()).decode()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "ferry-test", "cluster": {"server": server, "certificate-authority-data": ca_data}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "ferry-test", "context": {"cluster": "ferry-test", "user": user}}],
        "current-context": "ferry-test",
    }


def apiserver_args(etcd_url: str, address: str, port: int, pki: pathlib.Path, tokens: pathlib.Path) -> list[str]:
    return [
        f"--etcd-servers={etcd_url}",
        f"--bind-address={address}",
        f"--advertise-address={address}",
        f"--secure-port={port}",
        f"--cert-dir={pki}",
        f"--tls-cert-file={pki / 'apiserver.crt'}",
        f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        f"--token-auth-file={tokens}",
        "--authorization-mode=RBAC",
        f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--allow-privileged=true",
        "--profiling=false",
        # The test node serves container logs like a kubelet; its certificate is self-signed.
        "--kubelet-preferred-address-types=InternalIP",
    ]


def _ready(url: str, token: str, ca_file: pathlib.Path) -> bool:
    context = ssl.create_default_context(cafile=str(ca_file))
    request = urllib.request.Request(f"{url}/readyz", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, context=context, timeout=2) as response:
        return response.status == 200


IDENTITIES = {
    "ferry-test-admin": "system:masters",
    "system:kube-controller-manager": "",
    "system:kube-scheduler": "",
    "system:kube-proxy": "",
    "system:coredns": "system:masters",
    f"system:node:{NODE_NAME}": "system:nodes,system:masters",
}
"""Who may call the API server, with their groups: the suite's admin and each component. The
kubelet is also in ``system:masters`` since the API server runs without the Node authorizer."""


def start(workdir: pathlib.Path, address: str = "127.0.0.1") -> ControlPlane:
    """Start etcd, kube-apiserver (listening on ``address``) and kube-controller-manager; return
    when the API is ready."""
    bins = binaries.build_kubernetes()
    workdir.mkdir(parents=True, exist_ok=True)
    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)
    pki = workdir / "pki"
    make_pki(pki, address)
    tokens = {user: secrets.token_hex(16) for user in IDENTITIES}
    admin_token = tokens["ferry-test-admin"]
    token_file = pki / "tokens.csv"
    token_file.write_text("".join(f"{token},{user},{user}" + (f',"{IDENTITIES[user]}"' if IDENTITIES[user] else "") + "\n"
                                  for user, token in tokens.items()))
    servers: list[Server] = []
    plane = None
    try:
        client_port, peer_port, api_port = free_port(), free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{client_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        etcd = Server("etcd", [
            str(bins / "etcd"), "--name=ferry-test", f"--data-dir={workdir / 'etcd'}",
            f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=ferry-test={peer_url}", "--unsafe-no-fsync", "--log-level=warn",
        ], logs)
        servers.append(etcd)
        etcd.wait_until(lambda: urllib.request.urlopen(f"{etcd_url}/health", timeout=2).status == 200, 30, "healthy")

        apiserver = Server("kube-apiserver", [str(bins / "kube-apiserver"),
                                              *apiserver_args(etcd_url, address, api_port, pki, token_file)], logs)
        servers.append(apiserver)
        plane = ControlPlane(workdir, api_port, pki / "ca.crt", admin_token, servers, address, tokens)
        apiserver.wait_until(lambda: _ready(plane.server_url, admin_token, plane.ca_file), 120, "ready")

        plane.kubeconfig.write_text(yaml.safe_dump(kubeconfig(
            plane.server_url, plane.ca_file, admin_token, "ferry-test-admin")))
        manager_config = plane.kubeconfig_of("system:kube-controller-manager")
        manager = Server("kube-controller-manager", [
            str(bins / "kube-controller-manager"),
            f"--kubeconfig={manager_config}",
            f"--authentication-kubeconfig={manager_config}",
            f"--authorization-kubeconfig={manager_config}",
            "--bind-address=127.0.0.1",
            f"--secure-port={free_port()}",
            "--leader-elect=false",
            "--use-service-account-credentials=true",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--controllers=*",
        ], logs)
        servers.append(manager)
        return plane
    except BaseException:
        for server in reversed(servers):
            server.stop()
        raise
