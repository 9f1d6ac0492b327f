from ferry.api import resource
from ferry.api.resource import Phase
from ferry.api import dag


def spec(*tasks: dict, **extra) -> resource.WorkflowSpec:
    return resource.WorkflowSpec.model_validate({"tasks": list(tasks), **extra})


def task(name: str, needs: tuple[str, ...] = (), outputs=("out",), **extra) -> dict:
    return {"name": name, "image": "busybox",
            "inputs": [{"name": n, "fromTask": {"task": n, "output": "out"}} for n in needs],
            "outputs": [{"name": o} for o in outputs], **extra}


def test_valid_graph_has_no_problems():
    assert dag.problems(spec(task("a"), task("b", ("a",)), task("c", ("a", "b")))) == []


def test_cycle_is_reported_as_a_path():
    found = dag.problems(spec(task("a", ("c",)), task("b", ("a",)), task("c", ("b",))))
    assert len(found) == 1
    assert "cycle" in found[0] and "a -> b -> c -> a" in found[0]


def test_missing_task_output_and_kind_mismatch_name_the_field():
    bad = spec(task("a", outputs=("dir",)),
               {"name": "b", "image": "x", "inputs": [{"name": "i", "fromTask": {"task": "a", "output": "nope"}}]},
               {"name": "c", "image": "x", "dependsOn": ["ghost"]},
               {"name": "d", "image": "x", "inputs": [{"name": "i", "kind": "directory",
                                                       "fromTask": {"task": "a", "output": "dir"}}]})
    found = dag.problems(bad)
    assert any("spec.tasks[b].inputs[i].fromTask" in p and "no output 'nope'" in p for p in found)
    assert any("spec.tasks[c].dependsOn" in p and "'ghost'" in p for p in found)
    assert any("spec.tasks[d].inputs[i]" in p and "expects a directory" in p and "is a file" in p for p in found)


def test_inputs_need_exactly_one_source():
    bad = spec({"name": "a", "image": "x", "inputs": [{"name": "i", "value": 1, "uri": "s3://b/k"}]})
    assert "exactly one of value, uri, fromTask, fromInput (got value, uri)" in dag.problems(bad)[0]


def test_ready_waits_for_every_dependency():
    wf = spec(task("a"), task("b"), task("c", ("a", "b")))
    tasks = {"a": resource.TaskStatus(phase=Phase.SUCCEEDED), "b": resource.TaskStatus(phase=Phase.RUNNING)}
    assert dag.ready(wf, tasks) == []
    tasks["b"].phase = Phase.SUCCEEDED
    assert dag.ready(wf, tasks) == ["c"]


def test_unreachable_follows_failures_downstream():
    wf = spec(task("a"), task("b", ("a",)), task("c", ("b",)), task("d"))
    tasks = {"a": resource.TaskStatus(phase=Phase.FAILED)}
    assert dag.unreachable(wf, tasks) == ["b", "c"]


def mapping(over: dict | None = None, inputs: list | None = None, **extra) -> dict:
    return {"name": "m", "image": "x", "outputs": [{"name": "out"}],
            "inputs": [{"name": "row", "fromItem": True}] if inputs is None else inputs,
            "map": {"over": {"value": [1, 2]} if over is None else over, **extra.pop("map", {})}, **extra}


def one(found: list[str], *parts: str) -> None:
    assert len(found) == 1 and all(part in found[0] for part in parts), found


def test_a_map_over_a_list_a_task_s_directory_or_an_input_is_valid():
    files = {"name": "src", "image": "x", "outputs": [{"name": "dir", "kind": "directory"},
                                                      {"name": "rows", "kind": "value"}]}
    assert dag.problems(spec(mapping())) == []
    assert dag.problems(spec(files, mapping({"fromTask": {"task": "src", "output": "dir"}}))) == []
    assert dag.problems(spec(files, mapping({"fromTask": {"task": "src", "output": "rows"}}))) == []
    assert dag.problems(spec(mapping({"fromInput": "names"}), inputs=[{"name": "names", "value": ["a"]}])) == []
    assert dag.problems(spec(mapping({"uri": "s3://b/raw/"}))) == []


def test_a_map_takes_its_item_in_exactly_one_input():
    one(dag.problems(spec(mapping(inputs=[]))), "spec.tasks[m].inputs", "exactly one input with fromItem: true",
        "got none", "mark the input")
    two = [{"name": "a", "fromItem": True}, {"name": "b", "fromItem": True}]
    one(dag.problems(spec(mapping(inputs=two))), "spec.tasks[m].inputs", "got a, b", "keep one")
    one(dag.problems(spec(mapping(inputs=[{"name": "row", "fromItem": True, "value": 3}]))),
        "spec.tasks[m].inputs[row]", "receives the item; remove value")


