"""``pods.build_pod`` against pods recorded from it (``data/build_pod.json``), for a spread of tasks
and settings: the builders it is made of may be rearranged, the pods they make may not change
unseen. After a change meant to alter them: ``python -m tests.operator.test_pods_golden``, and
read the fixture's diff."""

from __future__ import annotations

import json
import pathlib

import pytest

from ferry.api import resource
from ferry_operator import pods
from ferry_operator.config import Config

GOLDEN = pathlib.Path(__file__).parent / "data" / "build_pod.json"
SCOPED = Config(raw_data_prefix="s3://bucket/ferry", runtime_image="ferry:1", storage_secret="creds",
                storage_env={"AWS_REGION": "eu-west-1", "FERRY_S3_ADDRESSING_STYLE": "path"})
CONFIGS = {
    "scoped": SCOPED,
    "unscoped": SCOPED.model_copy(update={"scoped_credentials": False}),
    "irsa": Config(raw_data_prefix="s3://bucket/ferry", runtime_image="ferry:1"),
    "namespaces": Config.model_validate({
        **SCOPED.model_dump(), "task_service_account": "ferry-task", "upload_grace_seconds": 42,
        "runtime_resources": {"requests": {"cpu": "10m"}}, "namespaces": {"ns": {
            "raw_data_prefix": "s3://team-bucket/data", "storage_secret": "team-keys"}}}),
    "local-store": Config(raw_data_prefix="file:///data/ferry", runtime_image="ferry:1", storage_secret="creds"),
}
UP = {"name": "up", "image": "busybox", "outputs": [{"name": "out"}, {"name": "dir", "kind": "directory"}]}
UP_DONE = resource.WorkflowStatus(tasks={"up": resource.TaskStatus(phase=resource.Phase.SUCCEEDED, outputs={
    "out": resource.Output(kind=resource.Kind.FILE, uri="s3://bucket/ferry/ns/uid-1/up/1/out", sha256="1" * 64),
    "dir": resource.Output(kind=resource.Kind.DIRECTORY, uri="s3://bucket/ferry/ns/uid-1/up/1/dir/",
                           digest="2" * 64)})})
EVERYTHING = {
    "command": ["sh", "-c"], "args": ["cp $FERRY_INPUT_F /ferry/outputs/out"],
    "env": [{"name": "MODE", "value": "fast"}, {"name": "EMPTY"}],
    "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"nvidia.com/gpu": "1"}},
    "secrets": ["db", "tls.example.com"], "serviceAccountName": "reader",
    "retries": {"limit": 3, "backoffSeconds": 1}, "timeoutSeconds": 60,
    "nodeSelector": {"pool": "gpu"}, "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}},
    "imagePullSecrets": ["registry-keys"], "scratchSizeLimit": "2Gi",
    "volumes": [{"name": "models", "persistentVolumeClaim": {"claimName": "models", "readOnly": True}}],
    "volumeMounts": [{"name": "models", "mountPath": "/models", "readOnly": True}],
}
INPUTS = [{"name": "raw", "uri": "s3://bucket/in/"}, {"name": "f", "fromTask": {"task": "up", "output": "out"}},
          {"name": "d", "fromTask": {"task": "up", "output": "dir"}}, {"name": "n", "value": {"k": [1, 2]}},
          {"name": "max_rows", "value": 10}]
USER = {"runAsUser": 1000, "runAsGroup": 3000, "runAsNonRoot": True, "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]}}
TASKS = {
    "container": {"name": "a", "image": "alpine:3", "inputs": INPUTS, "outputs": [{"name": "out"}], **EVERYTHING},
    "container-as-user": {"name": "a", "image": "alpine:3", "inputs": INPUTS[:1], "outputs": [{"name": "out"}],
                          "securityContext": USER},
    "fetch-only": {"name": "a", "image": "alpine:3", "inputs": INPUTS[:2]},
    "publish-only": {"name": "a", "image": "alpine:3", "outputs": [{"name": "out"}, {"name": "o2", "kind": "directory"}]},
    "bare": {"name": "a", "image": "alpine:3", "secrets": ["db"]},
    "function": {"name": "a", "function": "pkg.mod:fn", "inputs": INPUTS, "outputs": [{"name": "out"}],
                 "env": [{"name": "MODE", "value": "fast"}], "resources": {"limits": {"memory": "2Gi"}},
                 "secrets": ["db"], "retries": {"limit": 2}},
    "function-as-user": {"name": "a", "function": "pkg.mod:fn", "image": "team/py:3", "securityContext": USER,
                         "volumes": EVERYTHING["volumes"], "volumeMounts": EVERYTHING["volumeMounts"]},
    "plugin": {"name": "a", "plugin": {"type": "object-store-sensor", "config": {"uri": "s3://bucket/in/"}},
               "outputs": [{"name": "found"}]},
}
CASES = [  # (task, config, attempt, with a code archive)
    ("container", "scoped", 1, False), ("container", "unscoped", 4, False), ("container", "irsa", 1, False),
    ("container", "namespaces", 2, False), ("container", "local-store", 1, False),
    ("container-as-user", "scoped", 1, False), ("fetch-only", "scoped", 1, False),
    ("publish-only", "unscoped", 1, False), ("bare", "scoped", 1, False), ("bare", "irsa", 1, False),
    ("function", "scoped", 3, True), ("function", "unscoped", 1, True), ("function", "irsa", 1, False),
    ("function-as-user", "namespaces", 1, True), ("plugin", "scoped", 1, False), ("plugin", "unscoped", 2, False),
]


def case_id(case: tuple) -> str:
    task, config, attempt, code = case
    return f"{task}/{config}/attempt-{attempt}" + ("/code" if code else "")


def build(case: tuple) -> dict:
    task, config, attempt, code = case
    spec = resource.WorkflowSpec.model_validate({"tasks": [UP, TASKS[task]], **(
        {"code": "s3://bucket/ferry/code/" + "3" * 64 + ".tar.gz"} if code else {})})
    workflow = {"metadata": {"name": "wf", "namespace": "ns", "uid": "uid-1", "generation": 2}}
    return pods.build_pod(workflow, spec, UP_DONE, "a", attempt, CONFIGS[config])


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_a_task_pod_is_built_as_recorded(case):
    expected = json.loads(GOLDEN.read_text())[case_id(case)]
    assert build(case) == expected


def test_every_recorded_pod_is_checked():
    assert sorted(json.loads(GOLDEN.read_text())) == sorted(map(case_id, CASES))


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps({case_id(case): build(case) for case in CASES}, indent=1, sort_keys=True) + "\n")
