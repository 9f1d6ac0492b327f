"""The embedded default: workflows run here, each task in its own process, through the pod path."""

import os
import re
import subprocess
import sys
import threading
import time

import pytest

import ferry
from ferry.api import resource
from ferry.execution import local

from tests.runtime import sample_workflows as samples

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@pytest.fixture
def store(tmp_path):
    with ferry.use_store(ferry.Store(ferry.Settings(raw_data_prefix=(tmp_path / "raw").as_uri(),
                                                    cache_dir=tmp_path / "cache"))) as chosen:
        yield chosen


def test_calling_a_workflow_returns_python_values(store):
    result = samples.directory_stats(n=3)
    assert result == samples.Stats(files=3, names=["f0.txt", "f1.txt", "f2.txt"])


def test_calling_a_task_outside_a_workflow_runs_it(store):
    made = samples.make_dir(n=2, prefix="x")
    assert isinstance(made, ferry.Directory) and made.remote_source.startswith(store.raw_data_prefix)
    assert sorted(os.listdir(made)) == ["x0.txt", "x1.txt"]
    assert samples.add(a=2, b=3) == 5


def test_independent_tasks_run_in_parallel(store, tmp_path):
    log = tmp_path / "log"
    assert samples.two_in_parallel(log=str(log)) == ("a", "b")
    times = {}
    for line in log.read_text().splitlines():
        name, event, moment = line.split()
        times[(name, event)] = float(moment)
    assert times[("a", "start")] < times[("b", "end")] and times[("b", "start")] < times[("a", "end")]


def test_retry_resumes_from_the_checkpoint_of_the_failed_attempt(store):
    events = []
    run = local.run_workflow(samples.resumes, {}, store, report=lambda *event: events.append(event))
    assert run.result() == "attempt 2 resumed from halfway"
    assert run.status.tasks["flaky-with-checkpoint"].attempts == 2
    retrying = [message for _, reason, message in events if reason == "TaskRetrying"]
    assert "RuntimeError: first attempt fails" in retrying[0]


def test_context_gives_a_fresh_working_directory_ids_and_secrets(store, monkeypatch):
    monkeypatch.setenv("FERRY_SECRET_FERRY_DB_TOKEN", "hunter2")
    report = samples.context_report()
    assert report["cwd"] == report["working_directory"] and report["empty"] == []
    assert report["task"] == "describe-context" and report["attempt"] == 1
    assert report["execution_id"].startswith("context-report-")
    assert report["secret"] == "hunter2"


def test_cache_reuses_outputs_until_overwritten(store, tmp_path):
    counter = tmp_path / "counter"
    first = local.run_workflow(samples.cached, {"counter": str(counter)}, store)
    second = local.run_workflow(samples.cached, {"counter": str(counter)}, store)
    assert first.result() == second.result() == 42
    assert counter.read_text().count("ran") == 1
    assert second.status.tasks["counted"].message == "outputs reused from the cache"
    local.run_workflow(samples.cached, {"counter": str(counter), "x": 1}, store)
    assert counter.read_text().count("ran") == 2, "other inputs are another cache entry"
    local.run_workflow(samples.cached, {"counter": str(counter)}, store, overwrite_cache=True)
    assert counter.read_text().count("ran") == 3


def test_a_failing_task_fails_the_run_with_its_error(store):
    run = local.run_workflow(samples.failing, {}, store)
    assert run.status.phase == resource.Phase.FAILED
    assert "ValueError: this task always fails" in run.status.message
    with pytest.raises(RuntimeError, match="this task always fails"):
        run.result()


def test_a_python_task_cannot_publish_its_own_environment(store):
    """The process that publishes a Python task's results holds the store's keys in its environment."""
    run = local.run_workflow(samples.leaks_environment, {}, store)
    assert run.status.phase == resource.Phase.FAILED
    assert "kernel file" in run.status.message and "/environ" in run.status.message


