"""The ``ferry`` command line on local runs (``--local``) and the parts of its cluster path that need
no cluster."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import time

import pytest
import yaml

import ferry
from ferry import cli
from ferry.api import resource
from ferry.cluster import remote
from ferry.execution import history

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TYPED = "tests.runtime.cli.test_cli:typed"


@ferry.task
def summarize(data: ferry.File, days: int, ratio: float, verbose: bool, label: str, tags: list[str],
              limits: dict[str, int]) -> str:
    return label


@ferry.workflow
def typed(data: ferry.File, days: int = 7, ratio: float = 0.5, verbose: bool = False, label: str = "weekly",
          tags: list[str] = ["a", "b"], limits: dict[str, int] = {}) -> str:
    """Summarize a week of data."""
    return summarize(data=data, days=days, ratio=ratio, verbose=verbose, label=label, tags=tags, limits=limits)


@ferry.task
def read_all(files: list[ferry.File]) -> list[str]:
    return [open(file).read() for file in files]


@ferry.workflow
def listed(files: list[ferry.File]) -> list[str]:
    return read_all(files=files)


@ferry.task
def names_in(parts: list[ferry.Directory]) -> list[list[str]]:
    return [sorted(os.listdir(part.download())) for part in parts]


@ferry.workflow
def folders(parts: list[ferry.Directory]) -> list[list[str]]:
    return names_in(parts=parts)


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


@pytest.mark.parametrize("command, own_option", [("run", "--store STORE"), ("compile", "--name NAME")])
def test_help_of_a_workflow_lists_its_inputs_with_types_and_defaults(command, own_option, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main([command, TYPED, "--help"])
    assert exited.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # as argparse wraps it or not
    assert out.startswith(f"usage: ferry {command} {TYPED} ") and "Summarize a week of data." in out
    for described in ("--data File a local path or a URI; required", "--days int default: 7",
                      "--ratio float default: 0.5", "--verbose bool true or false; default: false",
                      "--label str default: weekly", '--tags list[str] JSON; default: ["a", "b"]',
                      "--limits dict[str, int] JSON; default: {}", own_option):
        assert described in out
    with pytest.raises(SystemExit) as exited:
        cli.main([command, "--help"])
    assert exited.value.code == 0 and "MODULE:WORKFLOW" in capsys.readouterr().out, "no workflow: the command's help"


def test_inputs_are_converted_by_their_annotations(tmp_path):
    (tmp_path / "data.csv").write_text("x\n")
    given = cli.parse_inputs(typed, ["--data", str(tmp_path / "data.csv"), "--days", "3", "--ratio", "2",
                                     "--verbose", "true", "--label", "3", "--tags", '["x"]', "--limits", '{"a": 1}'])
    data = given.pop("data")
    assert isinstance(data, ferry.File) and os.fspath(data) == str(tmp_path / "data.csv")
    assert given == {"days": 3, "ratio": 2.0, "verbose": True, "label": "3", "tags": ["x"], "limits": {"a": 1}}
    assert type(given["ratio"]) is float
    assert cli.parse_inputs(typed, ["--data", "s3://bucket/data.csv", "--verbose", "no"])["verbose"] is False
    assert cli.parse_inputs(typed, ["--data", "s3://bucket/data.csv"])["data"].remote_source == "s3://bucket/data.csv"


def test_run_prints_python_named_outputs_and_outputs_writes_their_folders(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FERRY_RAW_DATA_PREFIX", (tmp_path / "raw").as_uri())
    assert cli.main(["run", "tests.runtime.sample_workflows:named", "--n", "5", "--max-rows", "2"]) == 0
    assert capsys.readouterr().out.splitlines() == ["row_count = 2", "summary = '2 ROWS'"]

    store = ferry.Store(ferry.Settings(raw_data_prefix=(tmp_path / "raw").as_uri()))
    (tmp_path / "rows.csv").write_text("a\nb\n")
    stored = store.put(tmp_path / "rows.csv", f"{store.raw_data_prefix}/e/count/1/row_count")
    status = resource.WorkflowStatus(phase=resource.Phase.SUCCEEDED, outputs={
        "row_count": resource.Output(kind=resource.Kind.VALUE, value=2),
        "rows_kept": resource.Output(kind=resource.Kind.FILE, uri=stored.uri, sha256=stored.sha256, size=stored.size)})
    monkeypatch.setattr(remote, "get", lambda name, namespace, context=None: {"status": status.dump()})
    assert cli.main(["outputs", "named-1", "-o", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "rows_kept").read_text() == "a\nb\n"
    assert json.loads((tmp_path / "out" / "values.json").read_text()) == {"row_count": 2}


@pytest.mark.parametrize("given, line", [
    (["--days", "abc"], "ferry run: input --days of typed expects int, got 'abc'"),
    (["--days", "1.5"], "ferry run: input --days of typed expects int, got '1.5'"),
    (["--verbose", "maybe"], "ferry run: input --verbose of typed expects bool (true or false), got 'maybe'"),
    (["--tags", "[1,"], "ferry run: input --tags of typed expects list[str] (JSON), got '[1,'"),
    (["--dayz", "3"], "ferry run: workflow typed has no input --dayz (did you mean --days?); "
                      "its inputs are --data, --days, --ratio, --verbose, --label, --tags, --limits"),
    (["--days"], "ferry run: input --days of typed expects int, got nothing"),
    (["--data", "missing.csv"], "ferry run: input --data of typed expects File (a local path or a URI), "
                                "got 'missing.csv': no such file"),
])
def test_a_bad_input_is_one_line_and_exit_2(given, line, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text("x\n")
    arguments = ["--data", "data.csv", *given] if given[0] != "--data" else given
    with pytest.raises(SystemExit) as exited:
        cli.main(["run", TYPED, *arguments])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines() == [line]


def test_a_missing_input_and_the_quickstart_typo_say_so_without_a_traceback(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["compile", TYPED])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines() == ["ferry compile: input --data of typed (File) is required"]
    result = subprocess.run([sys.executable, "-m", "ferry", "run", "examples/quickstart.py:pipeline", "--days", "abc"],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == ["ferry run: input --days of pipeline expects int, got 'abc'"]


@pytest.fixture
def cluster_calls(monkeypatch):
    """What ``ferry run --remote`` sends: uploads of the code and kubectl calls (none really made)."""
    calls = []
    monkeypatch.delenv("FERRY_RAW_DATA_PREFIX", raising=False)
    monkeypatch.setattr(remote, "upload_code", lambda root, store: calls.append(("upload", store.raw_data_prefix))
                        or f"{store.raw_data_prefix}/code/0.tar.gz")
    monkeypatch.setattr(remote, "kubectl", lambda *args, input=None, context=None:
                        calls.append(("kubectl", args, json.loads(input) if input else None)) or "")
    return calls


@pytest.mark.parametrize("store", [None, "/tmp/raw", "file:///tmp/raw", "raw"])
def test_run_remote_refuses_a_store_pods_cannot_read_before_uploading(store, cluster_calls, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["run", "--remote", "examples/quickstart.py:pipeline", *(["--store", store] if store else [])])
    assert exited.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("ferry run --remote: ") and "--store s3://" in err[0]
    assert "task pods cannot read this machine's disk" in err[0]
    assert cluster_calls == []


@pytest.mark.parametrize("store", ["s3://bucket", "s3://bucket/", "s3://bucket/ferry//"])
def test_run_remote_normalizes_the_store_and_names_the_run(store, cluster_calls, capsys):
    assert cli.main(["run", "--remote", "--no-wait", "examples/quickstart.py:pipeline", "--store", store]) == 0
    prefix = store.rstrip("/")
    (upload, (_, args, manifest)) = cluster_calls
    assert upload == ("upload", prefix) and args[:2] == ("create", "-o")
    assert manifest["spec"]["code"] == f"{prefix}/code/0.tar.gz"
    assert manifest["metadata"]["name"].startswith("pipeline-") and "generateName" not in manifest["metadata"]
    assert capsys.readouterr().out == manifest["metadata"]["name"] + "\n"


def test_compile_generates_a_name_unless_given_one(capsys):
    assert cli.main(["compile", "examples/quickstart.py:pipeline"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["metadata"] == {"generateName": "pipeline-"}
    assert cli.main(["compile", "examples/quickstart.py:pipeline", "--name", "weekly"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["metadata"] == {"name": "weekly"}


def cluster_workflow(monkeypatch, phase: resource.Phase, rerun: int = 0) -> list:
    """A Workflow ``nightly`` the cluster holds in ``phase``; the kubectl calls made about it."""
    status = resource.WorkflowStatus(phase=phase, tasks={
        "load": resource.TaskStatus(phase=resource.Phase.SUCCEEDED, attempts=1),
        "train": resource.TaskStatus(phase=resource.Phase.FAILED, attempts=3, pod_name="nightly-train-3"),
        "report": resource.TaskStatus(phase=resource.Phase.SKIPPED)})
    monkeypatch.setattr(remote, "get", lambda name, namespace, context=None: {
        "metadata": {"name": name, "resourceVersion": "41"}, "spec": {"rerun": rerun} if rerun else {},
        "status": status.dump()})
    asked = []
    monkeypatch.setattr(remote, "kubectl", lambda *args, input=None, context=None: asked.append(args) or "")
    return asked


def test_stop_and_retry_ask_the_operator_through_the_spec(monkeypatch, capsys):
    asked = cluster_workflow(monkeypatch, resource.Phase.FAILED, rerun=1)
    assert cli.main(["retry", "nightly", "-n", "team"]) == 0
    (verb, kind, name, _, merge, _, patch, *namespace), = asked
    assert (verb, kind, name, merge, namespace) == ("patch", "workflows.ferry.dev", "nightly", "merge", ["-n", "team"])
    # Raised by one from the spec's, and only if nobody changed the Workflow since it was read.
    assert json.loads(patch) == {"metadata": {"resourceVersion": "41"}, "spec": {"stop": False, "rerun": 2}}
    assert "running 2 tasks again (report, train)" in capsys.readouterr().out
    asked.clear()
    assert cli.main(["stop", "nightly", "other"]) == 0
    assert [(args[2], json.loads(args[6])) for args in asked] == [("nightly", {"spec": {"stop": True}}),
                                                                  ("other", {"spec": {"stop": True}})]


@pytest.mark.parametrize("phase, says", [(resource.Phase.RUNNING, "is Running: retry it once it has failed or stopped"),
                                         (resource.Phase.SUCCEEDED, "succeeded: nothing to run again")])
def test_retry_refuses_a_workflow_with_nothing_to_run_again(phase, says, monkeypatch, capsys):
    asked = cluster_workflow(monkeypatch, phase)
    assert cli.main(["retry", "nightly"]) == 1
    assert capsys.readouterr().err == f"ferry retry: workflow nightly {says}" + (
        " (ferry stop nightly stops it)\n" if phase == resource.Phase.RUNNING else "\n")
    assert asked == []


@pytest.mark.parametrize("tty, answer, stopped", [(True, "y", True), (True, "", False), (False, None, False)])
def test_ctrl_c_on_run_remote_asks_whether_to_stop_the_run(tty, answer, stopped, cluster_calls, monkeypatch, capsys):
    def interrupted(*_, **__):
        raise KeyboardInterrupt

    monkeypatch.setattr(remote, "follow", interrupted)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: tty, raising=False)
    monkeypatch.setattr("builtins.input", lambda prompt: answer if tty else pytest.fail("asked without a terminal"))
    assert cli.main(["run", "--remote", "examples/quickstart.py:pipeline", "--store", "s3://b", "-n", "team"]) == 130
    patches = [args for kind, args, _ in cluster_calls[1:] if args[0] == "patch"]
    assert [json.loads(args[6]) for args in patches] == ([{"spec": {"stop": True}}] if stopped else [])
    err = capsys.readouterr().err
    assert ("stopping" in err) == stopped
    assert ("goes on running on the cluster; ferry stop pipeline-" in err and " -n team stops it" in err) != stopped


def test_logs_of_ferrys_own_containers_and_following_are_for_the_cluster(monkeypatch, capsys, records):
    asked = cluster_workflow(monkeypatch, resource.Phase.RUNNING)
    assert cli.main(["logs", "nightly", "train", "-c", "fetch"]) == 0
    assert asked == [("logs", "nightly-train-3", "-c", "ferry-fetch")]
    assert sorted(remote.CONTAINERS) == ["fetch", "main", "publish"]
    assert cli.main(["logs", "--local", "etl-00000002", "load", "-f"]) == 2
    assert "--container and --follow are for runs on a cluster" in capsys.readouterr().err


def test_delete_local_forgets_a_run(records, capsys):
    assert cli.main(["delete", "--local", "etl-00000001"]) == 0
    assert records.workflow("etl-00000001") is None and records.workflow("etl-00000002") is not None
    assert cli.main(["delete", "--local", "etl-00000001"]) == 1
    assert "no local run etl-00000001" in capsys.readouterr().err


def test_logs_follow_waits_for_a_starting_container_but_not_for_a_failed_pull(monkeypatch, capsys):
    cluster_workflow(monkeypatch, resource.Phase.RUNNING)
    answers = iter([(1, 'container "main" in pod "nightly-train-3" is waiting to start: ContainerCreating'),
                    (0, ""),
                    (1, 'container "main" in pod "nightly-train-3" is waiting to start: trying and failing to pull '
                        'image')])
    monkeypatch.setattr(remote.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(remote.shutil, "which", lambda name: "/bin/kubectl")
    monkeypatch.setattr(remote.subprocess, "run", lambda command, **_: subprocess.CompletedProcess(
        command, *(lambda code, err: (code, None, err))(*next(answers))))
    assert cli.main(["logs", "nightly", "train", "-f"]) == 0, "waited through ContainerCreating, then followed"
    assert cli.main(["logs", "nightly", "train", "-f"]) == 1
    assert "trying and failing to pull image" in capsys.readouterr().err


EXAMPLE_MANIFEST = os.path.join(REPO, "examples", "workflows", "directory-between-tasks.yaml")


def test_run_of_a_manifest_with_no_container_runtime_says_why_in_a_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FERRY_CONTAINER_RUNTIME", str(tmp_path / "no-such-docker"))
    assert cli.main(["run", EXAMPLE_MANIFEST, "--store", str(tmp_path / "raw")]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1].startswith("task produce runs image busybox:1.36 (and 1 more container tasks): no container "
                                f"runtime found (FERRY_CONTAINER_RUNTIME={tmp_path / 'no-such-docker'}: no such program)")
    assert lines[-2].startswith("directory-between-tasks: Failed in ")


@pytest.mark.parametrize(("arguments", "says"), [
    (["--remote"], f"ferry run: a manifest goes to the cluster as it is: kubectl create -f {EXAMPLE_MANIFEST}"),
    (["--greeting", "hi"], "ferry run: a manifest's inputs are its spec.inputs: change them there (got --greeting)"),
])
def test_a_manifest_runs_here_as_it_is(arguments, says, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["run", EXAMPLE_MANIFEST, *arguments])
    assert exited.value.code == 2 and capsys.readouterr().err.strip() == says


def test_a_file_that_is_no_workflow_manifest_is_refused(tmp_path):
    (tmp_path / "pod.yaml").write_text("kind: Pod\n")
    with pytest.raises(SystemExit, match="is not a Workflow manifest"):
        cli.main(["run", str(tmp_path / "pod.yaml")])


HOSTILE = "\x1b]0;title\x07\x1b[2J"


@ferry.task
def shouts() -> int:
    raise ValueError(f"bad {HOSTILE}\u202e")


@ferry.workflow
def shouting() -> int:
    return shouts()


def no_controls(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text, text


def test_run_prints_a_tasks_hostile_failure_escaped(tmp_path, capsys):
    assert cli.main(["run", "tests.runtime.cli.test_cli:shouting", "--store", str(tmp_path / "raw")]) == 1
    captured = capsys.readouterr()
    no_controls(captured.out + captured.err)
    assert r"ValueError: bad \x1b]0;title\x07\x1b[2J\u202e" in captured.err


def test_get_local_prints_hostile_names_and_messages_escaped(history_in_tmp, capsys):
    spec = resource.WorkflowSpec(tasks=[resource.Task(name="load", function="m:f")])
    with history.History(history_in_tmp) as opened:  # a history is a file anyone with the path can write
        opened.open_run(f"etl{HOSTILE}-00000001", "etl", spec, "file:///raw")
        opened.update(f"etl{HOSTILE}-00000001", resource.WorkflowStatus(
            phase=resource.Phase.FAILED, message=f"task load failed: {HOSTILE}",
            tasks={f"lo{HOSTILE}": resource.TaskStatus(phase=resource.Phase.FAILED, message=HOSTILE)},
            outputs={f"o{HOSTILE}": resource.Output(kind=resource.Kind.VALUE, value=HOSTILE)}))
    assert cli.main(["get", "--local"]) == 0
    listed = capsys.readouterr()
    no_controls(listed.out + listed.err)
    assert r"etl\x1b]0;title\x07\x1b[2J-00000001" in listed.out
    assert cli.main(["get", "--local", f"etl{HOSTILE}-00000001"]) == 0
    one = capsys.readouterr()
    no_controls(one.out + one.err)
    assert r"task load failed: \x1b]0;title\x07\x1b[2J" in one.out


def test_ls_prints_hostile_file_names_escaped(tmp_path, capsys, monkeypatch):
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / f"a{HOSTILE}.txt").write_text("x")
    store = ferry.Store(ferry.Settings(raw_data_prefix=(tmp_path / "raw").as_uri(), cache_dir=tmp_path / "cache"))
    ref = store.upload_directory(tmp_path / "tree")
    monkeypatch.setenv("FERRY_RAW_DATA_PREFIX", store.raw_data_prefix)
    assert cli.main(["ls", ref.uri]) == 0
    out = capsys.readouterr().out
    no_controls(out)
    assert out.split()[-1] == r"a\x1b]0;title\x07\x1b[2J.txt"


def python_task_manifest(tmp_path, metadata: dict) -> str:
    path = tmp_path / "workflow.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": resource.API_VERSION, "kind": resource.KIND, "metadata": metadata,
                                    "spec": {"tasks": [{"name": "first", "function": "tests.runtime.sample_workflows:add",
                                                        "inputs": [{"name": "a", "value": 1}, {"name": "b", "value": 2}],
                                                        "outputs": [{"name": "o0", "kind": "value"}]}],
                                             "outputs": [{"name": "sum", "fromTask": {"task": "first", "output": "o0"}}]}}))
    return str(path)


@pytest.mark.parametrize("metadata, field", [
    ({"name": "../../escaped"}, "metadata.name"), ({"name": "/tmp/escaped"}, "metadata.name"),
    ({"name": "Escaped"}, "metadata.name"), ({"name": "escaped_"}, "metadata.name"),
    ({"name": "escaped." + "x" * 250}, "metadata.name"), ({"generateName": "../escaped-"}, "metadata.generateName"),
    ({"name": f"escaped{HOSTILE}"}, "metadata.name")])
def test_a_manifest_name_that_is_no_dns_subdomain_is_refused_before_anything_runs(metadata, field, tmp_path,
                                                                                   monkeypatch, capsys):
    import tempfile

    (tmp_path / "deep" / "tmp").mkdir(parents=True)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "deep" / "tmp"))  # where the attempts' folders go
    manifest = python_task_manifest(tmp_path, metadata)
    with pytest.raises(SystemExit) as exited:
        cli.main(["run", manifest, "--store", str(tmp_path / "deep" / "raw")])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and f"{field} " in err, err
    assert "use lowercase letters, digits, '-' and '.'" in err or "longer than 244 characters: shorten it" in err
    no_controls(err)
    assert not [p for p in tmp_path.rglob("*") if "escaped" in p.name.lower()], "nothing written under that name"


def test_a_good_manifest_name_runs(tmp_path, capsys):
    assert cli.main(["run", python_task_manifest(tmp_path, {"name": "adds.v2"}), "--store", str(tmp_path / "raw")]) == 0
    assert capsys.readouterr().out == "sum = 3\n"


def test_compile_refuses_a_name_the_api_server_would(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["compile", "examples/quickstart.py:pipeline", "--name", "../weekly"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("ferry compile: --name '../weekly' ") and len(err.splitlines()) == 1


def stored_file(tmp_path) -> ferry.BlobRef:
    store = ferry.Store(ferry.Settings(raw_data_prefix=(tmp_path / "raw").as_uri()))
    (tmp_path / "rows.csv").write_text("a\nb\n")
    return store.put(tmp_path / "rows.csv", f"{store.raw_data_prefix}/e/count/1/rows")


def cluster_status(monkeypatch, outputs: dict) -> None:
    """A Workflow on the cluster whose status (written by the operator from what tasks report) names ``outputs``."""
    status = resource.WorkflowStatus(phase=resource.Phase.SUCCEEDED, outputs=outputs)
    monkeypatch.setattr(remote, "get", lambda name, namespace, context=None: {"status": status.dump()})


@pytest.mark.parametrize("name", ["../../x", "/abs/x", "a/b", "..", ".", "", "x\x1b[2J", "a" * 41])
def test_outputs_refuses_a_name_from_status_that_is_no_output_name(name, tmp_path, monkeypatch, capsys):
    stored = stored_file(tmp_path)
    hostile = name.replace("/abs", str(tmp_path / "abs"))
    cluster_status(monkeypatch, {
        "fine": resource.Output(kind=resource.Kind.FILE, uri=stored.uri, size=stored.size),
        hostile: resource.Output(kind=resource.Kind.FILE, uri=stored.uri, size=stored.size)})
    (tmp_path / "a" / "b").mkdir(parents=True)
    target = tmp_path / "a" / "b" / "out"
    assert cli.main(["outputs", "wf-1", "-o", str(target)]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "ferry outputs: the status of wf-1 names an output" in err, err
    no_controls(err)
    assert not (tmp_path / "abs").exists()
    assert not [p for p in (tmp_path / "a").rglob("*") if p.is_file()], "nothing downloaded, not even the good ones"


@pytest.mark.parametrize("link", ["rows", "values.json"])
def test_outputs_refuses_to_write_through_a_link_in_the_folder(link, tmp_path, monkeypatch, capsys):
    stored = stored_file(tmp_path)
    cluster_status(monkeypatch, {"rows": resource.Output(kind=resource.Kind.FILE, uri=stored.uri, size=stored.size),
                                 "count": resource.Output(kind=resource.Kind.VALUE, value=2)})
    (tmp_path / "out").mkdir()
    (tmp_path / "elsewhere").write_text("precious")
    (tmp_path / "out" / link).symlink_to(tmp_path / "elsewhere")
    assert cli.main(["outputs", "wf-1", "-o", str(tmp_path / "out")]) == 1
    assert f"{tmp_path / 'out' / link} is a link" in capsys.readouterr().err
    assert (tmp_path / "elsewhere").read_text() == "precious"


def test_outputs_of_a_local_run_come_from_the_history(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FERRY_RAW_DATA_PREFIX", (tmp_path / "raw").as_uri())
    monkeypatch.setattr(remote, "kubectl", lambda *a, **k: pytest.fail("a local run needs no cluster"))
    assert cli.main(["run", "tests.runtime.sample_workflows:named", "--n", "5", "--max-rows", "2"]) == 0
    run_id = next(run["name"] for run in history.History().runs()[0])
    capsys.readouterr()
    for arguments in (["outputs", run_id], ["outputs", "--local", run_id]):
        assert cli.main([*arguments, "-o", str(tmp_path / "out")]) == 0
        assert json.loads((tmp_path / "out" / "values.json").read_text()) == {"row_count": 2, "summary": "2 ROWS"}
    with pytest.raises(SystemExit):
        cli.main(["outputs", "--local", "named-00000000"])
    assert "no local run named-00000000" in capsys.readouterr().err


def test_outputs_without_a_cluster_says_so_in_one_line(tmp_path, capsys):
    result = subprocess.run([sys.executable, "-m", "ferry", "outputs", "etl-1a2b3c"], capture_output=True, text=True,
                            env={**os.environ, "KUBECONFIG": str(tmp_path / "none"), "FERRY_HISTORY": "off"},
                            cwd=tmp_path, timeout=60)
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("ferry outputs: no cluster is reachable") and "--local" in result.stderr


def run_folders(tmp_path, *run_ids: str) -> str:
    """A store whose ``local/`` folder holds old outputs of ``run_ids``; its URI."""
    root = tmp_path / "raw" / "local"
    old = time.time() - 7200
    for run_id in run_ids:
        path = root / run_id / "t" / "1" / "out.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 10)
        os.utime(path, (old, old))
    return (tmp_path / "raw").as_uri()


def test_gc_local_refuses_a_history_that_never_recorded_the_stores_runs(tmp_path, monkeypatch, capsys):
    store = run_folders(tmp_path, "etl-00000001", "etl-00000002")
    other = tmp_path / "other.sqlite3"
    monkeypatch.setenv("FERRY_HISTORY", str(other))
    assert cli.main(["gc", "--local", "--store", store, "--older-than", "1h", "--dry-run"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1, captured.err
    assert f"{other} (FERRY_HISTORY) never recorded 2 of the 2 runs" in captured.err
    assert f"under {store}/local/" in captured.err and "--unrecorded" in captured.err
    assert cli.main(["gc", "--local", "--store", store, "--older-than", "1h"]) == 1
    assert (tmp_path / "raw" / "local" / "etl-00000001" / "t" / "1" / "out.bin").exists()


def test_gc_local_deletes_the_runs_the_history_forgot_and_unrecorded_ones_when_told(tmp_path, history_in_tmp,
                                                                                      capsys):
    store = run_folders(tmp_path, "etl-00000001", "etl-00000002")
    spec = resource.WorkflowSpec(tasks=[resource.Task(name="t", function="m:f")])
    with history.History(history_in_tmp) as records:
        records.open_run("etl-00000001", "etl", spec, store)
        records.open_run("etl-00000002", "etl", spec, store)
    assert cli.main(["delete", "--local", "etl-00000001"]) == 0
    assert cli.main(["gc", "--local", "--store", store, "--older-than", "1h"]) == 0
    assert "1 folders of runs gone" in capsys.readouterr().out
    local = tmp_path / "raw" / "local"
    kept = {path.relative_to(local).parts[0] for path in local.rglob("out.bin")}
    assert kept == {"etl-00000002"}
    run_folders(tmp_path, "etl-00000003")  # another history's run
    assert cli.main(["gc", "--local", "--store", store, "--older-than", "1h"]) == 1
    assert "never recorded 1 of the 1 runs" in capsys.readouterr().err
    assert {path.relative_to(local).parts[0] for path in local.rglob("out.bin")} == {"etl-00000002", "etl-00000003"}
    assert cli.main(["gc", "--local", "--store", store, "--older-than", "1h", "--unrecorded"]) == 0
    assert {path.relative_to(local).parts[0] for path in local.rglob("out.bin")} == {"etl-00000002"}


@ferry.workflow
def returns_a_constant() -> int:
    return 3


def test_a_definition_error_is_one_line_and_exit_2(capsys):
    for command in ("run", "compile"):
        with pytest.raises(SystemExit) as exited:
            cli.main([command, "tests.runtime.cli.test_cli:returns_a_constant"])
        assert exited.value.code == 2
        err = capsys.readouterr().err
        assert err.splitlines() == [f"ferry {command}: workflow returns_a_constant: output o0 must be the output of a "
                                    "task called in the workflow, not 3"]


@pytest.mark.parametrize("target, says", [
    ("etl.pyy:etl", "ferry run: no module etl.pyy (nor a file etl.pyy)"),
    ("no_such_package.etl:etl", "ferry run: no module no_such_package.etl"),
    ("missing.py:etl", "ferry run: no file missing.py"),
])
def test_a_workflow_that_cannot_be_found_is_one_line_and_exit_2(target, says, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        cli.main(["run", target])
    assert exited.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(says) and "path/to/file.py:WORKFLOW or package.module:WORKFLOW" in line, line
    assert str(tmp_path) in line, "where it looked"


def test_an_import_error_inside_the_users_module_keeps_their_traceback(tmp_path):
    (tmp_path / "broken.py").write_text("import ferry\nimport no_such_dependency_of_theirs\n")
    result = subprocess.run([sys.executable, "-m", "ferry", "run", "broken.py:etl"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and 'broken.py", line 2' in result.stderr
    assert "No module named 'no_such_dependency_of_theirs'" in result.stderr


def test_a_closed_pipe_ends_the_listing_quietly(history_in_tmp, tmp_path):
    spec = resource.WorkflowSpec(tasks=[resource.Task(name="load", function="m:f")])
    with history.History(history_in_tmp) as opened:
        for i in range(600):
            opened.open_run(f"etl-{i:08x}", "etl", spec, "file:///raw")
            opened.update(f"etl-{i:08x}", resource.WorkflowStatus(phase=resource.Phase.FAILED, message="x" * 300))
    result = subprocess.run(f"{sys.executable} -m ferry get --local --limit 600 | head -3", shell=True,
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    assert len(result.stdout.splitlines()) == 3
    assert result.stderr == "", result.stderr


@ferry.task(image="python:3.12-slim")
def boxed_add(a: int, b: int) -> int:
    return a + b


@ferry.workflow
def boxed_sum(a: int = 1, b: int = 2) -> int:
    return boxed_add(a=a, b=b)


def test_a_python_task_with_an_image_says_once_that_it_runs_here_without_it(tmp_path, capsys):
    assert cli.main(["run", "tests.runtime.cli.test_cli:boxed_sum", "--store", str(tmp_path / "raw")]) == 0
    captured = capsys.readouterr()
    notices = [line for line in captured.err.splitlines() if "python:3.12-slim" in line]
    assert len(notices) == 1, captured.err
    assert notices[0].endswith("task boxed-add: its image python:3.12-slim is not used in a local run: the task "
                               "runs on this machine's Python (ferry run --remote runs it in its image)")
    assert captured.out == "o0 = 3\n"


def test_get_shows_a_maps_progress_by_items_or_by_pods_when_batched(capsys):
    workflow = {"metadata": {"name": "wf"}, "status": {"phase": "Running", "tasks": {
        "process": {"phase": "Running", "map": {"stage": "Items", "items": 100_000, "units": 100_000,
                                                "succeeded": 1532, "failed": 3, "running": 100}},
        "batched": {"phase": "Running", "map": {"stage": "Gather", "items": 100_000, "units": 10_000,
                                                "succeeded": 10_000}},
        "fresh": {"phase": "Running", "map": {"stage": "Split"}},
        "gathered": {"phase": "Succeeded", "map": {"stage": "Gather", "items": 6, "units": 6, "succeeded": 5,
                                                   "failed": 1}},
        "plain": {"phase": "Succeeded", "attempts": 1}}}}
    cli.show_workflow(workflow)
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "items 1,532/100,000 (3 failed, 100 running)" in lines["process"]
    assert "pods 10,000/10,000 of 100,000 items gathering" in lines["batched"]
    assert "items: splitting" in lines["fresh"] and "attempts=1" in lines["plain"]
    assert "items 5/6 (1 failed)" in lines["gathered"] and "gathering" not in lines["gathered"], "once gathered"


def map_workflow(monkeypatch, batch: int = 1, items: int | None = 200, failed: tuple[int, ...] = (17,),
                 record: str | None = None) -> list:
    """A Workflow ``nightly`` with a map ``process`` over ``items`` items, ``batch`` per unit: unit 3
    on its 2nd attempt, ``failed`` units failed; and a task ``load`` that is no map. The kubectl calls."""
    from ferry.api import items as records_

    units = None if items is None else -(-items // batch)
    progress = resource.MapStatus(stage="Items", items=items, units=units, failed=len(failed), failures=[
        resource.ItemFailure(unit=unit, attempt=1, message=f"unit {unit} fell over") for unit in failed])
    if units is not None:
        packed = records_.Record(units)
        packed.set(3, resource.Phase.RUNNING, 2)
        for unit in failed:
            packed.set(unit, resource.Phase.FAILED, 1)
        progress.record = record or packed.encode()
    spec = resource.WorkflowSpec(tasks=[
        resource.Task(name="load", function="m:f"),
        resource.Task(name="process", function="m:g", inputs=[resource.TaskInput(name="x", from_item=True)],
                      map=resource.Map(over=resource.MapOver(value=list(range(items or 0)), kind="value"),
                                       batch_size=batch))])
    status = resource.WorkflowStatus(phase=resource.Phase.RUNNING, tasks={
        "load": resource.TaskStatus(phase=resource.Phase.SUCCEEDED, attempts=1, pod_name="nightly-load-1"),
        "process": resource.TaskStatus(phase=resource.Phase.RUNNING, map=progress)})
    monkeypatch.setattr(remote, "get", lambda name, namespace, context=None: {
        "metadata": {"name": name}, "spec": spec.model_dump(by_alias=True, mode="json"), "status": status.dump()})
    asked = []
    monkeypatch.setattr(remote, "kubectl", lambda *args, context=None: asked.append(args) or f"log of {args[1]}\n")
    return asked


def test_logs_item_reads_its_units_pod_of_the_latest_attempt_or_the_one_asked_for(monkeypatch, capsys):
    from ferry.api import scheduler

    asked = map_workflow(monkeypatch, batch=5)
    assert cli.main(["logs", "nightly", "process", "--item", "17"]) == 0  # 17 // 5: unit 3, on attempt 2
    assert cli.main(["logs", "nightly", "process", "--item", "15", "--attempt", "1", "-c", "fetch"]) == 0
    captured = capsys.readouterr()
    pods = [scheduler.unit_name("nightly", "process", "item", attempt, 3) for attempt in (2, 1)]
    assert captured.out == "".join(f"log of {pod}\n" for pod in pods)
    assert asked == [("logs", pods[0], "-c", "main"), ("logs", pods[1], "-c", "ferry-fetch")]
    assert "item 17 runs in unit 3 with items 15..19" in captured.err, "a batch's log holds its other items too"
    assert cli.main(["logs", "nightly", "process", "--item", "17", "--attempt", "3"]) == 1
    assert cli.main(["logs", "nightly", "process", "--item", "0"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == ["ferry logs: item 17 of task 'process' of workflow nightly has no attempt 3 (attempts so far: 2)",
                   "ferry logs: item 0 of task 'process' of workflow nightly has not started"]


@pytest.mark.parametrize("arguments, line", [
    (["load", "--item", "3"], "ferry logs: --item 3: task 'load' of workflow nightly is not a map; drop --item"),
    (["process", "--item", "200"], "ferry logs: --item 200: task 'process' of workflow nightly has 200 items "
                                   "(--item 0 to 199)"),
    (["process", "--item", "-1"], "ferry logs: --item -1: task 'process' of workflow nightly has 200 items "
                                  "(--item 0 to 199)"),
    (["process"], "ferry logs: task 'process' of workflow nightly is a map of 200 items, a pod each: pass --item N "
                  "(0 to 199) for one item's log; the first that failed: --item 17 (unit 17 fell over)"),
])
def test_logs_of_a_map_without_an_item_or_with_a_wrong_one_is_one_line_and_exit_2(arguments, line, monkeypatch,
                                                                                   capsys):
    asked = map_workflow(monkeypatch)
    with pytest.raises(SystemExit) as exited:
        cli.main(["logs", "nightly", *arguments])
    assert exited.value.code == 2 and asked == []
    assert capsys.readouterr().err.splitlines() == [line]


def test_logs_item_of_a_map_still_splitting_or_with_a_damaged_record_says_so(monkeypatch, capsys):
    map_workflow(monkeypatch, items=None)
    assert cli.main(["logs", "nightly", "process", "--item", "3"]) == 1
    map_workflow(monkeypatch, record="bm90IGEgcmVjb3Jk")
    assert cli.main(["logs", "nightly", "process", "--item", "3"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "ferry logs: task 'process' of workflow nightly has not split its items yet"
    assert err[1].startswith("ferry logs: the status of task 'process' of workflow nightly holds a damaged map "
                             "record: not a packed map record") and len(err) == 2


def test_logs_item_of_a_local_run_says_what_the_history_keeps_of_it(monkeypatch, records, capsys):
    map_workflow(monkeypatch)
    workflow = remote.get("nightly-00000001", None)
    records.open_run("nightly-00000001", "nightly", resource.WorkflowSpec.model_validate(workflow["spec"]), "file:///r")
    records.update("nightly-00000001", resource.WorkflowStatus.model_validate(workflow["status"]))
    assert cli.main(["logs", "--local", "nightly-00000001", "process", "--item", "17"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "unit 17 fell over\n", "the failure's message: what the run kept of its log"
    assert captured.err == ("ferry logs: a local run keeps no log per item of a map, only its first failures' "
                            "messages: item 17's, on attempt 1:\n")
    assert cli.main(["logs", "--local", "nightly-00000001", "process", "--item", "3"]) == 1
    assert capsys.readouterr().err == ("ferry logs: a local run keeps no log per item of a map, only its first "
                                       "failures' messages: item 3 is Running, on attempt 2\n")
    with pytest.raises(SystemExit) as exited:
        cli.main(["logs", "--local", "nightly-00000001", "process", "--item", "1000"])
    assert exited.value.code == 2
    assert capsys.readouterr().err == ("ferry logs: --item 1000: task 'process' of workflow nightly-00000001 has 200 "
                                       "items (--item 0 to 199)\n")


@pytest.fixture
def executors(monkeypatch, tmp_path):
    """The parallelism each local run's executor was made with (the run itself goes on as usual)."""
    from ferry.execution import local

    made = []

    class Recorded(local.LocalExecutor):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self.parallelism)

    monkeypatch.setattr(local, "LocalExecutor", Recorded)
    monkeypatch.setenv("FERRY_RAW_DATA_PREFIX", (tmp_path / "raw").as_uri())
    monkeypatch.delenv("FERRY_LOCAL_PARALLELISM", raising=False)
    return made


