"""The history of local runs: what a real run records, how the file is shared, and that recording
never fails a run."""

from __future__ import annotations

import json
import logging
import os
import pathlib
import sqlite3
import subprocess
import sys
import textwrap

import pytest

import ferry
from ferry.api import resource
from ferry.execution import history, local

from tests.runtime import sample_workflows as samples

REPO = pathlib.Path(__file__).resolve().parents[3]


@pytest.fixture
def store(tmp_path):
    with ferry.use_store(ferry.Store(ferry.Settings(raw_data_prefix=(tmp_path / "raw").as_uri(),
                                                    cache_dir=tmp_path / "cache"))) as chosen:
        yield chosen


def spec_of(*tasks: str) -> resource.WorkflowSpec:
    return resource.WorkflowSpec(tasks=[resource.Task(name=t, function="m:f") for t in tasks])


def test_a_local_run_records_its_attempts_logs_outputs_and_lineage(store, history_in_tmp):
    executor = local.LocalExecutor(store)
    run = executor.run("noisy-lineage", samples.noisy_lineage.compile(n=2), samples.noisy_lineage.outputs)
    assert run.result() == samples.Stats(files=2, names=["f0.txt", "f1.txt"])
    assert run.run_id.startswith("noisy-lineage-")

    with history.History(history_in_tmp) as records:
        runs, total = records.runs()
        assert total == 1 and runs[0]["name"] == run.run_id
        assert runs[0]["namespace"] == "local" and runs[0]["phase"] == "Succeeded" and runs[0]["progress"] == "2/2"
        assert runs[0]["created"] and runs[0]["started_at"] and runs[0]["finished_at"]

        workflow = records.workflow(run.run_id)
        assert workflow["apiVersion"] == "ferry.dev/v1alpha1" and workflow["kind"] == "Workflow"
        assert workflow["metadata"] == {"name": run.run_id, "namespace": "local",
                                        "creationTimestamp": runs[0]["created"]}
        assert resource.WorkflowSpec.model_validate(workflow["spec"]) == samples.noisy_lineage.compile(n=2)
        assert resource.WorkflowStatus.model_validate(workflow["status"]) == run.status
        assert "startedAt" in workflow["status"], "camelCase, as the CRD has it"

        attempts = [(a["task"], a["attempt"], a["name"], a["phase"], a["reason"]) for a in records.attempts(run.run_id)]
        assert attempts == [("noisy-maker", 1, "noisy-lineage-noisy-maker-1", "Failed", "TaskFailed"),
                            ("noisy-maker", 2, "noisy-lineage-noisy-maker-2", "Succeeded", None),
                            ("stats", 1, "noisy-lineage-stats-1", "Succeeded", None)]
        first = records.attempts(run.run_id)[0]
        assert "the first attempt fails" in first["message"] and first["started_at"] and first["finished_at"]

        failed_log = records.log(run.run_id, "noisy-maker", 1)
        assert "noisy-maker attempt 1 says hello" in failed_log
        assert "RuntimeError: the first attempt fails" in failed_log
        latest = records.log(run.run_id, "noisy-maker")
        assert "noisy-maker attempt 2 says hello" in latest and "attempt 1" not in latest
        assert records.log(run.run_id, "noisy-maker", 3) is None and records.log("elsewhere-1", "stats") is None

        made = run.status.tasks["noisy-maker"].outputs["o0"].uri
        assert made.startswith(store.raw_data_prefix)
        assert records.producer(made) == {"run": run.run_id, "task": "noisy-maker", "name": "o0"}
        assert records.readers(made) == [{"run": run.run_id, "task": "stats", "name": "d"}]
        assert records.producer("file:///nowhere") is None and records.readers("file:///nowhere") == []
        row = sqlite3.connect(history_in_tmp).execute(
            "SELECT kind, size, file_count, manifest_digest FROM outputs WHERE uri = ?", (made,)).fetchone()
        assert row[:3] == ("directory", 4, 2) and row[3].startswith("sha256:")

    assert not executor.scratch.exists(), "the scratch directories go with the run: their logs are recorded"


def test_the_history_lives_in_the_stores_cache_dir_by_default(store, tmp_path, monkeypatch):
    monkeypatch.delenv("FERRY_HISTORY")
    run = local.run_workflow(samples.directory_stats, {"n": 1}, store)
    with history.History(tmp_path / "cache" / "history.sqlite3") as records:
        assert [r["name"] for r in records.runs()[0]] == [run.run_id]


def test_history_off_records_nothing(store, tmp_path, monkeypatch, history_in_tmp):
    monkeypatch.setenv("FERRY_HISTORY", "off")
    assert local.run_workflow(samples.directory_stats, {"n": 1}, store).result().files == 1
    assert not history_in_tmp.exists() and not (tmp_path / "cache" / "history.sqlite3").exists()


