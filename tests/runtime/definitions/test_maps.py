"""Maps: ``ferry.map(task, ...)(...)`` and ``task.map(...)`` compile to one node with ``map`` and a
``fromItem`` input; what they return is the gathered outputs, typed as downstream tasks take them."""

from __future__ import annotations

import sys
import typing

import pytest
import yaml

import ferry
from ferry.api import resource
from ferry import cli
from ferry.definitions import maps

from tests.runtime import sample_workflows as samples


@ferry.task
def process(path: ferry.File, n: int) -> int:
    return n


@ferry.task(retries=1, timeout=30)
def square(x: int) -> int:
    return x * x


@ferry.task
def numbers(n: int) -> list[int]:
    return list(range(n))


@ferry.task
def total(values: list[int]) -> int:
    return sum(v or 0 for v in values)


@ferry.task
def copy(path: ferry.File) -> ferry.File:
    return path


@ferry.task
def unpack(path: ferry.File) -> ferry.Directory:
    return ferry.Directory("out")


@ferry.task
def count_files(files: list[ferry.File]) -> int:
    return len(files)


@ferry.task
def count_dirs(directories: list[ferry.Directory]) -> int:
    return len(directories)


@ferry.task
def whole(d: ferry.Directory) -> int:
    return 0


@ferry.task
def assets(at: str) -> ferry.Asset:
    return ferry.asset(at=at)


class Both(typing.NamedTuple):
    size: int
    copy: ferry.File


@ferry.task
def both(path: ferry.File) -> Both:
    return Both(1, path)


def compiled(body, **inputs) -> resource.WorkflowSpec:
    return ferry.workflow(body).compile(**inputs)


def node(spec: resource.WorkflowSpec, name: str) -> resource.Task:
    return next(task for task in spec.tasks if task.name == name)


def map_over_files() -> int:
    raw = samples.make_dir(n=4)
    return total(values=ferry.map(process, parallelism=20, min_success_ratio=0.9, batch_size=10)(path=raw, n=3))


def test_a_map_over_a_directory_is_one_node_whose_file_input_is_the_item():
    spec = compiled(map_over_files)
    mapped = node(spec, "process")
    assert mapped.map == resource.Map(over=resource.MapOver(from_task=resource.TaskOutputRef(task="make-dir", output="o0"),
                                                            kind=resource.Kind.DIRECTORY),
                                      parallelism=20, min_success_ratio=0.9, batch_size=10)
    assert mapped.inputs == [resource.TaskInput(name="path", from_item=True, kind=resource.Kind.FILE),
                             resource.TaskInput(name="n", value=3)]
    assert [o.kind for o in mapped.outputs] == [resource.Kind.VALUE] and mapped.function.endswith(":process")
    assert node(spec, "total").inputs[0].from_task == resource.TaskOutputRef(task="process", output="o0")
    assert resource.WorkflowSpec.model_validate(spec.model_dump(by_alias=True))


def map_shorthand(items: list[int] = [1, 2]) -> int:
    return total(values=square.map(x=items))


def test_the_shorthand_maps_with_the_defaults_over_a_workflow_input():
    spec = compiled(map_shorthand)
    mapped = node(spec, "square")
    assert mapped.map == resource.Map(over=resource.MapOver(from_input="items", kind=resource.Kind.VALUE))
    assert mapped.inputs == [resource.TaskInput(name="x", from_item=True, kind=resource.Kind.VALUE)]
    assert mapped.retries.limit == 1 and mapped.timeout_seconds == 30  # the task's own, for each item


def map_over_a_task_list() -> int:
    return total(values=square.map(x=numbers(n=5)))


def map_over_a_literal_list() -> int:
    return total(values=square.map(x=[3, 4, 5]))


def test_a_map_over_another_tasks_list_or_a_literal_list():
    over = node(compiled(map_over_a_task_list), "square").map.over
    assert over == resource.MapOver(from_task=resource.TaskOutputRef(task="numbers", output="o0"),
                                    kind=resource.Kind.VALUE)
    assert node(compiled(map_over_a_literal_list), "square").map.over == resource.MapOver(
        value=[3, 4, 5], kind=resource.Kind.VALUE)


def map_over_a_stored_directory() -> int:
    return total(values=process.map(path=ferry.Directory("s3://bucket/raw/"), n=1))


def map_over_an_asset() -> int:
    return total(values=process.map(path=assets(at="."), n=1))


