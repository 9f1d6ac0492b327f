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
