"""Container tasks run here under podman, as in their pod: inputs fetched on this machine, the image
run with them mounted, its outputs published from this machine with the pod's own checks."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import pytest

import ferry
from ferry.api import resource
from ferry.execution import history, local

from tests.cluster import node_images

REPO = pathlib.Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.skipif(shutil.which("podman") is None,
                                reason="podman is not installed (apt-get install podman): the local executor runs "
                                       "container tasks under podman or docker")

CONTAINERS_CONF = """\
[containers]
# Below any machine's own limits, so runc never raises one: some sandboxes (CI machines among them)
# refuse to raise a limit even to root, and podman as root asks for nofile=1048576 by default.
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
# No systemd in a container or on a minimal machine: cgroups and events without it.
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "{root}/tmp"
"""

STORAGE_CONF = """\
[storage]
# vfs: no mounts to leave behind (busybox is 2 MB, copying it costs nothing).
driver = "vfs"
graphroot = "{root}/storage"
runroot = "{root}/run"
"""


@pytest.fixture(scope="module")
def podman_env() -> Iterator[dict[str, str]]:
    """podman with storage and settings of these tests' own, holding the suite's busybox (no image
    registry is reachable here): what a laptop's podman has after ``podman pull busybox:1.36``.
    Only the environment says so, which the executor passes on, as it would a user's."""
    archive = node_images.build_one(node_images.busybox_image())
    root = pathlib.Path(tempfile.mkdtemp(prefix="ferry-podman-"))  # short: podman's sockets live under it
    (root / "containers.conf").write_text(CONTAINERS_CONF.format(root=root))
    (root / "storage.conf").write_text(STORAGE_CONF.format(root=root))
    env = {"CONTAINERS_CONF": str(root / "containers.conf"), "CONTAINERS_STORAGE_CONF": str(root / "storage.conf"),
           "FERRY_CONTAINER_RUNTIME": "podman"}
    loaded = subprocess.run(["podman", "load", "--quiet", "--input", str(archive)], env={**os.environ, **env},
                            capture_output=True, text=True, timeout=120)
    assert loaded.returncode == 0, loaded.stderr
    try:
        yield env
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def podman(podman_env, local_store, monkeypatch) -> Iterator[ferry.Store]:
    """The local store, with podman as set up by ``podman_env``."""
    for key, value in podman_env.items():
        monkeypatch.setenv(key, value)
    with ferry.use_store(local_store):
        yield local_store


def boxed(script: str, outputs: list[dict], **task) -> dict:
    """A busybox task running ``script``."""
    return {"name": "boxed", "image": "busybox:1.36", "command": ["sh", "-c"], "args": [script], "outputs": outputs,
            **task}


def containers_named(prefix: str) -> list[str]:
    listed = subprocess.run(["podman", "ps", "--all", "--format", "{{.Names}}"], capture_output=True, text=True,
                            check=True, timeout=60)
    return [name for name in listed.stdout.split() if name.startswith(prefix)]


SCRIPT = """\
set -e
test "$FERRY_INPUT_NOTES" = /ferry/inputs/notes
test -z "$AWS_SECRET_ACCESS_KEY$FERRY_RAW_DATA_PREFIX"  # this machine's environment stays out
{ echo "$(cat "$FERRY_INPUT_GREETING")$SUFFIX"; cat "$FERRY_INPUT_NOTES"; } > /ferry/outputs/shout
mkdir -p /ferry/outputs/pages/lines
n=0
while read -r line; do n=$((n + 1)); echo "$line" > "/ferry/outputs/pages/lines/$n.txt"; done < "$FERRY_INPUT_NOTES"
echo "$FERRY_TASK attempt $FERRY_ATTEMPT" > /ferry/outputs/pages/who
ls /sys/class/net > /ferry/outputs/pages/networks
if touch /ferry/inputs/written 2>/dev/null; then echo the inputs are writable >&2; exit 9; fi
echo "$n" > /ferry/outputs/lines
echo "wrote $n lines"
"""


