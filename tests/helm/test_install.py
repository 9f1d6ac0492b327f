"""The chart installed with ``helm`` into the test cluster, its operator run as the pod the chart
describes, from the image built from the Dockerfile: the kubelet starts the Deployment's pod with
its ServiceAccount token projected at /var/run/secrets/kubernetes.io/serviceaccount and the
ConfigMap's environment, and the operator reaches the API server through the ``kubernetes``
Service (kube-proxy) with in-cluster credentials, so the API server enforces the chart's RBAC. Then the examples run through it, a verb taken from its Role shows up as a clear failure,
and ``helm upgrade``/``helm uninstall`` do what the README says.

Only one operator may serve a namespace. These tests run their releases in ``ferry-helm-*``
namespaces, which the e2e tests' operator (``tests/operator/fixtures.py``, started with
``--namespace=ferry-test-*``) does not serve; a test skips if an operator of this session would
serve its namespace anyway, and the cluster-wide install skips while any such operator runs.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import pathlib
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest
import yaml
from kopf._cogs.structs import references  # Kopf's own namespace patterns
from kubernetes import client

from tests.cluster.fixtures import REPO, Cluster, Helm, eventually
from tests.cluster.processes import free_port
from tests.cluster.s3 import S3
from tests.helm.conftest import CHART, write_values
from tests.operator.fixtures import get_workflow, wait_for_phase

pytestmark = [pytest.mark.cluster, pytest.mark.s3]

EXAMPLE = REPO / "examples" / "workflows" / "directory-between-tasks.yaml"
STORAGE_SECRET = "ferry-storage"
NAMESPACE_PREFIX = "ferry-helm-"
RELEASE = "ferry"  # so the objects are named as in the README: deployment/ferry-operator...
OPERATOR_USER = "system:serviceaccount:{namespace}:ferry"


@pytest.fixture
def helm_namespace(cluster: Cluster) -> Iterator[str]:
    """A fresh namespace no other operator serves (see the module's docstring)."""
    name = f"{NAMESPACE_PREFIX}{secrets.token_hex(4)}"
    other = _running_e2e_operator()
    if other is not None and _serves(other, name):
        pytest.skip(f"an operator of this test session serves {name} too: {' '.join(other)}")
    core = client.CoreV1Api(cluster.api_client())
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
        name=name, labels={"ferry.dev/test-operator": "helm"})))
    eventually(lambda: core.read_namespaced_service_account("default", name), 30, what="default ServiceAccount")
    yield name
    core.delete_namespace(name)


def _running_e2e_operator() -> list[str] | None:
    """The argv of an operator this test session runs as its own child process (the ``operator``
    fixture of tests/operator), or None. The chart's operators are the node's (pods), never this process's children."""
    for proc in pathlib.Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = [a.decode() for a in (proc / "cmdline").read_bytes().split(b"\0") if a]
        except (OSError, IndexError, ValueError):
            continue
        if parent == os.getpid() and ("ferry_operator" in argv or any(a.endswith("/ferry-operator") for a in argv)):
            return argv
    return None


def _serves(argv: list[str], namespace: str) -> bool:
    """Whether ``ferry-operator`` started with ``argv`` serves ``namespace`` (Kopf's patterns)."""
    patterns = [a.split("=", 1)[1] for a in argv if a.startswith("--namespace=")]
    patterns += [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("-n", "--namespace")]
    return not patterns or any(references.match_namespace(namespace, p) for p in patterns)