def test_a_broken_history_file_does_not_fail_the_run(store, history_in_tmp, caplog):
    history_in_tmp.write_bytes(b"this is not a database, " * 100)
    with caplog.at_level(logging.WARNING, logger="ferry.execution.local"):
        assert local.run_workflow(samples.directory_stats, {"n": 2}, store).result().files == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(history_in_tmp) in warnings[0]


def test_a_history_that_fails_mid_run_warns_once_and_the_run_goes_on(store, monkeypatch, caplog):
    def broken(self, run_id, status):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(history.History, "update", broken)
    with caplog.at_level(logging.WARNING, logger="ferry.execution.local"):
        assert samples.resumes() == "attempt 2 resumed from halfway"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "disk I/O error" in warnings[0]


def test_a_run_that_cannot_go_on_is_recorded_as_failed(store, history_in_tmp, monkeypatch):
    spec = resource.WorkflowSpec(tasks=[resource.Task(name="t", function="tests.runtime.sample_workflows:add")])
    executor = local.LocalExecutor(store)

    def cannot_start(*args):
        raise ValueError("no way to start it")

    monkeypatch.setattr(executor, "start", cannot_start)
    with pytest.raises(ValueError, match="no way to start it"):
        executor.run("container", spec, {}, run_id="container-00000001")
    with history.History(history_in_tmp) as records:
        status = records.workflow("container-00000001")["status"]
    assert status["phase"] == "Failed" and "the run stopped: ValueError" in status["message"]
    assert status["finishedAt"] and not executor.scratch.exists()


def test_a_run_stopped_by_ctrl_c_is_recorded_as_stopped(store, history_in_tmp, monkeypatch):
    spec = resource.WorkflowSpec(tasks=[resource.Task(name="slow", function="tests.runtime.sample_workflows:add")])
    executor = local.LocalExecutor(store)

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(executor, "_wait", interrupted)
    with pytest.raises(KeyboardInterrupt):
        executor.run("slow", spec, {}, run_id="slow-00000001")
    with history.History(history_in_tmp) as records:
        status = records.workflow("slow-00000001")["status"]
        attempts = records.attempts("slow-00000001")
    assert status["phase"] == "Stopped" and status["tasks"]["slow"]["phase"] == "Failed"
    assert [(a["task"], a["phase"], a["message"]) for a in attempts] == [("slow", "Failed", "the run stopped")]


def test_runs_are_paged_newest_first_and_filtered(tmp_path):
    with history.History(tmp_path / "h.sqlite3") as records:
        for i in range(7):
            name = f"{'etl' if i % 2 else 'train'}-{i:08x}"
            records.open_run(name, name.split("-")[0], spec_of("a"), "file:///raw")
            records.update(name, resource.WorkflowStatus(phase=resource.Phase.FAILED if i == 3 else
                                                         resource.Phase.SUCCEEDED, progress="1/1"))
        page, total = records.runs(limit=3)
        assert total == 7 and [r["name"] for r in page] == ["train-00000006", "etl-00000005", "train-00000004"]
        page, total = records.runs(limit=3, offset=6)
        assert total == 7 and [r["name"] for r in page] == ["train-00000000"]
        assert records.runs(name="etl")[1] == 3 and records.runs(name="0000000")[1] == 7
        assert [r["name"] for r in records.runs(phase="Failed")[0]] == ["etl-00000003"]
        assert records.runs(phase="Failed", name="train") == ([], 0)
        assert set(records.runs()[0][0]) == {"name", "namespace", "phase", "progress", "message", "created",
                                             "started_at", "finished_at"}


def test_the_file_is_versioned_shared_and_private(tmp_path):
    path = tmp_path / "deep" / "h.sqlite3"
    with history.History(path) as records:
        records.open_run("one-00000001", "one", spec_of("a"), "file:///raw")
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == history.SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal", "readers never block a run"
    assert path.stat().st_mode & 0o077 == 0, "logs are the user's alone"
    with history.History(path) as again:
        assert again.runs()[1] == 1, "opening again keeps what is there"
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(history.HistoryError, match="newer Ferry"):
        history.History(path)


