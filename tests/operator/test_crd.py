"""The Workflow CRD: the checked-in file matches the models, the schema translation handles the
tricky cases, and the real API server accepts the CRD and refuses bad manifests with messages that
name the field."""

from __future__ import annotations

import copy
import enum
import json
import re
import secrets
from collections.abc import Iterator
from typing import Any, Literal

import pydantic
import pytest
import yaml
from kubernetes import client

from ferry.api import resource
from ferry.core import blobs, digests, records
from ferry_operator import crd
from tests.cluster.fixtures import REPO, Cluster, eventually

REGENERATE = f"regenerate it from the repository root: {crd.COMMAND} > {crd.PATH}"


# --- the checked-in file ----------------------------------------------------------------------

def test_checked_in_crd_matches_the_models():
    checked_in = (REPO / crd.PATH).read_text()
    assert yaml.safe_load(checked_in) == crd.build_crd(), f"{crd.PATH} differs from ferry.api.resource; {REGENERATE}"
    assert checked_in == crd.render(), f"{crd.PATH} is not formatted as generated; {REGENERATE}"


def walk(schema: dict, path: str = "") -> Iterator[tuple[str, dict]]:
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


def test_every_node_is_structural():
    for path, node in walk(crd.schema()):
        assert not {"$ref", "$defs", "anyOf", "allOf", "oneOf", "title"} & set(node), path
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), f"{path} has no type"
        assert node.get("default", "unset") not in (None, [], {}), path
        if node.get("type") == "object" and "properties" in node:
            assert "additionalProperties" not in node, path


def test_crd_names_columns_and_guards():
    definition = crd.build_crd()
    spec = definition["spec"]
    assert definition["metadata"]["name"] == "workflows.ferry.dev"
    assert spec["names"]["shortNames"] == ["fwf"] and spec["names"]["categories"] == ["ferry"]
    assert spec["scope"] == "Namespaced"
    version, = spec["versions"]
    assert version["subresources"] == {"status": {}}
    assert [(c["name"], c["jsonPath"]) for c in version["additionalPrinterColumns"]] == [
        ("Phase", ".status.phase"), ("Progress", ".status.progress"), ("Age", ".metadata.creationTimestamp"),
        ("Message", ".status.message")]
    root = version["schema"]["openAPIV3Schema"]
    workflow = root["properties"]["spec"]
    task = workflow["properties"]["tasks"]["items"]
    for listed in (workflow["properties"]["tasks"], workflow["properties"]["inputs"], task["properties"]["inputs"],
                   task["properties"]["outputs"], workflow["properties"]["outputs"], task["properties"]["env"]):
        assert listed["x-kubernetes-list-type"] == "map" and listed["x-kubernetes-list-map-keys"] == ["name"]
    assert task["properties"]["dependsOn"]["x-kubernetes-list-type"] == "set"
    for path, node in walk(root):
        for rule in node.get("x-kubernetes-validations", []):
            assert rule["message"], f"{path}: {rule['rule']} has no message"


def test_every_rule_runs_once_or_compares_with_before():
    """The API server evaluates every rule at every write, the operator's status writes too: a rule
    that does not need ``oldSelf`` has to stop at once on an update (what it checked is the spec,
    which cannot have changed), or each status write of a big workflow pays for it again."""
    on_create, transitions = [], []
    for path, node in walk(crd.schema()):
        for rule in node.get("x-kubernetes-validations", []):
            (on_create if rule.get("optionalOldSelf") else transitions).append((path, rule["rule"]))
    for path, rule in on_create:
        assert rule.startswith("!oldSelf.hasValue() ? (") and rule.endswith(") : true"), (path, rule)
    assert [path for path, _ in transitions] == [".spec", ".spec"], transitions
    assert all("oldSelf" in rule for _, rule in transitions)
    assert len(on_create) == 17


