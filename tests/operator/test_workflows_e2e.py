"""End to end: Workflow manifests applied with kubectl, run by the operator on the test cluster,
with data moving through the real S3 server. Runs unchanged against a real cluster."""

from __future__ import annotations

import json
import time

import pytest
import yaml
from kubernetes import client

from tests.cluster.fixtures import REPO, Cluster, eventually
from tests.operator.fixtures import START_TIMEOUT_SECONDS, STORAGE_SECRET, get_workflow, wait_for_phase
from tests.runtime.execution.test_localpod import EXPECTED_SHAPES, VALUE_SHAPES

pytestmark = [pytest.mark.cluster, pytest.mark.s3]
EXAMPLES = REPO / "examples" / "workflows"


def apply_example(cluster: Cluster, namespace: str, name: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / f"{name}.yaml"))


def apply_manifest(cluster: Cluster, namespace: str, manifest: dict) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))


def workflow_pods(cluster: Cluster, namespace: str, name: str) -> list[client.V1Pod]:
    core = client.CoreV1Api(cluster.api_client())
    return core.list_namespaced_pod(namespace, label_selector=f"ferry.dev/workflow={name}").items


def read_object(s3, uri: str) -> bytes:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    return s3.client().get_object(Bucket=bucket, Key=key)["Body"].read()


def test_two_tasks_pass_a_directory(cluster: Cluster, workflow_namespace: str, s3, operator):
    apply_example(cluster, workflow_namespace, "directory-between-tasks")
    workflow = wait_for_phase(cluster, workflow_namespace, "directory-between-tasks")
    status = workflow["status"]
    assert status["phase"] == "Succeeded", status
    assert status["progress"] == "2/2" and status["observedGeneration"] == workflow["metadata"]["generation"]
    # Kopf writes nothing onto Workflows (ferry_operator.kopfstate): Ferry's finalizer is all.
    assert workflow["metadata"]["finalizers"] == ["ferry.dev/stop-tasks"]
    assert not [a for a in workflow["metadata"].get("annotations") or {} if "kopf" in a or a.startswith("ferry.dev/")]
    reports = status["tasks"]["produce"]["outputs"]["reports"]
    assert reports["kind"] == "directory" and reports["fileCount"] == 4
    assert reports["manifestDigest"].startswith("sha256:")
    assert status["outputs"]["days"]["value"] == 3
    summary = status["outputs"]["summary"]
    assert summary["uri"].startswith(f"s3://{s3.bucket}/runs/{workflow_namespace}/")
    assert read_object(s3, summary["uri"]) == b"hello mon\nhello tue\nhello wed\n"

    # Conditions as the API's conventions have them: kubectl wait works on a Workflow.
    cluster.kubectl("wait", "--for=condition=Succeeded", "--timeout=20s", "-n", workflow_namespace,
                    "fwf/directory-between-tasks")
    assert cluster.kubectl("wait", "--for=condition=Failed", "--timeout=1s", "-n", workflow_namespace,
                           "fwf/directory-between-tasks", check=False).returncode != 0
    assert {c["type"]: c["status"] for c in status["conditions"]} == {"Running": "False", "Succeeded": "True",
                                                                     "Failed": "False", "Stopped": "False"}

    table = cluster.kubectl("get", "fwf", "-n", workflow_namespace).stdout
    header, row = table.splitlines()[:2]
    assert header.split()[:4] == ["NAME", "PHASE", "PROGRESS", "AGE"] and "MESSAGE" in header
    assert row.split()[:3] == ["directory-between-tasks", "Succeeded", "2/2"]

    metrics = operator.metrics()
    assert metric(metrics, 'ferry_workflows{phase="Succeeded"}') >= 1
    assert metric(metrics, 'ferry_task_duration_seconds_count{outcome="succeeded"}') >= 2
    assert metric(metrics, 'ferry_bytes_moved_total{direction="published"}') >= 41 + 30


def metric(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + " "))


