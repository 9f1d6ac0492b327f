import json
import re

import pytest

from ferry.api import items, resource, taskpod
from ferry_operator import pods
from ferry_operator.config import Config

from tests.runtime.api.test_dag import spec, task

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
    assert fetch["envFrom"] == publish["envFrom"] == [], "only ferry-credentials holds the Secret's keys"
    issuer = pod["spec"]["initContainers"][0]
    assert issuer["name"] == "ferry-credentials" and issuer["envFrom"] == [{"secretRef": {"name": "creds"}}]
    assert env(fetch)["FERRY_S3_CREDENTIALS_FILE"] == env(publish)["FERRY_S3_CREDENTIALS_FILE"] == \
        "/ferry/credentials/s3.json"
    plan = taskpod.PodPlan.model_validate_json(env(fetch)[taskpod.PLAN_ENV])
    assert plan.inputs["raw"].kind == resource.Kind.DIRECTORY
    assert plan.output_prefix == "s3://bucket/ferry/ns/uid-1/a/1"
    assert pod["spec"]["automountServiceAccountToken"] is False


def test_values_ride_in_the_plan_and_upstream_references_become_fetches():
    wf = spec(task("up", outputs=("out",)),
              {"name": "a", "image": "x", "inputs": [
                  {"name": "n", "value": {"k": [1, 2]}}, {"name": "s", "value": "text"},
                  {"name": "f", "fromTask": {"task": "up", "output": "out"}}]})
    status = resource.WorkflowStatus(tasks={"up": resource.TaskStatus(phase=resource.Phase.SUCCEEDED, outputs={
        "out": resource.Output(kind=resource.Kind.FILE, uri="s3://b/up/out", sha256="0" * 64)})})
    pod = build(wf, status)
    main_env = env(containers(pod)["main"])
    assert main_env["FERRY_INPUT_N"] == "/ferry/inputs/n" and main_env["FERRY_INPUT_S"] == "/ferry/inputs/s", \
        "a value's variable is its file's path, as a stored input's"
    assert main_env["FERRY_ATTEMPT"] == "1"
    plan = taskpod.PodPlan.model_validate_json(env(containers(pod)["ferry-fetch"])[taskpod.PLAN_ENV])
    assert plan.inputs["f"].uri == "s3://b/up/out" and plan.inputs["f"].sha256 == "0" * 64
    assert plan.values == {"n": {"k": [1, 2]}, "s": "text"}, "ferry-fetch writes them to /ferry/inputs"


def test_a_container_task_with_only_values_gets_them_as_files():
    """No store to read from, so no credentials to issue; but ferry-fetch writes each value's file."""
    pod = build(spec({"name": "a", "image": "x", "inputs": [{"name": "greeting", "value": "hi"}]}))
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["ferry-fetch"]
    plan = taskpod.PodPlan.model_validate_json(env(containers(pod)["ferry-fetch"])[taskpod.PLAN_ENV])
    assert plan.values == {"greeting": "hi"}
    assert env(containers(pod)["main"])["FERRY_INPUT_GREETING"] == "/ferry/inputs/greeting"


def test_a_python_task_gets_its_inputs_as_arguments_not_variables():
    """Its pod fetches nothing to /ferry/inputs: a variable would name a file that is not there."""
    pod = build(spec({"name": "a", "function": "pkg.mod:fn", "inputs": [{"name": "n", "value": 3}]}))
    by_name = containers(pod)
    assert "ferry-fetch" not in by_name
    assert not [name for name in env(by_name["main"]) if name.startswith("FERRY_INPUT_")]
    assert taskpod.PodPlan.model_validate_json(env(by_name["main"])[taskpod.PLAN_ENV]).values == {"n": 3}