def test_descriptions_speak_the_manifest_s_language():
    retries = crd.schema()["properties"]["spec"]["properties"]["tasks"]["items"]["properties"]["retries"]
    assert retries["properties"]["backoffSeconds"]["description"] == (
        "Wait before the first retry; doubles each time, up to `maxBackoffSeconds`.")
    assert retries["default"] == {"limit": 0, "infrastructure": 3, "backoffSeconds": 5, "maxBackoffSeconds": 300}
    assert crd.describe("Uses ``from_task``\nand ``/ferry/outputs/<name>``.") == (
        "Uses `fromTask` and `/ferry/outputs/<name>`.")


def test_status_outputs_carry_the_checks_and_descriptions_of_the_stored_reference():
    """The API server refuses a status output whose digests a pod would refuse: the patterns, like the
    descriptions, are those of the one declaration in ``ferry.core.blobs``."""
    status = crd.schema()["properties"]["status"]["properties"]
    docs = records.docstrings(blobs.BlobRef)
    for outputs in (status["tasks"]["additionalProperties"]["properties"]["outputs"], status["outputs"]):
        output = outputs["additionalProperties"]["properties"]
        assert output["sha256"]["pattern"] == digests.SHA256
        assert output["manifestDigest"]["pattern"] == digests.MANIFEST_DIGEST
        assert output["size"]["minimum"] == output["fileCount"]["minimum"] == 0
        assert output["manifestDigest"]["description"] == crd.describe(docs["manifest_digest"])
        assert output["uri"]["description"] == crd.describe(docs["uri"])


def test_inputs_and_outputs_take_python_names_and_task_names_stay_dns_labels():
    """What ``kubectl apply`` checks of names, offline: each pattern in the CRD, by field."""
    spec = crd.schema()["properties"]["spec"]
    task = spec["properties"]["tasks"]["items"]["properties"]
    item = lambda node: node["items"]["properties"]  # noqa: E731
    io_names = {
        "spec.inputs[].name": item(spec["properties"]["inputs"])["name"],
        "spec.outputs[].name": item(spec["properties"]["outputs"])["name"],
        "spec.outputs[].fromTask.output": item(spec["properties"]["outputs"])["fromTask"]["properties"]["output"],
        "tasks[].inputs[].name": item(task["inputs"])["name"],
        "tasks[].inputs[].fromInput": item(task["inputs"])["fromInput"],
        "tasks[].inputs[].fromTask.output": item(task["inputs"])["fromTask"]["properties"]["output"],
        "tasks[].outputs[].name": item(task["outputs"])["name"],
    }
    for field, node in io_names.items():
        for name in ("row_count", "max_rows", "row-count", "o0", "N", "_x"):
            assert re.fullmatch(node["pattern"], name), f"{field} refuses {name!r}"
        for name in ("../etc", "a/b", ".", "-x", "x-", "a b", "größe"):
            assert not re.fullmatch(node["pattern"], name), f"{field} takes {name!r}"
        assert node["maxLength"] == 40
    task_names = {"tasks[].name": task["name"], "tasks[].dependsOn[]": task["dependsOn"]["items"],
                  "tasks[].inputs[].fromTask.task": item(task["inputs"])["fromTask"]["properties"]["task"]}
    for field, node in task_names.items():
        assert re.fullmatch(node["pattern"], "count-rows") and not re.fullmatch(node["pattern"], "count_rows"), field
    assert "DNS label" in task["name"]["description"] and "FERRY_INPUT_" in item(task["inputs"])["name"]["description"]


# --- schema translation -----------------------------------------------------------------------

class Colour(str, enum.Enum):
    RED = "red"
    BLUE = "blue"


class Inner(resource.Model):
    """An inner model."""

    size: int = pydantic.Field(1, ge=1, le=10)
    """How big."""


class Outer(resource.Model):
    inner: Inner
    """The field's docstring wins over the model's."""
    maybe_inner: Inner | None = None
    label: str | None = pydantic.Field(None, min_length=1, max_length=8, pattern=r"^[a-z]+$")
    anything: Any = None
    """Any JSON value."""
    colour: Colour = Colour.RED
    mode: Literal["fast"] = "fast"
    counts: dict[str, int] = {}
    extras: dict[str, Any] | None = None
    tags: list[str] = pydantic.Field([], min_length=0, max_length=5)
    unique: set[str] = set()
    ratio: float = pydantic.Field(0.5, gt=0, lt=1)