def test_fan_out_fan_in_of_twenty_tasks(cluster: Cluster, workflow_namespace: str, s3):
    workers = [{
        "name": f"square-{i}", "image": "busybox:1.36", "command": ["sh", "-c"],
        "args": ['n=$(cat "$FERRY_INPUT_NUM"); echo $((n * n)) > /ferry/outputs/square'],
        "inputs": [{"name": "num", "value": i}],
        "outputs": [{"name": "square", "kind": "file"}],
    } for i in range(20)]
    join = {
        "name": "total", "image": "busybox:1.36", "command": ["sh", "-c"],
        "args": ['cat /ferry/inputs/*/square 2>/dev/null; s=0; for f in /ferry/inputs/*; do s=$((s + $(cat $f))); '
                 'done; echo $s > /ferry/outputs/sum'],
        "inputs": [{"name": f"sq-{i}", "fromTask": {"task": f"square-{i}", "output": "square"}} for i in range(20)],
        "outputs": [{"name": "sum", "kind": "value"}],
    }
    apply_manifest(cluster, workflow_namespace, {
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow", "metadata": {"name": "fan"},
        "spec": {"tasks": [*workers, join], "outputs": [{"name": "sum", "fromTask": {"task": "total", "output": "sum"}}]},
    })
    workflow = wait_for_phase(cluster, workflow_namespace, "fan", timeout=300)
    assert workflow["status"]["phase"] == "Succeeded", workflow["status"]
    assert workflow["status"]["outputs"]["sum"]["value"] == sum(i * i for i in range(20))
    assert workflow["status"]["progress"] == "21/21"
    assert len(workflow_pods(cluster, workflow_namespace, "fan")) == 21


def test_python_style_names_reach_variables_and_folders(cluster: Cluster, workflow_namespace: str, s3):
    """``max_rows`` and ``row_count`` as a Python user writes them: the variable spells them in upper
    case (``FERRY_INPUT_MAX_ROWS``), the folders keep them as they are."""
    apply_manifest(cluster, workflow_namespace, {
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow", "metadata": {"name": "python-names"},
        "spec": {"inputs": [{"name": "max_rows", "value": 3}], "tasks": [
            {"name": "count", "image": "busybox:1.36", "command": ["sh", "-c"],
             "args": ['echo $(($(cat "$FERRY_INPUT_MAX_ROWS") + 1)) > /ferry/outputs/row_count'],
             "inputs": [{"name": "max_rows", "fromInput": "max_rows"}], "outputs": [{"name": "row_count"}]},
            {"name": "show", "image": "busybox:1.36", "command": ["sh", "-c"],
             "args": ['echo "$(cat /ferry/inputs/rows_in) from $FERRY_INPUT_ROWS_IN" > /ferry/outputs/line'],
             "inputs": [{"name": "rows_in", "fromTask": {"task": "count", "output": "row_count"}}],
             "outputs": [{"name": "line", "kind": "value"}]}],
            "outputs": [{"name": "line", "fromTask": {"task": "show", "output": "line"}}]}})
    workflow = wait_for_phase(cluster, workflow_namespace, "python-names", timeout=120)
    assert workflow["status"]["phase"] == "Succeeded", workflow["status"]
    assert workflow["status"]["outputs"]["line"]["value"] == "4 from /ferry/inputs/rows_in"
    assert read_object(s3, workflow["status"]["tasks"]["count"]["outputs"]["row_count"]["uri"]) == b"4\n"


def test_a_value_input_is_one_file_of_its_text_whatever_its_size(cluster: Cluster, workflow_namespace: str, s3):
    """A small string, a string of 300,000 characters and JSON values of both sizes reach a container
    task as ``/ferry/inputs/<name>``, each string as itself and the rest as JSON, with the variable
    holding the path (the task checks it); the local executor runs the same (``tests/runtime/test_localpod.py``)."""
    apply_manifest(cluster, workflow_namespace, {"apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow",
                                                 "metadata": {"name": "value-shapes"}, "spec": {"tasks": VALUE_SHAPES}})
    workflow = wait_for_phase(cluster, workflow_namespace, "value-shapes", timeout=180)
    status = workflow["status"]
    assert status["phase"] == "Succeeded", status
    made = status["tasks"]["make"]["outputs"]
    assert made["large-text"]["uri"] and made["large-json"]["uri"] and made["small-text"]["value"] == "hello world"
    copied = status["tasks"]["check"]["outputs"]
    assert {name: read_object(s3, copied[name]["uri"]) for name in EXPECTED_SHAPES} == EXPECTED_SHAPES
    literal = next(p for p in workflow_pods(cluster, workflow_namespace, "value-shapes")
                   if p.metadata.labels["ferry.dev/task"] == "literal")
    assert [c.name for c in literal.spec.init_containers] == ["ferry-fetch"], "values only: nothing from the store"