def test_a_map_over_a_stored_directory_or_an_asset_goes_over_its_files():
    assert node(compiled(map_over_a_stored_directory), "process").map.over == resource.MapOver(
        uri="s3://bucket/raw/", kind=resource.Kind.DIRECTORY)
    assert node(compiled(map_over_an_asset), "process").map.over.kind == resource.Kind.ASSET


def map_with_options() -> int:
    return total(values=ferry.map(square, retries=4, timeout=120, cache=True)(x=[1]))


def test_a_maps_options_replace_the_tasks_own_for_each_item():
    mapped = node(compiled(map_with_options), "square")
    assert mapped.retries.limit == 4 and mapped.timeout_seconds == 120
    assert mapped.cache is not None and mapped.cache.version.startswith("source-")
    plain = node(compiled(map_shorthand), "square")
    assert plain.cache is None


def gathered_files() -> tuple[int, int]:
    files = copy.map(path=samples.make_dir(n=2))
    return count_files(files=files), whole(d=files)


def gathered_directories() -> int:
    return count_dirs(directories=unpack.map(path=samples.make_dir(n=2)))


def gathered_named() -> tuple[int, int]:
    out = both.map(path=samples.make_dir(n=2))
    return total(values=out.size), count_files(files=out.copy)


def test_a_maps_outputs_are_gathered_as_lists_or_one_directory():
    spec = compiled(gathered_files)
    assert node(spec, "count-files").inputs[0].from_task.task == "copy"
    assert node(spec, "whole").inputs[0].from_task.task == "copy"
    assert spec.output_kind("copy", "o0") == resource.Kind.DIRECTORY
    assert node(compiled(gathered_directories), "count-dirs").inputs[0].from_task.task == "unpack"
    assert node(compiled(gathered_named), "count-files").inputs[0].from_task.output == "copy"


def gathered_given_to_one() -> int:
    return square(x=square.map(x=[1, 2]))


def gathered_files_given_to_a_file() -> ferry.File:
    return copy(path=copy.map(path=samples.make_dir(n=2)))


def test_a_gathered_output_is_checked_against_what_the_next_task_takes():
    with pytest.raises(ferry.DefinitionError, match=r"input 'x' expects int but gets list\[int\] from task square"):
        compiled(gathered_given_to_one)
    with pytest.raises(ferry.DefinitionError, match=r"input 'path' expects File but gets list\[File\] from task copy"):
        compiled(gathered_files_given_to_a_file)


def test_the_gathered_types():
    assert maps.gathered(int) == list[int] and maps.gathered(ferry.File) == list[ferry.File]
    assert maps.gathered(ferry.Directory) == list[ferry.Directory] == maps.gathered(ferry.Asset)


LINES: list[int] = []


def maps_over_nothing() -> int:
    LINES.append(sys._getframe().f_lineno + 1)
    return total(values=process.map(path=copy(path=ferry.File("s3://b/x")), n=3))


def maps_over_two() -> int:
    LINES.append(sys._getframe().f_lineno + 1)
    return total(values=samples.add.map(a=[1, 2], b=[3, 4]))


def test_a_map_over_no_argument_or_two_is_refused_naming_the_line_and_the_parameters():
    with pytest.raises(ferry.DefinitionError) as none:
        compiled(maps_over_nothing)
    message = str(none.value)
    assert message.startswith(f"tests/runtime/definitions/test_maps.py:{LINES[-1]}: "), message
    assert "maps over none of its arguments" in message and "'path' (File)" in message and "'n' (int)" in message
    assert "ferry.Directory" in message and "list[int]" in message
    with pytest.raises(ferry.DefinitionError) as two:
        compiled(maps_over_two)
    message = str(two.value)
    assert message.startswith(f"tests/runtime/definitions/test_maps.py:{LINES[-1]}: ") and "'a' and 'b'" in message and "map over one" in message


def fixed_argument_mistyped() -> int:
    return total(values=process.map(path=samples.make_dir(n=1), n="three"))


def test_the_fixed_arguments_are_checked_as_for_any_call():
    with pytest.raises(ferry.DefinitionError, match="calling task process: input 'n'.*expected int"):
        compiled(fixed_argument_mistyped)


def test_a_map_over_a_workflow_or_something_else_is_refused():
    with pytest.raises(ferry.DefinitionError, match="ferry.map takes a task.*directory-stats is a workflow.*sub-workflows"):
        ferry.map(samples.directory_stats)
    with pytest.raises(ferry.DefinitionError, match="ferry.map takes a task .*@ferry.task.*not a function"):
        ferry.map(len)