def test_run_parallelism_sets_how_many_units_of_a_map_run_at_once_here(executors, monkeypatch, capsys):
    workflow = ["run", "tests.runtime.sample_workflows:named", "--n", "5", "--max-rows", "2"]
    assert cli.main([*workflow, "--parallelism", "3"]) == 0
    monkeypatch.setenv("FERRY_LOCAL_PARALLELISM", "5")
    assert cli.main(workflow) == 0
    assert cli.main([*workflow, "--parallelism=1"]) == 0
    assert executors == [3, 5, 1]
    with pytest.raises(SystemExit) as exited:
        cli.main(["run", "--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--parallelism N most units of a map running at once here" in text and "FERRY_LOCAL_PARALLELISM" in text


@pytest.mark.parametrize("given, env, line", [
    (["--parallelism", "0"], None, "ferry run: --parallelism 0: give a whole number of units, 1 or more"),
    (["--parallelism", "many"], None, "ferry run: --parallelism 'many': give a whole number of units, 1 or more"),
    ([], "-2", "ferry run: FERRY_LOCAL_PARALLELISM='-2': give a whole number of processes, 1 or more"),
    (["--parallelism", "4", "--remote", "--store", "s3://b"], None,
     "ferry run: --parallelism is for runs here; on a cluster a map runs as many units at once as it says "
     "(ferry.map(task, parallelism=N)) or the operator does (map.parallelism in the chart)"),
])
def test_a_bad_parallelism_is_one_line_and_exit_2(given, env, line, executors, cluster_calls, monkeypatch, capsys):
    if env is not None:
        monkeypatch.setenv("FERRY_LOCAL_PARALLELISM", env)
    with pytest.raises(SystemExit) as exited:
        cli.main(["run", "tests.runtime.sample_workflows:named", "--n", "5", *given])
    assert exited.value.code == 2 and executors == [] and cluster_calls == []
    assert capsys.readouterr().err.splitlines() == [line]


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """``data/`` holding ``b.txt``, ``a.txt`` and ``sub/c.txt``, and ``parts/`` holding ``p1/`` and
    ``p0/``; the current folder is ``tmp_path``, the store under it."""
    for path, text in (("data/b.txt", "B"), ("data/a.txt", "A"), ("data/sub/c.txt", "C"),
                       ("parts/p1/y.txt", "y"), ("parts/p1/z.txt", "z"), ("parts/p0/x.txt", "x")):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FERRY_RAW_DATA_PREFIX", (tmp_path / "raw").as_uri())
    return tmp_path


def test_a_list_of_files_is_given_as_a_directory_a_stored_one_or_a_json_list(tree, capsys):
    store = ferry.Store(ferry.Settings(raw_data_prefix=(tree / "raw").as_uri()))
    stored = store.upload_directory(tree / "data")
    for given, read in (("data", ["A", "B", "C"]),  # its files, in path order
                        (stored.uri, ["A", "B", "C"]),
                        ('["data/sub/c.txt", "data/a.txt"]', ["C", "A"]),  # in the list's order
                        (json.dumps([(tree / "data/b.txt").as_uri()]), ["B"])):
        assert cli.main(["run", "tests.runtime.cli.test_cli:listed", "--files", given]) == 0, given
        assert capsys.readouterr().out.splitlines()[-1].endswith(f" = {read!r}"), given
    with ferry.use_store(store):
        given = cli.parse_inputs(folders, ["--parts", "parts"])
        spec = folders.compile(**given)
        (part_input,) = spec.inputs
        loaded = typed_load(list[ferry.Directory], part_input, store)
    assert [sorted(f.path for f in part.manifest().files) for part in loaded] == [["x.txt"], ["y.txt", "z.txt"]]


def typed_load(annotation, given: resource.WorkflowInput, store: ferry.Store):
    from ferry.values import typed

    return typed.load(annotation, resource.Output(kind=given.kind, uri=given.uri), store)


LISTS = ("list[File] (a local directory (its files), a URI of a stored directory, or a JSON list of local paths "
         "or URIs)")


@pytest.mark.parametrize("target, given, line", [
    ("listed", ["--files", "nope"], f"input --files of listed expects {LISTS}, got 'nope': no such directory"),
    ("listed", ["--files", "data/a.txt"], f"input --files of listed expects {LISTS}, got 'data/a.txt': a file, "
                                          'not a directory (a list of it alone is ["data/a.txt"])'),
    ("listed", ["--files", '["data/a.txt", "data/none.txt"]'],
     f"input --files of listed expects {LISTS}, got '[\"data/a.txt\", \"data/none.txt\"]': item 1: no such file"),
    ("listed", ["--files", '["data/a.txt", "data"]'],
     f"input --files of listed expects {LISTS}, got '[\"data/a.txt\", \"data\"]': item 1: a directory, not a file"),
    ("listed", ["--files", '{"a": 1}'], f"input --files of listed expects {LISTS}, got '{{\"a\": 1}}': "
                                        "JSON, but not a list of paths or URIs"),
    ("listed", ["--files", "[1, 2]"], f"input --files of listed expects {LISTS}, got '[1, 2]': "
                                      "JSON, but not a list of paths or URIs"),
    ("folders", ["--parts", "data"], "input --parts of folders expects list[Directory] (a local directory (its "
                                     "directories), a URI of a stored directory, or a JSON list of local paths or "
                                     "URIs), got 'data': it holds files at its top (a.txt), not only directories"),
])
def test_a_bad_list_of_files_is_one_line_and_exit_2(target, given, line, tree, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["run", f"tests.runtime.cli.test_cli:{target}", *given])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines() == [f"ferry run: {line}"]


def test_help_says_how_to_give_a_list_of_files(capsys):
    with pytest.raises(SystemExit):
        cli.main(["run", "tests.runtime.cli.test_cli:listed", "--help"])
    assert f"--files {LISTS.replace(' (', ' ', 1)[:-1]}; required" in " ".join(capsys.readouterr().out.split())