def test_python_style_names_reach_the_container_as_variables_and_paths():
    wf = spec(task("count", outputs=("row_count",)),
              {"name": "a", "image": "x", "inputs": [
                  {"name": "max_rows", "value": 10},
                  {"name": "rows-in", "fromTask": {"task": "count", "output": "row_count"}},
                  {"name": "Label", "value": "weekly"}], "outputs": [{"name": "row_count"}]})
    status = resource.WorkflowStatus(tasks={"count": resource.TaskStatus(phase=resource.Phase.SUCCEEDED, outputs={
        "row_count": resource.Output(kind=resource.Kind.FILE, uri="s3://b/count/row_count", sha256="0" * 64)})})
    by_name = containers(build(wf, status))
    main_env = env(by_name["main"])
    assert main_env["FERRY_INPUT_MAX_ROWS"] == "/ferry/inputs/max_rows" and main_env["FERRY_INPUT_LABEL"] == "/ferry/inputs/Label"
    assert main_env["FERRY_INPUT_ROWS_IN"] == "/ferry/inputs/rows-in"
    plan = taskpod.PodPlan.model_validate_json(env(by_name["ferry-fetch"])[taskpod.PLAN_ENV])
    assert plan.inputs["rows-in"].uri == "s3://b/count/row_count" and plan.values["max_rows"] == 10
    assert [o.name for o in plan.outputs] == ["row_count"], "published from /ferry/outputs/row_count"
    assert by_name["main"]["name"] == "main" and build(wf, status)["metadata"]["name"] == "wf-a-1"


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


def test_a_workflow_owns_only_its_own_pods_not_a_same_named_older_ones():
    listed = [{"metadata": {"name": "wf-a-1", "ownerReferences": [{"uid": "old"}]}},
              {"metadata": {"name": "wf-a-2", "ownerReferences": [{"uid": "live"}]}}]
    assert pods.owned(listed, "live") == {"wf-a-2": listed[1]}


def test_the_operator_keeps_in_memory_only_pods_it_will_read_again():
    pod = build(spec(task("a")))
    pod["metadata"].update(uid="u1", creationTimestamp="2026-12-02T00:00:00Z", resourceVersion="7")
    pod["status"] = {"phase": "Running", "containerStatuses": [{"name": "main", "ready": True}]}
    assert pods.owner_name(pod) == "wf"
    kept = pods.summary(pod)
    assert kept["status"] == pod["status"] and "spec" not in kept  # the spec is most of a pod, and never read
    assert set(kept["metadata"]) == {"name", "uid", "ownerReferences", "finalizers", "creationTimestamp", "labels"}
    assert kept["metadata"]["labels"] == {pods.LABEL_TASK: "a", pods.LABEL_ATTEMPT: "1"}, "what the pod is, no more"
    assert pods.owned([kept], pod["metadata"]["ownerReferences"][0]["uid"]) == {pod["metadata"]["name"]: kept}
    assert pods.release_patch(kept) == pods.release_patch(pod)
    finished = {**pod, "status": {"phase": "Succeeded"}}
    assert pods.summary(finished) is not None  # held: its end is not recorded yet
    released = {**finished, "metadata": {**pod["metadata"], "finalizers": []}}
    assert pods.summary(released) is None  # recorded and let go: nothing reads it again
    going = {**released, "metadata": {**released["metadata"], "deletionTimestamp": "2026-12-02T00:01:00Z"}}
    assert pods.summary(going) is not None  # a same-named newer workflow waits for it to go
    assert pods.owner_name({"metadata": {"ownerReferences": [{"kind": "ReplicaSet", "name": "x"}]}}) is None


def test_ferry_containers_are_unprivileged_and_read_what_the_task_wrote():
    wf = spec({"name": "a", "image": "x", "inputs": [{"name": "raw", "uri": "s3://bucket/in/"}],
               "outputs": [{"name": "out"}]})
    pod = build(wf)
    fetch, publish = containers(pod)["ferry-fetch"], containers(pod)["ferry-publish"]
    for container in (fetch, publish):
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"]["drop"] == ["ALL"] and container["resources"]["limits"]["memory"] == "1Gi"
        assert {"name": "ferry-tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert fetch["securityContext"]["runAsUser"] == pods.RUNTIME_USER and fetch["securityContext"]["runAsNonRoot"]
    # The task runs as its image's user, unknown here: only root with DAC_OVERRIDE reads its 0600 files.
    assert publish["securityContext"]["runAsUser"] == 0 and publish["securityContext"]["capabilities"]["add"] == [
        "DAC_OVERRIDE"]
    assert "securityContext" not in containers(pod)["main"]
    assert pod["spec"]["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}


def test_with_the_task_s_user_every_container_fits_pod_security_restricted():
    restricted = {"runAsUser": 1000, "runAsGroup": 3000, "runAsNonRoot": True, "allowPrivilegeEscalation": False,
                  "capabilities": {"drop": ["ALL"]}}
    pod = build(spec({"name": "a", "image": "x", "outputs": [{"name": "out"}], "securityContext": restricted}))
    for name, container in containers(pod).items():
        sc = container["securityContext"]
        assert (sc["runAsUser"], sc["runAsGroup"], sc["runAsNonRoot"]) == (1000, 3000, True), name
        assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}, name
    assert containers(pod)["main"]["securityContext"] == restricted


def test_a_long_workflow_name_makes_valid_distinct_labels():
    """A Workflow name may have 253 characters; a label value at most 63 (it went in verbatim, so the
    pod was refused on every tick and the workflow never ran)."""
    long_a, long_b = "a" * 60 + ".example-" + "x" * 40, "a" * 60 + ".example-" + "y" * 40
    labels = {resource.label_value(name) for name in (long_a, long_b)}
    assert len(labels) == 2 and all(len(v) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9_.]*[a-z0-9])?", v)
                                    for v in labels)
    assert resource.label_value("short") == "short"
    pod = pods.build_pod({"metadata": {"name": long_a, "namespace": "ns", "uid": "u"}},
                         spec(task("a")), resource.WorkflowStatus(), "a", 1, CONFIG)
    assert pod["metadata"]["labels"][pods.LABEL_WORKFLOW] == resource.label_value(long_a)
    assert len(pod["metadata"]["name"]) <= 63


