from ferry_ui import graph


def workflow(tasks: list[dict], states: dict | None = None) -> dict:
    return {"metadata": {"namespace": "ns", "name": "wf"}, "spec": {"tasks": tasks}, "status": {"tasks": states or {}}}


def test_edges_carry_the_data_they_pass():
    found = graph.build(workflow(
        [{"name": "collect", "outputs": [{"name": "reports", "kind": "directory"}]},
         {"name": "total", "inputs": [{"name": "reports", "fromTask": {"task": "collect", "output": "reports"}}]},
         {"name": "after", "dependsOn": ["total"]}],
        {"collect": {"phase": "Succeeded", "outputs": {"reports": {
            "kind": "directory", "uri": "s3://b/r", "size": 2048, "fileCount": 3}}},
         "total": {"phase": "Failed", "attempts": 2, "message": "boom"}}))
    nodes = {n["id"]: n for n in found["nodes"]}
    assert nodes["collect"]["phase"] == "Succeeded" and nodes["after"]["phase"] == "Pending"
    assert nodes["total"]["attempts"] == 2 and nodes["total"]["message"] == "boom"
    edges = {(e["source"], e["target"]): e for e in found["edges"]}
    assert edges["collect", "total"]["label"] == "reports · directory · 2.0 KiB · 3 files"
    assert edges["collect", "total"]["data"][0]["uri"] == "s3://b/r"
    assert edges["total", "after"]["label"] == ""  # an order, no data


def test_a_large_fan_out_is_one_node_until_expanded():
    shards = [{"name": f"shard-{i}", "inputs": [{"name": "part", "fromTask": {"task": "split", "output": "parts"}}]}
              for i in range(1000)]
    join = {"name": "join", "dependsOn": [s["name"] for s in shards]}
    states = {f"shard-{i}": {"phase": "Failed" if i == 7 else "Succeeded"} for i in range(1000)}
    found = graph.build(workflow([{"name": "split"}, *shards, join], states))
    assert len(found["nodes"]) == 3 and len(found["edges"]) == 2
    group = next(n for n in found["nodes"] if n["kind"] == "group")
    assert group["label"] == "shard-* ×1000" and group["phases"] == {"Succeeded": 999, "Failed": 1}
    assert group["phase"] == "Failed" and "shard-7" in group["members"]
    expanded = graph.build(workflow([{"name": "split"}, *shards, join], states), frozenset({group["id"]}))
    assert len(expanded["nodes"]) == 1002 and len(expanded["edges"]) == 2000


def test_tasks_with_other_neighbours_stay_apart():
    tasks = [{"name": "a"}, {"name": "b"},
             *({"name": f"x-{i}", "dependsOn": ["a" if i % 2 else "b"]} for i in range(20))]
    found = graph.build(workflow(tasks))
    groups = [n for n in found["nodes"] if n["kind"] == "group"]
    assert sorted(len(g["members"]) for g in groups) == [10, 10]
    small = graph.build(workflow([{"name": "a"}, *({"name": f"x-{i}", "dependsOn": ["a"]} for i in range(3))]))
    assert all(n["kind"] == "task" for n in small["nodes"])