def test_only_a_map_takes_an_item():
    one(dag.problems(spec({"name": "a", "image": "x", "inputs": [{"name": "row", "fromItem": True}]})),
        "spec.tasks[a].inputs[row].fromItem", "only a map task's input", "add map")


def test_what_a_map_goes_over_has_one_source_of_a_kind_it_can_split():
    one(dag.problems(spec(mapping({}))), "spec.tasks[m].map.over", "exactly one of value, uri, fromTask, fromInput")
    one(dag.problems(spec(mapping({"value": {"a": 1}}))), "spec.tasks[m].map.over.value", "a list", "dict",
        "JSON array")
    one(dag.problems(spec(mapping({"value": [1], "kind": "directory"}))), "spec.tasks[m].map.over",
        "kind is directory but value is a literal", "remove kind")
    one(dag.problems(spec(mapping({"fromInput": "n"}), inputs=[{"name": "n", "value": 3}])),
        "spec.tasks[m].map.over.fromInput", "workflow input 'n'", "int")
    one(dag.problems(spec(task("a"), mapping({"fromTask": {"task": "a", "output": "out"}}))),
        "spec.tasks[m].map.over", "not a file")
    one(dag.problems(spec(mapping({"fromTask": {"task": "ghost", "output": "out"}}))),
        "spec.tasks[m].map.over.fromTask", "no task named 'ghost'")
    one(dag.problems(spec(mapping({"uri": "s3://b/one.csv"}))), "spec.tasks[m].map.over", "not a file")
    one(dag.problems(spec(mapping({"fromInput": "d", "kind": "asset"}), inputs=[{"name": "d", "uri": "s3://b/d/",
                                                                              "kind": "directory"}])),
        "spec.tasks[m].map.over", "expects a asset but workflow input 'd' is a directory")


def test_the_item_of_a_directory_is_a_file():
    found = dag.problems(spec(mapping({"uri": "s3://b/raw/"}, inputs=[{"name": "row", "fromItem": True,
                                                                      "kind": "directory"}])))
    one(found, "spec.tasks[m].inputs[row]", "each item of a directory is a file", "kind: file")


def test_only_python_tasks_batch_items():
    one(dag.problems(spec(mapping(map={"batchSize": 10}))), "spec.tasks[m].map.batchSize", "one item per pod",
        "remove batchSize")
    assert dag.problems(spec(mapping(map={"batchSize": 10}, image=None, function="pkg.mod:fn"))) == []


def test_a_task_named_like_a_map_s_pods_is_refused():
    for name in ("m-split", "m-gather", "m-17"):
        one(dag.problems(spec(mapping(), task(name))), f"spec.tasks[{name}]", "pods of map task 'm'", "rename it")
    assert dag.problems(spec(mapping(), task("m-x"), task("m-splits"), task("n-1"))) == []


def test_a_map_depends_on_what_it_goes_over_and_readers_see_its_gathered_outputs():
    source = {"name": "src", "image": "x", "outputs": [{"name": "rows", "kind": "value"}]}
    wf = spec(source, mapping({"fromTask": {"task": "src", "output": "rows"}}),
              {"name": "after", "image": "x", "inputs": [{"name": "all", "kind": "directory",
                                                          "fromTask": {"task": "m", "output": "out"}}]})
    assert dag.problems(wf) == [], "a map's file output is read as one directory"
    assert dag.dependencies(wf.tasks[1]) == {"src"}
    assert dag.ready(wf, {}) == ["src"]
    assert dag.ready(wf, {"src": resource.TaskStatus(phase=Phase.SUCCEEDED)}) == ["m"]
    assert dag.unreachable(wf, {"src": resource.TaskStatus(phase=Phase.FAILED)}) == ["m", "after"]
    wrong = spec(source, mapping({"fromTask": {"task": "src", "output": "rows"}}),
                 {"name": "after", "image": "x", "inputs": [{"name": "all", "kind": "file",
                                                             "fromTask": {"task": "m", "output": "out"}}]})
    one(dag.problems(wrong), "spec.tasks[after].inputs[all].fromTask", "expects a file but m.out is a directory")
    cyclic = spec(mapping({"fromTask": {"task": "m", "output": "out"}}))
    assert any("cycle" in p for p in dag.problems(cyclic))
