"""Authoring: interfaces are checked when tasks are defined and when workflows compile."""

import importlib
import os
import pathlib
import sys
import typing

import pytest
import yaml

import ferry
from ferry.api import resource
from ferry.definitions import workflows

from tests.runtime import sample_workflows as samples


def test_untyped_parameter_or_return_is_rejected_at_definition():
    with pytest.raises(ferry.DefinitionError, match="parameter 'x' has no type annotation"):
        @ferry.task
        def untyped(x) -> int:
            return x

    with pytest.raises(ferry.DefinitionError, match="annotate the return type"):
        @ferry.task
        def no_return(x: int):
            return x


def test_calls_are_checked_when_the_workflow_compiles():
    @ferry.workflow
    def missing() -> int:
        return samples.add(a=1)

    with pytest.raises(ferry.DefinitionError, match="calling task add: missing a required argument: 'b'"):
        missing.compile()

    @ferry.workflow
    def wrong_literal() -> int:
        return samples.add(a=1, b="two")

    with pytest.raises(ferry.DefinitionError, match="input 'b'.*expected int"):
        wrong_literal.compile()

    @ferry.workflow
    def wrong_upstream() -> int:
        return samples.add(a=1, b=samples.make_dir(n=2))

    with pytest.raises(ferry.DefinitionError, match="expects int but gets Directory from task make-dir 'o0'"):
        wrong_upstream.compile()


def test_compiled_workflow_is_a_valid_resource_with_edges_and_unique_names():
    @ferry.workflow
    def chain(x: int = 1) -> int:
        return samples.add(a=samples.add(a=x, b=2), b=samples.add(a=x, b=3))

    spec = chain.compile(x=5)
    assert [t.name for t in spec.tasks] == ["add", "add-2", "add-3"]
    last = spec.tasks[2]
    assert [i.from_task.task for i in last.inputs] == ["add", "add-2"]
    assert spec.tasks[0].inputs[0].from_input == "x" and spec.inputs[0].value == 5
    assert spec.tasks[0].function == "tests.runtime.sample_workflows:add"
    manifest = yaml.safe_load(yaml.safe_dump(chain.manifest()))
    assert manifest["kind"] == "Workflow" and manifest["metadata"] == {"generateName": "chain-"}
    assert chain.manifest("nightly")["metadata"] == {"name": "nightly"}
    resource.WorkflowSpec.model_validate(manifest["spec"])


def test_workflow_inputs_without_defaults_must_be_given():
    with pytest.raises(ferry.DefinitionError, match="input 'log' has no default; give it a value \\(`--log VALUE`"):
        samples.two_in_parallel.compile()
    with pytest.raises(ferry.DefinitionError, match="has no input 'nope'"):
        samples.directory_stats.compile(nope=1)


def test_cache_version_defaults_to_the_source():
    assert samples.counted.resource("counted", []).cache.version == "1"
    assert ferry.task(cache=True)(samples.add.fn).resource("add", []).cache.version.startswith("source-")


