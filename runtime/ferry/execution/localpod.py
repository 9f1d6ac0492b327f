"""A container task's pod, played on this machine for the local executor: ``ferry pod run-container``.

The executor starts this command as it starts a Python task's process, so it watches, times out and
stops both alike. It does what the pod's three containers do, in order and with the same code:
fetch the inputs (``podruntime.fetch``, as ``ferry-fetch``), run the image under podman or docker
(``ferry.execution.containers``), and only if it exited 0 publish its outputs (``podruntime.publish``, as
``ferry-publish``, with its refusal of links out of the outputs folder), reporting the result
where the executor reads it. Stopped (SIGTERM), it stops the container, which runs apart from this
process and would otherwise go on.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import signal
import subprocess
import sys
import traceback

from ferry.api import taskpod
from ferry.data import store as store_
from ferry.execution import containers
from ferry.pod import podruntime

CONTAINER_ENV = "FERRY_LOCAL_CONTAINER"
STOP_GRACE_SECONDS = 5
"""The container's time to end after SIGTERM: within the executor's own wait before it kills this
process (``local.LocalExecutor.stop``)."""


@dataclasses.dataclass(frozen=True)
class Container:
    """What the executor tells this command, in ``FERRY_LOCAL_CONTAINER`` (the plan says the rest)."""

    runtime: str
    """Its name, for messages."""
    run: list[str]
    stop: list[str]
    remove: list[str]
    inputs: str
    """The host folder mounted at ``/ferry/inputs``."""
    outputs: str
    """The host folder mounted at ``/ferry/outputs``."""
    log: str
    """Where this process's output (and the container's) goes: the attempt's log."""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Container:
        return cls(**json.loads(text))


def run_container() -> int:
    podruntime.stop_on_sigterm()
    plan = podruntime.read_plan()
    container = Container.from_json(os.environ[CONTAINER_ENV])
    store = store_.current()
    inputs, outputs = pathlib.Path(container.inputs), pathlib.Path(container.outputs)
    inputs.mkdir(parents=True, exist_ok=True)
    outputs.mkdir(parents=True, exist_ok=True)
    outputs.chmod(0o777)  # as a pod's emptyDir: the image's user, whoever it is, may write there
    try:
        step = "fetching inputs"
        podruntime.fetch(plan, store, inputs)
        step = "running the container"
        code = _run(container)
        if code != 0:
            result = taskpod.PublishResult(error=containers.exit_message(
                container.runtime, code, _tail(pathlib.Path(container.log))))
        else:
            step = "publishing outputs"
            result = podruntime.publish(plan, store, outputs)
    except podruntime.Stopped:  # the executor gave up on this attempt: it reads no result
        print(f"ferry: stopped while {step} (the attempt timed out, or its run stopped)", file=sys.stderr)
        return 128 + signal.SIGTERM
    except Exception as error:  # the executor fails the attempt with this message
        traceback.print_exc()
        result = taskpod.PublishResult(error=f"{step} failed: {type(error).__name__}: {error}")
    podruntime.report(result, plan, store)
    return 0 if result.error is None else 1


def _run(container: Container) -> int:
    """The container's exit code. Its output goes where this process's does (the attempt's log).
    ``run`` gets a session of its own, so that the executor's signals reach only this process,
    which stops the container by name: the runtime's client alone would leave it running."""
    popen = subprocess.Popen(container.run, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        return popen.wait()
    except podruntime.Stopped:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # stopping already
        _stop(container, popen)
        raise


def _stop(container: Container, popen: subprocess.Popen) -> None:
    quiet = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    try:
        subprocess.run(container.stop, timeout=STOP_GRACE_SECONDS + 5, **quiet)
    except subprocess.TimeoutExpired:
        pass
    try:  # the client ends with its container; signalled meanwhile, it would forward to a removed one
        popen.wait(5)
    except subprocess.TimeoutExpired:  # no container yet (pulling its image): the client ends on SIGTERM
        popen.terminate()
        try:
            popen.wait(2)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()
    try:
        subprocess.run(container.remove, timeout=30, **quiet)
    except subprocess.TimeoutExpired:
        pass


def _tail(log: pathlib.Path) -> str:
    """The end of the log, enough for ``containers.exit_message``."""
    with open(log, "rb") as stream:
        stream.seek(max(0, stream.seek(0, os.SEEK_END) - 4 * containers.LOG_TAIL))
        return stream.read().decode(errors="replace")