def test_a_task_pod_is_held_until_the_operator_has_read_it():
    """A pod that vanishes (evicted, node reclaimed) after publishing but before the operator read its
    termination message would lose the published work (argo#8409): a finalizer keeps it."""
    pod = build(spec(task("a")))
    assert pod["metadata"]["finalizers"] == [pods.RESULT_FINALIZER]
    assert pods.release_patch(pod) == [{"op": "test", "path": "/metadata/finalizers/0", "value": pods.RESULT_FINALIZER},
                                       {"op": "remove", "path": "/metadata/finalizers/0"}]
    kept = {"metadata": {"finalizers": ["other.example/keep", pods.RESULT_FINALIZER]}}
    assert pods.release_patch(kept)[1] == {"op": "remove", "path": "/metadata/finalizers/1"}
    assert pods.release_patch({"metadata": {}}) is None


def test_a_python_task_never_gets_the_storage_keys():
    """Its container runs the user's code: it reads scoped credentials from the in-memory volume."""
    pod = build(spec({"name": "a", "function": "pkg.mod:fn", "outputs": [{"name": "out"}]}))
    by_name = containers(pod)
    assert list(by_name) == ["ferry-credentials", "main"]
    main = by_name["main"]
    assert main["envFrom"] == [] and env(main)["FERRY_S3_CREDENTIALS_FILE"] == "/ferry/credentials/s3.json"
    assert {"name": "ferry-credentials", "mountPath": "/ferry/credentials", "readOnly": True} in main["volumeMounts"]
    assert {"name": "ferry-credentials", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}} in pod["spec"]["volumes"]
    issuer = by_name["ferry-credentials"]
    assert issuer["restartPolicy"] == "Always"
    assert issuer["startupProbe"]["exec"]["command"] == ["test", "-e", "/ferry/credentials/s3.json"]
    assert {"name": "ferry-credentials", "mountPath": "/ferry/credentials", "readOnly": False} in issuer["volumeMounts"]


def test_without_scoped_credentials_ferry_s_containers_hold_the_keys():
    """For stores without STS, or IRSA: the old way, said in docs/security.md."""
    config = CONFIG.model_copy(update={"scoped_credentials": False})
    for task_ in ({"name": "a", "function": "pkg.mod:fn"}, {"name": "a", "image": "x", "outputs": [{"name": "o"}]}):
        pod = pods.build_pod(WORKFLOW, spec(task_), resource.WorkflowStatus(), "a", 1, config)
        ferry_containers = [c for c in containers(pod).values() if c["name"] != "main" or "function" in task_]
        assert "ferry-credentials" not in containers(pod)
        assert all(c["envFrom"] == [{"secretRef": {"name": "creds"}}] for c in ferry_containers)
        assert all("FERRY_S3_CREDENTIALS_FILE" not in env(c) for c in ferry_containers)


