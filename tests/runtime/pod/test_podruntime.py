"""The runtime around container tasks: fetching inputs and publishing outputs, without a cluster."""

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

import ferry
from ferry.api import resource, taskpod
from ferry.pod import podruntime, runner
from ferry.values import typed as values

REPO = pathlib.Path(__file__).resolve().parents[3]


def plan(tmp_path, **fields) -> taskpod.PodPlan:
    return taskpod.PodPlan(workflow="wf", namespace="ns", execution_id="x", task="t", attempt=1,
                           output_prefix=(tmp_path / "published").as_uri(), **fields)


def test_publish_then_fetch_round_trips_files_directories_and_values(tmp_path):
    store = ferry.Store(ferry.Settings(raw_data_prefix=(tmp_path / "raw").as_uri()))
    outputs = tmp_path / "outputs"
    (outputs / "tree" / "sub").mkdir(parents=True)
    (outputs / "tree" / "sub" / "a.txt").write_text("a")
    (outputs / "report").write_text("r")
    (outputs / "count").write_text("42\n")
    declared = [resource.TaskOutput(name="tree", kind="directory"), resource.TaskOutput(name="report"),
                resource.TaskOutput(name="count", kind="value")]
    result = podruntime.publish(plan(tmp_path, outputs=declared), store, outputs)
    assert result.error is None
    assert result.outputs["count"].value == 42
    assert result.outputs["tree"].uri.endswith("/published/tree") and result.outputs["tree"].file_count == 1

    inputs = tmp_path / "inputs"
    podruntime.fetch(plan(tmp_path, inputs={"tree": result.outputs["tree"], "report": result.outputs["report"]}),
                     store, inputs)
    assert (inputs / "tree" / "sub" / "a.txt").read_text() == "a"
    assert (inputs / "report").read_text() == "r"


def test_what_the_publisher_reports_the_status_takes_as_it_is(tmp_path):
    """The operator writes a pod's report into status, where the CRD holds every digest to the
    patterns a pod checks: each kind of output, stored values too, must read back unchanged."""
    store = ferry.Store(ferry.Settings(raw_data_prefix=(tmp_path / "raw").as_uri()))
    outputs = tmp_path / "outputs"
    for folder in ("tree", "model"):
        (outputs / folder).mkdir(parents=True)
        (outputs / folder / "a.txt").write_text(folder)
    (outputs / "report").write_text("r")
    (outputs / "big").write_text(json.dumps("x" * 2000))
    declared = [resource.TaskOutput(name="tree", kind="directory"), resource.TaskOutput(name="model", kind="asset"),
                resource.TaskOutput(name="report"), resource.TaskOutput(name="big", kind="value")]
    result = podruntime.publish(plan(tmp_path, outputs=declared), store, outputs)
    assert result.error is None and result.outputs["big"].sha256 and result.outputs["model"].manifest_digest
    assert taskpod.PublishResult.model_validate(json.loads(json.dumps(result.dump()))) == result


def test_publish_names_what_is_missing_or_of_the_wrong_kind(tmp_path):
    store = ferry.Store(ferry.Settings(raw_data_prefix=(tmp_path / "raw").as_uri()))
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    missing = podruntime.publish(plan(tmp_path, outputs=[resource.TaskOutput(name="model")]), store, outputs)
    assert missing.error == f"output 'model': the task did not write {outputs / 'model'}"
    (outputs / "model").write_text("not a directory")
    wrong = podruntime.publish(plan(tmp_path, outputs=[resource.TaskOutput(name="model", kind="directory")]),
                               store, outputs)
    assert "declared as a directory" in wrong.error and "must be a directory" in wrong.error


def test_a_result_too_large_to_report_is_stored_and_pointed_to(tmp_path):
    """64 outputs (the most a task may declare) with long URIs: far over a termination message."""
    store = ferry.Store(ferry.Settings(raw_data_prefix=(tmp_path / "raw").as_uri()))
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    declared = [resource.TaskOutput(name=f"output-{i:02d}-{'x' * 28}") for i in range(64)]
    for output in declared:
        (outputs / output.name).write_text(output.name)
    published_plan = plan(tmp_path, outputs=declared)
    result = podruntime.publish(published_plan, store, outputs)
    podruntime.report(result, published_plan, store, str(tmp_path / "message"))
    message = (tmp_path / "message").read_text()
    assert len(message) < 400, "only a pointer is reported"
    pointer = taskpod.PublishResult.model_validate_json(message).result
    assert pointer.uri == f"{published_plan.output_prefix}/.ferry-result.json"

    last = declared[-1].name
    ref = resource.Output(kind="file", result=pointer.model_copy(update={"output": last}))
    inputs = tmp_path / "inputs"
    podruntime.fetch(plan(tmp_path, inputs={"last": ref}), store, inputs)
    assert (inputs / "last").read_text() == last

    store.backend(pointer.uri).write_bytes(pointer.uri, message.encode())  # swapped: its digest differs
    with pytest.raises(ferry.IntegrityError, match="sha256 mismatch"):
        podruntime.fetch(plan(tmp_path, inputs={"last": ref}), store, tmp_path / "again")


