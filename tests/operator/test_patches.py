import copy

from ferry_operator import patches


def apply(document: dict, ops: list[dict]) -> dict:
    """RFC 6902's ``add`` and ``remove`` on objects, to check a patch against what a server makes of it."""
    result = copy.deepcopy(document)
    for op in ops:
        *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        target = result
        for part in parents:
            target = target[part]  # a missing parent is an error, as on the server
        if op["op"] == "remove":
            del target[last]
        else:
            target[last] = op["value"]
    return result


def test_only_what_changed_is_sent():
    before = {"phase": "Running", "progress": "1/3",
              "tasks": {"a": {"phase": "Succeeded", "attempts": 1}, "b": {"phase": "Running", "attempts": 1}}}
    after = {"phase": "Running", "progress": "2/3",
             "tasks": {"a": {"phase": "Succeeded", "attempts": 1}, "b": {"phase": "Succeeded", "attempts": 1},
                       "c": {"phase": "Running", "attempts": 1}}}
    ops = patches.diff(before, after, "/status")
    assert sorted(ops, key=lambda op: op["path"]) == [
        {"op": "add", "path": "/status/progress", "value": "2/3"},
        {"op": "add", "path": "/status/tasks/b/phase", "value": "Succeeded"},
        {"op": "add", "path": "/status/tasks/c", "value": {"phase": "Running", "attempts": 1}}]
    assert apply({"status": before}, ops) == {"status": after}


def test_removed_keys_nulls_and_lists():
    before = {"message": "refused", "tasks": {"a": {"outputs": [1, 2], "reason": "x"}}}
    after = {"tasks": {"a": {"outputs": [1], "value": {"x": None, "y": [None]}}}}  # a JSON value may hold nulls
    ops = patches.diff(before, after)
    assert apply(before, ops) == after
    assert {"op": "remove", "path": "/message"} in ops and {"op": "remove", "path": "/tasks/a/reason"} in ops


def test_types_and_awkward_keys():
    assert patches.diff({"a": {"b": 1}}, {"a": 3}) == [{"op": "add", "path": "/a", "value": 3}]
    assert patches.diff({"a": 1}, {"a": True}) == [{"op": "add", "path": "/a", "value": True}]
    assert patches.diff({"a": {"b": 1}}, {"a": {"b": 1}}) == []
    ops = patches.diff({"m": {}}, {"m": {"a/b~c": 1}})
    assert ops == [{"op": "add", "path": "/m/a~1b~0c", "value": 1}] and apply({"m": {}}, ops) == {"m": {"a/b~c": 1}}
