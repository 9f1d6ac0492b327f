"""The plan of a task pod: where an attempt publishes, and the cache key of cacheable tasks."""

import pytest

from ferry.api import resource, taskpod

PREFIX = "s3://bucket/ferry"


def spec(code: str | None = "s3://bucket/ferry/code/aaa.tar.gz", **task) -> resource.WorkflowSpec:
    fields = {"name": "t", "function": "pkg.mod:fn", "cache": {"version": "1"},
              "inputs": [{"name": "x", "value": 1}], **task}
    return resource.WorkflowSpec.model_validate({"tasks": [fields], **({"code": code} if code else {})})


def key(workflow: resource.WorkflowSpec, namespace: str = "team-a") -> str:
    return taskpod.build_plan(workflow, resource.WorkflowStatus(), "t", 1, workflow="wf", namespace=namespace,
                              execution_id="uid", root=f"{PREFIX}/{namespace}").cache_key


def test_the_cache_key_follows_code_image_inputs_and_version():
    base = key(spec())
    assert base == key(spec()), "the same function, code and inputs find the same entry"
    changed = [spec(code="s3://bucket/ferry/code/bbb.tar.gz"),  # new code: the function may do otherwise
               spec(inputs=[{"name": "x", "value": 2}]),
               spec(cache={"version": "2"}),
               spec(image="registry.example/tools@sha256:" + "1" * 64)]
    assert len({base, *(key(w) for w in changed)}) == 1 + len(changed)


def test_the_cache_is_per_namespace():
    """A team's cached results are not another's: one namespace cannot read or plant another's entries."""
    a, b = key(spec(), "team-a"), key(spec(), "team-b")
    assert a != b and a.startswith(f"{PREFIX}/team-a/cache/") and b.startswith(f"{PREFIX}/team-b/cache/")


def test_a_container_sees_its_own_variables_then_its_inputs_then_where_it_is():
    """The same on a cluster (the pod's main container) and locally (podman or docker). Each input's
    variable holds its file's path, a value's as a file's: one meaning whatever the input's kind or size."""
    plan = taskpod.PodPlan(workflow="wf", namespace="ns", execution_id="uid", task="t", attempt=3,
                           output_prefix=f"{PREFIX}/ns/uid/t/3", values={"b": [1], "a": "text"},
                           inputs={"data": resource.Output(kind=resource.Kind.DIRECTORY, uri=f"{PREFIX}/d/")})
    assert taskpod.container_env(plan, [resource.EnvVar(name="MODE", value="fast")]) == [
        ("MODE", "fast"), ("FERRY_INPUT_A", "/ferry/inputs/a"), ("FERRY_INPUT_B", "/ferry/inputs/b"),
        ("FERRY_INPUT_DATA", "/ferry/inputs/data"),
        ("FERRY_WORKFLOW", "wf"), ("FERRY_TASK", "t"), ("FERRY_ATTEMPT", "3"), ("FERRY_INPUTS_DIR", "/ferry/inputs"),
        ("FERRY_OUTPUTS_DIR", "/ferry/outputs")]


@pytest.mark.parametrize(("value", "text"), [
    ("plain", "plain"), ("", ""), (" spaced\nlines\n", " spaced\nlines\n"), ("42", "42"), ("\"quoted\"", "\"quoted\""),
    (42, "42"), (1.5, "1.5"), (True, "true"), (None, "null"), ([1, "a"], '[1, "a"]'), ({"k": [1, 2]}, '{"k": [1, 2]}'),
    ("caf\u00e9 \u2603", "caf\u00e9 \u2603"), ({"k": "\u00e9"}, '{"k": "\\u00e9"}')])
def test_a_value_input_file_holds_a_string_as_itself_and_anything_else_as_json(value, text):
    assert taskpod.value_bytes(value) == text.encode()