def test_a_namespace_can_have_its_own_folder_and_keys():
    config = Config.model_validate({**CONFIG.model_dump(), "namespaces": {"ns": {"raw_data_prefix": "s3://team-bucket/data",
                                                             "storage_secret": "team-keys"}}})
    pod = pods.build_pod(WORKFLOW, spec({"name": "a", "image": "x", "outputs": [{"name": "o"}]}),
                         resource.WorkflowStatus(), "a", 1, config)
    by_name = containers(pod)
    assert by_name["ferry-credentials"]["envFrom"] == [{"secretRef": {"name": "team-keys"}}]
    assert env(by_name["ferry-publish"])["FERRY_RAW_DATA_PREFIX"] == "s3://team-bucket/data"
    plan = taskpod.PodPlan.model_validate_json(env(by_name["ferry-publish"])[taskpod.PLAN_ENV])
    assert plan.output_prefix == "s3://team-bucket/data/uid-1/a/1"
    other = pods.build_pod({"metadata": {**WORKFLOW["metadata"], "namespace": "other"}},
                           spec({"name": "a", "image": "x", "outputs": [{"name": "o"}]}), resource.WorkflowStatus(),
                           "a", 1, config)
    assert env(containers(other)["ferry-publish"])["FERRY_RAW_DATA_PREFIX"] == "s3://bucket/ferry/other"


PLACEMENT = {
    "nodeSelector": {"pool": "gpu"},
    "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}},
    "imagePullSecrets": ["registry-keys"],
    "volumes": [{"name": "models", "persistentVolumeClaim": {"claimName": "models", "readOnly": True}}],
    "volumeMounts": [{"name": "models", "mountPath": "/models", "readOnly": True}],
    "scratchSizeLimit": "2Gi",
}


def test_placement_volumes_and_pull_secrets_reach_the_pod():
    pod = build(spec({"name": "a", "image": "registry.example/x:1", "outputs": [{"name": "out"}], **PLACEMENT}))
    assert pod["spec"]["nodeSelector"] == {"pool": "gpu"}
    assert pod["spec"]["tolerations"] == PLACEMENT["tolerations"] and pod["spec"]["affinity"] == PLACEMENT["affinity"]
    assert pod["spec"]["imagePullSecrets"] == [{"name": "registry-keys"}]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["models"] == PLACEMENT["volumes"][0]
    by_name = containers(pod)
    assert {"name": "models", "mountPath": "/models", "readOnly": True} in by_name["main"]["volumeMounts"]
    assert all(m["name"] != "models" for m in by_name["ferry-publish"]["volumeMounts"])  # the task's alone
    for scratch in ("ferry-inputs", "ferry-outputs", "ferry-tmp"):
        assert volumes[scratch] == {"name": scratch, "emptyDir": {"sizeLimit": "2Gi"}}


def test_a_pod_without_placement_has_none_of_it():
    pod = build(spec({"name": "a", "image": "x", "outputs": [{"name": "out"}]}))
    assert not {"nodeSelector", "tolerations", "affinity", "imagePullSecrets"} & set(pod["spec"])
    assert {v["name"]: v for v in pod["spec"]["volumes"]}["ferry-tmp"] == {"name": "ferry-tmp", "emptyDir": {}}


@pytest.mark.parametrize("change, message", [
    ({"volumes": [{"name": "ferry-inputs", "emptyDir": {}}]}, r"volumes.*'ferry-inputs' is reserved"),
    ({"volumes": [{"emptyDir": {}}]}, r"volumes.*needs a name"),
    ({"volumeMounts": [{"name": "models", "mountPath": "/ferry/inputs/x"}]}, r"volumeMounts.*under /ferry"),
    ({"volumeMounts": [{"name": "nowhere", "mountPath": "/data"}]}, r"volumeMounts.*no volume named 'nowhere'"),
    ({"tolerations": [{"key": "gpu", "operator": "Sometimes"}]}, r"tolerations.*'Exists' or 'Equal'"),
    ({"scratchSizeLimit": "lots"}, r"scratchSizeLimit.*quantity"),
])
def test_unsafe_or_broken_pod_settings_are_refused_naming_the_field(change, message):
    with pytest.raises(ValueError, match="(?s)" + message):
        spec({"name": "a", "image": "x", **{**PLACEMENT, **change}})


def test_a_cleanup_pod_runs_ferry_alone_with_the_namespace_s_keys_and_its_plan():
    workflow = {"metadata": {"name": "etl", "namespace": "team", "uid": "u-1"}}
    plan = {"root": "s3://bucket/ferry/team", "folder": "s3://bucket/ferry/team/u-1/", "kept": [], "blobs": []}
    pod = pods.build_cleanup_pod(workflow, plan, CONFIG)
    (container,) = pod["spec"]["containers"]
    assert pod["metadata"]["name"] == pods.cleanup_pod_name("etl") == "etl-cleanup-0", "attempt 0: no task's pod"
    assert pod["metadata"]["ownerReferences"][0]["uid"] == "u-1" and pod["metadata"]["finalizers"] == [pods.RESULT_FINALIZER]
    assert container["args"] == ["pod", "cleanup"] and container["image"] == "ferry:1"
    assert json.loads(env(container)["FERRY_CLEANUP_PLAN"]) == plan
    assert env(container)["FERRY_RAW_DATA_PREFIX"] == "s3://bucket/ferry/team"
    assert container["envFrom"] == [{"secretRef": {"name": "creds"}}]
    assert container["securityContext"]["runAsNonRoot"] and pod["spec"]["automountServiceAccountToken"] is False