def ferry_cli(*args, cwd=REPO, env=None):
    return subprocess.run([sys.executable, "-m", "ferry", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_cli_runs_the_quickstart_and_prints_outputs(tmp_path):
    result = ferry_cli("run", "examples/quickstart.py:pipeline", "--days", "2", "--store", (tmp_path / "raw").as_uri())
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" = ", 1) for line in result.stdout.splitlines())
    assert list(lines) == ["visits", "report", "index"], "named by the workflow's NamedTuple"
    assert lines["visits"] == "300"
    assert lines["report"].startswith(f"Asset({(tmp_path / 'raw').as_uri()}/local/pipeline-")
    assert lines["index"].startswith(f"File({(tmp_path / 'raw').as_uri()}/local/pipeline-")
    assert "✔ task index succeeded" in result.stderr
    assert "⇪ task collect published 2 files (34 B)" in result.stderr
    index_file = ferry.Store(ferry.Settings(raw_data_prefix=(tmp_path / "raw").as_uri())).open(lines["index"][5:-1])
    assert index_file.read().decode() == "charts/day-1.txt: #\ncharts/day-2.txt: ##\n"
    listed = ferry_cli("ls", lines["report"][6:-1])
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[-1] for line in listed.stdout.splitlines()] == [
        "charts/day-1.txt", "charts/day-2.txt", "summary.txt"]
    run_id = re.search(r"^run (pipeline-[0-9a-f]{8}); see it with: ferry get --local \1$", result.stderr, re.M)[1]
    assert lines["report"].startswith(f"Asset({(tmp_path / 'raw').as_uri()}/local/{run_id}/")
    runs = ferry_cli("get", "--local")
    assert runs.returncode == 0, runs.stderr
    assert runs.stdout.splitlines()[1].split()[:3] == [run_id, "Succeeded", "5/5"]
    one = ferry_cli("get", "--local", run_id)
    assert one.returncode == 0 and one.stdout.splitlines()[0] == f"{run_id}: Succeeded 5/5", one.stderr
    assert "  output visits = 300" in one.stdout.splitlines()
    counted = next(line for line in one.stdout.splitlines() if line.split()[0] == "count")
    assert "Succeeded" in counted and "items 2/2" in counted, "the map ran one unit per report"
    assert ferry_cli("logs", "--local", run_id, "index").returncode == 0


def test_cli_compiles_a_manifest_kubectl_accepts(tmp_path):
    result = ferry_cli("compile", "examples/quickstart.py:pipeline", "--days", "4", "--name", "weekly")
    assert result.returncode == 0, result.stderr
    import yaml

    manifest = yaml.safe_load(result.stdout)
    assert manifest["metadata"]["name"] == "weekly"
    spec = resource.WorkflowSpec.model_validate(manifest["spec"])
    assert [t.name for t in spec.tasks] == ["collect", "count", "total", "render", "index"]
    assert spec.tasks[1].map.over.from_task.task == "collect" and spec.tasks[1].inputs[0].from_item
    assert spec.inputs[0].value == 4
    bad = ferry_cli("run", "examples/quickstart.py:nope")
    assert bad.returncode != 0 and "is not a @ferry.workflow" in bad.stderr


def test_tasks_share_a_drive_by_name(store):
    assert samples.through_a_drive() == "shared through the drive\n"
    writer = ferry.Drive("ferry://shared-notes")
    assert writer.list("notes") == ["notes/note.txt"]


def test_checkpoint_directory_survives_into_the_next_attempt(store):
    run = local.run_workflow(samples.training, {}, store)
    restored, epoch = run.result()
    assert (epoch, restored) == ("3", "restored")
    assert run.status.tasks["resumable-training"].attempts == 2


def test_cli_lists_a_drive(store, tmp_path):
    (tmp_path / "a.txt").write_text("a")
    ferry.Drive("ferry://cli-listing", component_name="test").put(str(tmp_path / "a.txt"), "docs/a.txt")
    listed = ferry_cli("ls", "ferry://cli-listing", "docs", env={"FERRY_RAW_DATA_PREFIX": store.raw_data_prefix})
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["docs/a.txt"]


def test_compiled_yaml_quotes_names_kubectl_would_read_as_booleans():
    result = ferry_cli("compile", "tests/runtime/sample_workflows.py:directory_stats")
    assert result.returncode == 0, result.stderr
    assert 'name: "n"' in result.stdout and 'fromInput: "n"' in result.stdout


@pytest.mark.parametrize("fork", [True, False])
def test_each_task_starts_from_a_clean_module_state(tmp_path, fork):
    """Forked from the warm server (the default) or a fresh interpreter, a task never sees another's state."""
    settings = ferry.Settings(raw_data_prefix=(tmp_path / "raw").as_uri(), cache_dir=tmp_path / "cache",
                              local_fork=fork)
    with ferry.use_store(ferry.Store(settings)):
        assert samples.remembers_twice() == (["first"], ["second"])
        assert samples.directory_stats(n=2) == samples.Stats(files=2, names=["f0.txt", "f1.txt"])


def test_the_fork_server_ends_with_the_run(store, monkeypatch):
    executor = local.LocalExecutor(store)
    spec = samples.remembers_twice.compile()
    run = executor.run("remembers-twice", spec, samples.remembers_twice.outputs)
    assert run.result() == (["first"], ["second"])
    assert executor.forks is not None and executor.forks._process.poll() is not None