def test_inputs_spelled_alike_fail_naming_the_task_and_both(cluster: Cluster, workflow_namespace: str):
    """The API server takes them (no CEL rule can compare every pair within its budget); the operator
    refuses the Workflow before any pod, as ``ferry compile`` and local runs do."""
    apply_manifest(cluster, workflow_namespace, {
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow", "metadata": {"name": "spelled-alike"},
        "spec": {"tasks": [{"name": "count", "image": "busybox:1.36", "command": ["true"],
                            "inputs": [{"name": "row-count", "value": 1}, {"name": "row_count", "value": 2}]}]}})
    workflow = wait_for_phase(cluster, workflow_namespace, "spelled-alike", timeout=60)
    assert workflow["status"]["phase"] == "Failed"
    assert ("task count: inputs 'row-count' and 'row_count' would both be FERRY_INPUT_ROW_COUNT; rename one"
            in workflow["status"]["message"]), workflow["status"]["message"]
    assert workflow_pods(cluster, workflow_namespace, "spelled-alike") == []


def test_failed_attempt_is_retried_in_a_new_pod(cluster: Cluster, workflow_namespace: str):
    apply_example(cluster, workflow_namespace, "retry")
    workflow = wait_for_phase(cluster, workflow_namespace, "retry")
    task = workflow["status"]["tasks"]["flaky"]
    assert workflow["status"]["phase"] == "Succeeded", workflow["status"]
    assert task["attempts"] == 2 and task["podName"] == "retry-flaky-2"
    assert task["outputs"]["result"]["value"] == "attempt 2"
    names = sorted(p.metadata.name for p in workflow_pods(cluster, workflow_namespace, "retry"))
    assert names == ["retry-flaky-1", "retry-flaky-2"]
    events = cluster.kubectl("get", "events", "-n", workflow_namespace, "--field-selector",
                             "involvedObject.name=retry", "-o", "jsonpath={.items[*].reason}").stdout.split()
    assert {"Started", "TaskRetrying", "Succeeded"} <= set(events)
    assert not {"TaskStarted", "TaskSucceeded"} & set(events)  # two writes per task, off by default


def test_timeout_stops_the_task(cluster: Cluster, workflow_namespace: str):
    apply_example(cluster, workflow_namespace, "timeout")
    workflow = wait_for_phase(cluster, workflow_namespace, "timeout", timeout=60)
    assert workflow["status"]["phase"] == "Failed"
    assert "timed out after 3s" in workflow["status"]["tasks"]["slow"]["message"]
    assert workflow["status"]["tasks"]["slow"]["reason"] == "TimedOut"
    eventually(lambda: not workflow_pods(cluster, workflow_namespace, "timeout"), 60, what="the pod to be stopped")


def test_cycle_fails_with_a_clear_message(cluster: Cluster, workflow_namespace: str):
    apply_example(cluster, workflow_namespace, "cycle")
    workflow = wait_for_phase(cluster, workflow_namespace, "cycle", timeout=60)
    assert workflow["status"]["phase"] == "Failed"
    assert "cycle (a -> b -> a)" in workflow["status"]["message"] or "cycle (b -> a -> b)" in workflow["status"]["message"]
    assert workflow_pods(cluster, workflow_namespace, "cycle") == []


def test_deleting_a_running_workflow_removes_its_pods(cluster: Cluster, workflow_namespace: str):
    apply_manifest(cluster, workflow_namespace, {
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow", "metadata": {"name": "doomed"},
        "spec": {"tasks": [{"name": "sleep", "image": "busybox:1.36", "command": ["sleep", "300"]}]}})
    eventually(lambda: [p for p in workflow_pods(cluster, workflow_namespace, "doomed") if p.status.phase == "Running"],
               60, what="the task to run")
    cluster.kubectl("delete", "fwf", "doomed", "-n", workflow_namespace, "--wait=false")
    eventually(lambda: not workflow_pods(cluster, workflow_namespace, "doomed"), 90, what="the pods to be removed")


def test_operator_killed_mid_workflow_resumes_without_duplicates(cluster: Cluster, workflow_namespace: str,
                                                                 operator):
    steps = [{"name": f"step-{i}", "image": "busybox:1.36", "command": ["sh", "-c"],
              "args": [f"sleep 2; echo {i} > /ferry/outputs/done"], "outputs": [{"name": "done", "kind": "value"}],
              **({"dependsOn": [f"step-{i - 1}"]} if i else {})} for i in range(3)]
    apply_manifest(cluster, workflow_namespace, {"apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow",
                                                 "metadata": {"name": "chain"}, "spec": {"tasks": steps}})

    def second_step_running():
        tasks = get_workflow(cluster, workflow_namespace, "chain").get("status", {}).get("tasks", {})
        return tasks.get("step-1", {}).get("phase") == "Running"

    eventually(second_step_running, 90, what="step-1 to start")
    operator.kill()
    time.sleep(4)  # step-1 finishes while no operator is watching
    operator.start()
    workflow = wait_for_phase(cluster, workflow_namespace, "chain")
    assert workflow["status"]["phase"] == "Succeeded", workflow["status"]
    assert [workflow["status"]["tasks"][f"step-{i}"]["attempts"] for i in range(3)] == [1, 1, 1]
    names = sorted(p.metadata.name for p in workflow_pods(cluster, workflow_namespace, "chain"))
    assert names == ["chain-step-0-1", "chain-step-1-1", "chain-step-2-1"]