@dataclasses.dataclass
class Release:
    """One ``helm install`` of the chart, with the ports its operator listens on."""

    cluster: Cluster
    helm: Helm
    namespace: str
    values: dict
    workdir: pathlib.Path

    def _values_file(self, values: dict) -> str:
        return str(write_values(self.workdir / f"values-{time.monotonic_ns()}.yaml", values))

    def install(self) -> str:
        return self.helm("install", RELEASE, str(CHART), "-n", self.namespace, "-f", self._values_file(self.values),
                         "--wait", "--timeout", "120s", kubeconfig=self.cluster.kubeconfig).stdout

    def upgrade(self, changes: dict) -> str:
        self.values = merge(self.values, changes)
        return self.helm("upgrade", RELEASE, str(CHART), "-n", self.namespace, "-f", self._values_file(self.values),
                         "--wait", "--timeout", "120s", kubeconfig=self.cluster.kubeconfig).stdout

    def uninstall(self) -> None:
        self.helm("uninstall", RELEASE, "-n", self.namespace, "--wait", "--timeout", "120s",
                  kubeconfig=self.cluster.kubeconfig)

    def operator_pod(self) -> client.V1Pod:
        core = client.CoreV1Api(self.cluster.api_client())

        def running():
            pods = core.list_namespaced_pod(self.namespace, label_selector=(
                f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=operator")).items
            live = [p for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp]
            return live[0] if len(pods) == len(live) == 1 else None

        return eventually(running, 90, what="exactly one running operator pod")

    def operator_address(self) -> str:
        """Where this machine reaches the operator pod: its pod IP on the real node, loopback on the
        emulated node (whose pods share the host's network)."""
        return "127.0.0.1" if self.cluster.emulated else self.operator_pod().status.pod_ip

    def wait_live(self) -> None:
        """The operator's liveness endpoint (what the chart's probe asks) answers: it is up."""
        if not self.cluster.local:
            self.cluster.kubectl("rollout", "status", f"deployment/{RELEASE}-operator", "-n", self.namespace)
            return
        url = f"http://{self.operator_address()}:{self.values['operator']['livenessPort']}/healthz"
        eventually(lambda: urllib.request.urlopen(url, timeout=2).status == 200, 60, what="the operator to be live")

    def logs(self) -> str:
        return self.cluster.kubectl("logs", f"deployment/{RELEASE}-operator", "-n", self.namespace).stdout

    def metrics(self) -> str:
        url = f"http://{self.operator_address()}:{self.values['metrics']['port']}/metrics"
        return urllib.request.urlopen(url, timeout=5).read().decode()

    def can(self, verb: str, resource: str, namespace: str | None = None) -> bool:
        """``kubectl auth can-i`` as the operator's ServiceAccount (``resource/sub`` for a subresource)."""
        where = ["-n", namespace] if namespace else ["--all-namespaces"]
        resource, _, subresource = resource.partition("/")
        where += [f"--subresource={subresource}"] if subresource else []
        result = self.cluster.kubectl("auth", "can-i", verb, resource, *where, "--as",
                                      OPERATOR_USER.format(namespace=self.namespace), check=False)
        return result.stdout.strip() == "yes"


def merge(base: dict, changes: dict) -> dict:
    merged = dict(base)
    for key, value in changes.items():
        merged[key] = merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


def storage_secret(cluster: Cluster, namespace: str, s3) -> None:
    client.CoreV1Api(cluster.api_client()).create_namespaced_secret(namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name=STORAGE_SECRET),
        string_data={"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key}))


@pytest.fixture
def release(cluster: Cluster, helm: Helm, helm_namespace: str, s3, tmp_path: pathlib.Path) -> Iterator[Release]:
    """The chart's values for this cluster, in namespaced mode; installed by the test."""
    storage_secret(cluster, helm_namespace, s3)
    values = {
        # The Ferry image: built from the Dockerfile for the real node, loaded by kind-e2e.sh on kind
        # (the emulated node runs it from this environment).
        "image": {"repository": "ferry", "tag": "dev"},
        "namespaced": True,
        "storage": {"bucket": s3.bucket, "prefix": f"helm/{helm_namespace}", "endpoint": s3.endpoint_url,
                    "region": s3.region, "addressingStyle": "path", "existingSecret": STORAGE_SECRET},
        # Pods of the emulated node share the host's network: the operator's ports must be free ones.
        "operator": {"livenessPort": free_port(), "logFormat": "plain"},
        "metrics": {"port": free_port()},
    }
    installed = Release(cluster, helm, helm_namespace, values, tmp_path)
    yield installed
    installed.helm("uninstall", RELEASE, "-n", helm_namespace, "--wait", kubeconfig=cluster.kubeconfig, check=False)


def apply_example(cluster: Cluster, namespace: str, name: str | None = None) -> str:
    manifest = yaml.safe_load(EXAMPLE.read_text())
    if name:
        manifest["metadata"]["name"] = name
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))
    return manifest["metadata"]["name"]


def workflow_events(cluster: Cluster, namespace: str, name: str) -> list[dict]:
    listed = cluster.kubectl("get", "events", "-n", namespace, "--field-selector",
                             f"involvedObject.kind=Workflow,involvedObject.name={name}", "-o", "json").stdout
    return json.loads(listed)["items"]


def assert_succeeded(workflow: dict, s3, prefix: str) -> None:
    status = workflow["status"]
    assert status["phase"] == "Succeeded", status
    assert status["progress"] == "2/2" and status["outputs"]["days"]["value"] == 3
    uri = status["outputs"]["summary"]["uri"]
    assert uri.startswith(f"s3://{s3.bucket}/{prefix}/{workflow['metadata']['namespace']}/"), uri
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    assert s3.client().get_object(Bucket=bucket, Key=key)["Body"].read() == b"hello mon\nhello tue\nhello wed\n"


def test_install_runs_the_example_through_the_charts_operator(release: Release, cluster: Cluster, s3):
    namespace = release.namespace
    notes = release.install()
    assert f"kubectl -n {namespace} rollout status deployment/ferry-operator" in notes
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/workflows.ferry.dev")

    # The pod is the one the chart describes: its ServiceAccount, token and configuration.
    pod = release.operator_pod()
    assert pod.spec.service_account_name == "ferry"
    token_volumes = [v for v in pod.spec.volumes if v.projected and any(s.service_account_token for s in v.projected.sources)]
    assert token_volumes, "the API server projects the ServiceAccount token into the pod"
    container = pod.spec.containers[0]
    assert container.image == "ferry:dev" and container.command == ["ferry-operator"]
    assert f"--namespace={namespace}" in container.args
    assert container.env_from[0].config_map_ref.name == "ferry-operator"
    release.wait_live()

    # Its RBAC is exactly the chart's: enough for workflows here, nothing elsewhere, no Secrets.
    assert release.can("create", "pods", namespace) and release.can("patch", "workflows.ferry.dev/status", namespace)
    assert release.can("patch", "pods", namespace), "to release a pod's finalizer once its attempt is recorded"
    assert release.can("patch", "workflows.ferry.dev", namespace), "to add and remove the operator's finalizer"
    assert not release.can("get", "secrets", namespace) and not release.can("update", "pods", namespace)
    assert not release.can("update", "workflows.ferry.dev", namespace)
    assert not release.can("update", "workflows.ferry.dev/status", namespace)
    assert not release.can("create", "pods", "default") and not release.can("list", "pods")

    apply_example(cluster, namespace)
    workflow = wait_for_phase(cluster, namespace, "directory-between-tasks")
    assert_succeeded(workflow, s3, f"helm/{namespace}")
    task_pod = client.CoreV1Api(cluster.api_client()).read_namespaced_pod(
        workflow["status"]["tasks"]["produce"]["podName"], namespace)
    assert task_pod.spec.service_account_name == "ferry-task"
    assert task_pod.spec.automount_service_account_token is False
    assert {c.image for c in task_pod.spec.init_containers} == {"ferry:dev"}

    logs = release.logs()  # served by the node, read through the API server like any pod's
    assert f"raw data prefix s3://{s3.bucket}/helm/{namespace}, runtime image ferry:dev" in logs
    if cluster.local:
        assert 'ferry_workflows{phase="Succeeded"} 1.0' in release.metrics()


def test_the_ui_reads_the_cluster_under_its_own_account_and_is_refused_writes(release: Release, cluster: Cluster,
                                                                              s3):
    namespace = release.namespace
    release.values["ui"] = {"enabled": True, "port": free_port()}
    notes = release.install()  # --wait: the UI's readiness probe (/healthz) passed on the node
    assert f"kubectl -n {namespace} port-forward service/ferry-ui" in notes
    user = f"system:serviceaccount:{namespace}:ferry-ui"

    def can(verb: str, what: str, *extra: str) -> bool:
        return cluster.kubectl("auth", "can-i", verb, what, "-n", namespace, "--as", user, *extra,
                               check=False).stdout.strip() == "yes"

    assert all(can(verb, "workflows.ferry.dev") for verb in ("get", "list", "watch"))
    assert can("list", "pods") and can("get", "pods", "--subresource=log")
    for verb in ("create", "update", "patch", "delete"):
        assert not can(verb, "workflows.ferry.dev") and not can(verb, "pods")
    assert not can("get", "secrets") and not can("create", "pods", "--subresource=exec")
    name = apply_example(cluster, namespace)
    refused = cluster.kubectl("delete", "fwf", name, "-n", namespace, "--as", user, check=False)
    assert refused.returncode != 0 and "forbidden" in refused.stderr.lower()

    workflow = wait_for_phase(cluster, namespace, name)
    assert_succeeded(workflow, s3, f"helm/{namespace}")
    pod = eventually(lambda: next(iter(client.CoreV1Api(cluster.api_client()).list_namespaced_pod(
        namespace, label_selector=f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=ui").items), None),
        60, what="the UI's pod")
    assert pod.spec.service_account_name == "ferry-ui" and pod.spec.containers[0].image == "ferry:dev"
    address = "127.0.0.1" if cluster.emulated else pod.status.pod_ip
    port = release.values["ui"]["port"]
    base = f"http://{address}:{port}"

    def get(path: str, timeout: float) -> str:  # as through kubectl port-forward, which names localhost
        request = urllib.request.Request(f"{base}{path}", headers={"Host": f"localhost:{port}"})
        return urllib.request.urlopen(request, timeout=timeout).read().decode()

    def listed() -> str | None:
        page = get(f"/workflows?namespace={namespace}", 5)
        return page if f'data-name="{name}"' in page else None

    listed = eventually(listed, 60, what="the workflow in the UI's list")
    assert "Succeeded" in listed
    reports = workflow["status"]["tasks"]["produce"]["outputs"]["reports"]
    query = urllib.parse.urlencode({"uri": reports["uri"], "digest": reports["manifestDigest"], "kind": "directory"})
    tree = get(f"/output?{query}", 10)
    assert "daily/" in tree and "README" in tree  # read from the store with the release's Secret
    if not cluster.emulated:  # a name the UI is not served as (DNS rebinding) gets nothing
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/workflows?namespace={namespace}", timeout=5)
        assert refused.value.code == 421


def test_a_missing_verb_is_reported_and_an_upgrade_repairs_it(release: Release, cluster: Cluster, s3):
    namespace = release.namespace
    release.install()
    release.operator_pod()
    release.wait_live()
    role = json.loads(cluster.kubectl("get", "role", "ferry-operator", "-n", namespace, "-o", "json").stdout)
    for rule in role["rules"]:
        if rule["resources"] == ["pods"]:
            rule["verbs"].remove("create")
    cluster.kubectl("replace", "-f", "-", input=json.dumps(role))
    eventually(lambda: not release.can("create", "pods", namespace), 30, what="the Role to lose pods/create")

    apply_example(cluster, namespace)
    denied = f'pods is forbidden: User "{OPERATOR_USER.format(namespace=namespace)}" cannot create resource "pods"'

    def reported():  # the API server's message, as the client logged it (quotes escaped in JSON)
        return denied in release.logs().replace('\\"', '"')

    # The refusal reaches the places users look: the operator's log, the Workflow's status
    # message and a Warning event, each naming the action and the missing permission.
    eventually(reported, 90, what="the API server's refusal in the operator's logs (kubectl logs)")

    def status_message():
        return get_workflow(cluster, namespace, "directory-between-tasks").get("status", {}).get("message") or ""

    message = eventually(status_message, 60, what="the refusal in the Workflow's status")
    assert "refused to create a task pod" in message and "lacks this permission" in message
    assert denied in message.replace('\\"', '"')
    events = workflow_events(cluster, namespace, "directory-between-tasks")
    assert any(e["type"] == "Warning" and e["reason"] == "APIRefused" for e in events), events
    workflow = get_workflow(cluster, namespace, "directory-between-tasks")
    assert workflow.get("status", {}).get("phase") not in ("Succeeded", "Failed")

    # helm upgrade puts the chart's Role back; the same workflow then finishes.
    release.upgrade({})
    assert release.can("create", "pods", namespace)
    assert_succeeded(wait_for_phase(cluster, namespace, "directory-between-tasks"), s3, f"helm/{namespace}")


def test_upgrade_to_changed_values_then_uninstall_keeps_the_crd(release: Release, cluster: Cluster, s3):
    namespace = release.namespace
    release.install()
    first = release.operator_pod()
    release.wait_live()
    apply_example(cluster, namespace, "before-upgrade")
    assert_succeeded(wait_for_phase(cluster, namespace, "before-upgrade"), s3, f"helm/{namespace}")

    new_prefix = f"upgraded/{namespace}"
    release.upgrade({"storage": {"prefix": new_prefix}, "operator": {"uploadGraceSeconds": 120}})
    second = release.operator_pod()
    assert second.metadata.uid != first.metadata.uid, "a new configuration replaces the operator's pod"
    release.wait_live()
    apply_example(cluster, namespace, "after-upgrade")
    workflow = wait_for_phase(cluster, namespace, "after-upgrade")
    assert_succeeded(workflow, s3, new_prefix)
    task_pod = client.CoreV1Api(cluster.api_client()).read_namespaced_pod(
        workflow["status"]["tasks"]["summarize"]["podName"], namespace)
    assert task_pod.spec.termination_grace_period_seconds == 120

    release.uninstall()
    apps, core = client.AppsV1Api(cluster.api_client()), client.CoreV1Api(cluster.api_client())
    assert not apps.list_namespaced_deployment(namespace).items
    assert not [a for a in core.list_namespaced_service_account(namespace).items if a.metadata.name != "default"]
    assert not cluster.kubectl("get", "role,rolebinding,configmap", "-n", namespace, "-l",
                               "app.kubernetes.io/instance=ferry", "-o", "name").stdout.strip()
    # Helm never deletes a CRD it installed from crds/: the Workflows (and their outputs) stay.
    cluster.kubectl("get", "crd", "workflows.ferry.dev")
    names = cluster.kubectl("get", "fwf", "-n", namespace, "-o", "name").stdout.split()
    assert sorted(names) == ["workflow.ferry.dev/after-upgrade", "workflow.ferry.dev/before-upgrade"]


def test_cluster_wide_install(release: Release, cluster: Cluster, s3):
    if _running_e2e_operator() is not None:
        pytest.skip("a cluster-wide operator would serve the e2e operator's namespaces too")
    namespace = release.namespace
    release.values["namespaced"] = False
    release.install()
    pod = release.operator_pod()
    assert "--all-namespaces" in pod.spec.containers[0].args
    release.wait_live()
    assert release.can("list", "pods") and release.can("watch", "workflows.ferry.dev")
    assert release.can("list", "customresourcedefinitions.apiextensions.k8s.io")
    assert not release.can("get", "secrets", namespace) and not release.can("list", "secrets")
    apply_example(cluster, namespace)
    assert_succeeded(wait_for_phase(cluster, namespace, "directory-between-tasks"), s3, f"helm/{namespace}")
    release.uninstall()
    assert not cluster.kubectl("get", "clusterrole,clusterrolebinding", "-l", "app.kubernetes.io/instance=ferry",
                               "-o", "name").stdout.strip()


def test_dev_object_store(cluster: Cluster, helm: Helm, helm_namespace: str, tmp_path: pathlib.Path):
    """The chart's own MinIO (the minio image is made from the cached MinIO build), reached by task
    pods through its Service's name, as the chart configures them."""
    if not cluster.local:
        pytest.skip("the store is checked from this machine, which reaches the suite's own cluster only")
    port = free_port()
    values = {
        "image": {"repository": "ferry", "tag": "dev"},
        "namespaced": True,
        "devObjectStore": {"enabled": True, "port": port},
        "operator": {"livenessPort": free_port(), "logFormat": "plain"},
        "metrics": {"port": free_port()},
    }
    if cluster.emulated:  # its pods share the host's network, and it has no cluster DNS
        values["storage"] = {"endpoint": f"http://127.0.0.1:{port}"}
    release = Release(cluster, helm, helm_namespace, values, tmp_path)
    release.install()
    try:
        secret = client.CoreV1Api(cluster.api_client()).read_namespaced_secret("ferry-objectstore", helm_namespace)
        keys = {k: base64.b64decode(v).decode() for k, v in secret.data.items()}
        release.wait_live()
        apply_example(cluster, helm_namespace)
        workflow = wait_for_phase(cluster, helm_namespace, "directory-between-tasks")
        host = "127.0.0.1" if cluster.emulated else client.CoreV1Api(cluster.api_client()).read_namespaced_service(
            "ferry-objectstore", helm_namespace).spec.cluster_ip  # through kube-proxy, as pods do
        store = S3(f"http://{host}:{port}", keys["AWS_ACCESS_KEY_ID"], keys["AWS_SECRET_ACCESS_KEY"], "ferry")
        assert_succeeded(workflow, store, "ferry")
        # An upgrade keeps the generated credentials (the data written with them stays readable).
        release.upgrade({"operator": {"verbose": True}})
        again = client.CoreV1Api(cluster.api_client()).read_namespaced_secret("ferry-objectstore", helm_namespace)
        assert again.data == secret.data
    finally:
        release.uninstall()