def test_the_local_executor_gets_large_results_whole(tmp_path):
    """No termination message to fit on a laptop: the result file holds everything."""
    store = ferry.Store(ferry.Settings(raw_data_prefix=(tmp_path / "raw").as_uri()))
    many = taskpod.PublishResult(outputs={f"o{i}": resource.Output(kind="value", value="x" * 500) for i in range(20)})
    podruntime.report(many, plan(tmp_path, inline_limit=None), store, str(tmp_path / "result"))
    assert taskpod.PublishResult.model_validate_json((tmp_path / "result").read_text()) == many


def test_a_small_result_is_reported_inline_and_an_error_is_cut_from_its_start(tmp_path):
    store = ferry.Store(ferry.Settings(raw_data_prefix=(tmp_path / "raw").as_uri()))
    small = taskpod.PublishResult(outputs={"v": resource.Output(kind="value", value=1)})
    podruntime.report(small, plan(tmp_path), store, str(tmp_path / "small"))
    assert taskpod.PublishResult.model_validate_json((tmp_path / "small").read_text()) == small
    failed = taskpod.PublishResult(error="ValueError: " + "x" * 10_000 + " the end")
    podruntime.report(failed, plan(tmp_path), store, str(tmp_path / "failed"))
    written = (tmp_path / "failed").read_text()
    assert len(written) <= taskpod.MAX_MESSAGE and json.loads(written)["error"].endswith("the end")


def test_a_large_value_output_is_stored_and_passed_by_reference(tmp_path):
    store = ferry.Store(ferry.Settings(raw_data_prefix=(tmp_path / "raw").as_uri()))
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    big = {"rows": list(range(5000))}
    (outputs / "table").write_text(json.dumps(big))
    result = podruntime.publish(plan(tmp_path, outputs=[resource.TaskOutput(name="table", kind="value")]),
                                store, outputs)
    ref = result.outputs["table"]
    assert ref.value is None and ref.uri.endswith("/table.json") and ref.size > values.MAX_INLINE_VALUE
    assert values.load(dict, ref, store) == big
    podruntime.fetch(plan(tmp_path, inputs={"table": ref}), store, tmp_path / "inputs")  # to a container task
    assert (tmp_path / "inputs" / "table").read_bytes() == json.dumps(big).encode()


LARGE_TEXT = "line one\n\u00e9t\u00e9 \u2603 \"quoted\"\n" + "x" * 300_000
VALUES = {"small-text": "hello, world\n", "large-text": LARGE_TEXT, "small-json": {"n": [1, 2.5, None, True]},
          "large-json": {"rows": list(range(5000)), "name": "caf\u00e9"}, "number": 7,
          "hostile": "\x00\x01 $(rm -rf /) \\ \r\n\t'\"; \u202e", "empty": ""}


def _container_task_plan(tmp_path, store, published: dict) -> taskpod.PodPlan:
    """The plan of a container task reading each of ``published`` (upstream outputs, by name), as the
    operator and the local executor build it."""
    spec = resource.WorkflowSpec.model_validate({"tasks": [
        {"name": "up", "image": "x", "outputs": [{"name": name, "kind": "value"} for name in published]},
        {"name": "down", "image": "x", "inputs": [{"name": name, "fromTask": {"task": "up", "output": name}}
                                                  for name in published]}]})
    status = resource.WorkflowStatus(tasks={"up": resource.TaskStatus(phase=resource.Phase.SUCCEEDED, outputs=published)})
    return taskpod.build_plan(spec, status, "down", 1, workflow="wf", namespace="ns", execution_id="x",
                              root=(tmp_path / "raw").as_uri())