def test_a_container_task_between_python_tasks(podman, history_in_tmp, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-for-the-container")
    spec = resource.WorkflowSpec.model_validate({
        "inputs": [{"name": "greeting", "value": "hello"}],
        "tasks": [
            {"name": "note", "function": "tests.runtime.sample_workflows:note",
             "inputs": [{"name": "text", "value": "first line\nsecond line\n"}],
             "outputs": [{"name": "o0", "kind": "file"}]},
            boxed(SCRIPT, [{"name": "shout", "kind": "file"}, {"name": "pages", "kind": "directory"},
                           {"name": "lines", "kind": "value"}],
                  env=[{"name": "SUFFIX", "value": "!"}],
                  inputs=[{"name": "notes", "kind": "file", "fromTask": {"task": "note", "output": "o0"}},
                          {"name": "greeting", "fromInput": "greeting"}]),
            {"name": "read-back", "function": "tests.runtime.sample_workflows:read_boxed",
             "inputs": [{"name": name, "fromTask": {"task": "boxed", "output": name}}
                        for name in ("shout", "pages", "lines")],
             "outputs": [{"name": "o0", "kind": "value"}]},
        ],
        "outputs": [{"name": "summary", "fromTask": {"task": "read-back", "output": "o0"}},
                    {"name": "pages", "fromTask": {"task": "boxed", "output": "pages"}}],
    })
    run = local.LocalExecutor(podman).run("boxed", spec, {"summary": dict, "pages": ferry.Directory},
                                          run_id="boxed-00000001")
    assert run.status.phase == resource.Phase.SUCCEEDED, run.status.message
    assert run.outputs()["summary"] == {
        "shout": "hello!\nfirst line\nsecond line\n", "lines": 2,
        "pages": {"lines/1.txt": "first line\n", "lines/2.txt": "second line\n", "who": "boxed attempt 1\n",
                  "networks": "lo\n"}}  # no network but loopback
    assert run.status.outputs["pages"].file_count == 4
    with history.History(history_in_tmp) as records:
        assert records.log("boxed-00000001", "boxed") == "wrote 2 lines\n"
    assert not containers_named("ferry-boxed-00000001-"), "--rm: the container went with its end"


LARGE_LINES = 300_000
VALUE_SHAPES = [
    {"name": "make", "image": "busybox:1.36", "command": ["sh", "-c"], "args": [
        "printf 'hello world' > /ferry/outputs/small-text\n"
        f"yes 'ferry value line' | head -c {LARGE_LINES} > /ferry/outputs/large-text\n"
        """printf '%s' '{"k": [1, 2], "s": "caf\\u00e9"}' > /ferry/outputs/small-json\n"""
        """{ printf '{"rows": ['; seq -s, 0 999; printf ']}'; } > /ferry/outputs/large-json\n"""],
     "outputs": [{"name": name, "kind": "value"} for name in ("small-text", "large-text", "small-json", "large-json")]},
    {"name": "check", "image": "busybox:1.36", "command": ["sh", "-c"], "args": [
        "set -e\n"
        'test "$FERRY_INPUT_SMALL_TEXT" = /ferry/inputs/small-text\n'
        'test "$FERRY_INPUT_LARGE_TEXT" = /ferry/inputs/large-text\n'
        'test "$FERRY_INPUT_SMALL_JSON" = /ferry/inputs/small-json\n'
        'test "$FERRY_INPUT_LARGE_JSON" = /ferry/inputs/large-json\n'
        "for name in small-text large-text small-json large-json; do cat /ferry/inputs/$name > /ferry/outputs/$name; done\n"
        "wc -c /ferry/inputs/*\n"],
     "inputs": [{"name": name, "fromTask": {"task": "make", "output": name}}
                for name in ("small-text", "large-text", "small-json", "large-json")],
     "outputs": [{"name": name, "kind": "file"} for name in ("small-text", "large-text", "small-json", "large-json")]},
    {"name": "literal", "image": "busybox:1.36", "command": ["sh", "-c"],  # nothing to fetch, still files
     "args": ['test "$(cat "$FERRY_INPUT_GREETING")" = "hello there" && test "$(cat "$FERRY_INPUT_COUNT")" = 3'],
     "inputs": [{"name": "greeting", "value": "hello there"}, {"name": "count", "value": 3}]},
]
"""Values of each shape from one container task to another, which copies the files it finds back out
(``ferry run`` here and the operator on a cluster run the same)."""
EXPECTED_SHAPES = {
    "small-text": b"hello world",
    "large-text": ("ferry value line\n" * LARGE_LINES)[:LARGE_LINES].strip().encode(),  # published stripped
    "small-json": b'{"k": [1, 2], "s": "caf\\u00e9"}',
    "large-json": json.dumps({"rows": list(range(1000))}).encode(),
}
"""What ``check`` reads in ``/ferry/inputs``: each string as itself, any other value as its JSON."""


def test_a_value_input_is_one_file_of_its_text_whatever_its_size(podman):
    """A value over the inline limit is stored and fetched; one under it rides in the plan: the task
    cannot tell, since an upstream value may grow past the limit."""
    run = local.LocalExecutor(podman).run("shapes", resource.WorkflowSpec.model_validate({"tasks": VALUE_SHAPES}), {})
    assert run.status.phase == resource.Phase.SUCCEEDED, run.status.message
    made = run.status.tasks["make"].outputs
    assert made["large-text"].uri and made["large-json"].uri and made["small-text"].value == "hello world"
    copied = run.status.tasks["check"].outputs
    assert {name: _read(podman, copied[name].uri) for name in EXPECTED_SHAPES} == EXPECTED_SHAPES


def _read(store: ferry.Store, uri: str) -> bytes:
    with store.open(uri) as stream:
        return stream.read()


def test_a_container_that_fails_fails_the_run_with_its_exit_code_and_log(podman):
    spec = resource.WorkflowSpec(tasks=[boxed("echo checking; echo 'no such table: rows' >&2; exit 3", [])])
    run = local.LocalExecutor(podman).run("failing", spec, {})
    assert run.status.phase == resource.Phase.FAILED
    assert run.status.message == ("task boxed failed: attempt 1 failed: main container exited with code 3: "
                                  "checking\nno such table: rows")


def test_an_output_linking_out_of_the_outputs_folder_is_refused(podman):
    spec = resource.WorkflowSpec.model_validate({"tasks": [
        boxed("ln -s /etc/passwd /ferry/outputs/leak", [{"name": "leak", "kind": "file"}])]})
    run = local.LocalExecutor(podman).run("leaking", spec, {})
    assert run.status.phase == resource.Phase.FAILED
    assert "output 'leak'" in run.status.message and "links to /etc/passwd, outside" in run.status.message


def test_a_container_past_its_timeout_is_stopped_and_removed(podman, history_in_tmp):
    """Its shell, PID 1 of the container, ignores SIGTERM: it is killed after the grace."""
    spec = resource.WorkflowSpec.model_validate({"tasks": [boxed("echo sleeping; sleep 300", [], timeoutSeconds=3)]})
    started = time.monotonic()
    run = local.LocalExecutor(podman).run("sleepy", spec, {}, run_id="sleepy-00000001")
    assert run.status.phase == resource.Phase.FAILED and time.monotonic() - started < 20
    assert "timed out after 3s" in run.status.message
    with history.History(history_in_tmp) as records:
        assert records.log("sleepy-00000001", "boxed") == (
            "sleeping\nferry: stopped while running the container (the attempt timed out, or its run stopped)\n")
    assert not containers_named("ferry-sleepy-00000001-")



def test_ferry_run_runs_the_example_manifest_here(podman, tmp_path):
    store = (tmp_path / "out").as_uri()
    result = subprocess.run([sys.executable, "-m", "ferry", "run", "examples/workflows/directory-between-tasks.yaml",
                             "--store", store], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    outputs = dict(line.split(" = ", 1) for line in result.stdout.splitlines())
    assert outputs["days"] == "3" and outputs["summary"].startswith(f"{store}/local/directory-between-tasks-")
    with ferry.Store(ferry.Settings(raw_data_prefix=store, cache_dir=tmp_path / "cache")).open(outputs["summary"]) as f:
        assert f.read() == b"hello mon\nhello tue\nhello wed\n"