# -- the builders build_pod is made of, one per container ------------------------------------------

def plan_of(wf: resource.WorkflowSpec, name: str = "a") -> taskpod.PodPlan:
    return taskpod.build_plan(wf, resource.WorkflowStatus(), name, 1, workflow="wf", namespace="ns",
                              execution_id="uid-1", root="s3://bucket/ferry/ns")


def test_the_runtime_s_settings_give_the_secret_to_the_credentials_sidecar_alone_when_scoped():
    wf = spec({"name": "a", "image": "x", "outputs": [{"name": "o"}]})
    scoped = pods.runtime_of(plan_of(wf), "ns", CONFIG)
    assert scoped.scoped and scoped.secret_env == [{"secretRef": {"name": "creds"}}]
    assert {e["name"]: e["value"] for e in scoped.env}["FERRY_S3_CREDENTIALS_FILE"] == "/ferry/credentials/s3.json"
    task_ = wf.tasks[0]
    assert pods.publish_container(task_, scoped)["envFrom"] == []
    assert pods.credentials_container(task_, scoped)["envFrom"] == scoped.secret_env
    unscoped = pods.runtime_of(plan_of(wf), "ns", CONFIG.model_copy(update={"scoped_credentials": False}))
    assert not unscoped.scoped and "FERRY_S3_CREDENTIALS_FILE" not in {e["name"] for e in unscoped.env}
    assert pods.publish_container(task_, unscoped)["envFrom"] == unscoped.secret_env
    irsa = pods.runtime_of(plan_of(wf), "ns", Config(raw_data_prefix="s3://bucket/ferry"))
    assert irsa.secret_env == [] and not irsa.scoped


@pytest.mark.parametrize("task_, expected", [
    ({"name": "a", "image": "x"}, []),
    ({"name": "a", "image": "x", "inputs": [{"name": "i", "uri": "s3://bucket/in"}]}, ["ferry-credentials", "ferry-fetch"]),
    ({"name": "a", "image": "x", "inputs": [{"name": "v", "value": 1}]}, ["ferry-fetch"]),  # its file; no store, no keys
    ({"name": "a", "image": "x", "outputs": [{"name": "o"}]}, ["ferry-credentials", "ferry-publish"]),
    ({"name": "a", "function": "m:f", "inputs": [{"name": "i", "uri": "s3://bucket/in"}], "outputs": [{"name": "o"}]},
     ["ferry-credentials"]),
    ({"name": "a", "plugin": {"type": "sensor"}}, ["ferry-credentials"]),
])
def test_ferry_s_containers_are_those_the_task_needs_credentials_first(task_, expected):
    wf = spec(task_)
    runtime = pods.runtime_of(plan_of(wf), "ns", CONFIG)
    assert [c["name"] for c in pods.init_containers(wf.tasks[0], plan_of(wf), runtime)] == expected


def test_the_task_container_of_a_python_task_is_ferry_s_runtime_as_the_task_s_user():
    wf = spec({"name": "a", "function": "m:f", "image": "team/py:3", "securityContext": {"runAsUser": 1000},
               "resources": {"limits": {"memory": "2Gi"}}})
    runtime = pods.runtime_of(plan_of(wf), "ns", CONFIG)
    main = pods.task_container(wf.tasks[0], plan_of(wf), runtime)
    assert (main["image"], main["args"], main["resources"]) == ("team/py:3", ["pod", "run-function"],
                                                               {"limits": {"memory": "2Gi"}})
    assert main["env"][:len(runtime.env)] == runtime.env and main["envFrom"] == []
    assert main["securityContext"]["runAsUser"] == 1000 and main["securityContext"]["readOnlyRootFilesystem"]
    container = pods.task_container(spec({"name": "a", "image": "x", "args": ["go"]}).tasks[0], plan_of(wf), runtime)
    assert container["args"] == ["go"] and not {"envFrom", "command", "securityContext", "resources"} & set(container)


