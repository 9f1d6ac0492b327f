"""A map's pods, without a cluster: the split's item index, item units fetching only their item
(container and Python tasks), per-item results and cache, and the gather."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import subprocess
import sys

import pytest

import ferry
from ferry.api import items, resource, taskpod
from ferry.core import errors
from ferry.data import manifest
from ferry.pod import fanout, podruntime, runner
from ferry.values import typed as values

HERE = "tests.runtime.pod.test_fanout"


@ferry.task
def square(x: int, log: str) -> int:
    with open(log, "a") as out:
        out.write(f"{x}\n")
    if x == 13:
        raise ValueError("13 is unlucky")
    return x * x


@ferry.task
def shout(f: ferry.File) -> ferry.File:
    pathlib.Path("loud.txt").write_text(pathlib.Path(f).read_text().upper())
    return ferry.File("loud.txt")


@ferry.task
def explode(f: ferry.File) -> ferry.Directory:
    pathlib.Path("out/sub").mkdir(parents=True)
    pathlib.Path("out/sub/copy.txt").write_text(pathlib.Path(f).read_text())
    pathlib.Path("out/size").write_text(str(os.path.getsize(f)))
    return ferry.Directory("out")


class Map:
    """Plays the scheduler for one map task ``t`` of run ``x``: the plans its units get."""

    def __init__(self, store: ferry.Store, execution: str = "x"):
        self.store, self.execution = store, execution
        self.folder = taskpod.task_folder(f"{store.raw_data_prefix}/ns", execution, "t")

    def plan(self, role: str, attempt: int, prefix: str, **fields) -> taskpod.PodPlan:
        return taskpod.PodPlan(workflow="wf", namespace="ns", execution_id=self.execution, task="t", attempt=attempt,
                               output_prefix=prefix, role=role, **fields)

    def split(self, over: resource.Output, batch: int = 1) -> taskpod.PublishResult:
        plan = self.plan("split", 1, taskpod.stage_prefix(self.folder, "split", 1),
                         split=taskpod.SplitPlan(over=over, batch_size=batch))
        return fanout.split(plan, self.store)

    def unit(self, index: resource.StoredResult, first: int, count: int = 1, attempt: int = 1,
             **fields) -> taskpod.PodPlan:
        return self.plan("item", attempt, taskpod.item_prefix(self.folder, first, attempt),
                         item=taskpod.ItemPlan(index=index, input=fields.pop("input", "x"), first=first, count=count,
                                               folder=self.folder), **fields)

    def gather(self, index, record: items.Record, count: int, outputs: list[resource.TaskOutput],
               batch: int = 1) -> dict[str, resource.Output]:
        plan = self.plan("gather", 1, taskpod.stage_prefix(self.folder, "gather", 1), gather=taskpod.GatherPlan(
            index=index, record=record.encode(), units=len(record), items=count, batch_size=batch,
            folder=self.folder, outputs=outputs))
        pointer = fanout.gather(plan, self.store).result
        assert pointer.uri == f"{plan.output_prefix}/{taskpod.RESULT_NAME}"
        with self.store.open(pointer.uri) as stream:
            data = stream.read()
        assert hashlib.sha256(data).hexdigest() == pointer.sha256
        return taskpod.PublishResult.model_validate_json(data).outputs


def _record(units: int, failed=(), attempt: int = 1) -> items.Record:
    record = items.Record(units)
    for unit in range(units):
        record.set(unit, resource.Phase.FAILED if unit in failed else resource.Phase.SUCCEEDED, attempt)
    return record


def _item_result(store, folder, item, attempt=1) -> taskpod.PublishResult:
    with store.open(f"{taskpod.item_prefix(folder, item, attempt)}/{taskpod.RESULT_NAME}") as stream:
        return taskpod.PublishResult.model_validate_json(stream.read())


def _index(result: taskpod.PublishResult) -> tuple[int, resource.StoredResult]:
    assert result.error is None and len(result.model_dump_json()) < 600, "a small termination message"
    return result.outputs["items"].value, result.result


def _directory(store, tmp_path, count: int) -> resource.Output:
    tree = tmp_path / "tree"
    for i in range(count):
        (tree / f"g{i // 70}").mkdir(parents=True, exist_ok=True)  # in manifest order: item i is row i
        (tree / f"g{i // 70}" / f"part-{i:03d}.csv").write_text(f"row {i}\n")
    ref = store.upload_directory(tree, f"{store.raw_data_prefix}/ns/in/tree")
    return resource.Output.of(ref, resource.Kind.DIRECTORY)


def test_split_over_an_inline_a_stored_and_a_result_held_list(local_store):
    run = Map(local_store)
    listed = [{"n": i, "pad": "x" * 40} for i in range(60)]
    stored = values.publish_json(listed, local_store, f"{local_store.raw_data_prefix}/ns/x/up/1/rows.json")
    assert stored.uri is not None, "large enough to be stored"
    result = json.dumps({"outputs": {"rows": stored.dump()}}).encode()
    result_uri = f"{local_store.raw_data_prefix}/ns/x/up/1/{taskpod.RESULT_NAME}"
    local_store.backend(result_uri).write_bytes(result_uri, result)
    in_result = resource.Output(kind="value", result=resource.StoredResult(
        uri=result_uri, sha256=hashlib.sha256(result).hexdigest(), size=len(result), output="rows"))
    for over in (resource.Output(kind="value", value=listed), stored, in_result):
        count, index = _index(run.split(over))
        assert count == 60 and index.uri == f"{run.folder}/split/1/index.json"
        plan = run.unit(index, 41, function=f"{HERE}:square")
        assert [one.values["x"] for _, one in podruntime.unit_items(plan, local_store)] == [listed[41]]


def test_split_refuses_what_is_not_a_list_naming_the_input(local_store):
    run = Map(local_store)
    with pytest.raises(ValueError, match=r"task 't': map.over is an object, not a list: map over a list value"):
        run.split(resource.Output(kind="value", value={"a": 1}))
    with pytest.raises(ValueError, match=r"map.over \(file:///data/a.csv\) is a file: map over a list value"):
        run.split(resource.Output(kind="file", uri="file:///data/a.csv"))
    with pytest.raises(ValueError, match=r"item 2 is 100,002 bytes of JSON, more than an item of a list may be"):
        run.split(resource.Output(kind="value", value=[1, 2, "z" * 100_000]))


def test_split_over_a_directory_of_200_files_and_its_digest_checked(local_store, tmp_path, capsys):
    run = Map(local_store)
    tree = _directory(local_store, tmp_path, 200)
    count, index = _index(run.split(tree))
    shards = sorted(local_store.list(f"{run.folder}/split/1/shards"))
    with capsys.disabled():
        sizes = [os.path.getsize(tmp_path / "raw/ns/x/t/split/1/shards" / name) for name in shards]
        print(f"\n200 files: index {index.size} bytes, {len(shards)} shards of {min(sizes)}..{max(sizes)} bytes")
    assert count == 200 and len(shards) == 14
    tampered = tree.model_copy(update={"manifest_digest": "sha256:" + "0" * 64})
    with pytest.raises(errors.IntegrityError, match="manifest digest mismatch"):
        run.split(tampered)


def test_an_item_of_an_asset_keeps_the_object_its_entry_names(local_store, tmp_path):
    run = Map(local_store)
    (tmp_path / "elsewhere.txt").write_text("stored elsewhere")
    elsewhere = local_store.upload_file(tmp_path / "elsewhere.txt", f"{local_store.raw_data_prefix}/ns/x/other/e.txt")
    asset = local_store.publish_manifest(manifest.Manifest(files=[manifest.Entry(
        path="pics/e.txt", size=elsewhere.size, sha256=elsewhere.sha256, object=elsewhere.uri)]),
        f"{local_store.raw_data_prefix}/ns/in/asset", kind=ferry.Kind.ASSET)
    _, index = _index(run.split(resource.Output.of(asset, resource.Kind.ASSET)))
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    podruntime.fetch(run.unit(index, 0), local_store, inputs)
    assert (inputs / "x").read_text() == "stored elsewhere"


def test_a_container_item_receives_exactly_its_one_file_verified(local_store, tmp_path):
    run = Map(local_store)
    _, index = _index(run.split(_directory(local_store, tmp_path, 200)))
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    podruntime.fetch(run.unit(index, 17, values={"mode": "fast"}), local_store, inputs)
    assert sorted(os.listdir(inputs)) == ["mode", "x"] and (inputs / "x").read_text() == "row 17\n"
    (tmp_path / "raw/ns/in/tree/g0/part-031.csv").write_text("row 99\n")  # changed after publishing
    with pytest.raises(errors.IntegrityError, match="part-031.csv: sha256 mismatch"):
        podruntime.fetch(run.unit(index, 31), local_store, tmp_path / "again")
    forged = index.model_copy(update={"sha256": "0" * 64})
    with pytest.raises(errors.IntegrityError, match=rf"{index.uri}: sha256 mismatch"):
        podruntime.fetch(run.unit(forged, 17), local_store, tmp_path / "again")


def test_a_container_item_publishes_under_its_item_and_stores_its_result(local_store, tmp_path):
    run = Map(local_store)
    _, index = _index(run.split(resource.Output(kind="value", value=["a", "b", "c"])))
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    (outputs / "n").write_text("7")
    declared = [resource.TaskOutput(name="n", kind="value"), resource.TaskOutput(name="report")]
    failed = podruntime.publish(run.unit(index, 2, outputs=declared), local_store, outputs)
    assert failed.error.startswith("item 2: output 'report': the task did not write")
    assert _item_result(local_store, run.folder, 2).error == failed.error.removeprefix("item 2: ")
    (outputs / "report").write_text("done")
    done = podruntime.publish(run.unit(index, 2, attempt=2, outputs=declared), local_store, outputs)
    assert done == taskpod.PublishResult()
    stored = _item_result(local_store, run.folder, 2, attempt=2)
    assert stored.outputs["n"].value == 7 and stored.outputs["report"].uri == f"{run.folder}/items/2/2/report"


def test_a_container_item_in_the_cache_reports_the_cached_outputs(local_store, tmp_path):
    cache_key = f"{local_store.raw_data_prefix}/ns/cache/{'d' * 64}.json"
    declared = [resource.TaskOutput(name="n", kind="value")]
    for execution, written in (("first", "1"), ("second", "2")):
        run = Map(local_store, execution)
        _, index = _index(run.split(resource.Output(kind="value", value=["a", "b"])))
        outputs = tmp_path / execution
        outputs.mkdir()
        (outputs / "n").write_text(written)
        result = podruntime.publish(run.unit(index, 1, outputs=declared, cache_key=cache_key), local_store, outputs)
        assert result.error is None and result.cached == (execution == "second")
        assert _item_result(local_store, run.folder, 1).outputs["n"].value == 1


def test_the_cli_runs_a_split_and_reports_where_the_index_is(local_store, tmp_path):
    run = Map(local_store)
    plan = run.plan("split", 1, taskpod.stage_prefix(run.folder, "split", 1), split=taskpod.SplitPlan(
        over=resource.Output(kind="value", value=["a", "b", "c"])))
    message = tmp_path / "message"
    env = {**os.environ, taskpod.PLAN_ENV: plan.model_dump_json(by_alias=True, exclude_none=True),
           taskpod.TERMINATION_LOG_ENV: str(message), "FERRY_RAW_DATA_PREFIX": local_store.raw_data_prefix}
    subprocess.run([sys.executable, "-m", "ferry", "pod", "split"], env=env, check=True, cwd=tmp_path)
    count, index = _index(taskpod.PublishResult.model_validate_json(message.read_text()))
    assert count == 3 and local_store.exists(index.uri)
    plan = plan.model_copy(update={"split": taskpod.SplitPlan(over=resource.Output(kind="value", value="abc"))})
    env[taskpod.PLAN_ENV] = plan.model_dump_json(by_alias=True, exclude_none=True)
    failed = subprocess.run([sys.executable, "-m", "ferry", "pod", "split"], env=env, cwd=tmp_path, capture_output=True)
    assert failed.returncode == 1
    assert taskpod.PublishResult.model_validate_json(message.read_text()).error == (
        "ValueError: task 't': map.over is a string, not a list: map over a list value, a directory or an asset")


def test_a_batch_of_three_value_items_runs_in_order_and_the_first_failure_fails_the_unit(local_store, tmp_path):
    run = Map(local_store)
    log = tmp_path / "log"
    _, index = _index(run.split(resource.Output(kind="value", value=list(range(10, 20))), batch=3))

    def unit(first: int) -> taskpod.PodPlan:
        return run.unit(index, first, count=3, function=f"{HERE}:square", values={"log": str(log)},
                        outputs=[resource.TaskOutput(name="o0", kind="value")])

    assert runner.execute(unit(0), local_store, tmp_path / "work") == taskpod.PublishResult()
    assert [_item_result(local_store, run.folder, i).outputs["o0"].value for i in (0, 1, 2)] == [100, 121, 144]
    failed = runner.execute(unit(3), local_store, tmp_path / "work")
    assert failed.error == "item 3: ValueError: 13 is unlucky"
    assert log.read_text().split() == ["10", "11", "12", "13"], "the items after the failed one did not run"
    assert not local_store.exists(f"{taskpod.item_prefix(run.folder, 4, 1)}/{taskpod.RESULT_NAME}")


def test_gather_of_values_puts_null_where_an_item_failed(local_store, tmp_path):
    run = Map(local_store)
    log = str(tmp_path / "log")
    listed = list(range(20))
    _, index = _index(run.split(resource.Output(kind="value", value=listed), batch=3))
    record = items.Record(7)
    for unit in range(7):
        first = unit * 3
        plan = run.unit(index, first, count=min(3, 20 - first), function=f"{HERE}:square", values={"log": log},
                        outputs=[resource.TaskOutput(name="o0", kind="value")])
        result = runner.execute(plan, local_store, tmp_path / "work" / str(unit))
        record.set(unit, resource.Phase.FAILED if result.error else resource.Phase.SUCCEEDED, 1)
    assert pathlib.Path(log).read_text().split() == [str(i) for i in range(20) if i != 14], "14 never ran"
    assert _item_result(local_store, run.folder, 13).error == "ValueError: 13 is unlucky"
    gathered = run.gather(index, record, 20, [resource.TaskOutput(name="o0", kind="value")], batch=3)
    assert gathered["o0"].uri is None and gathered["o0"].value == [
        None if i in (12, 13, 14) else i * i for i in range(20)]


def test_a_python_item_runs_on_its_file_and_gather_lists_the_items_files_without_copying(local_store, tmp_path):
    run = Map(local_store)
    _, index = _index(run.split(_directory(local_store, tmp_path, 12)))
    declared = [resource.TaskOutput(name="o0")]
    for item in range(12):
        result = runner.execute(run.unit(index, item, input="f", function=f"{HERE}:shout", outputs=declared),
                                local_store, tmp_path / "work" / str(item))
        assert result.error is None
    gathered = run.gather(index, _record(12, failed={5}), 12, declared)["o0"]
    assert gathered.kind == resource.Kind.DIRECTORY and gathered.file_count == 11
    contents = local_store.manifest(gathered.blob())
    item_uris = {item: _item_result(local_store, run.folder, item).outputs["o0"].uri for item in range(12) if item != 5}
    assert {entry.path: entry.object for entry in contents.files} == {f"{i:02d}": uri for i, uri in item_uris.items()}
    assert all(uri.startswith(f"{run.folder}/items/") for uri in item_uris.values())
    assert local_store.list(gathered.uri) == [e.path for e in contents.files]
    assert sorted(os.listdir(tmp_path / "raw/ns/x/t/gather/1")) == [taskpod.RESULT_NAME, "o0"]
    assert os.listdir(tmp_path / "raw/ns/x/t/gather/1/o0") == [manifest.NAME], "only a manifest: no copies"
    local_store.get(gathered.blob(), tmp_path / "back")
    assert (tmp_path / "back" / "07").read_text() == "ROW 7\n"


def test_gather_of_directories_nests_each_items_files_under_its_index(local_store, tmp_path):
    run = Map(local_store)
    _, index = _index(run.split(_directory(local_store, tmp_path, 3)))
    declared = [resource.TaskOutput(name="o0", kind="directory")]
    for item in range(3):
        runner.execute(run.unit(index, item, input="f", function=f"{HERE}:explode", outputs=declared), local_store,
                       tmp_path / "work" / str(item))
    gathered = run.gather(index, _record(3), 3, declared)["o0"]
    local_store.get(gathered.blob(), tmp_path / "back")
    assert sorted(str(p.relative_to(tmp_path / "back")) for p in (tmp_path / "back").rglob("*") if p.is_file()) == [
        f"{i}/{name}" for i in range(3) for name in ("size", "sub/copy.txt")]
    assert (tmp_path / "back/2/sub/copy.txt").read_text() == "row 2\n"


def test_an_item_hits_its_own_cache_on_a_second_run(local_store, tmp_path):
    log = tmp_path / "log"
    cache_key = f"{local_store.raw_data_prefix}/ns/cache/{'c' * 64}.json"
    declared = [resource.TaskOutput(name="o0", kind="value")]
    for execution in ("first", "second"):
        run = Map(local_store, execution)
        _, index = _index(run.split(resource.Output(kind="value", value=[2, 3, 4, 3])))
        plan = run.unit(index, 1, count=2, function=f"{HERE}:square", values={"log": str(log)},
                        outputs=declared, cache_key=cache_key)
        result = runner.execute(plan, local_store, tmp_path / execution)
        assert result.error is None and result.cached == (execution == "second")
        stored = _item_result(local_store, run.folder, 2)
        assert stored.outputs["o0"].value == 16 and stored.cached == (execution == "second")
    assert log.read_text().split() == ["3", "4"], "the second run ran no item"
    run = Map(local_store, "third")
    _, index = _index(run.split(resource.Output(kind="value", value=[5, 3])))
    runner.execute(run.unit(index, 0, count=2, function=f"{HERE}:square", values={"log": str(log)}, outputs=declared,
                            cache_key=cache_key), local_store, tmp_path / "third")
    assert log.read_text().split() == ["3", "4", "5"], "another item misses, the same item hits"
    assert not local_store.exists(cache_key), "the task's own key holds no item's outputs"


@pytest.mark.parametrize("kind", ["file", "value", "directory"])
def test_gather_refuses_an_item_result_naming_an_object_outside_the_store(local_store, kind):
    """An item's result is written where its task runs: a value "stored" in the gather pod's own
    environment (its store credentials) must not become the gathered list."""
    run = Map(local_store)
    _, index = _index(run.split(resource.Output(kind="value", value=[1])))
    forged = taskpod.PublishResult(outputs={"o0": resource.Output(kind=kind, uri="file:///proc/self/environ",
                                                                  size=1, sha256="0" * 64)})
    podruntime.store_item_result(run.unit(index, 0), local_store, forged)
    with pytest.raises(errors.PathEscapeError, match="names the object 'file:///proc/self/environ'"):
        run.gather(index, _record(1), 1, [resource.TaskOutput(name="o0", kind=kind)])


def test_a_map_over_nothing_gathers_an_empty_list_and_an_empty_directory(local_store):
    run = Map(local_store)
    count, index = _index(run.split(resource.Output(kind="value", value=[])))
    gathered = run.gather(index, items.Record(0), count, [resource.TaskOutput(name="v", kind="value"),
                                                          resource.TaskOutput(name="f")])
    assert count == 0 and gathered["v"].value == [] and gathered["f"].file_count == 0
