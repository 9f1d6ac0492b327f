"""What the Ferry runtime does around a container task: fetch inputs before it, publish after.

``ferry pod fetch`` runs as the init container; ``ferry pod publish`` runs as the native sidecar:
it waits for the kubelet's SIGTERM (sent once the task's container has exited), publishes each
declared output, and reports the references in its termination message for the operator.
See ``ferry.taskpod`` for the paths and the plan both read.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal

from ferry import blobs, errors, localfiles, resource, store as store_, taskpod

TERMINATION_LOG = "/dev/termination-log"
TERMINATION_LOG_ENV = "FERRY_TERMINATION_LOG"
"""Where to write the result instead (the local executor points it at a file of its own)."""
MAX_MESSAGE = 4096
"""The kubelet keeps at most this many bytes of a termination message."""


def read_plan(environ=os.environ) -> taskpod.PodPlan:
    raw = environ.get(taskpod.PLAN_ENV)
    if not raw:
        raise SystemExit(f"{taskpod.PLAN_ENV} is not set: this command runs inside a task pod built by the operator")
    return taskpod.PodPlan.model_validate_json(raw)


def _blob(output: resource.Output) -> blobs.BlobRef:
    return blobs.BlobRef.model_validate(output.model_dump(exclude={"value"}, exclude_none=True))


def fetch(plan: taskpod.PodPlan, store: store_.Store, inputs_dir: pathlib.Path) -> None:
    """Download every input to ``inputs_dir/<name>``, verified against its manifest or digest."""
    for name, ref in plan.inputs.items():
        store.get(_blob(ref), inputs_dir / name, recursive=ref.kind != resource.Kind.FILE)


def publish(plan: taskpod.PodPlan, store: store_.Store, outputs_dir: pathlib.Path) -> taskpod.PublishResult:
    """Publish every declared output under the attempt's own prefix; any problem fails them all.

    Outputs are read only from inside ``outputs_dir``: a link out of it (to ``/proc/self/environ``,
    which holds this process's store credentials, or to any other file of this container) is
    refused, and so are FIFOs, devices and sockets.
    """
    published: dict[str, resource.Output] = {}
    for output in plan.outputs:
        path = outputs_dir / output.name
        if not os.path.lexists(path):
            return taskpod.PublishResult(error=f"output {output.name!r}: the task did not write {path}")
        try:
            published[output.name] = _publish_one(plan, store, output, localfiles.confined(path, outputs_dir))
        except errors.PathEscapeError as error:
            return taskpod.PublishResult(error=f"output {output.name!r}: {error}")
        except _WrongKind as error:
            return taskpod.PublishResult(error=str(error))
    return taskpod.PublishResult(outputs=published)


class _WrongKind(ValueError):
    pass


def _publish_one(plan: taskpod.PodPlan, store: store_.Store, output: resource.TaskOutput,
                 path: pathlib.Path) -> resource.Output:
    if output.kind == resource.Kind.VALUE:
        return _read_value(output.name, path)
    want_directory = output.kind != resource.Kind.FILE
    if path.is_dir() != want_directory:
        expected = "a directory" if want_directory else "a file"
        raise _WrongKind(f"output {output.name!r} is declared as a {output.kind.value}, so {path} must be {expected}")
    uri = f"{plan.output_prefix}/{output.name}"
    ref = store.upload_directory(path, uri) if want_directory else store.upload_file(path, uri)
    return resource.Output.model_validate({**ref.model_dump(exclude_none=True), "kind": output.kind.value})


def _read_value(name: str, path: pathlib.Path) -> resource.Output:
    with localfiles.open_regular(path) as stream:
        data = stream.read(taskpod.MAX_VALUE_BYTES + 1)
    if len(data) > taskpod.MAX_VALUE_BYTES:
        raise ValueError(f"value output {name!r} is larger than {taskpod.MAX_VALUE_BYTES} bytes; values are at most "
                         f"{taskpod.MAX_VALUE_BYTES} bytes: declare it as a file instead")
    text = data.decode().strip()
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    return resource.Output(kind=resource.Kind.VALUE, value=value)


def termination_log() -> str:
    return os.environ.get(TERMINATION_LOG_ENV, TERMINATION_LOG)


def report(result: taskpod.PublishResult, path: str | None = None) -> None:
    message = result.model_dump_json(by_alias=True, exclude_none=True)
    if len(message.encode()) > MAX_MESSAGE:
        message = taskpod.PublishResult(
            error=f"the references of {len(result.outputs)} outputs do not fit in a termination message "
                  f"({len(message)} > {MAX_MESSAGE} bytes); declare fewer outputs (e.g. one directory)",
        ).model_dump_json(exclude_none=True)
    with open(path or termination_log(), "w") as out:
        out.write(message)


def wait_for_sigterm(ready_marker: pathlib.Path) -> None:
    """Block until the kubelet stops the sidecar, which it does after the task's container exited.

    SIGTERM is blocked (so it waits for us) before the marker that lets the task start is written.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    ready_marker.parent.mkdir(parents=True, exist_ok=True)
    ready_marker.touch()
    signal.sigwait({signal.SIGTERM})


class Stopped(BaseException):
    """The kubelet stopped this container: its attempt timed out or was stopped, or its pod is being
    deleted. A BaseException, so that task code's ``except Exception`` does not swallow it."""


def stop_on_sigterm() -> None:
    """Make SIGTERM end this process. As a container's PID 1 it gets only the signals it handles,
    so without this the kubelet's SIGTERM is ignored until SIGKILL ends the grace period."""
    def stop(signum, frame):
        raise Stopped("stopped by SIGTERM: the attempt timed out or was stopped, or its pod is being deleted")

    signal.signal(signal.SIGTERM, stop)


def run_fetch() -> int:
    stop_on_sigterm()
    try:
        fetch(read_plan(), store_.current(), pathlib.Path(os.environ.get("FERRY_INPUTS_DIR", taskpod.INPUTS_DIR)))
    except BaseException as error:  # the operator shows the termination message as the task's failure
        with open(termination_log(), "w") as out:
            out.write(f"{type(error).__name__}: {error}"[:MAX_MESSAGE])
        raise
    return 0


def run_publish() -> int:
    plan = read_plan()
    wait_for_sigterm(pathlib.Path(taskpod.PUBLISH_READY))
    try:
        result = publish(plan, store_.current(), pathlib.Path(taskpod.OUTPUTS_DIR))
    except Exception as error:  # reported to the operator, which fails the attempt with this message
        result = taskpod.PublishResult(error=f"{type(error).__name__}: {error}")
    report(result)
    return 0 if result.error is None else 1