def test_a_task_past_its_timeout_is_stopped(store):
    started = time.monotonic()
    run = local.run_workflow(samples.times_out, {}, store)
    assert run.status.phase == resource.Phase.FAILED and time.monotonic() - started < 30
    assert "timed out after 1s" in run.status.tasks["oversleeps"].message


def test_a_fork_server_that_dies_fails_its_running_tasks_instead_of_hanging(store):
    executor = local.LocalExecutor(store)
    spec = samples.naps.compile()
    runs = []
    runner = threading.Thread(target=lambda: runs.append(executor.run("naps", spec, samples.naps.outputs)))
    runner.start()
    deadline = time.monotonic() + 30
    while not (executor.forks and executor.processes) and time.monotonic() < deadline:
        time.sleep(0.05)
    executor.forks._process.kill()
    runner.join(30)
    assert not runner.is_alive() and runs[0].status.phase == resource.Phase.FAILED
    assert "without a result" in runs[0].status.tasks["sleeps"].message


def test_a_dead_fork_server_refuses_new_tasks_clearly(tmp_path):
    from ferry.execution import forkserver

    server = forkserver.ForkServer()
    server._process.kill()
    server._process.wait()
    with pytest.raises(RuntimeError, match="FERRY_LOCAL_FORK=false"):
        server.spawn(dict(os.environ), str(tmp_path), str(tmp_path / "log"))


def test_named_outputs_come_back_by_name():
    result = samples.named(n=4)
    assert isinstance(result, samples.Counted) and result == samples.Counted(row_count=4, summary="4 ROWS")
    run = local.run_workflow(samples.named, {"n": 4, "max_rows": 3})
    assert run.status.phase == resource.Phase.SUCCEEDED, run.status.message
    assert set(run.status.outputs) == set(run.status.tasks["count"].outputs) == {"row_count", "summary"}
    assert run.outputs() == {"row_count": 3, "summary": "3 ROWS"}, "max_rows reached the task as max_rows"
    assert samples.count(n=2).summary == "2 rows"  # a task called on its own returns its named tuple too


CONTAINER_AND_PYTHON = resource.WorkflowSpec.model_validate({"tasks": [
    {"name": "first", "function": "tests.runtime.sample_workflows:add",
     "inputs": [{"name": "a", "value": 1}, {"name": "b", "value": 2}], "outputs": [{"name": "o0", "kind": "value"}]},
    {"name": "boxed", "image": "busybox:1.36", "command": ["true"], "dependsOn": ["first"]}]})


@pytest.mark.parametrize("setting", ["override", "path"])
def test_no_container_runtime_fails_the_run_before_any_task_runs(store, monkeypatch, tmp_path, setting):
    if setting == "override":
        monkeypatch.setenv("FERRY_CONTAINER_RUNTIME", str(tmp_path / "no-such-podman"))
    else:  # neither podman nor docker on PATH
        monkeypatch.delenv("FERRY_CONTAINER_RUNTIME", raising=False)
        monkeypatch.setenv("PATH", str(tmp_path))
    run = local.LocalExecutor(store).run("boxed", CONTAINER_AND_PYTHON, {})
    assert run.status.phase == resource.Phase.FAILED
    expected = (f"(FERRY_CONTAINER_RUNTIME={tmp_path / 'no-such-podman'}: no such program)"
                if setting == "override" else "(podman: not installed; docker: not installed)")
    assert run.status.message.startswith(f"task boxed runs image busybox:1.36: no container runtime found {expected}")
    assert "FERRY_CONTAINER_RUNTIME" in run.status.message.split(")")[-1]
    assert [(ts.phase, ts.attempts) for ts in run.status.tasks.values()] == [(resource.Phase.SKIPPED, 0)] * 2
    with pytest.raises(RuntimeError, match="no container runtime found"):
        run.result()



@pytest.mark.parametrize("name, run_id", [("../../escaped", None), ("pipeline", "../../escaped"),
                                          ("x" * 250, None)])
def test_the_executor_refuses_a_name_that_would_lead_out_of_its_folders(store, tmp_path, name, run_id):
    spec = samples.remembers_twice.compile()
    executor = local.LocalExecutor(store)
    with pytest.raises(ValueError, match="lowercase letters, digits, '-' and '.'|characters"):
        executor.run(name, spec, samples.remembers_twice.outputs, run_id)
    assert not executor.scratch.exists()
    assert not [p for p in tmp_path.rglob("*") if "escaped" in p.name]


def test_what_a_task_published_is_counted_in_words():
    one = resource.TaskStatus(outputs={"f": resource.Output(kind=resource.Kind.FILE, uri="file:///r/f", size=63)})
    assert local.published("index", one) == "task index published 1 file (63 B)"
    many = resource.TaskStatus(outputs={"d": resource.Output(kind=resource.Kind.DIRECTORY, uri="file:///r/d/",
                                                             size=2048, file_count=4)})
    assert local.published("render", many) == "task render published 4 files (2.0 KiB)"