def test_scratch_volumes_take_the_task_s_size_limit_but_the_runtime_s_own():
    task_ = spec({"name": "a", "image": "x", "scratchSizeLimit": "1Gi", "secrets": ["db"]}).tasks[0]
    found = {v["name"]: v for v in pods.volumes(task_, scoped=False)}
    assert found["ferry-inputs"]["emptyDir"] == found["ferry-tmp"]["emptyDir"] == {"sizeLimit": "1Gi"}
    assert found["ferry-runtime"]["emptyDir"] == {} and "ferry-credentials" not in found
    assert found["secret-0"] == {"name": "secret-0", "secret": {"secretName": "db"}}
    assert pods.volumes(task_, scoped=True)[4]["emptyDir"] == {"medium": "Memory", "sizeLimit": "1Mi"}


# -- a map's pods: its split, its item units and its gather ------------------------------------------

INDEX = resource.StoredResult(uri="s3://bucket/ferry/ns/uid-1/m/split/1/index.json", sha256="3" * 64, size=120)


MAP = {"over": {"uri": "s3://bucket/in/", "kind": "directory"}}


def map_spec(**extra) -> resource.WorkflowSpec:
    return spec({"name": "m", "inputs": [{"name": "path", "fromItem": True}, {"name": "n", "value": 3}],
                 "outputs": [{"name": "out"}], "map": MAP, "secrets": ["db"],
                 "volumes": EVERYTHING_VOLUMES, "volumeMounts": [{"name": "models", "mountPath": "/models"}],
                 "nodeSelector": {"pool": "batch"}, **extra})


EVERYTHING_VOLUMES = [{"name": "models", "persistentVolumeClaim": {"claimName": "models"}}]


def map_status(stage="Items") -> resource.WorkflowStatus:
    return resource.WorkflowStatus(tasks={"m": resource.TaskStatus(phase=resource.Phase.RUNNING, map=resource.MapStatus(
        stage=stage, items=40, units=40, index=INDEX if stage != "Split" else None, attempts=1,
        record=items.Record(40).encode() if stage != "Split" else None))})


def build_unit(wf, role, attempt=1, index=None, config=CONFIG, stage=None) -> dict:
    from ferry.api import scheduler
    unit = scheduler.Unit("m", role, attempt, index, scheduler.unit_name("wf", "m", role, attempt, index))
    status = map_status(stage or {"split": "Split", "item": "Items", "gather": "Gather"}[role])
    return pods.build_unit_pod(WORKFLOW, wf, status, unit, config)


@pytest.mark.parametrize("role", ["split", "gather"])
def test_a_map_s_split_and_gather_run_ferry_s_runtime_alone_beside_the_credentials_sidecar(role):
    for wf in (map_spec(image="alpine:3", command=["process"]), map_spec(function="pkg.mod:process")):
        pod = build_unit(wf, role, attempt=2)
        labels = pod["metadata"]["labels"]
        assert pod["metadata"]["name"] == f"wf-m-{role}-2"
        assert labels == {pods.LABEL_WORKFLOW: "wf", pods.LABEL_TASK: "m", pods.LABEL_ATTEMPT: "2",
                          pods.LABEL_ROLE: role, "app.kubernetes.io/managed-by": "ferry"}
        assert pod["metadata"]["finalizers"] == [pods.RESULT_FINALIZER], "held until its end is recorded"
        by_name = containers(pod)
        assert list(by_name) == ["ferry-credentials", "main"], "no fetch, no publish, none of the task's"
        main = by_name["main"]
        assert (main["image"], main["args"]) == ("ferry:1", ["pod", role]), "the runtime, never the task's image"
        assert "command" not in main and main["envFrom"] == [], "the Secret's keys stay in ferry-credentials"
        plan = taskpod.PodPlan.model_validate_json(env(main)[taskpod.PLAN_ENV])
        assert plan.role == role and plan.attempt == 2 and getattr(plan, role) is not None
        assert plan.output_prefix == f"s3://bucket/ferry/ns/uid-1/m/{role}/2"
        assert env(main)["FERRY_S3_CREDENTIALS_FILE"] == "/ferry/credentials/s3.json"
        assert main["securityContext"]["readOnlyRootFilesystem"] and main["resources"] == CONFIG.runtime_resources.dump()
        names = {v["name"] for v in pod["spec"]["volumes"]}
        assert "models" not in names and not any(n.startswith("secret-") for n in names), \
            "the task's Secrets and volumes are the task's: Ferry's own pod mounts none"
        assert pod["spec"]["nodeSelector"] == {"pool": "batch"}, "it runs where the task's pods may"


