import json

import pytest

from ferry import resource, taskpod
from ferry_operator import pods
from ferry_operator.config import Config

from tests.runtime.test_dag import spec, task

CONFIG = Config(raw_data_prefix="s3://bucket/ferry", runtime_image="ferry:1", storage_secret="creds",
                storage_env={"AWS_REGION": "eu-west-1"})
WORKFLOW = {"metadata": {"name": "wf", "namespace": "ns", "uid": "uid-1"}}


def build(wf: resource.WorkflowSpec, status=None, name="a", attempt=1) -> dict:
    return pods.build_pod(WORKFLOW, wf, status or resource.WorkflowStatus(), name, attempt, CONFIG)


def containers(pod: dict) -> dict[str, dict]:
    return {c["name"]: c for c in [*pod["spec"]["initContainers"], *pod["spec"]["containers"]]}


def env(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"]}


def test_user_container_is_untouched_and_runtime_does_the_io():
    wf = spec({"name": "a", "image": "alpine:3", "command": ["run"], "args": ["x"],
               "inputs": [{"name": "raw", "uri": "s3://bucket/in/"}], "outputs": [{"name": "out"}]})
    pod = build(wf)
    assert pod["metadata"]["name"] == "wf-a-1"
    assert pod["metadata"]["ownerReferences"][0] | {} == {
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow", "name": "wf", "uid": "uid-1",
        "controller": True, "blockOwnerDeletion": True}
    by_name = containers(pod)
    main = by_name["main"]
    assert (main["image"], main["command"], main["args"]) == ("alpine:3", ["run"], ["x"])
    assert "envFrom" not in main, "storage credentials must not reach the user's container"
    assert env(main)["FERRY_INPUT_RAW"] == "/ferry/inputs/raw"
    fetch, publish = by_name["ferry-fetch"], by_name["ferry-publish"]
    assert fetch["image"] == publish["image"] == "ferry:1"
    assert publish["restartPolicy"] == "Always" and publish["startupProbe"]["exec"]
    assert fetch["envFrom"] == [{"secretRef": {"name": "creds"}}]
    plan = taskpod.PodPlan.model_validate_json(env(fetch)[taskpod.PLAN_ENV])
    assert plan.inputs["raw"].kind == resource.Kind.DIRECTORY
    assert plan.output_prefix == "s3://bucket/ferry/ns/uid-1/a/1"
    assert pod["spec"]["automountServiceAccountToken"] is False


def test_values_become_env_and_upstream_references_become_fetches():
    wf = spec(task("up", outputs=("out",)),
              {"name": "a", "image": "x", "inputs": [
                  {"name": "n", "value": {"k": [1, 2]}}, {"name": "s", "value": "text"},
                  {"name": "f", "fromTask": {"task": "up", "output": "out"}}]})
    status = resource.WorkflowStatus(tasks={"up": resource.TaskStatus(phase=resource.Phase.SUCCEEDED, outputs={
        "out": resource.Output(kind=resource.Kind.FILE, uri="s3://b/up/out", sha256="0" * 64)})})
    pod = build(wf, status)
    main_env = env(containers(pod)["main"])
    assert json.loads(main_env["FERRY_INPUT_N"]) == {"k": [1, 2]} and main_env["FERRY_INPUT_S"] == "text"
    assert main_env["FERRY_ATTEMPT"] == "1"
    plan = taskpod.PodPlan.model_validate_json(env(containers(pod)["ferry-fetch"])[taskpod.PLAN_ENV])
    assert plan.inputs["f"].uri == "s3://b/up/out" and plan.inputs["f"].sha256 == "0" * 64


def test_no_inputs_and_no_outputs_means_no_runtime_containers():
    pod = build(spec({"name": "a", "image": "x", "secrets": ["db", "tls.example.com"]}))
    assert pod["spec"]["initContainers"] == []
    assert {"name": "secret-1", "mountPath": "/ferry/secrets/tls.example.com", "readOnly": True} in \
        containers(pod)["main"]["volumeMounts"]
    assert {"name": "secret-1", "secret": {"secretName": "tls.example.com"}} in pod["spec"]["volumes"]


def test_an_unpublished_upstream_output_is_an_error():
    wf = spec(task("up"), {"name": "a", "image": "x", "inputs": [{"name": "f", "fromTask": {"task": "up", "output": "out"}}]})
    with pytest.raises(taskpod.InputError, match="up.out was not published"):
        build(wf, resource.WorkflowStatus(tasks={"up": resource.TaskStatus()}))


def listed_pod(name: str, owner_uid: str, grace: int | None = None) -> dict:
    meta = {"name": name, "ownerReferences": [{"uid": owner_uid}]}
    if grace is not None:
        meta["deletionGracePeriodSeconds"] = grace
    return {"metadata": meta}


def test_pods_no_live_workflow_owns_are_stopped_promptly():
    """A deleted workflow's pods are deleted by the garbage collector with their whole upload grace
    (600 s), which a task whose PID 1 ignores SIGTERM uses to the last second."""
    listed = [listed_pod("wf-a-1", "old"), listed_pod("wf-b-1", "old", grace=600), listed_pod("wf-c-1", "old", grace=5),
              listed_pod("wf-a-2", "live")]
    assert pods.owned(listed, "live") == {"wf-a-2": listed[3]}
    assert pods.to_stop(listed, "live") == ["wf-a-1", "wf-b-1"]
    assert pods.to_stop(listed, None) == ["wf-a-1", "wf-b-1", "wf-a-2"]
