"""End to end: Python workflows run on the cluster with ``ferry run --remote``: code through the
raw data store, the same runtime path as locally, context, checkpoints, secrets and caching."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest
from kubernetes import client

from tests.cluster.fixtures import REPO, Cluster

pytestmark = [pytest.mark.cluster, pytest.mark.s3]
SAMPLES = "tests/runtime/sample_workflows.py"


def ferry(cluster: Cluster, s3, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **s3.env(), "KUBECONFIG": str(cluster.kubeconfig), "FERRY_S3_ADDRESSING_STYLE": "path",
           "PATH": f"{pathlib.Path(cluster.kubectl_binary).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([sys.executable, "-m", "ferry", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)


def run_remote(cluster, s3, namespace, target, *inputs) -> subprocess.CompletedProcess:
    result = ferry(cluster, s3, "run", "--remote", target, "-n", namespace, "--store", f"s3://{s3.bucket}/runs",
                   *inputs)
    assert result.returncode == 0, result.stderr
    return result


def created_name(result: subprocess.CompletedProcess) -> str:
    return next(line.split()[1] for line in result.stderr.splitlines() if line.startswith("workflow "))


def test_remote_run_passes_a_directory_and_downloads_outputs(cluster: Cluster, workflow_namespace: str, s3, tmp_path):
    result = run_remote(cluster, s3, workflow_namespace, f"{SAMPLES}:directory_stats", "--n", "2")
    outputs = dict(line.split(" = ", 1) for line in result.stdout.splitlines())
    assert json.loads(outputs["o0"]) == {"files": 2, "names": ["f0.txt", "f1.txt"]}
    name = created_name(result)
    assert "✔ task stats succeeded" in result.stderr

    workflow = json.loads(cluster.kubectl("get", "fwf", name, "-n", workflow_namespace, "-o", "json").stdout)
    assert workflow["spec"]["code"].startswith(f"s3://{s3.bucket}/runs/code/")
    assert workflow["spec"]["tasks"][0]["function"] == "sample_workflows:make_dir"

    detail = ferry(cluster, s3, "get", name, "-n", workflow_namespace)
    assert detail.returncode == 0 and "make-dir" in detail.stdout and "Succeeded" in detail.stdout
    downloaded = ferry(cluster, s3, "outputs", name, "--task", "make-dir", "-n", workflow_namespace,
                       "-o", str(tmp_path / "out"))
    assert downloaded.returncode == 0, downloaded.stderr
    assert sorted(os.listdir(tmp_path / "out" / "o0")) == ["f0.txt", "f1.txt"]


def test_remote_run_keeps_python_names(cluster: Cluster, workflow_namespace: str, s3, tmp_path):
    """A NamedTuple's ``row_count`` and the input ``max_rows`` keep their names in the Workflow, in
    ``ferry run``'s lines and in ``ferry outputs``' folder."""
    result = run_remote(cluster, s3, workflow_namespace, f"{SAMPLES}:named", "--n", "5", "--max-rows", "2")
    assert result.stdout.splitlines() == ["row_count = 2", 'summary = "2 ROWS"']  # values as JSON
    name = created_name(result)
    workflow = json.loads(cluster.kubectl("get", "fwf", name, "-n", workflow_namespace, "-o", "json").stdout)
    assert [i["name"] for i in workflow["spec"]["inputs"]] == ["n", "max_rows"]
    assert set(workflow["status"]["outputs"]) == {"row_count", "summary"}
    downloaded = ferry(cluster, s3, "outputs", name, "-n", workflow_namespace, "-o", str(tmp_path / "out"))
    assert downloaded.returncode == 0, downloaded.stderr
    assert json.loads((tmp_path / "out" / "values.json").read_text()) == {"row_count": 2, "summary": "2 ROWS"}


def test_remote_retry_resumes_from_checkpoint_and_reads_secrets(cluster: Cluster, workflow_namespace: str, s3):
    result = run_remote(cluster, s3, workflow_namespace, f"{SAMPLES}:resumes")
    assert json.loads(result.stdout.split(" = ", 1)[1]) == "attempt 2 resumed from halfway"

    client.CoreV1Api(cluster.api_client()).create_namespaced_secret(workflow_namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name="ferry-db"), string_data={"token": "from-kubernetes"}))
    result = run_remote(cluster, s3, workflow_namespace, f"{SAMPLES}:context_report")
    report = json.loads(result.stdout.split(" = ", 1)[1])
    assert report["secret"] == "from-kubernetes"
    assert report["cwd"] == report["working_directory"] and report["attempt"] == 1
    logs = ferry(cluster, s3, "logs", created_name(result), "describe-context", "-n", workflow_namespace)
    assert logs.returncode == 0, logs.stderr


def test_remote_cache_reuses_outputs(cluster: Cluster, workflow_namespace: str, s3, tmp_path):
    counter = str(tmp_path / "counter")
    first = run_remote(cluster, s3, workflow_namespace, f"{SAMPLES}:cached", "--counter", counter, "--x", "5")
    second = run_remote(cluster, s3, workflow_namespace, f"{SAMPLES}:cached", "--counter", counter, "--x", "5")
    assert first.stdout == second.stdout == "o0 = 10\n"
    workflow = json.loads(cluster.kubectl("get", "fwf", created_name(second), "-n", workflow_namespace,
                                          "-o", "json").stdout)
    assert workflow["status"]["tasks"]["counted"]["message"] == "outputs reused from the cache"


def test_the_quickstart_s_map_runs_one_pod_per_report_on_the_cluster(cluster: Cluster, workflow_namespace: str, s3):
    """Python map items in pods: each reads the split's index and its one report, and the visits are
    gathered back into a list (100 + 200 + 300)."""
    result = run_remote(cluster, s3, workflow_namespace, "examples/quickstart.py:pipeline", "--days", "3")
    outputs = dict(line.split(" = ", 1) for line in result.stdout.splitlines())
    assert outputs["visits"] == "600", result.stderr
    workflow = json.loads(cluster.kubectl("get", "fwf", created_name(result), "-n", workflow_namespace,
                                          "-o", "json").stdout)
    progress = workflow["status"]["tasks"]["count"]["map"]
    assert (progress["items"], progress["succeeded"], progress["failed"]) == (3, 3, 0)
    roles = sorted((p.metadata.labels or {}).get("ferry.dev/role", "task") for p in client.CoreV1Api(
        cluster.api_client()).list_namespaced_pod(
        workflow_namespace, label_selector=f"ferry.dev/workflow={created_name(result)},ferry.dev/task=count").items)
    assert roles == ["gather", "item", "item", "item", "split"], "podRetention KeepAll: every unit's pod is there"