def test_sensor_plugin_from_yaml_waits_for_an_object(cluster: Cluster, workflow_namespace: str, s3):
    uri = f"s3://{s3.bucket}/arrivals/{workflow_namespace}.csv"
    apply_manifest(cluster, workflow_namespace, {
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow", "metadata": {"name": "sensed"},
        "spec": {"tasks": [
            {"name": "wait", "plugin": {"type": "object-store-sensor",
                                        "config": {"poll_interval_seconds": 0.5, "timeout_seconds": 120}},
             "inputs": [{"name": "path", "value": uri}], "outputs": [{"name": "o0", "kind": "value"}]},
            {"name": "show", "image": "busybox:1.36", "command": ["sh", "-c"],
             "args": ['echo "got $(cat "$FERRY_INPUT_PATH")" > /ferry/outputs/line'],
             "inputs": [{"name": "path", "fromTask": {"task": "wait", "output": "o0"}}],
             "outputs": [{"name": "line", "kind": "value"}]}]}})

    def waiting():
        return get_workflow(cluster, workflow_namespace, "sensed").get("status", {}).get("tasks", {}).get(
            "wait", {}).get("phase") == "Running"

    eventually(waiting, 60, what="the sensor to start")
    time.sleep(2)
    assert get_workflow(cluster, workflow_namespace, "sensed")["status"]["phase"] == "Running"
    s3.client().put_object(Bucket=s3.bucket, Key=f"arrivals/{workflow_namespace}.csv", Body=b"a,b\n")
    workflow = wait_for_phase(cluster, workflow_namespace, "sensed", timeout=90)
    assert workflow["status"]["phase"] == "Succeeded", workflow["status"]
    assert workflow["status"]["tasks"]["show"]["outputs"]["line"]["value"] == f"got {uri}"


def test_a_task_cannot_publish_the_store_credentials_through_a_link(cluster: Cluster, workflow_namespace: str, s3):
    """The publisher holds the store's keys in its environment; a link to it must publish nothing."""
    leak = 'ln -s /proc/self/environ /ferry/outputs/{0}'
    apply_manifest(cluster, workflow_namespace, {
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow", "metadata": {"name": "leak"},
        "spec": {"failurePolicy": "Continue", "tasks": [
            {"name": "as-value", "image": "busybox:1.36", "command": ["sh", "-c"], "args": [leak.format("env")],
             "outputs": [{"name": "env", "kind": "value"}]},
            {"name": "as-file", "image": "busybox:1.36", "command": ["sh", "-c"], "args": [leak.format("report")],
             "outputs": [{"name": "report", "kind": "file"}]},
            {"name": "as-directory", "image": "busybox:1.36", "command": ["sh", "-c"],
             "args": ["ln -s /proc/self /ferry/outputs/tree"], "outputs": [{"name": "tree", "kind": "directory"}]}]}})
    workflow = wait_for_phase(cluster, workflow_namespace, "leak", timeout=120)
    assert workflow["status"]["phase"] == "Failed"
    for task, output in (("as-value", "env"), ("as-file", "report"), ("as-directory", "tree")):
        message = workflow["status"]["tasks"][task]["message"]
        assert f"output {output!r}" in message and "outside" in message, message
    events = cluster.kubectl("get", "events", "-n", workflow_namespace, "-o", "json").stdout
    assert s3.secret_key not in json.dumps(workflow) and s3.secret_key not in events
    listed = s3.client().list_objects_v2(Bucket=s3.bucket, Prefix=f"runs/{workflow_namespace}/").get("Contents", [])
    assert all(s3.secret_key.encode() not in read_object(s3, f"s3://{s3.bucket}/{item['Key']}") for item in listed)