# -- maps: the scheduler's units run as processes, at most a few per core ------------------------------

def test_the_local_parallelism_is_a_few_per_core_or_the_setting():
    assert local.default_parallelism({}) == local.UNITS_PER_CORE * (os.cpu_count() or 1)
    assert local.default_parallelism({local.PARALLELISM_ENV: "7"}) == 7
    for bad in ("0", "-2", "many", "1.5"):
        with pytest.raises(ValueError, match=f"{local.PARALLELISM_ENV}=.*whole number"):
            local.default_parallelism({local.PARALLELISM_ENV: bad})


MAP_SPEC = {"tasks": [{"name": "m", "function": "tests.runtime.sample_workflows:add",
                       "inputs": [{"name": "a", "fromItem": True}, {"name": "b", "value": 10}],
                       "outputs": [{"name": "o0", "kind": "value"}], "map": {"over": {"value": [0, 1, 2, 3]}}}]}


class FakeMapScheduler:
    """``scheduler.step`` for a map of four units, as the contract has it (until the scheduler's
    lands): two units at a time, each observed by its name until it ends, then the map succeeds."""

    def __init__(self):
        self.options, self.seen, self.pending = [], {}, [0, 1, 2, 3]

    def __call__(self, name, spec, status, observe, now, **options):
        from ferry.api import scheduler

        self.options.append(options)
        out = scheduler.Step(resource.WorkflowStatus.model_validate(status.dump()))
        out.status.phase = resource.Phase.RUNNING
        running = [unit for unit, attempt in self.seen.items() if attempt is None or not attempt.finished]
        for unit in running:
            self.seen[unit] = observe(spec.tasks[0], scheduler.unit_name(name, "m", "item", 1, unit))
        while self.pending and sum(1 for a in self.seen.values() if a is None or not a.finished) < 2:
            unit = self.pending.pop(0)
            self.seen[unit] = None
            out.units.append(scheduler.Unit("m", "item", 1, unit, scheduler.unit_name(name, "m", "item", 1, unit)))
        done = len(self.seen) == 4 and all(a is not None and a.finished for a in self.seen.values())
        out.status.tasks = {"m": resource.TaskStatus(phase=resource.Phase.SUCCEEDED if done else resource.Phase.RUNNING,
                                                     map=resource.MapStatus(stage="Items", units=4, items=4))}
        if done:
            out.status.phase = resource.Phase.SUCCEEDED
        return out


def item_plan(spec, status, unit, *, workflow, namespace, execution_id, root):
    """``taskpod.build_unit_plan`` for an item unit, as the contract has it, its item in the values."""
    from ferry.api import taskpod

    return taskpod.PodPlan(workflow=workflow, namespace=namespace, execution_id=execution_id, task=unit.task,
                           attempt=unit.attempt, role="item", function=spec.tasks[0].function,
                           values={"a": unit.index, "b": 10}, outputs=spec.tasks[0].outputs,
                           output_prefix=f"{root}/{execution_id}/m/items/{unit.index}/{unit.attempt}")


def test_a_map_s_units_run_as_processes_and_the_history_records_the_map_not_each_unit(store, monkeypatch):
    from ferry.api import scheduler, taskpod
    from ferry.execution import history

    fake = FakeMapScheduler()
    monkeypatch.setattr(scheduler, "step", fake)
    monkeypatch.setattr(taskpod, "build_unit_plan", item_plan, raising=False)
    monkeypatch.setenv(local.PARALLELISM_ENV, "3")
    spec = resource.WorkflowSpec.model_validate(MAP_SPEC)
    run = local.LocalExecutor(store).run("mapped", spec, {}, run_id="mapped-1")
    assert run.status.phase == resource.Phase.SUCCEEDED
    assert {options["default_parallelism"] for options in fake.options} == {3}
    assert sorted(fake.seen) == [0, 1, 2, 3] and all(a.succeeded for a in fake.seen.values())
    assert [a.outputs["o0"].value for _, a in sorted(fake.seen.items())] == [10, 11, 12, 13], "each its own item"
    assert all(a.started is not None for a in fake.seen.values()), "a unit's timeout counts from its start"
    with history.History(history.default_path(store.settings)) as recorded:
        assert recorded.attempts("mapped-1") == [], "no row per unit"
        status = recorded.workflow("mapped-1")["status"]
        assert status["phase"] == "Succeeded" and status["tasks"]["m"]["map"]["units"] == 4, "the map, as one task"