PROJECT = {
    "cachedproject/__init__.py": "",
    "cachedproject/deeper/__init__.py": "",
    "cachedproject/deeper/pipeline.py": """
import json
import ferry
from .. import scaling
from ..maths import sigmoid


def offset(x):
    return x + 1


@ferry.task(cache=True)
def total(x: int) -> int:
    from cachedproject import late  # imported when the task runs: its code is the task's too
    return late.round_off(scaling.scale(sigmoid(offset(x))))
""",
    "cachedproject/maths.py": "def sigmoid(x):\n    return x / (1 + abs(x))\n",
    "cachedproject/scaling.py": "from cachedproject.units import UNIT\n\ndef scale(x):\n    return x * UNIT\n",
    "cachedproject/units.py": "UNIT = 10\n",
    "cachedproject/late.py": "def round_off(x):\n    return round(x)\n",
    "cachedproject/unrelated.py": "NOT_IMPORTED = 1\n",
    "notes.txt": "data the task does not read\n",
}


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder whose cacheable task calls helpers in its module and in modules it imports."""
    for name, text in PROJECT.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("cachedproject")]:
        del sys.modules[name]


@pytest.mark.parametrize("edited, replaced, replacement", [
    ("cachedproject/deeper/pipeline.py", "return x + 1", "return x + 2"),
    ("cachedproject/maths.py", "1 + abs(x)", "2 + abs(x)"),
    ("cachedproject/units.py", "10", "100"),
    ("cachedproject/late.py", "round(x)", "round(x, 1)"),
    ("cachedproject/__init__.py", "", "PACKAGE_SETTING = 2"),
    ("cachedproject/deeper/__init__.py", "", "PACKAGE_SETTING = 2"),
])
def test_the_cache_version_changes_with_any_project_code_the_task_runs(project, edited, replaced, replacement):
    """Only the function's own source was keyed: editing the helper it calls served the old result."""
    task = importlib.import_module("cachedproject.deeper.pipeline").total
    before = task.cache_version()
    path = project / edited
    path.write_text(path.read_text().replace(replaced, replacement, 1) if replaced else replacement)
    assert task.cache_version() != before


def test_the_cache_version_stays_when_files_the_task_does_not_import_change(project):
    task = importlib.import_module("cachedproject.deeper.pipeline").total
    before = task.cache_version()
    (project / "cachedproject" / "unrelated.py").write_text("NOT_IMPORTED = 2\n")
    (project / "notes.txt").write_text("changed\n")
    (project / "cachedproject" / "new.py").write_text("X = 1\n")
    assert task.cache_version() == before
    assert ferry.task(cache=True, cache_version="2")(task.fn).cache_version() == "2"


def test_tasks_must_be_importable_by_task_processes():
    with pytest.raises(ferry.DefinitionError, match="defined inside a function; define tasks at module level"):
        @ferry.task
        def local_task() -> int:
            return 1


def test_nested_workflow_calls_are_refused():
    @ferry.workflow
    def outer() -> samples.Stats:
        return samples.directory_stats(n=1)

    with pytest.raises(ferry.DefinitionError, match="cannot be called inside another workflow"):
        outer.compile()
    assert isinstance(samples.directory_stats, workflows.Workflow)


def test_pod_settings_of_a_python_task_reach_its_resource():
    task, = samples.placed.compile().tasks
    assert task.node_selector == {"pool": "gpu"} and task.scratch_size_limit == "8Gi"
    assert task.volumes[0]["name"] == "models" and task.volume_mounts[0].mount_path == "/models"


def test_unknown_or_bad_pod_settings_are_refused_when_the_task_is_defined():
    with pytest.raises(ferry.DefinitionError, match="pod: 'nodeSelektor' is not a pod setting; use one of .*nodeSelector"):
        ferry.task(pod={"nodeSelektor": {"a": "b"}})(samples.add.fn)
    with pytest.raises(ferry.DefinitionError, match="(?s)pod of task add.*volumeMounts.*under /ferry"):
        ferry.task(pod={"volumes": [{"name": "v", "emptyDir": {}}],
                        "volumeMounts": [{"name": "v", "mountPath": "/ferry/x"}]})(samples.add.fn)


DEFINES_A_TASK = "import ferry\n@ferry.task\ndef shout(word: str) -> str:\n    return word.upper()\n"