def test_outputs_written_by_root_with_private_modes_are_published(cluster: Cluster, workflow_namespace: str, s3):
    """mktemp, tempfile and mkdtemp make 0600 files and 0700 folders; the task's image runs as root and
    the publisher as another user, on a real node."""
    apply_manifest(cluster, workflow_namespace, {
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow", "metadata": {"name": "private"},
        "spec": {"tasks": [{
            "name": "write", "image": "busybox:1.36", "command": ["sh", "-c"],
            "args": ["umask 077 && mkdir -p /ferry/outputs/tree/sub && echo a > /ferry/outputs/tree/sub/a "
                     "&& echo report > /ferry/outputs/report && echo 7 > /ferry/outputs/count"],
            "outputs": [{"name": "tree", "kind": "directory"}, {"name": "report", "kind": "file"},
                        {"name": "count", "kind": "value"}]}]}})
    workflow = wait_for_phase(cluster, workflow_namespace, "private", timeout=120)
    assert workflow["status"]["phase"] == "Succeeded", workflow["status"]
    outputs = workflow["status"]["tasks"]["write"]["outputs"]
    assert outputs["count"]["value"] == 7 and outputs["tree"]["fileCount"] == 1
    assert read_object(s3, outputs["report"]["uri"]) == b"report\n"


def test_an_out_of_memory_task_fails_with_its_reason(cluster: Cluster, workflow_namespace: str):
    if cluster.emulated:
        pytest.skip("the emulated test node enforces no memory limits")
    apply_manifest(cluster, workflow_namespace, {
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow", "metadata": {"name": "oom"},
        "spec": {"tasks": [{
            "name": "hog", "image": "busybox:1.36", "command": ["sh", "-c"],
            "args": ["head -c 200m /dev/zero | tail > /dev/null"],
            "resources": {"limits": {"memory": "32Mi"}}}]}})
    workflow = wait_for_phase(cluster, workflow_namespace, "oom", timeout=120)
    assert workflow["status"]["phase"] == "Failed"
    assert "OOMKilled" in workflow["status"]["tasks"]["hog"]["message"], workflow["status"]
    assert workflow["status"]["tasks"]["hog"]["reason"] == "OOMKilled"


def test_a_mistyped_image_fails_the_task_with_the_pull_error(cluster: Cluster, workflow_namespace: str):
    if cluster.emulated:
        pytest.skip("the emulated test node runs any busybox tag with the host's shell")
    apply_manifest(cluster, workflow_namespace, {
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow", "metadata": {"name": "typo"},
        "spec": {"tasks": [{"name": "t", "image": "busybox:1.36-does-not-exist", "command": ["true"]}]}})
    workflow = wait_for_phase(cluster, workflow_namespace, "typo", timeout=START_TIMEOUT_SECONDS + 90)
    message = workflow["status"]["tasks"]["t"]["message"]
    assert workflow["status"]["phase"] == "Failed"
    assert ("ErrImagePull" in message or "ImagePullBackOff" in message) and "for more than" in message, message
    assert workflow["status"]["tasks"]["t"]["reason"] == "StartFailed"
    eventually(lambda: not workflow_pods(cluster, workflow_namespace, "typo"), 60, what="the stuck pod to be deleted")


def test_a_missing_storage_secret_fails_the_task_with_the_reason(cluster: Cluster, namespace: str, operator):
    """The namespace lacks the Secret the runtime containers read the store's keys from."""
    if cluster.emulated:
        pytest.skip("the emulated test node does not resolve envFrom Secrets as a kubelet does")
    apply_manifest(cluster, namespace, {
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow", "metadata": {"name": "no-secret"},
        "spec": {"tasks": [{"name": "t", "image": "busybox:1.36", "command": ["sh", "-c", "echo 1 > /ferry/outputs/count"],
                            "outputs": [{"name": "count", "kind": "value"}]}]}})
    workflow = wait_for_phase(cluster, namespace, "no-secret", timeout=START_TIMEOUT_SECONDS + 90)
    message = workflow["status"]["tasks"]["t"]["message"]
    assert workflow["status"]["phase"] == "Failed"
    assert "CreateContainerConfigError" in message and STORAGE_SECRET in message, message


