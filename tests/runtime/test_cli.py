"""The ``ferry`` command line on local runs (``--local``) and the parts of its cluster path that need
no cluster."""

from __future__ import annotations

import datetime

import pytest

from ferry import cli, history, remote, resource


@pytest.fixture
def records(history_in_tmp):
    """A history with two runs: ``etl-00000001`` succeeded, ``etl-00000002`` failed on its second attempt."""
    spec = resource.WorkflowSpec(tasks=[resource.Task(name="load", function="m:f"),
                                        resource.Task(name="train", function="m:g")])
    with history.History(history_in_tmp) as opened:
        opened.open_run("etl-00000001", "etl", spec, "file:///raw")
        opened.update("etl-00000001", resource.WorkflowStatus(
            phase=resource.Phase.SUCCEEDED, progress="2/2", tasks={
                "load": resource.TaskStatus(phase=resource.Phase.SUCCEEDED, attempts=1),
                "train": resource.TaskStatus(phase=resource.Phase.SUCCEEDED, attempts=1)},
            outputs={"model": resource.Output(kind=resource.Kind.FILE, uri="file:///raw/model.bin")}))
        opened.open_run("etl-00000002", "etl", spec, "file:///raw")
        opened.attempt_started("etl-00000002", "load", 1, "etl-load-1", "2024-01-01T00:00:00Z")
        opened.attempt_finished("etl-00000002", "load", 1, "Failed", "2024-01-01T00:00:01Z", "oops", "TaskFailed",
                                "first try\nTraceback: oops\n")
        opened.attempt_started("etl-00000002", "load", 2, "etl-load-2", "2024-01-01T00:00:02Z")
        opened.attempt_finished("etl-00000002", "load", 2, "Failed", "2024-01-01T00:00:03Z", "oops", "TaskFailed",
                                "second try\n")
        opened.update("etl-00000002", resource.WorkflowStatus(
            phase=resource.Phase.FAILED, progress="0/2", message="task load failed: attempt 2 failed: oops\nmore",
            tasks={"load": resource.TaskStatus(phase=resource.Phase.FAILED, attempts=2, message="attempt 2 failed"),
                   "train": resource.TaskStatus(phase=resource.Phase.SKIPPED)}))
        yield opened


def test_get_local_lists_runs_as_kubectl_get_fwf_does(records, capsys):
    assert cli.main(["get", "--local"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "PHASE", "PROGRESS", "AGE", "MESSAGE"]
    assert lines[1].split()[:3] == ["etl-00000002", "Failed", "0/2"], "newest first"
    assert lines[1].endswith("task load failed: attempt 2 failed: oops"), "one line per run"
    assert lines[2].split()[:3] == ["etl-00000001", "Succeeded", "2/2"] and len(lines) == 3
    assert lines[0].index("PHASE") == lines[1].index("Failed") == lines[2].index("Succeeded"), "in columns"
    assert cli.main(["get", "--local", "--limit", "1"]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 2 and "1 newest of 2 runs" in captured.err


def test_get_local_name_shows_the_run_as_get_shows_a_cluster_one(records, capsys, monkeypatch):
    assert cli.main(["get", "--local", "etl-00000001"]) == 0
    local_out = capsys.readouterr().out
    assert local_out.splitlines() == ["etl-00000001: Succeeded 2/2",
                                      "  load                     Succeeded  attempts=1",
                                      "  train                    Succeeded  attempts=1",
                                      "  output model = file:///raw/model.bin"]
    monkeypatch.setattr(remote, "get", lambda name, namespace, context=None: records.workflow("etl-00000001"))
    assert cli.main(["get", "etl-00000001"]) == 0
    assert capsys.readouterr().out == local_out, "one printing function for both"


def test_unknown_runs_say_so_in_one_line(records, capsys):
    assert cli.main(["get", "--local", "nope-00000000"]) == 1
    assert cli.main(["logs", "--local", "nope-00000000", "load"]) == 1
    assert cli.main(["logs", "--local", "etl-00000002", "lode"]) == 1
    assert cli.main(["logs", "--local", "etl-00000002", "train"]) == 1
    assert cli.main(["logs", "--local", "etl-00000002", "load", "--attempt", "3"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"ferry get: no local run nope-00000000 in {records.path} (ferry get --local lists them)",
        f"ferry logs: no local run nope-00000000 in {records.path} (ferry get --local lists them)",
        "ferry logs: run etl-00000002 has no task lode (its tasks: load, train)",
        "ferry logs: task train of run etl-00000002 never started",
        "ferry logs: attempt 3 of task load of run etl-00000002 never started"]


def test_logs_local_prints_the_latest_attempt_or_the_one_asked_for(records, capsys):
    assert cli.main(["logs", "--local", "etl-00000002", "load"]) == 0
    assert capsys.readouterr().out == "second try\n"
    assert cli.main(["logs", "--local", "etl-00000002", "load", "--attempt", "1"]) == 0
    assert capsys.readouterr().out == "first try\nTraceback: oops\n"


def test_an_unreadable_history_is_one_line_and_exit_1(history_in_tmp, capsys):
    history_in_tmp.write_bytes(b"not a database at all " * 100)
    with pytest.raises(SystemExit, match="ferry get: cannot read the history of local runs: file is not a database"):
        cli.main(["get", "--local"])


def test_logs_attempt_on_a_cluster_reads_that_attempts_pod(monkeypatch, capsys):
    status = resource.WorkflowStatus(tasks={"train": resource.TaskStatus(
        phase=resource.Phase.RUNNING, attempts=3, pod_name="nightly-train-3")})
    monkeypatch.setattr(remote, "get", lambda name, namespace, context=None: {"status": status.dump()})
    asked = []
    monkeypatch.setattr(remote, "kubectl", lambda *args, context=None: asked.append(args) or f"log of {args[1]}\n")
    assert cli.main(["logs", "nightly", "train", "--attempt", "2", "-n", "team"]) == 0
    assert cli.main(["logs", "nightly", "train"]) == 0
    assert capsys.readouterr().out == "log of nightly-train-2\nlog of nightly-train-3\n"
    assert asked[0] == ("logs", "nightly-train-2", "-c", "main", "-n", "team")
    assert cli.main(["logs", "nightly", "train", "--attempt", "4"]) == 1
    assert "has no attempt 4 (attempts so far: 3)" in capsys.readouterr().err


@pytest.mark.parametrize("seconds, shown", [(5, "5s"), (119, "119s"), (150, "2m30s"), (600, "10m"),
                                            (3 * 3600 + 60, "3h1m"), (30 * 3600, "30h"), (3 * 86400, "3d"),
                                            (800 * 86400, "2y")])
def test_ages_are_written_as_kubectl_writes_them(seconds, shown):
    now = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    assert cli.age(now - datetime.timedelta(seconds=seconds), now) == shown