def test_every_value_input_is_a_file_of_its_text_whatever_its_size(tmp_path):
    """Small values ride in the plan and large ones are fetched from the store: the file is the same either
    way, a string as itself (not JSON-quoted) and anything else as its JSON, and the variable is its path."""
    store = ferry.Store(ferry.Settings(raw_data_prefix=(tmp_path / "raw").as_uri()))
    published = {name: values.publish_json(value, store, (tmp_path / "raw" / f"{name}.json").as_uri())
                 for name, value in VALUES.items()}
    assert published["large-text"].uri and published["large-json"].uri, "over the inline limit: stored"
    assert published["small-text"].value == VALUES["small-text"], "small: inline"
    down = _container_task_plan(tmp_path, store, published)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    podruntime.fetch(down, store, inputs)
    assert sorted(p.name for p in inputs.iterdir()) == sorted(VALUES)
    for name, value in VALUES.items():
        expected = value.encode() if isinstance(value, str) else json.dumps(value).encode()
        assert (inputs / name).read_bytes() == expected, name
        assert down.input_env()[taskpod.input_env_name(name)] == f"/ferry/inputs/{name}"
    assert len((inputs / "large-text").read_bytes()) == len(LARGE_TEXT.encode()), "no quotes added"


def test_a_large_value_of_the_same_text_is_the_same_file_as_a_small_one(tmp_path):
    """A task's input does not change shape when its upstream value grows past the inline limit."""
    store = ferry.Store(ferry.Settings(raw_data_prefix=(tmp_path / "raw").as_uri()))
    for value in ("a\n" * 10, {"k": "\u00e9" * 10}):
        small = values.publish_json(value, store, (tmp_path / "raw" / "small.json").as_uri())
        large = resource.Output(kind="value", uri=(tmp_path / "raw" / "large.json").as_uri())
        store.backend(large.uri).write_bytes(large.uri, json.dumps(value).encode())  # stored as a large one is
        down = _container_task_plan(tmp_path, store, {"small": small, "large": large})
        assert down.values and down.inputs, "one rides in the plan, the other is fetched"
        inputs = tmp_path / "inputs" / str(len(str(value)))
        inputs.mkdir(parents=True)
        podruntime.fetch(down, store, inputs)
        assert (inputs / "small").read_bytes() == (inputs / "large").read_bytes()


def test_a_string_that_is_not_unicode_text_is_refused_naming_its_input(tmp_path):
    """JSON spells a lone surrogate (a Python task may return one); UTF-8 cannot, so no file can hold it."""
    store = ferry.Store(ferry.Settings(raw_data_prefix=(tmp_path / "raw").as_uri()))
    for value in ("\ud800", "\ud800" + "x" * 2000):
        down = _container_task_plan(tmp_path, store, {"odd": values.publish_json(
            value, store, (tmp_path / "raw" / "odd.json").as_uri())})
        (tmp_path / "inputs").mkdir(exist_ok=True)
        with pytest.raises(ValueError, match=r"^input 'odd': the string is not valid Unicode text .*pass it as a file"):
            podruntime.fetch(down, store, tmp_path / "inputs")


SECRET = "ferry-test-secret-0123456789"


def _outputs_with(tmp_path, make) -> tuple[ferry.Store, "pathlib.Path"]:
    store = ferry.Store(ferry.Settings(raw_data_prefix=(tmp_path / "raw").as_uri()))
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    make(outputs)
    return store, outputs


def _published_bytes(tmp_path) -> bytes:
    return b"".join(p.read_bytes() for p in (tmp_path / "published").rglob("*") if p.is_file()) \
        if (tmp_path / "published").exists() else b""


