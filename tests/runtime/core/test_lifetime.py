"""A local run's processes live no longer than the ``ferry run`` that started them."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

import ferry
from ferry.execution import history

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@ferry.task
def keeps_writing(path: str) -> int:
    """Writes until it is stopped, with a child of its own doing the same (as a shell script's would)."""
    child = subprocess.Popen([sys.executable, "-c", "import time\nwhile True: time.sleep(0.05)"])
    with open(path, "ab") as out:
        pathlib.Path(f"{path}.pids").write_text(json.dumps([os.getpid(), child.pid]))
        while True:
            out.write(b"x" * 1024)
            out.flush()
            time.sleep(0.02)


@ferry.workflow
def writer(path: str) -> int:
    return keeps_writing(path=path)


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for a parent to reap it."""
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def start_run(tmp_path, fork: bool):
    (tmp_path / "tmp").mkdir()
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp"), "FERRY_LOCAL_FORK": str(fork).lower(),
           "FERRY_RAW_DATA_PREFIX": (tmp_path / "raw").as_uri()}
    run = subprocess.Popen([sys.executable, "-m", "ferry", "run", "tests.runtime.core.test_lifetime:writer",
                            "--path", str(tmp_path / "written")], cwd=REPO, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / "written.pids").exists():
        assert run.poll() is None and time.monotonic() < deadline, run.communicate()
        time.sleep(0.05)
    time.sleep(0.2)
    return run, json.loads((tmp_path / "written.pids").read_text())


def all_end(pids: list[int], within: float) -> bool:
    deadline = time.monotonic() + within
    while any(map(alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not any(map(alive, pids))


@pytest.fixture
def cleanup():
    pids = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize("fork", [True, False])
def test_sigterm_stops_the_run_as_ctrl_c_does(tmp_path, history_in_tmp, fork, cleanup):
    run, pids = start_run(tmp_path, fork)
    cleanup += pids
    started = time.monotonic()
    run.send_signal(signal.SIGTERM)
    out, err = run.communicate(timeout=20)
    assert all_end(pids, 3), "the task and its child end with the run"
    assert time.monotonic() - started < 10
    assert run.returncode == 128 + signal.SIGTERM and "Traceback" not in err, err
    assert "stopped (SIGTERM)" in err.splitlines()[-1]
    assert list((tmp_path / "tmp").iterdir()) == [], "no scratch folder left behind"
    with history.History(history_in_tmp) as records:
        [recorded] = records.runs()[0]
    assert recorded["phase"] == "Stopped" and "SIGTERM" in recorded["message"]
    size = (tmp_path / "written").stat().st_size
    time.sleep(0.3)
    assert (tmp_path / "written").stat().st_size == size, "nothing writes any more"


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize("fork", [True, False])
def test_a_killed_run_leaves_no_task_process_behind_and_is_recorded_stopped(tmp_path, history_in_tmp, fork,
                                                                             cleanup):
    """SIGKILL leaves ``ferry run`` no moment to record anything: the next reader of the history
    finds the run's process gone, records the run stopped and removes its scratch folder."""
    run, pids = start_run(tmp_path, fork)
    cleanup += pids
    run.kill()
    run.communicate(timeout=20)
    assert all_end(pids, 5), "the task and its child end with the run, even killed"
    assert list((tmp_path / "tmp").iterdir()), "the scratch folder is still there until someone reads"
    listed = subprocess.run([sys.executable, "-m", "ferry", "get", "--local"], capture_output=True, text=True,
                            cwd=REPO, env={**os.environ, "TMPDIR": str(tmp_path / "tmp")}, timeout=60)
    assert listed.returncode == 0 and "Stopped" in listed.stdout and "Running" not in listed.stdout, listed
    with history.History(history_in_tmp) as records:
        [recorded] = records.runs()[0]
        [attempt] = records.attempts(recorded["name"])
    assert recorded["phase"] == "Stopped" and "ended without finishing it" in recorded["message"], recorded
    assert attempt["phase"] == "Failed" and attempt["finished_at"], attempt
    assert list((tmp_path / "tmp").iterdir()) == [], "its scratch folder goes once the run is known to be over"


def test_a_run_whose_process_lives_is_left_running(tmp_path, history_in_tmp, cleanup):
    run, pids = start_run(tmp_path, True)
    cleanup += [*pids, run.pid]
    with history.History(history_in_tmp) as records:
        assert records.runs()[0][0]["phase"] == "Running"
    run.send_signal(signal.SIGTERM)
    run.communicate(timeout=20)


def test_ending_the_group_spares_a_job_that_leads_no_session_of_its_own(tmp_path):
    """Run from an interactive shell, a command leads its job's group, not a session: that group is
    the user's job (``ferry ... | less``), not a task's to end."""
    code = ("import subprocess, sys\nfrom ferry.core import lifetime\n"
            "other = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
            "lifetime.end_group()\nimport time; time.sleep(0.5)\nprint(other.poll())\nother.kill()")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                            process_group=0)
    assert result.stdout.split() == ["None"], result