@pytest.mark.parametrize("option, value, problem", [
    ("parallelism", 0, "parallelism: .*greater than or equal to 1"),
    ("min_success_ratio", 1.5, "min_success_ratio: .*less than or equal to 1"),
    ("batch_size", 0, "batch_size: .*greater than or equal to 1"),
    ("retries", -1, "retries: .*greater than or equal to 0"),
    ("timeout", 0, "timeout: .*greater than or equal to 1"),
])
def test_bad_map_options_are_refused_where_the_map_is_written(option, value, problem):
    with pytest.raises(ferry.DefinitionError, match=f"ferry.map\\(square\\): {problem}") as refused:
        ferry.map(square, **{option: value})
    assert str(refused.value).startswith("tests/runtime/definitions/test_maps.py:")


def test_a_map_outside_a_workflow_says_where_to_call_it():
    with pytest.raises(ferry.DefinitionError, match=r"ferry.map\(square\) is called outside a workflow.*@ferry.workflow"):
        ferry.map(square)(x=[1, 2])
    with pytest.raises(ferry.DefinitionError, match=r"ferry.map\(square\) is called outside a workflow"):
        square.map(x=[1, 2])


def pipeline(n: int = 3) -> int:
    return total(values=ferry.map(process, parallelism=20)(path=ferry.Directory("s3://bucket/raw/"), n=n))


def test_ferry_compile_prints_the_map_as_yaml(capsys):
    assert cli.main(["compile", f"{__name__}:wf_pipeline"]) == 0
    manifest = yaml.safe_load(capsys.readouterr().out)
    mapped = next(t for t in manifest["spec"]["tasks"] if t["name"] == "process")
    assert mapped["map"] == {"over": {"uri": "s3://bucket/raw/", "kind": "directory"}, "parallelism": 20}
    assert mapped["inputs"] == [{"name": "path", "fromItem": True, "kind": "file"}, {"name": "n", "fromInput": "n"}]
    assert mapped["outputs"] == [{"name": "o0", "kind": "value"}]


wf_pipeline = ferry.workflow(pipeline)


def directories_given_as_files() -> int:
    return count_files(files=unpack.map(path=samples.make_dir(n=2)))


def files_given_as_directories() -> int:
    return count_dirs(directories=copy.map(path=samples.make_dir(n=2)))


def test_gathered_files_and_gathered_directories_are_not_taken_for_each_other():
    with pytest.raises(ferry.DefinitionError, match=r"'files' expects list\[File\] but gets list\[Directory\]"):
        compiled(directories_given_as_files)
    with pytest.raises(ferry.DefinitionError, match=r"'directories' expects list\[Directory\] but gets list\[File\]"):
        compiled(files_given_as_directories)


def map_over_listed_files(files: list[ferry.File]) -> int:
    return total(values=process.map(path=files, n=1))


def test_a_map_over_a_list_of_files_a_workflow_is_given(local_store, tmp_path):
    (tmp_path / "a.txt").write_text("a")
    with ferry.use_store(local_store):
        spec = compiled(map_over_listed_files, files=[ferry.File(tmp_path / "a.txt"), ferry.File(tmp_path / "a.txt")])
        given, = spec.inputs
        assert given.kind == resource.Kind.DIRECTORY and given.uri.startswith(local_store.raw_data_prefix)
        assert [e.path for e in local_store.manifest(given.uri).files] == ["0", "1"]
    assert node(spec, "process").map.over == resource.MapOver(from_input="files", kind=resource.Kind.DIRECTORY)


LOCAL_FILE: list = []


def map_over_a_literal_list_of_files() -> int:
    return total(values=process.map(path=[ferry.File(LOCAL_FILE[0])], n=1))


def test_a_literal_list_of_files_is_published_as_one_directory_to_map_over(local_store, tmp_path):
    (tmp_path / "a.txt").write_text("a")
    LOCAL_FILE[:] = [tmp_path / "a.txt"]
    with ferry.use_store(local_store):
        over = node(compiled(map_over_a_literal_list_of_files), "process").map.over
        assert over.kind == resource.Kind.DIRECTORY and [e.path for e in local_store.manifest(over.uri).files] == ["0"]


def map_with_a_bad_item() -> int:
    return total(values=square.map(x=[1, "two"]))


def test_a_list_whose_items_are_not_all_of_the_type_is_no_map():
    with pytest.raises(ferry.DefinitionError, match=r"input 'x'.*expected int, got \[1, 'two'\]"):
        compiled(map_with_a_bad_item)