def test_a_task_mounting_a_missing_secret_fails_with_the_kubelet_s_reason(cluster: Cluster, workflow_namespace: str):
    """The pod only says ContainerCreating (as during a slow pull); its FailedMount events say why."""
    if cluster.emulated:
        pytest.skip("the emulated test node posts no events")
    apply_manifest(cluster, workflow_namespace, {
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow", "metadata": {"name": "no-volume"},
        "spec": {"tasks": [{"name": "t", "image": "busybox:1.36", "command": ["true"], "secrets": ["not-there"]}]}})
    workflow = wait_for_phase(cluster, workflow_namespace, "no-volume", timeout=START_TIMEOUT_SECONDS + 90)
    task = workflow["status"]["tasks"]["t"]
    assert workflow["status"]["phase"] == "Failed" and task["reason"] == "StartFailed"
    assert task["message"].startswith("attempt 1 failed: FailedMount for more than") and 'secret "not-there" not found' \
        in task["message"], task["message"]
    eventually(lambda: not workflow_pods(cluster, workflow_namespace, "no-volume"), 60, what="the stuck pod to go")


RESTRICTED_TASK = {"runAsUser": 1000, "runAsGroup": 1000, "runAsNonRoot": True, "allowPrivilegeEscalation": False,
                   "capabilities": {"drop": ["ALL"]}}


def test_a_restricted_namespace_with_a_quota_runs_task_pods(cluster: Cluster, workflow_namespace: str, s3):
    """Pod Security ``restricted`` and a ResourceQuota on cpu and memory admit Ferry's task pods when the
    task names its user; Ferry's containers run as that user and read its private files."""
    if cluster.emulated:
        pytest.skip("the emulated test node runs every container as root")
    ns = workflow_namespace
    cluster.kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted")
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "quota"},
         "spec": {"hard": {"requests.cpu": "4", "requests.memory": "8Gi", "limits.memory": "16Gi"}}},
        {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "defaults"},
         "spec": {"limits": [{"type": "Container", "default": {"memory": "256Mi"},
                              "defaultRequest": {"cpu": "50m", "memory": "64Mi"}}]}}]))
    task = {"image": "busybox:1.36", "command": ["sh", "-c"], "securityContext": RESTRICTED_TASK}
    apply_manifest(cluster, ns, {
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow", "metadata": {"name": "restricted"},
        "spec": {"tasks": [
            {**task, "name": "produce", "args": ["umask 077 && id -u > /ferry/outputs/report"],
             "outputs": [{"name": "report", "kind": "file"}]},
            {**task, "name": "consume", "args": ["cat /ferry/inputs/report > /ferry/outputs/uid"],
             "inputs": [{"name": "report", "fromTask": {"task": "produce", "output": "report"}}],
             "outputs": [{"name": "uid", "kind": "value"}]}]}})
    workflow = wait_for_phase(cluster, ns, "restricted", timeout=120)
    assert workflow["status"]["phase"] == "Succeeded", workflow["status"]
    assert workflow["status"]["tasks"]["consume"]["outputs"]["uid"]["value"] == 1000


def test_placement_a_volume_and_a_scratch_limit_reach_a_running_task(cluster: Cluster, workflow_namespace: str):
    """nodeSelector, tolerations, affinity, imagePullSecrets, a ConfigMap volume and the scratch limit,
    as a user sets them, admitted by the API server and honoured by the node."""
    ns = workflow_namespace
    node = cluster.kubectl("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}").stdout
    cluster.kubectl("create", "configmap", "settings", "-n", ns, "--from-literal=threshold=7")
    cluster.kubectl("create", "secret", "docker-registry", "registry-keys", "-n", ns, "--docker-server=registry.test",
                    "--docker-username=u", "--docker-password=p")
    apply_manifest(cluster, ns, {
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow", "metadata": {"name": "placed"},
        "spec": {"tasks": [{
            "name": "read", "image": "busybox:1.36", "command": ["sh", "-c", "cat /config/threshold > /ferry/outputs/t"],
            "outputs": [{"name": "t", "kind": "value"}],
            "nodeSelector": {"kubernetes.io/hostname": node},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ferry", "effect": "NoSchedule"}],
            "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {
                "matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}}]}},
            "imagePullSecrets": ["registry-keys"],
            "volumes": [{"name": "settings", "configMap": {"name": "settings"}}],
            "volumeMounts": [{"name": "settings", "mountPath": "/config", "readOnly": True}],
            "scratchSizeLimit": "64Mi"}]}})
    workflow = wait_for_phase(cluster, ns, "placed", timeout=120)
    assert workflow["status"]["phase"] == "Succeeded", workflow["status"]
    assert workflow["status"]["tasks"]["read"]["outputs"]["t"]["value"] == 7
    pod = workflow_pods(cluster, ns, "placed")[0]
    assert pod.spec.node_name == node and pod.spec.image_pull_secrets[0].name == "registry-keys"
    assert {v.name: v.empty_dir.size_limit for v in pod.spec.volumes if v.empty_dir}["ferry-outputs"] == "64Mi"