def test_a_map_s_item_pod_is_the_task_s_pod_with_the_item_s_plan():
    task_pod = pods.build_pod(WORKFLOW, spec({"name": "m", "image": "alpine:3", "command": ["process"],
                                              "inputs": [{"name": "n", "value": 3}], "outputs": [{"name": "out"}]}),
                              resource.WorkflowStatus(), "m", 3, CONFIG)
    pod = build_unit(map_spec(image="alpine:3", command=["process"]), "item", attempt=3, index=17)
    assert pod["metadata"]["name"] == "wf-m-17-3"
    assert pod["metadata"]["labels"] == {**task_pod["metadata"]["labels"], pods.LABEL_ROLE: "item",
                                         pods.LABEL_UNIT: "17"}
    by_name = containers(pod)
    assert list(by_name) == ["ferry-credentials", "ferry-fetch", "ferry-publish", "main"]
    assert (by_name["main"]["image"], by_name["main"]["command"]) == ("alpine:3", ["process"])
    assert env(by_name["main"])["FERRY_INPUT_N"] == "/ferry/inputs/n"
    plan = taskpod.PodPlan.model_validate_json(env(by_name["ferry-fetch"])[taskpod.PLAN_ENV])
    assert plan.role == "item" and plan.item.first == 17 and plan.item.index == INDEX and plan.item.input == "path"
    assert plan.output_prefix == "s3://bucket/ferry/ns/uid-1/m/items/17/3"
    assert {v["name"] for v in pod["spec"]["volumes"]} >= {"models", "secret-0"}, "the task's own, as its pods"


def test_an_item_pod_of_a_container_task_without_outputs_still_fetches_its_item_and_stores_its_result():
    pod = build_unit(map_spec(image="alpine:3", outputs=[], inputs=[{"name": "path", "fromItem": True}]), "item",
                     index=0)
    assert list(containers(pod)) == ["ferry-credentials", "ferry-fetch", "ferry-publish", "main"]


def test_an_item_pod_of_a_python_task_runs_the_function_on_its_item():
    pod = build_unit(map_spec(function="pkg.mod:process"), "item", index=4)
    by_name = containers(pod)
    assert list(by_name) == ["ferry-credentials", "main"]
    assert by_name["main"]["args"] == ["pod", "run-function"]
    assert taskpod.PodPlan.model_validate_json(env(by_name["main"])[taskpod.PLAN_ENV]).item.first == 4


def map_pod(role: str, attempt: int, unit: int | None = None, task_name: str = "m") -> dict:
    labels = {pods.LABEL_TASK: task_name, pods.LABEL_ATTEMPT: str(attempt), pods.LABEL_ROLE: role,
              **({pods.LABEL_UNIT: str(unit)} if unit is not None else {})}
    return {"metadata": {"name": f"{role}-{unit}-{attempt}", "labels": labels, "finalizers": [pods.RESULT_FINALIZER]}}


def test_a_map_s_pods_are_released_once_the_record_says_their_attempt_ended():
    from ferry.api import items

    record = items.Record(4)
    record.set(0, resource.Phase.SUCCEEDED, 1)
    record.set(1, resource.Phase.RUNNING, 2)  # its attempt 1 failed, attempt 2 runs
    record.set(2, resource.Phase.RUNNING, 1)
    status = map_status()
    status.tasks["m"].map.record, status.tasks["m"].map.units = record.encode(), 4
    status.tasks["other"] = resource.TaskStatus(phase=resource.Phase.RUNNING, pod_name="wf-other-1")
    owned = {pod["metadata"]["name"]: pod for pod in [
        map_pod("item", 1, 0), map_pod("item", 1, 1), map_pod("item", 2, 1), map_pod("item", 1, 2),
        map_pod("split", 1)]}
    owned["wf-other-1"] = {"metadata": {"name": "wf-other-1", "finalizers": [pods.RESULT_FINALIZER]}}
    released = {pod["metadata"]["name"] for pod in pods.releasable(owned, status)}
    assert released == {"item-0-1", "item-1-1", "split-None-1"}, "running attempts are held, ended ones let go"

    status.tasks["m"].map.stage, status.tasks["m"].map.attempts = "Gather", 1
    owned["gather-None-1"] = map_pod("gather", 1)
    assert "gather-None-1" not in {p["metadata"]["name"] for p in pods.releasable(owned, status)}
    assert {p["metadata"]["name"] for p in pods.releasable(owned, status)} >= {"item-1-2", "item-2-1"}
    status.tasks["m"].phase = resource.Phase.SUCCEEDED
    assert "gather-None-1" in {p["metadata"]["name"] for p in pods.releasable(owned, status)}