def test_logs_keep_their_end_up_to_the_limit_and_are_read_live_while_running(tmp_path):
    log_file = tmp_path / "log"
    log_file.write_text("started\n")
    with history.History(tmp_path / "h.sqlite3") as records:
        records.open_run("big-00000001", "big", spec_of("a"), "file:///raw")
        records.attempt_started("big-00000001", "a", 1, "big-a-1", "2024-01-01T00:00:00Z", log_path=log_file)
        assert records.attempts("big-00000001")[0]["phase"] == "Running"
        assert records.log("big-00000001", "a") == "started\n"
        log_file.write_text("started\n" + "x" * (2 * history.LOG_LIMIT) + "\nthe end\n")
        live = records.log("big-00000001", "a")
        assert live.startswith(history.CUT_MARKER) and live.endswith("the end\n")
        assert len(live.encode()) <= history.LOG_LIMIT
        records.attempt_finished("big-00000001", "a", 1, resource.Phase.FAILED, "2024-01-01T00:01:00Z", "boom",
                                 resource.FailureReason.TIMED_OUT, "é" * history.LOG_LIMIT + "the end\n")
        log_file.unlink()
        kept = records.log("big-00000001", "a", 1)
        assert kept.startswith(history.CUT_MARKER) and kept.endswith("éthe end\n")
        assert len(kept.encode()) <= history.LOG_LIMIT
        assert records.attempts("big-00000001") == [{
            "task": "a", "attempt": 1, "name": "big-a-1", "phase": "Failed", "started_at": "2024-01-01T00:00:00Z",
            "finished_at": "2024-01-01T00:01:00Z", "message": "boom", "reason": "TimedOut"}]


RUNS_PER_WRITER = 150
WRITER = textwrap.dedent(f'''
    import pathlib, sys, time
    from ferry.api import resource
    from ferry.execution import history

    path, who, go = pathlib.Path(sys.argv[1]), sys.argv[2], pathlib.Path(sys.argv[3])
    spec = resource.WorkflowSpec(tasks=[resource.Task(name="a", function="m:f")])
    print("ready", flush=True)
    while not go.exists():  # all start together, the first of them making the file
        time.sleep(0.001)
    records = history.History(path)
    for i in range({RUNS_PER_WRITER}):
        run = f"{{who}}-{{i:08x}}"
        records.open_run(run, who, spec, "file:///raw")
        records.attempt_started(run, "a", 1, run + "-a-1", "2024-01-01T00:00:00Z")
        records.update(run, resource.WorkflowStatus(phase=resource.Phase.RUNNING, progress="0/1"))
        records.attempt_finished(run, "a", 1, "Succeeded", "2024-01-01T00:00:01Z", None, None, f"log of {{run}}")
        records.update(run, resource.WorkflowStatus(phase=resource.Phase.SUCCEEDED, progress="1/1"))
    print("done")
''')


def test_several_processes_write_at_once_while_one_reads(tmp_path):
    """As several ``ferry run`` at once do, from the very first one that makes the file."""
    path, go = tmp_path / "shared.sqlite3", tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO / "runtime")}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"writer{n}", str(go)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in range(4)]
    for writer in writers:
        assert writer.stdout.readline() == "ready\n"
    go.touch()
    seen = 0
    while any(w.poll() is None for w in writers):
        with history.History(path) as reader:  # as the UI reads: never refused, never in the way
            seen = max(seen, reader.runs()[1])
    for writer in writers:
        out, err = writer.communicate()
        assert writer.returncode == 0 and out.strip() == "done", err
    assert seen, "the reader saw runs while they were written"
    with history.History(path) as records:
        runs, total = records.runs(limit=1000)
        assert total == 4 * RUNS_PER_WRITER and {r["phase"] for r in runs} == {"Succeeded"}
        assert records.log("writer3-00000027", "a") == "log of writer3-00000027"


def test_what_the_history_stores_is_plain_json(tmp_path):
    """The spec and status columns are the CRD's JSON, for whatever else reads the file."""
    path = tmp_path / "h.sqlite3"
    with history.History(path) as records:
        records.open_run("plain-00000001", "plain", spec_of("first-task"), "file:///raw")
    spec, status = sqlite3.connect(path).execute("SELECT spec, status FROM runs").fetchone()
    assert json.loads(spec)["tasks"][0]["name"] == "first-task"
    assert json.loads(status) == {"phase": "Pending", "tasks": {}, "outputs": {}, "conditions": []}


def test_a_history_of_the_first_schema_is_brought_up_to_date_and_keeps_its_runs(tmp_path):
    path = tmp_path / "h.sqlite3"
    db = sqlite3.connect(path)
    for statement in history.SCHEMA:
        db.execute(statement)
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO runs (id, workflow, phase, created, spec, status, store_prefix) VALUES "
               "('one-00000001', 'one', 'Succeeded', '2024-01-01T00:00:00Z', '{}', '{}', 'file:///raw')")
    db.execute("INSERT INTO runs (id, workflow, phase, created, spec, status, store_prefix) VALUES "
               "('two-00000002', 'two', 'Running', '2024-01-01T00:00:00Z', '{}', '{}', 'file:///raw')")
    db.commit()
    db.close()
    with history.History(path) as records:
        assert records.runs()[1] == 2 and records.deleted() == set()
        # A run of an older Ferry names no process: nothing tells that it is over, so it is left as it was.
        assert {run["name"]: run["phase"] for run in records.runs()[0]}["two-00000002"] == "Running"
        assert records.delete("one-00000001") and records.deleted() == {"one-00000001"}
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == history.SCHEMA_VERSION == 3