def test_a_workflow_with_a_long_name_runs(cluster: Cluster, workflow_namespace: str):
    name = "nightly-reports." + "a" * 70 + ".example"
    apply_manifest(cluster, workflow_namespace, {
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow", "metadata": {"name": name},
        "spec": {"tasks": [{"name": "say", "image": "busybox:1.36", "command": ["sh", "-c", "echo hi > /ferry/outputs/word"],
                            "outputs": [{"name": "word", "kind": "value"}]}]}})
    workflow = wait_for_phase(cluster, workflow_namespace, name, timeout=90)
    assert workflow["status"]["phase"] == "Succeeded", workflow["status"]
    assert workflow["status"]["tasks"]["say"]["outputs"]["word"]["value"] == "hi"


def test_a_published_attempt_survives_its_pod_being_deleted_before_the_operator_read_it(
        cluster: Cluster, workflow_namespace: str, operator):
    """The node is reclaimed (or the pod evicted) after the outputs were published and while no
    operator was watching: the work counts, and the task does not run again."""
    apply_manifest(cluster, workflow_namespace, {
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow", "metadata": {"name": "reclaimed"},
        "spec": {"tasks": [{"name": "work", "image": "busybox:1.36", "command": ["sh", "-c"],
                            "args": ["sleep 3; echo 42 > /ferry/outputs/answer"],
                            "outputs": [{"name": "answer", "kind": "value"}]}]}})
    core = client.CoreV1Api(cluster.api_client())
    eventually(lambda: [p for p in workflow_pods(cluster, workflow_namespace, "reclaimed") if p.status.phase == "Running"],
               60, what="the task to run")
    operator.kill()
    try:
        eventually(lambda: core.read_namespaced_pod("reclaimed-work-1", workflow_namespace).status.phase == "Succeeded",
                   60, what="the pod to finish")
        core.delete_namespaced_pod("reclaimed-work-1", workflow_namespace, grace_period_seconds=0)
    finally:
        operator.start()
    workflow = wait_for_phase(cluster, workflow_namespace, "reclaimed", timeout=90)
    assert workflow["status"]["phase"] == "Succeeded", workflow["status"]
    task = workflow["status"]["tasks"]["work"]
    assert task["attempts"] == 1 and task["outputs"]["answer"]["value"] == 42
    eventually(lambda: not workflow_pods(cluster, workflow_namespace, "reclaimed"), 30,
               what="the pod to go once read")


def test_a_workflow_re_created_under_the_same_name_runs_its_first_attempt(cluster: Cluster, workflow_namespace: str):
    """Deleted and applied again at once: the old pods, named as the new ones, are still stopping."""
    manifest = {"apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow", "metadata": {"name": "again"},
                "spec": {"tasks": [{"name": "t", "image": "busybox:1.36", "command": ["sh", "-c"],
                                    "args": ["sleep 20; echo done > /ferry/outputs/state"],
                                    "outputs": [{"name": "state", "kind": "value"}]}]}}
    apply_manifest(cluster, workflow_namespace, manifest)
    eventually(lambda: [p for p in workflow_pods(cluster, workflow_namespace, "again") if p.status.phase == "Running"],
               60, what="the first run's task to run")
    cluster.kubectl("delete", "fwf", "again", "-n", workflow_namespace, "--wait=true", "--timeout=60s")
    apply_manifest(cluster, workflow_namespace, manifest)
    workflow = wait_for_phase(cluster, workflow_namespace, "again", timeout=120)
    assert workflow["status"]["phase"] == "Succeeded", workflow["status"]
    assert workflow["status"]["tasks"]["t"]["attempts"] == 1