@pytest.mark.parametrize("how", ["stdin", "-c", "script with a dash.py"])
def test_a_task_no_process_can_import_says_where_to_put_it(how, tmp_path):
    import subprocess
    import sys

    script = tmp_path / "my-tasks.py"
    script.write_text(DEFINES_A_TASK)
    command = {"stdin": [sys.executable, "-"], "-c": [sys.executable, "-c", DEFINES_A_TASK],
               "script with a dash.py": [sys.executable, str(script)]}[how]
    result = subprocess.run(command, input=DEFINES_A_TASK if how == "stdin" else None, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    last = result.stderr.splitlines()[-1]
    assert "pattern" not in result.stderr and last.startswith("ferry.definitions.tasks.DefinitionError: task shout ")
    if how == "script with a dash.py":
        assert "my-tasks.py is not a Python module name" in last and "rename it (e.g. my_tasks.py)" in last
    else:
        assert "put it in a module file" in last and "ferry run file.py:workflow" in last


def test_python_names_name_inputs_and_outputs_as_they_are_written():
    """A NamedTuple's ``row_count`` and a parameter ``max_rows`` keep their names in the manifest
    (``output: row_count``); only task and workflow names become DNS labels, as they name pods."""
    spec = samples.named.compile(max_rows=2)
    count, upper = spec.tasks
    assert [o.name for o in count.outputs] == ["row_count", "summary"]
    assert [(i.name, i.from_input) for i in count.inputs] == [("n", "n"), ("max_rows", "max_rows")]
    assert [(i.name, i.value) for i in spec.inputs] == [("n", 3), ("max_rows", 2)]
    assert upper.inputs[0].from_task == resource.TaskOutputRef(task="count", output="summary")
    assert [(o.name, o.from_task.task, o.from_task.output) for o in spec.outputs] == [
        ("row_count", "count", "row_count"), ("summary", "upper", "o0")]
    manifest = yaml.safe_load(yaml.safe_dump(samples.named.manifest()))
    assert resource.WorkflowSpec.model_validate(manifest["spec"]) == samples.named.compile()


def test_names_no_variable_can_hold_are_refused_where_the_task_is_defined():
    with pytest.raises(ferry.DefinitionError, match=r"task clash: inputs 'X' and 'x' would both be FERRY_INPUT_X; "
                                                    r"rename one"):
        @ferry.task
        def clash(X: int, x: int) -> int:
            return x
    with pytest.raises(ferry.DefinitionError, match=r"task wide: input 'größe' cannot name an input or output: "
                                                    r"use ASCII letters, digits, _ and -"):
        @ferry.task
        def wide(größe: int) -> int:
            return größe

    class Long(typing.NamedTuple):
        number_of_rows_left_after_filtering_them_all: int

    with pytest.raises(ferry.DefinitionError, match="task long: output 'number_of_rows_left_after_filtering_them_all' "
                                                    "is longer than 40 characters"):
        @ferry.task
        def long() -> Long:
            return Long(1)


@ferry.workflow(ttl_seconds_after_finished=3600, pod_retention="KeepFailed", artifact_cleanup="OnDeletion",
                failure_policy="Continue")
def kept_for_an_hour(x: int = 1) -> int:
    return samples.add(a=x, b=1)


def test_workflow_options_set_retention_and_cleanup_in_its_spec():
    spec = kept_for_an_hour.manifest()["spec"]
    assert {k: spec[k] for k in ("ttlSecondsAfterFinished", "podRetention", "artifactCleanup", "failurePolicy")} == {
        "ttlSecondsAfterFinished": 3600, "podRetention": "KeepFailed", "artifactCleanup": "OnDeletion",
        "failurePolicy": "Continue"}
    assert "podRetention" not in samples.directory_stats.manifest()["spec"], "defaults stay out of the manifest"
    assert kept_for_an_hour(x=2) == 3, "the local executor runs it as any other"


@pytest.mark.parametrize("options, says", [
    ({"pod_retention": "Sometimes"}, "pod_retention: Input should be 'KeepAll', 'KeepFailed' or 'KeepNone'"),
    ({"ttl_seconds_after_finished": -1}, "ttl_seconds_after_finished: Input should be greater than or equal to 0"),
    ({"ttl": 60}, "no option 'ttl'; the options are failure_policy, ttl_seconds_after_finished")])
def test_bad_workflow_options_are_refused_where_it_is_defined(options, says):
    with pytest.raises(ferry.DefinitionError, match=f"@ferry.workflow of 'flow': {says}"):
        @ferry.workflow(**options)
        def flow() -> None:
            return None


@ferry.task
def is_good(n: int) -> bool:
    return n > 0


@ferry.task
def publish(text: str) -> str:
    return text


@ferry.task
def draft(text: str) -> str:
    return text


@ferry.task
def numbers(n: int) -> list[int]:
    return list(range(n))


def _refused(body) -> ferry.DefinitionError:
    """The DefinitionError compiling a one-task workflow whose ``body`` misuses what it is given."""
    @ferry.workflow
    def branching(mode: str = "draft") -> str:
        return body(mode)

    with pytest.raises(ferry.DefinitionError) as refused:
        branching.compile(mode="publish")
    return refused.value


def _line_of(marker: str) -> str:
    """``tests/runtime/definitions/test_tasks.py:N``: where in this file ``marker`` is written, as an error must name it
    (relative to the current directory, as the user's code is shown)."""
    lines = pathlib.Path(__file__).read_text().splitlines()
    return f"{os.path.relpath(__file__)}:{next(i for i, line in enumerate(lines, 1) if marker in line and 'marker' not in line)}"


def body_if(mode):
    if is_good(n=1):  # body_if
        return publish(text=mode)
    return draft(text=mode)


def body_compare(mode):
    if mode == "publish":  # body_compare
        return publish(text=mode)
    return draft(text=mode)


def body_not(mode):
    return publish(text=mode) if not mode else draft(text=mode)  # body_not


def body_and(mode):
    return is_good(n=1) and publish(text=mode)  # body_and


def body_while(mode):
    while is_good(n=2):  # body_while
        return publish(text=mode)
    return draft(text=mode)


def body_bool(mode):
    return publish(text=str(bool(mode)))  # body_bool


def body_less(mode):
    return publish(text=mode) if numbers(n=3) < [1] else draft(text=mode)  # body_less


def body_one_of(mode):
    return publish(text=mode) if mode in ("publish", "release") else draft(text=mode)  # body_one_of


@pytest.mark.parametrize("body", [body_if, body_compare, body_not, body_and, body_while, body_bool, body_less,
                                  body_one_of], ids=lambda body: body.__name__)
def test_a_branch_on_a_value_not_known_until_the_run_is_refused_where_it_is_written(body):
    """A Promise was truthy and ``mode == "publish"`` False at compile time: the workflow silently
    ran one branch whatever the run's values."""
    error = _refused(body)
    message = str(error)
    assert "\n" not in message
    assert message.startswith(_line_of(f"# {body.__name__}") + ": "), message
    assert "not known until the workflow runs" in message and "ferry.when" in message
    assert "if" in message and "a task" in message


def body_for(mode):
    for n in numbers(n=3):  # body_for
        publish(text=str(n))
    return draft(text=mode)


def body_index(mode):
    return publish(text=str(numbers(n=3)[0]))  # body_index


def body_len(mode):
    return publish(text=str(len(numbers(n=3))))  # body_len


def body_contains(mode):
    return publish(text=mode) if 2 in numbers(n=3) else draft(text=mode)  # body_contains


def body_iterate_input(mode):
    return publish(text="".join(c for c in mode))  # body_iterate_input


@pytest.mark.parametrize("body", [body_for, body_index, body_len, body_contains, body_iterate_input],
                         ids=lambda body: body.__name__)
def test_iterating_or_indexing_a_value_not_known_until_the_run_is_refused_where_it_is_written(body):
    message = str(_refused(body))
    assert "\n" not in message
    assert message.startswith(_line_of(f"# {body.__name__}") + ": "), message
    assert "not known until the workflow runs" in message and "ferry.map" in message


def body_format(mode):
    return publish(text=f"{mode}-v2")  # body_format


def test_formatting_a_value_not_known_until_the_run_into_text_is_refused():
    """An f-string gave the task the placeholder's text instead of the run's value."""
    message = str(_refused(body_format))
    assert message.startswith(_line_of("# body_format") + ": ") and "formatted into a string" in message


def test_what_a_refusal_names_the_value_it_tests():
    assert "workflow input 'mode'" in str(_refused(body_compare))
    assert "output 'o0' of task is-good" in str(_refused(body_if))


def test_promises_stay_usable_as_dict_keys_and_in_sets_and_named_fields_still_work():
    seen = {}

    @ferry.workflow
    def keyed(n: int = 2) -> int:
        first, second = samples.add(a=n, b=1), samples.add(a=n, b=1)
        seen.update({first: "first", second: "second"})
        assert len({first, second, first}) == 2 and first in {first} and seen[first] == "first"
        counted = samples.count(n=n, max_rows=1)
        return samples.add(a=counted.row_count, b=second)

    spec = keyed.compile()
    assert [t.name for t in spec.tasks] == ["add", "add-2", "count", "add-3"]
    assert list(seen.values()) == ["first", "second"]


@pytest.mark.parametrize("annotation, shown", [
    (list[ferry.Asset], "list[Asset]"), (dict[str, ferry.Directory], "dict[str, Directory]"),
    (typing.Optional[ferry.File], "Optional[File]"), (tuple[ferry.Asset, ...], "tuple[Asset, ...]"),
])
def test_files_inside_other_types_are_refused_where_the_task_is_defined(annotation, shown):
    """``dict[str, ferry.File]`` was accepted, then compiling failed with 87 lines of pydantic advice
    (``list[ferry.File]`` and ``list[ferry.Directory]`` travel as a directory: tests/runtime/values/test_lists.py)."""
    def takes(files) -> int:
        return 0

    def gives() -> int:
        return 0

    takes.__annotations__ = {"files": annotation, "return": int}
    gives.__annotations__ = {"return": annotation}
    for fn, what in ((takes, "parameter 'files'"), (gives, "the return type")):
        fn.__module__, fn.__qualname__ = samples.__name__, fn.__name__
        with pytest.raises(ferry.DefinitionError) as refused:
            ferry.task(fn)
        message = str(refused.value)
        assert "\n" not in message and f"task {fn.__name__}: {what} is {shown}" in message, message
        assert "not supported yet" in message and "ferry.Directory" in message


class Opaque:
    """A class pydantic cannot serialize."""


def test_a_type_no_value_can_travel_as_is_refused_in_one_line_where_the_task_is_defined():
    def opaque(x: Opaque) -> int:
        return 0

    opaque.__module__, opaque.__qualname__ = samples.__name__, "opaque"
    with pytest.raises(ferry.DefinitionError) as refused:
        ferry.task(opaque)
    message = str(refused.value)
    assert "\n" not in message and "task opaque: parameter 'x' is Opaque" in message, message
    assert "arbitrary_types_allowed" not in message


@ferry.task
def runs_at(speed: str, level: int) -> str:
    return f"{speed}{level}"


@ferry.task
def runs_fast(speed: typing.Literal["fast", "faster"]) -> str:
    return speed


def test_a_literal_input_passes_to_a_parameter_of_its_values_type():
    @ferry.workflow
    def tuned(speed: typing.Literal["fast", "slow"] = "fast", level: typing.Literal[1, 2] = 1) -> str:
        return runs_at(speed=speed, level=level)

    task = tuned.compile().tasks[0]
    assert [i.from_input for i in task.inputs] == ["speed", "level"]

    @ferry.workflow
    def crossed(speed: typing.Literal["fast", "slow"] = "fast", level: typing.Literal[1, 2] = 1) -> str:
        return runs_at(speed=level, level=speed)

    with pytest.raises(ferry.DefinitionError, match="input 'speed' expects str but gets Literal\\[1, 2\\]"):
        crossed.compile()

    @ferry.workflow
    def narrowed(speed: typing.Literal["fast", "slow"] = "fast") -> str:
        return runs_fast(speed=speed)

    with pytest.raises(ferry.DefinitionError, match="expects Literal\\['fast', 'faster'\\] but gets"):
        narrowed.compile()

    @ferry.workflow
    def widened(speed: str = "fast") -> str:
        return runs_fast(speed=speed)

    with pytest.raises(ferry.DefinitionError, match="expects Literal"):
        widened.compile()

    @ferry.workflow
    def subset(speed: typing.Literal["fast"] = "fast") -> str:
        return runs_fast(speed=speed)

    assert subset.compile().tasks[0].inputs[0].from_input == "speed"
