"""The plan of a task pod: where an attempt publishes, and the cache key of cacheable tasks."""

import pytest

from ferry.api import resource, scheduler, taskpod

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


INDEX = resource.StoredResult(uri=f"{PREFIX}/ns/uid/m/split/1/index.json", sha256="a" * 64, size=10)


def mapped(**over) -> resource.WorkflowSpec:
    return resource.WorkflowSpec.model_validate({
        "code": "s3://bucket/ferry/code/aaa.tar.gz",
        "inputs": [{"name": "names", "value": ["a", "b", "c"]}],
        "tasks": [{"name": "m", "function": "pkg.mod:fn", "cache": {"version": "1"},
                   "inputs": [{"name": "row", "fromItem": True}, {"name": "n", "value": 3}],
                   "outputs": [{"name": "out"}, {"name": "count", "kind": "value"}],
                   "map": {"over": over or {"fromInput": "names"}, "batchSize": 2}}]})


def unit_plan(workflow: resource.WorkflowSpec, role: str, attempt: int = 1, index: int | None = None,
              status: resource.WorkflowStatus | None = None) -> taskpod.PodPlan:
    status = status or resource.WorkflowStatus(tasks={"m": resource.TaskStatus(map=resource.MapStatus(
        stage="Items", items=5, units=3, index=INDEX, record="eJzLSM3JyQcABiwCFQ=="))})
    return taskpod.build_unit_plan(workflow, status, scheduler.Unit("m", role, attempt, index), workflow="wf",
                                   namespace="ns", execution_id="uid", root=f"{PREFIX}/ns/")


def test_a_map_s_split_reads_what_it_goes_over_and_publishes_under_its_attempt():
    plan = unit_plan(mapped(), "split", 2)
    assert (plan.role, plan.task, plan.attempt, plan.output_prefix) == ("split", "m", 2, f"{PREFIX}/ns/uid/m/split/2")
    assert plan.split == taskpod.SplitPlan(over=resource.Output(kind=resource.Kind.VALUE, value=["a", "b", "c"]),
                                           batch_size=2)
    assert plan.function is None and plan.inputs == plan.values == {}, "the split runs none of the task's code"
    stored = resource.WorkflowStatus(tasks={"src": resource.TaskStatus(outputs={"d": resource.Output(
        kind=resource.Kind.DIRECTORY, uri=f"{PREFIX}/d/", manifest_digest="sha256:" + "c" * 64)})})
    over = mapped(fromTask={"task": "src", "output": "d"})
    over.tasks.insert(0, resource.Task(name="src", image="x", outputs=[{"name": "d", "kind": "directory"}]))
    assert taskpod.build_unit_plan(over, stored, scheduler.Unit("m", "split", 1), workflow="wf", namespace="ns",
                                   execution_id="uid", root=PREFIX).split.over.manifest_digest == "sha256:" + "c" * 64


def test_an_item_unit_gets_its_items_and_the_other_inputs_but_never_the_item_input():
    plan = unit_plan(mapped(), "item", 3, index=2)
    assert plan.item == taskpod.ItemPlan(index=INDEX, input="row", first=4, count=1, folder=f"{PREFIX}/ns/uid/m")
    assert plan.values == {"n": 3} and "row" not in plan.inputs and plan.function == "pkg.mod:fn"
    assert plan.output_prefix == taskpod.item_prefix(f"{PREFIX}/ns/uid/m", 4, 3) == f"{PREFIX}/ns/uid/m/items/4/3"
    assert unit_plan(mapped(), "item", 1, index=0).item.count == 2
    assert plan.cache_key == unit_plan(mapped(), "item", 1, index=0).cache_key, \
        "one key for every item without the item: the pod mixes the item in"
    assert plan.cache_key.startswith(f"{PREFIX}/ns/cache/")
    assert plan.input_env() == {"FERRY_INPUT_N": "/ferry/inputs/n", "FERRY_INPUT_ROW": "/ferry/inputs/row"}, \
        "a container task finds its item where its pod fetched it, as it finds any input"


def test_a_map_s_gather_gets_the_record_and_the_outputs_it_gathers():
    plan = unit_plan(mapped(), "gather", 1)
    assert plan.gather == taskpod.GatherPlan(index=INDEX, record="eJzLSM3JyQcABiwCFQ==", units=3, items=5,
                                             batch_size=2, folder=f"{PREFIX}/ns/uid/m",
                                             outputs=mapped().tasks[0].outputs)
    assert [(o.name, o.kind) for o in plan.outputs] == [("out", "directory"), ("count", "value")]
    assert plan.output_prefix == f"{PREFIX}/ns/uid/m/gather/1"


def test_an_item_or_gather_plan_before_the_split_is_refused():
    with pytest.raises(taskpod.InputError, match="no item index yet"):
        unit_plan(mapped(), "item", 1, 0, status=resource.WorkflowStatus(tasks={"m": resource.TaskStatus(
            map=resource.MapStatus())}))


def test_a_task_plan_leaves_a_map_s_item_input_out():
    stored, values = taskpod.resolve_inputs(mapped(), resource.WorkflowStatus(), mapped().tasks[0])
    assert (stored, values) == ({}, {"n": 3})