def test_an_item_pod_whose_record_cannot_be_read_is_held_rather_than_its_result_lost():
    status = map_status()
    status.tasks["m"].map.record = "not a record"
    assert pods.releasable({"item-0-1": map_pod("item", 1, 0)}, status) == []
    for label in ("../../x", "-1", "1" * 40, "٣"):  # anyone who may create pods may label one
        hostile = map_pod("item", 1, 0)
        hostile["metadata"]["labels"][pods.LABEL_UNIT] = label
        status = map_status()
        status.tasks["m"].map.record = items_record_running(40)
        assert pods.releasable({"x": hostile}, status) == [hostile], label


def items_record_running(units: int) -> str:
    from ferry.api import items

    record = items.Record(units)
    for unit in range(units):
        record.set(unit, resource.Phase.RUNNING, 1)
    return record.encode()


def test_a_map_unit_is_known_again_from_its_pod_s_name():
    from ferry.api import scheduler

    long = "w" * 60
    for workflow in ("wf", long):
        for role, index in (("split", None), ("item", 0), ("item", 99_999), ("gather", None)):
            name = scheduler.unit_name(workflow, "my-map", role, 7, index)
            assert pods.unit_of(workflow, "my-map", name) == scheduler.Unit("my-map", role, 7, index, name)
    for hostile in ("wf-my-map-1", "wf-other-3-1", "wf-my-map-x-1", "wf-my-map-3-", "wf-my-map-٣-1", "", "-"):
        assert pods.unit_of("wf", "my-map", hostile) is None, hostile


def test_a_stopped_map_s_pods_that_still_run_are_strays():
    status = map_status()
    running, ended = map_pod("item", 1, 3), map_pod("item", 1, 4)
    running["status"], ended["status"] = {"phase": "Running"}, {"phase": "Succeeded"}
    owned = {"r": running, "e": ended, "t": {"metadata": {"name": "t"}, "status": {"phase": "Running"}}}
    assert pods.strays(owned, status) == [], "a running map's pods are its own to stop"
    status.tasks["m"].phase = resource.Phase.FAILED
    assert pods.strays(owned, status) == ["r"]


def test_keep_failed_deletes_the_pods_of_a_map_s_succeeded_attempts_only():
    from ferry.api import items

    record = items.Record(3)
    record.set(0, resource.Phase.SUCCEEDED, 2)
    record.set(1, resource.Phase.FAILED, 1)
    status = map_status()
    status.tasks["m"].map.record, status.tasks["m"].map.units = record.encode(), 3
    split = map_pod("split", 1)
    split["status"] = {"phase": "Succeeded"}
    owned = {"a1": map_pod("item", 1, 0), "a2": map_pod("item", 2, 0), "b1": map_pod("item", 1, 1), "s": split,
             "g": map_pod("gather", 1)}
    assert pods.succeeded_units(owned, status) == {"a2", "s"}, "unit 0's first attempt failed, unit 1 failed"
    status.tasks["m"].phase, status.tasks["m"].map.stage = resource.Phase.SUCCEEDED, "Gather"
    assert pods.succeeded_units(owned, status) == {"a2", "s", "g"}


def test_keep_failed_deletes_an_item_pod_that_ended_well_as_its_map_failed():
    """Seen on the real node: a map failing at its second failed item skips the units still
    recorded running, one of whose pods had just ended well; KeepFailed kept that pod as if failed."""
    from ferry.api import items

    record = items.Record(3)
    record.set(0, resource.Phase.FAILED, 1)
    record.set(1, resource.Phase.SKIPPED, 1)
    record.set(2, resource.Phase.SKIPPED, 1)
    status = map_status()
    status.tasks["m"].phase = resource.Phase.FAILED
    status.tasks["m"].map.record, status.tasks["m"].map.units = record.encode(), 3
    failed, ended, stopped = map_pod("item", 1, 0), map_pod("item", 1, 1), map_pod("item", 1, 2)
    failed["status"], ended["status"], stopped["status"] = {"phase": "Failed"}, {"phase": "Succeeded"}, {"phase": "Failed"}
    assert pods.succeeded_units({"f": failed, "e": ended, "s": stopped}, status) == {"e"}