def translate(model: type[pydantic.BaseModel], overlays: dict | None = None) -> dict:
    return crd.structural(crd.json_schema(model), overlays)


def test_refs_are_inlined_with_the_referring_field_on_top():
    properties = translate(Outer)["properties"]
    assert properties["inner"] == {
        "description": "The field's docstring wins over the model's.", "properties": {
            "size": {"default": 1, "description": "How big.", "maximum": 10, "minimum": 1, "type": "integer"}},
        "type": "object"}
    assert properties["maybeInner"]["description"] == "An inner model."
    assert translate(Outer)["required"] == ["inner"]


def test_optional_is_the_type_itself_with_its_limits_and_no_null_default():
    assert translate(Outer)["properties"]["label"] == {
        "maxLength": 8, "minLength": 1, "pattern": "^[a-z]+$", "type": "string"}


def test_any_keeps_whatever_json_it_gets():
    properties = translate(Outer)["properties"]
    assert properties["anything"] == {"description": "Any JSON value.", "x-kubernetes-preserve-unknown-fields": True}
    assert properties["extras"] == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def test_dicts_lists_and_sets():
    properties = translate(Outer)["properties"]
    assert properties["counts"] == {"additionalProperties": {"type": "integer"}, "type": "object"}
    assert properties["tags"] == {"items": {"type": "string"}, "maxItems": 5, "minItems": 0, "type": "array"}
    assert properties["unique"] == {"items": {"type": "string"}, "type": "array", "x-kubernetes-list-type": "set"}


def test_enums_and_literals():
    properties = translate(Outer)["properties"]
    assert properties["colour"] == {"default": "red", "enum": ["red", "blue"], "type": "string"}
    assert properties["mode"]["enum"] == ["fast"] and properties["mode"]["type"] == "string"


def test_exclusive_bounds_use_openapi_v3_0_flags():
    assert translate(Outer)["properties"]["ratio"] == {
        "default": 0.5, "type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 1,
        "exclusiveMaximum": True}


def test_unions_and_recursion_are_refused():
    class Union(resource.Model):
        either: int | str

    class Tree(resource.Model):
        children: list[Tree] = []

    with pytest.raises(crd.SchemaError, match=r"\.either: a union of 2 types has no structural form"):
        translate(Union)
    with pytest.raises(crd.SchemaError, match="Tree refers to itself"):
        crd.structural({"type": "object", "properties": {"tree": {"$ref": "#/$defs/Tree"}},
                        "$defs": crd.json_schema(Tree)["$defs"]})


def test_overlays_add_to_a_model_and_must_match_it():
    overlays = {"Inner": {"x-kubernetes-validations": [{"rule": "self.size < 5", "message": "too big"}],
                          "properties": {"size": {"maximum": 4}}}}
    inner = translate(Outer, overlays)["properties"]["inner"]
    assert inner["x-kubernetes-validations"] == [{"rule": "self.size < 5", "message": "too big"}]
    assert inner["properties"]["size"]["maximum"] == 4
    with pytest.raises(crd.SchemaError, match="overlay for a property the model does not have: weight"):
        translate(Outer, {"Inner": {"properties": {"weight": {}}}})
    with pytest.raises(crd.SchemaError, match="overlays for schemas that the models do not use: Gone"):
        translate(Outer, {"Gone": {}})


# --- on the real API server -------------------------------------------------------------------

def make(name: str, spec: dict) -> dict:
    return {"apiVersion": resource.API_VERSION, "kind": resource.KIND, "metadata": {"name": name}, "spec": spec}