@pytest.mark.parametrize("kind", ["file", "value"])
def test_publish_refuses_a_link_to_the_process_environment(tmp_path, monkeypatch, kind):
    """The store's keys are in the publisher's environment: a link to it must never be uploaded."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    store, outputs = _outputs_with(tmp_path, lambda out: (out / "report").symlink_to("/proc/self/environ"))
    result = podruntime.publish(plan(tmp_path, outputs=[resource.TaskOutput(name="report", kind=kind)]),
                                store, outputs)
    assert result.error is not None and "'report'" in result.error and "outside" in result.error
    assert SECRET not in result.model_dump_json() and SECRET.encode() not in _published_bytes(tmp_path)


def test_publish_refuses_a_directory_output_that_links_out_of_the_outputs_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    store, outputs = _outputs_with(tmp_path, lambda out: (out / "tree").symlink_to("/proc/self",
                                                                                   target_is_directory=True))
    result = podruntime.publish(plan(tmp_path, outputs=[resource.TaskOutput(name="tree", kind="directory")]),
                                store, outputs)
    assert result.error is not None and "'tree'" in result.error and "outside" in result.error
    assert SECRET.encode() not in _published_bytes(tmp_path)


def test_publish_refuses_a_link_to_a_sibling_secret_file(tmp_path):
    """Any file outside the outputs folder (the publisher's own files) stays out of reach."""
    (tmp_path / "keys").write_text(SECRET)
    store, outputs = _outputs_with(tmp_path, lambda out: (out / "report").symlink_to(tmp_path / "keys"))
    result = podruntime.publish(plan(tmp_path, outputs=[resource.TaskOutput(name="report")]), store, outputs)
    assert result.error is not None and "outside" in result.error
    assert SECRET.encode() not in _published_bytes(tmp_path)


def test_publish_keeps_links_that_stay_inside_the_outputs_folder(tmp_path):
    def make(out):
        (out / "real.txt").write_text("kept")
        (out / "report").symlink_to("real.txt")
    store, outputs = _outputs_with(tmp_path, make)
    result = podruntime.publish(plan(tmp_path, outputs=[resource.TaskOutput(name="report")]), store, outputs)
    assert result.error is None and result.outputs["report"].size == 4


@pytest.mark.timeout(20)
@pytest.mark.parametrize("special", ["fifo", "device", "socket"])
def test_publish_refuses_fifos_devices_and_sockets_without_hanging(tmp_path, special):
    def make(out):
        if special == "fifo":
            os.mkfifo(out / "report")
        elif special == "device":
            (out / "report").symlink_to("/dev/zero")
        else:
            listener = socket.socket(socket.AF_UNIX)
            listener.bind(str(out / "report"))
            listener.close()
    store, outputs = _outputs_with(tmp_path, make)
    result = podruntime.publish(plan(tmp_path, outputs=[resource.TaskOutput(name="report")]), store, outputs)
    assert result.error is not None and "'report'" in result.error
    assert "regular file" in result.error or "outside" in result.error


@pytest.mark.timeout(20)
def test_publish_refuses_a_fifo_inside_a_directory_output(tmp_path):
    def make(out):
        (out / "tree").mkdir()
        (out / "tree" / "ok.txt").write_text("ok")
        os.mkfifo(out / "tree" / "pipe")
    store, outputs = _outputs_with(tmp_path, make)
    result = podruntime.publish(plan(tmp_path, outputs=[resource.TaskOutput(name="tree", kind="directory")]),
                                store, outputs)
    assert result.error is not None and "pipe" in result.error and "regular file" in result.error


def _pid_one_of(unshare: subprocess.Popen) -> int:
    """The host PID of the process ``unshare --fork`` started as PID 1 of its namespace."""
    def child():
        children = pathlib.Path(f"/proc/{unshare.pid}/task/{unshare.pid}/children").read_text().split()
        return int(children[0]) if children else None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if found := child():
            return found
        time.sleep(0.05)
    raise AssertionError("unshare started no process")


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root for a PID namespace")
@pytest.mark.timeout(60)
@pytest.mark.parametrize("step", ["run-function", "fetch"])
def test_runtime_as_pid_1_stops_on_sigterm(tmp_path, step):
    """A container's PID 1 gets only the signals it handles: without a handler, the kubelet's SIGTERM
    is ignored and the pod lives until SIGKILL at the end of its grace period."""
    store = ferry.Store(ferry.Settings(raw_data_prefix=(tmp_path / "raw").as_uri()))
    slow = tmp_path / "slow.fifo"  # fetch blocks reading an input that never arrives
    os.mkfifo(slow)
    fields = ({"function": "tests.runtime.sample_workflows:sleeps", "values": {"seconds": 300}}
              if step == "run-function" else
              {"inputs": {"big": resource.Output(kind="file", uri=slow.as_uri())}})
    pod_plan = plan(tmp_path, **fields)
    env = {**os.environ, taskpod.PLAN_ENV: pod_plan.model_dump_json(by_alias=True, exclude_none=True),
           "FERRY_RAW_DATA_PREFIX": store.raw_data_prefix, "PYTHONPATH": str(REPO),
           taskpod.TERMINATION_LOG_ENV: str(tmp_path / "result"), taskpod.WORKDIR_ENV: str(tmp_path / "work"),
           "FERRY_INPUTS_DIR": str(tmp_path / "inputs")}
    unshare = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", sys.executable, "-m", "ferry", "pod",
                                step], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        pid_one = _pid_one_of(unshare)
        time.sleep(3)  # imports done, the task (or download) under way
        os.kill(pid_one, signal.SIGTERM)
        unshare.wait(timeout=10)
    finally:
        unshare.kill()
        output = unshare.communicate()[0].decode(errors="replace")
    assert unshare.returncode != 0, output
    if step == "run-function":
        assert "stopped" in json.loads((tmp_path / "result").read_text())["error"]
