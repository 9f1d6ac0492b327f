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


def chains(count: int, length: int, name=lambda c, s: f"c{c:02d}-s{s:03d}") -> list[dict]:
    """``count`` chains of ``length`` tasks; every tenth step also waits for the chain before."""
    return [{"name": name(c, s), **({"dependsOn": [name(c, s - 1)] + ([name(c - 1, s)] if c and s % 10 == 5 else [])}
                                    if s else {})}
            for c in range(count) for s in range(length)]


def drawn_tasks(found: dict) -> list[str]:
    return [m for n in found["nodes"] for m in (n["members"] if n["kind"] == "group" else [n["id"]])]


def test_a_large_graph_is_folded_into_families_and_every_task_stays_findable():
    tasks = chains(50, 100)
    found = graph.build(workflow(tasks, {"c07-s042": {"phase": "Failed"}}))
    assert len(found["nodes"]) <= graph.FOLD_ABOVE
    assert sorted(drawn_tasks(found)) == sorted(t["name"] for t in tasks)  # each task in one node
    family = next(n for n in found["nodes"] if "c07-s042" in n.get("members", ()))
    assert family["fold"] == "family" and family["label"] == "c07-s* ×100" and family["phase"] == "Failed"
    assert all(e["source"] != e["target"] for e in found["edges"])  # a family's inner edges are not drawn
    expanded = graph.build(workflow(tasks), frozenset({family["id"]}))
    nodes = {n["id"]: n for n in expanded["nodes"]}
    assert family["id"] not in nodes and nodes["c07-s042"]["group"] == family["id"]  # the page can fold it again
    assert len(expanded["nodes"]) == len(found["nodes"]) - 1 + 100
    small = graph.build(workflow(tasks[:graph.FOLD_ABOVE]))["nodes"]  # two chains: drawn task by task
    assert all(n["kind"] == "task" for n in small) and len(small) == graph.FOLD_ABOVE


def letters(number: int) -> str:
    """A name part with no digits, so no two tasks share a stem: 0 → 'a', 27 → 'bb'."""
    word = ""
    while True:
        number, digit = divmod(number, 26)
        word = chr(97 + digit) + word
        if not number:
            return word


def test_distinct_names_fold_into_chains_then_depths():
    tasks = chains(120, 4, lambda c, s: f"task-{letters(c * 4 + s)}")
    found = graph.build(workflow(tasks))
    assert {n["fold"] for n in found["nodes"] if n["kind"] == "group"} == {"chain"}
    first = next(n for n in found["nodes"] if n["id"] == "chain:task-a")
    assert first["members"] == ["task-a", "task-b", "task-c", "task-d"] and first["label"] == "task-a → task-d (4)"
    assert sorted(drawn_tasks(found)) == sorted(t["name"] for t in tasks) and len(found["nodes"]) <= graph.FOLD_ABOVE
    # 20 layers of 30, each task after two of the layer before: no stems, no chains.
    layered = [{"name": f"t-{letters(layer * 30 + i)}",
                **({"dependsOn": [f"t-{letters((layer - 1) * 30 + i)}", f"t-{letters((layer - 1) * 30 + (i + 1) % 30)}"]}
                   if layer else {})} for layer in range(20) for i in range(30)]
    found = graph.build(workflow(layered))
    assert len(found["nodes"]) == 20 and {n["fold"] for n in found["nodes"]} == {"depth"}
    assert sorted(drawn_tasks(found)) == sorted(t["name"] for t in layered)


def test_a_map_of_100000_items_is_one_node_with_its_counts_and_the_edge_of_what_it_maps_over():
    tasks = [{"name": "list-files", "outputs": [{"name": "files", "kind": "directory"}]},
             {"name": "process", "map": {"over": {"fromTask": {"task": "list-files", "output": "files"}}},
              "inputs": [{"name": "path", "fromItem": True}], "outputs": [{"name": "o0", "kind": "file"}]},
             {"name": "total", "inputs": [{"name": "parts", "fromTask": {"task": "process", "output": "o0"}}]}]
    states = {"list-files": {"phase": "Succeeded"},
              "process": {"phase": "Running", "map": {"stage": "Items", "units": 100_000, "succeeded": 1532,
                                                      "running": 100, "failed": 3, "pending": 98_365}}}
    found = graph.build(workflow(tasks, states))
    nodes = {n["id"]: n for n in found["nodes"]}
    assert len(nodes) == 3 and nodes["process"]["kind"] == "map"
    assert nodes["process"]["label"] == "process\n1,532/100,000 · 3 failed"
    assert nodes["process"]["map"]["running"] == 100 and nodes["process"]["pie"]["succeeded"] == 1.5
    assert {(e["source"], e["target"]) for e in found["edges"]} == {("list-files", "process"), ("process", "total")}
    splitting = graph.build(workflow(tasks, {"process": {"phase": "Running", "map": {"stage": "Split"}}}))
    assert next(n for n in splitting["nodes"] if n["id"] == "process")["label"] == "process\nsplitting"
    for phase, label in (("Running", "process\n6/6 · gathering"), ("Succeeded", "process\n6/6")):
        gather = {"process": {"phase": phase, "map": {"stage": "Gather", "units": 6, "succeeded": 6}}}
        assert next(n for n in graph.build(workflow(tasks, gather))["nodes"] if n["id"] == "process")["label"] == label