VALID = make("two-steps", {
    "inputs": [{"name": "greeting", "value": "hello"}],
    "tasks": [
        {"name": "make", "image": "busybox:1.36", "command": ["sh", "-c", "echo hi > /ferry/outputs/text"],
         "outputs": [{"name": "text"}], "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
        {"name": "show", "image": "busybox:1.36", "command": ["cat", "/ferry/inputs/text"], "dependsOn": ["make"],
         "inputs": [{"name": "text", "fromTask": {"task": "make", "output": "text"}},
                    {"name": "greeting", "fromInput": "greeting"},
                    {"name": "flag", "value": False}, {"name": "zero", "value": 0}, {"name": "empty", "value": {}}]},
    ],
    "outputs": [{"name": "text", "fromTask": {"task": "make", "output": "text"}}],
})


def edit(change) -> dict:
    manifest = copy.deepcopy(VALID)
    manifest["metadata"]["name"] = "bad"
    change(manifest["spec"])
    return manifest


def tasks(spec: dict) -> list[dict]:
    return spec["tasks"]


INVALID = {
    "duplicate task names": (lambda s: tasks(s).append(copy.deepcopy(tasks(s)[0])),
                             ['spec.tasks[2]: Duplicate value: {"name":"make"}']),
    "a task with neither image nor function": (
        lambda s: tasks(s)[0].pop("image"),
        ["spec.tasks[0]", "task make: set image (the container image to run), function"]),
    "function and command": (lambda s: tasks(s)[0].update(function="pkg.mod:main"),
                             ["spec.tasks[0]", "task make: a function or plugin task runs the Ferry runtime, "
                                               "not command"]),
    "function and plugin": (lambda s: tasks(s)[0].update(function="pkg.mod:main", plugin={"type": "x"}),
                            ["spec.tasks[0]", "task make: a task runs a function or a plugin, not both"]),
    "an input with two sources": (
        lambda s: tasks(s)[1]["inputs"][0].update(uri="s3://bucket/key"),
        ["spec.tasks[1].inputs[0]", "input text: set exactly one of value, uri, fromTask, fromInput or fromItem"]),
    "an input with a value and a uri": (  # value is any JSON, which CEL sees only through dyn(self)
        lambda s: tasks(s)[1]["inputs"][2].update(uri="s3://bucket/key"),
        ["spec.tasks[1].inputs[2]", "input flag: set exactly one of value, uri, fromTask, fromInput or fromItem"]),
    "an input without a source": (
        lambda s: tasks(s)[1]["inputs"][2].pop("value"),
        ["spec.tasks[1].inputs[2]", "input flag: set exactly one of value, uri, fromTask, fromInput or fromItem"]),
    "an item input with a value too": (
        lambda s: tasks(s)[1]["inputs"][2].update(fromItem=True),
        ["spec.tasks[1].inputs[2]", "input flag: set exactly one of value, uri, fromTask, fromInput or fromItem"]),
    "a map over two sources": (
        lambda s: tasks(s)[1].update(map={"over": {"value": [1, 2], "fromInput": "greeting"}}),
        ["spec.tasks[1].map.over", "map.over: set exactly one of value (a list), uri (a directory), fromTask"]),
    "a map's parallelism of 0": (
        lambda s: tasks(s)[1].update(map={"over": {"value": [1, 2]}, "parallelism": 0}),
        ["spec.tasks[1].map.parallelism", "should be greater than or equal to 1"]),
    "a min success ratio above 1": (
        lambda s: tasks(s)[1].update(map={"over": {"value": [1, 2]}, "minSuccessRatio": 1.5}),
        ["spec.tasks[1].map.minSuccessRatio", "should be less than or equal to 1"]),
    "an uppercase task name": (lambda s: tasks(s)[1].update(name="Show"),
                               ["spec.tasks[1].name", "should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'"]),
    "a dependency on a missing task": (
        lambda s: tasks(s)[1].update(dependsOn=["nothing"]),
        ["spec.tasks", "task show: dependsOn must list other tasks of this workflow, by name"]),
    "a dependency on itself": (
        lambda s: tasks(s)[1].update(dependsOn=["show"]),
        ["spec.tasks", "task show: dependsOn must list other tasks of this workflow, by name"]),
    "a duplicate dependency": (lambda s: tasks(s)[1].update(dependsOn=["make", "make"]),
                               ['spec.tasks[1].dependsOn[1]: Duplicate value: "make"']),
    "an input from a missing task": (
        lambda s: tasks(s)[1]["inputs"][0]["fromTask"].update(task="nothing"),
        ["spec.tasks", "task show: inputs[].fromTask.task must name another task of this workflow"]),
    "an input from a missing output": (
        lambda s: tasks(s)[1]["inputs"][0]["fromTask"].update(output="nothing"),
        ["spec.tasks", "task show: inputs[].fromTask.output must name one of that task's outputs"]),
    "an input from a missing workflow input": (
        lambda s: tasks(s)[1]["inputs"][1].update(fromInput="nothing"),
        ["spec.tasks", "task show: inputs[].fromInput must name one of the workflow's inputs"]),
    "a workflow output from a missing output": (
        lambda s: s["outputs"][0]["fromTask"].update(output="nothing"),
        ["spec.outputs", "output text takes fromTask make/nothing, which is not an output of a task"]),
    "a workflow input from a task": (
        lambda s: s["inputs"][0].update(fromTask={"task": "make", "output": "text"}),
        ["spec.inputs[0]", "input greeting: a workflow input takes value or uri"]),
    "a resource that is no quantity": (
        lambda s: tasks(s)[0]["resources"]["requests"].update(memory="lots"),
        ["spec.tasks[0].resources.requests[memory]", "requests values are quantities like 500m, 2 or 1Gi"]),
    "a retry limit out of range": (lambda s: tasks(s)[0].update(retries={"limit": 99}),
                                   ["spec.tasks[0].retries.limit", "should be less than or equal to 20"]),
    "no tasks": (lambda s: s.update(tasks=[], outputs=[]), ["spec.tasks", "should have at least 1 items"]),
    # Wrong types.
    "a retry limit that is text": (lambda s: tasks(s)[0].update(retries={"limit": "three"}),
                                   ["spec.tasks[0].retries.limit", "must be of type integer"]),
    "a timeout with a unit": (lambda s: tasks(s)[0].update(timeoutSeconds="10s"),
                              ["spec.tasks[0].timeoutSeconds", "must be of type integer"]),
    "a negative timeout": (lambda s: tasks(s)[0].update(timeoutSeconds=-1),
                           ["spec.tasks[0].timeoutSeconds", "should be greater than or equal to 1"]),
    "a command that is a string": (lambda s: tasks(s)[0].update(command="echo hi"),
                                   ["spec.tasks[0].command", "must be of type array"]),
    "env as a mapping": (lambda s: tasks(s)[0].update(env={"A": "1"}),
                         ['unknown field "spec.tasks[0].env.A"']),  # strict decoding names it first
    "tasks as a mapping": (lambda s: s.update(tasks={"make": {}}), ['unknown field "spec.tasks.make"']),
    "an empty image": (lambda s: tasks(s)[0].update(image=""), ["spec.tasks[0].image", "should be at least 1 chars"]),
    "a user id that is negative": (lambda s: tasks(s)[0].update(securityContext={"runAsUser": -1}),
                                   ["spec.tasks[0].securityContext.runAsUser", "greater than or equal to 0"]),
    # Huge values.
    "a task name over 40 characters": (lambda s: tasks(s)[0].update(name="m" * 41),
                                       ["spec.tasks[0].name", "40"]),
    "an image name over 512 characters": (lambda s: tasks(s)[0].update(image="r/" + "i" * 600),
                                          ["spec.tasks[0].image", "512"]),
    "more than 64 outputs": (lambda s: tasks(s)[0].update(outputs=[{"name": f"o{i}"} for i in range(65)]),
                             ["spec.tasks[0].outputs", "64"]),
    "more than 32 secrets": (lambda s: tasks(s)[0].update(secrets=[f"s{i}" for i in range(33)]),
                             ["spec.tasks[0].secrets", "32"]),
    "a cache version over 128 characters": (lambda s: tasks(s)[0].update(cache={"version": "v" * 129}),
                                            ["spec.tasks[0].cache.version", "128"]),
    # Names that are no names, or that would escape a folder.
    "an output name that climbs out of the outputs folder": (
        lambda s: tasks(s)[0]["outputs"][0].update(name="../../etc"),
        ["spec.tasks[0].outputs[0].name", "should match"]),
    "an input name with a slash": (lambda s: tasks(s)[1]["inputs"][0].update(name="a/b"),
                                   ["spec.tasks[1].inputs[0].name", "should match"]),
    "an input name that is a dot": (lambda s: tasks(s)[1]["inputs"][0].update(name="."),
                                    ["spec.tasks[1].inputs[0].name", "should match"]),
    "a task name with an underscore": (lambda s: tasks(s)[0].update(name="make_text"),
                                       ["spec.tasks[0].name", "should match"]),
    "an output name that starts with a dash": (lambda s: tasks(s)[0]["outputs"][0].update(name="-text"),
                                               ["spec.tasks[0].outputs[0].name", "should match"]),
    "an input name with a space": (lambda s: tasks(s)[1]["inputs"][1].update(name="a greeting"),
                                   ["spec.tasks[1].inputs[1].name", "should match"]),
    "a secret name that is no Kubernetes name": (lambda s: tasks(s)[0].update(secrets=["Bad_Secret"]),
                                                 ["spec.tasks[0].secrets[0]", "should match"]),
    "an environment variable name starting with a digit": (
        lambda s: tasks(s)[0].update(env=[{"name": "1BAD", "value": "x"}]),
        ["spec.tasks[0].env[0].name", "should match"]),
    "a function that is no module:function": (lambda s: tasks(s)[0].update(function="rm -rf /"),
                                              ["spec.tasks[0].function", "should match"]),
    # Kind mismatches.
    "an output kind that does not exist": (lambda s: tasks(s)[0]["outputs"][0].update(kind="folder"),
                                           ["spec.tasks[0].outputs[0].kind", "Unsupported value: \"folder\""]),
    "an input kind that does not exist": (lambda s: tasks(s)[1]["inputs"][0].update(kind="blob"),
                                          ["spec.tasks[1].inputs[0].kind", "Unsupported value: \"blob\""]),
    "a failure policy that does not exist": (lambda s: s.update(failurePolicy="Sometimes"),
                                             ["spec.failurePolicy", "Unsupported value: \"Sometimes\""]),
    "a negative TTL": (lambda s: s.update(ttlSecondsAfterFinished=-1),
                       ["spec.ttlSecondsAfterFinished", "greater than or equal to 0"]),
    "a pod retention that does not exist": (lambda s: s.update(podRetention="OnSuccess"),
                                            ["spec.podRetention", "Unsupported value: \"OnSuccess\""]),
    "duplicate workflow inputs": (lambda s: s["inputs"].append({"name": "greeting", "value": "again"}),
                                  ['spec.inputs[1]: Duplicate value: {"name":"greeting"}']),
    # Names that differ only as environment variables and case-blind disks cannot tell.
    "task outputs spelled alike": (
        lambda s: tasks(s)[0]["outputs"].append({"name": "TEXT"}),
        ["spec.tasks[0]", "outputs of a task must differ in more than case or - against _", "TEXT"]),
    "workflow inputs spelled alike": (
        lambda s: s["inputs"].append({"name": "Greeting", "value": "again"}),
        ["spec", "workflow inputs must differ in more than case or - against _", "GREETING"]),
    "workflow outputs spelled alike": (
        lambda s: s["outputs"].append({"name": "TEXT", "fromTask": {"task": "make", "output": "text"}}),
        ["spec", "workflow outputs must differ in more than case or - against _", "TEXT"]),
}


@pytest.fixture(scope="module")
def crd_namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace for this module's Workflows, outside the ``ferry-test-*`` namespaces that a running
    test operator serves, so nothing acts on them."""
    request.getfixturevalue("crd")  # tests/operator/fixtures.py: applies crds/, waits until Established
    name = f"ferry-crd-{secrets.token_hex(4)}"
    core = client.CoreV1Api(cluster.api_client())
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    eventually(lambda: cluster.kubectl("get", "fwf", "-n", name, check=False).returncode == 0, 30,
               what="the Workflow resource to be served")
    yield name
    core.delete_namespace(name)


def apply(cluster: Cluster, namespace: str, manifest: dict, *flags: str):
    return cluster.kubectl("apply", "-n", namespace, *flags, "-f", "-", input=json.dumps(manifest), check=False)


@pytest.mark.cluster
def test_valid_workflow_is_stored_with_defaults_and_shows_its_columns(cluster: Cluster, crd_namespace: str):
    result = apply(cluster, crd_namespace, VALID)
    assert result.returncode == 0, result.stderr
    stored = json.loads(cluster.kubectl("get", "fwf", "two-steps", "-n", crd_namespace, "-o", "json").stdout)
    make_task, show_task = stored["spec"]["tasks"]
    assert make_task["retries"] == {"limit": 0, "infrastructure": 3, "backoffSeconds": 5, "maxBackoffSeconds": 300}
    assert make_task["outputs"] == [{"name": "text", "kind": "file"}]
    assert stored["spec"]["failurePolicy"] == "Stop" and stored["spec"]["inputs"][0]["kind"] == "value"
    assert [i.get("value") for i in show_task["inputs"][2:]] == [False, 0, {}]
    assert resource.WorkflowSpec.model_validate(stored["spec"]).tasks[1].depends_on == ["make"]

    header = cluster.kubectl("get", "fwf", "-n", crd_namespace).stdout.splitlines()[0]
    assert header.split() == ["NAME", "PHASE", "PROGRESS", "AGE", "MESSAGE"]
    status = resource.WorkflowStatus(phase=resource.Phase.RUNNING, progress="1/2", message="show is running",
                                     tasks={"make": resource.TaskStatus(phase=resource.Phase.SUCCEEDED, attempts=1)})
    cluster.kubectl("patch", "fwf", "two-steps", "-n", crd_namespace, "--subresource=status", "--type=merge",
                    "-p", json.dumps({"status": status.dump()}))
    row = cluster.kubectl("get", "ferry", "-n", crd_namespace, "--no-headers").stdout.split()
    assert row[:3] == ["two-steps", "Running", "1/2"] and row[4:] == ["show", "is", "running"]
    stored = json.loads(cluster.kubectl("get", "fwf", "two-steps", "-n", crd_namespace, "-o", "json").stdout)
    assert resource.WorkflowStatus.model_validate(stored["status"]) == status


@pytest.mark.cluster
@pytest.mark.parametrize("case", INVALID)
def test_invalid_manifest_is_refused_naming_the_field(cluster: Cluster, crd_namespace: str, case: str):
    change, expected = INVALID[case]
    result = apply(cluster, crd_namespace, edit(change))
    assert result.returncode != 0, f"{case} was accepted"
    for text in expected:
        assert text in result.stderr, result.stderr


@pytest.mark.cluster
def test_python_style_input_and_output_names_are_accepted(cluster: Cluster, crd_namespace: str):
    """``row_count`` and ``max_rows``, as the SDK writes them, next to the dashed names of before."""
    spec = {
        "inputs": [{"name": "max_rows", "value": 10}],
        "tasks": [
            {"name": "count", "image": "busybox:1.36", "outputs": [{"name": "row_count", "kind": "value"},
                                                                   {"name": "row-total"}],
             "inputs": [{"name": "max_rows", "fromInput": "max_rows"}, {"name": "Label", "value": "x"}]},
            {"name": "show", "image": "busybox:1.36",
             "inputs": [{"name": "rows", "fromTask": {"task": "count", "output": "row_count"}}]},
        ],
        "outputs": [{"name": "row_count", "fromTask": {"task": "count", "output": "row_count"}}],
    }
    result = apply(cluster, crd_namespace, make("python-names", spec), "--dry-run=server")
    assert result.returncode == 0, result.stderr


@pytest.mark.cluster
def test_unknown_fields_are_refused_by_strict_validation_and_never_stored(cluster: Cluster, crd_namespace: str):
    typo = edit(lambda s: tasks(s)[0].update(imagePullPolicy="Always"))
    strict = apply(cluster, crd_namespace, typo)  # kubectl's default: --validate=strict
    assert strict.returncode != 0
    assert 'strict decoding error: unknown field "spec.tasks[0].imagePullPolicy"' in strict.stderr
    lax = apply(cluster, crd_namespace, typo, "--validate=false")
    assert lax.returncode == 0, lax.stderr
    stored = json.loads(cluster.kubectl("get", "fwf", "bad", "-n", crd_namespace, "-o", "json").stdout)
    assert "imagePullPolicy" not in stored["spec"]["tasks"][0], "the API server prunes unknown fields"
    cluster.kubectl("delete", "fwf", "bad", "-n", crd_namespace)


@pytest.mark.cluster
def test_a_thousand_tasks_fit_the_cel_budget(cluster: Cluster, crd_namespace: str):
    width = 256
    spec = {"tasks": [
        {"name": "split", "image": "busybox:1.36", "outputs": [{"name": f"part-{j}"} for j in range(64)]},
        *({"name": f"map-{i}", "image": "busybox:1.36", "outputs": [{"name": "out"}],
           "inputs": [{"name": "part", "fromTask": {"task": "split", "output": f"part-{i % 64}"}}]}
          for i in range(998)),
        {"name": "reduce", "image": "busybox:1.36", "dependsOn": [f"map-{i}" for i in range(width)],
         "inputs": [{"name": f"in-{i}", "fromTask": {"task": f"map-{i}", "output": "out"}} for i in range(width)]},
    ]}
    result = apply(cluster, crd_namespace, make("wide", spec), "--dry-run=server")
    assert result.returncode == 0, result.stderr[:2000]
    spec["tasks"][-1]["inputs"][-1]["fromTask"]["output"] = "missing"
    result = apply(cluster, crd_namespace, make("wide", spec), "--dry-run=server")
    assert "task reduce: inputs[].fromTask.output must name one of that task's outputs" in result.stderr


@pytest.mark.cluster
def test_the_spec_cannot_change_once_created(cluster: Cluster, crd_namespace: str):
    """Editing a running Workflow's tasks corrupted it (a removed finished task and a new one marked it
    Succeeded); re-applying a changed finished one was a silent no-op."""
    frozen = {**VALID, "metadata": {"name": "frozen"}}
    assert apply(cluster, crd_namespace, frozen).returncode == 0
    assert apply(cluster, crd_namespace, frozen).returncode == 0, "re-applying the same spec is fine"
    changed = edit(lambda s: tasks(s)[0].update(image="busybox:1.37"))
    changed["metadata"] = {"name": "frozen", "labels": {"team": "a"}}
    result = apply(cluster, crd_namespace, changed)
    assert result.returncode != 0
    assert "spec is immutable" in result.stderr and "ferry compile --name" in result.stderr, result.stderr
    labelled = cluster.kubectl("label", "fwf", "frozen", "-n", crd_namespace, "team=a", check=False)
    assert labelled.returncode == 0, "metadata stays editable"
    # ``ferry stop`` and ``ferry retry`` change only these; rerun only goes up.
    for patch in ({"spec": {"stop": True}}, {"spec": {"rerun": 2}}, {"spec": {"stop": False, "rerun": 3}}):
        patched = cluster.kubectl("patch", "fwf", "frozen", "-n", crd_namespace, "--type", "merge", "-p",
                                  json.dumps(patch), check=False)
        assert patched.returncode == 0, patched.stderr
    lowered = cluster.kubectl("patch", "fwf", "frozen", "-n", crd_namespace, "--type", "merge", "-p",
                              json.dumps({"spec": {"rerun": 1}}), check=False)
    assert lowered.returncode != 0 and "spec.rerun only goes up" in lowered.stderr, lowered.stderr
    added = cluster.kubectl("patch", "fwf", "frozen", "-n", crd_namespace, "--type", "merge", "-p",
                            json.dumps({"spec": {"code": "s3://b/code/x.tar.gz"}}), check=False)
    assert added.returncode != 0 and "spec is immutable" in added.stderr, "a field absent before cannot be added"