def test_a_task_with_sixty_four_outputs_and_a_large_value_passes_them_on(cluster: Cluster, workflow_namespace: str, s3):
    """64 outputs (the most a task may declare) are far more than a 4 KiB termination message holds,
    and a 100 KiB value more than status should: both go through the store, by pointer and digest."""
    names = [f"part-{i:02d}-{'x' * 30}" for i in range(63)]  # and "big": 64
    write = " && ".join(f"echo {i} > /ferry/outputs/{name}" for i, name in enumerate(names))
    apply_manifest(cluster, workflow_namespace, {
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow", "metadata": {"name": "wide-result"},
        "spec": {"tasks": [
            {"name": "many", "image": "busybox:1.36", "command": ["sh", "-c"],
             "args": [write + " && seq 1 20000 | tr '\\n' ' ' > /ferry/outputs/big"],
             "outputs": [*({"name": name, "kind": "file"} for name in names), {"name": "big", "kind": "value"}]},
            {"name": "use", "image": "busybox:1.36", "command": ["sh", "-c"],
             "args": ['cat /ferry/inputs/last > /ferry/outputs/got && wc -w < /ferry/inputs/big > /ferry/outputs/words'],
             "inputs": [{"name": "last", "fromTask": {"task": "many", "output": names[-1]}},
                        {"name": "big", "fromTask": {"task": "many", "output": "big"}}],
             "outputs": [{"name": "got", "kind": "value"}, {"name": "words", "kind": "value"}]}],
            "outputs": [{"name": "first", "fromTask": {"task": "many", "output": names[0]}},
                        {"name": "got", "fromTask": {"task": "use", "output": "got"}}]}})
    workflow = wait_for_phase(cluster, workflow_namespace, "wide-result", timeout=180)
    status = workflow["status"]
    assert status["phase"] == "Succeeded", status
    many = status["tasks"]["many"]
    assert many["result"]["uri"].endswith("/.ferry-result.json") and not many.get("outputs")
    assert status["tasks"]["use"]["outputs"]["got"]["value"] == 62
    assert status["tasks"]["use"]["outputs"]["words"]["value"] == 20000
    assert status["outputs"]["first"]["result"]["output"] == names[0]


def test_a_finished_workflow_goes_with_its_pods_once_its_ttl_has_passed(cluster: Cluster, workflow_namespace: str):
    """``ttlSecondsAfterFinished``: deleted by the operator, its pods by their owner references; a
    workflow without one stays (the operator's default keeps them)."""
    say = {"name": "say", "image": "busybox:1.36", "command": ["sh", "-c"], "args": ["echo hi > /ferry/outputs/word"],
           "outputs": [{"name": "word", "kind": "value"}]}
    for name, ttl in (("short-lived", {"ttlSecondsAfterFinished": 3}), ("kept", {})):
        apply_manifest(cluster, workflow_namespace, {"apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow",
                                                     "metadata": {"name": name}, "spec": {"tasks": [say], **ttl}})
    workflow = wait_for_phase(cluster, workflow_namespace, "short-lived", timeout=120)
    assert workflow["status"]["phase"] == "Succeeded", workflow["status"]
    gone = lambda: cluster.kubectl("get", "fwf", "short-lived", "-n", workflow_namespace,  # noqa: E731
                                   check=False).returncode != 0
    eventually(gone, 60, what="the workflow to be deleted after its TTL")
    eventually(lambda: not workflow_pods(cluster, workflow_namespace, "short-lived"), 60, what="its pods to go")
    kept = wait_for_phase(cluster, workflow_namespace, "kept", timeout=120)
    assert kept["status"]["phase"] == "Succeeded"
    time.sleep(5)
    assert get_workflow(cluster, workflow_namespace, "kept")["metadata"]["uid"] == kept["metadata"]["uid"]
    assert [p.metadata.name for p in workflow_pods(cluster, workflow_namespace, "kept")] == ["kept-say-1"]


def test_pod_retention_keep_failed_deletes_succeeded_pods_and_keeps_the_failed_one_s_logs(
        cluster: Cluster, workflow_namespace: str):
    apply_manifest(cluster, workflow_namespace, {
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow", "metadata": {"name": "tidy"},
        "spec": {"podRetention": "KeepFailed", "failurePolicy": "Continue", "tasks": [
            {"name": "ok", "image": "busybox:1.36", "command": ["sh", "-c"], "args": ["echo 7 > /ferry/outputs/count"],
             "outputs": [{"name": "count", "kind": "value"}]},
            {"name": "bad", "image": "busybox:1.36", "command": ["sh", "-c"],
             "args": ["echo the disk was full; exit 3"]}]}})
    workflow = wait_for_phase(cluster, workflow_namespace, "tidy", timeout=120)
    assert workflow["status"]["phase"] == "Failed", workflow["status"]
    assert workflow["status"]["tasks"]["ok"]["outputs"]["count"]["value"] == 7  # recorded before its pod went
    eventually(lambda: [p.metadata.name for p in workflow_pods(cluster, workflow_namespace, "tidy")] == ["tidy-bad-1"],
               60, what="only the failed task's pod to remain")
    logs = cluster.kubectl("logs", "tidy-bad-1", "-c", "main", "-n", workflow_namespace).stdout
    assert "the disk was full" in logs
    assert get_workflow(cluster, workflow_namespace, "tidy")["status"]["phase"] == "Failed"  # no TTL: it stays
