"""What the Ferry runtime does inside a task pod: fetch inputs before the task, publish after.

``ferry pod fetch`` runs as the init container; ``ferry pod publish`` runs as the native sidecar:
it waits for the kubelet's SIGTERM (sent once the task's container has exited), publishes each
declared output, and reports the references in its termination message for the operator.
See ``ferry.taskpod`` for the paths and the plan both read.
"""

from __future__ import annotations

import importlib
import json
import os
import pathlib
import signal
import sys
import tarfile
import tempfile
import traceback

from ferry import blobs, resource, store as store_, taskpod

TERMINATION_LOG = "/dev/termination-log"
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
    """Publish every declared output under the attempt's own prefix; any problem fails them all."""
    published: dict[str, resource.Output] = {}
    for output in plan.outputs:
        path = outputs_dir / output.name
        if not path.exists():
            return taskpod.PublishResult(error=f"output {output.name!r}: the task did not write {path}")
        if output.kind == resource.Kind.VALUE:
            published[output.name] = _read_value(output.name, path)
            continue
        want_directory = output.kind != resource.Kind.FILE
        if path.is_dir() != want_directory:
            expected = "a directory" if want_directory else "a file"
            return taskpod.PublishResult(error=f"output {output.name!r} is declared as a {output.kind.value}, "
                                               f"so {path} must be {expected}")
        uri = f"{plan.output_prefix}/{output.name}"
        ref = store.upload_directory(path, uri) if want_directory else store.upload_file(path, uri)
        published[output.name] = resource.Output.model_validate(
            {**ref.model_dump(exclude_none=True), "kind": output.kind.value})
    return taskpod.PublishResult(outputs=published)


def _read_value(name: str, path: pathlib.Path) -> resource.Output:
    data = path.read_bytes()
    if len(data) > taskpod.MAX_VALUE_BYTES:
        raise ValueError(f"value output {name!r} is {len(data)} bytes; values are at most "
                         f"{taskpod.MAX_VALUE_BYTES} bytes: declare it as a file instead")
    text = data.decode().strip()
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    return resource.Output(kind=resource.Kind.VALUE, value=value)


def report(result: taskpod.PublishResult, path: str = TERMINATION_LOG) -> None:
    message = result.model_dump_json(by_alias=True, exclude_none=True)
    if len(message.encode()) > MAX_MESSAGE:
        message = taskpod.PublishResult(
            error=f"the references of {len(result.outputs)} outputs do not fit in a termination message "
                  f"({len(message)} > {MAX_MESSAGE} bytes); declare fewer outputs (e.g. one directory)",
        ).model_dump_json(exclude_none=True)
    with open(path, "w") as out:
        out.write(message)


def wait_for_sigterm(ready_marker: pathlib.Path) -> None:
    """Block until the kubelet stops the sidecar, which it does after the task's container exited.

    SIGTERM is blocked (so it waits for us) before the marker that lets the task start is written.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    ready_marker.parent.mkdir(parents=True, exist_ok=True)
    ready_marker.touch()
    signal.sigwait({signal.SIGTERM})


def run_fetch() -> int:
    try:
        fetch(read_plan(), store_.current(), pathlib.Path(taskpod.INPUTS_DIR))
    except Exception as error:  # the operator shows the termination message as the task's failure
        with open(TERMINATION_LOG, "w") as out:
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


RESULT_PATH_ENV = "FERRY_TERMINATION_LOG"
"""Where a Python task writes its result; the local executor points it at a file of its own."""
WORKDIR_ENV = "FERRY_WORKDIR"


def import_task(reference: str):
    """The ``@ferry.task`` object named by ``module:qualname``."""
    from ferry import tasks

    module_name, _, qualname = reference.partition(":")
    target = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    if not isinstance(target, tasks.Task):
        raise TypeError(f"{reference} is not a @ferry.task")
    return target


def fetch_code(uri: str, store: store_.Store) -> pathlib.Path:
    """Unpack the workflow's source archive and put it first on ``sys.path``."""
    target = pathlib.Path(tempfile.mkdtemp(prefix="ferry-code-"))
    with store.open(uri) as stream, tarfile.open(fileobj=stream, mode="r|gz") as archive:
        archive.extractall(target, filter="data")  # refuses links and paths that leave target
    sys.path.insert(0, str(target))
    return target


def cached_result(plan: taskpod.PodPlan, store: store_.Store) -> taskpod.PublishResult | None:
    if not plan.cache_key or plan.overwrite_cache or not store.exists(plan.cache_key):
        return None
    with store.open(plan.cache_key) as stream:
        return taskpod.PublishResult.model_validate_json(stream.read()).model_copy(update={"cached": True})


def execute(plan: taskpod.PodPlan, store: store_.Store, workdir: pathlib.Path) -> taskpod.PublishResult:
    """Run a Python task: rebuild its inputs (stored ones lazily), call it, publish what it returns."""
    result = cached_result(plan, store)
    if result is not None:
        return result
    result = _call(plan, store, workdir)
    if plan.cache_key:
        store.backend(plan.cache_key).write_bytes(plan.cache_key, result.model_dump_json(by_alias=True).encode())
    return result


def _call(plan: taskpod.PodPlan, store: store_.Store, workdir: pathlib.Path) -> taskpod.PublishResult:
    from ferry import context, tasks, values

    if plan.code:
        fetch_code(plan.code, store)
    if plan.plugin:
        from ferry import plugins

        task = plugins.get(plan.plugin.type, plan.plugin.module)(plan.task, plan.plugin.config)
    else:
        task = import_task(plan.function)
    workdir.mkdir(parents=True, exist_ok=True)
    os.chdir(workdir)
    with store_.using(store), context.using(context.for_plan(plan, store, workdir)):
        arguments = {}
        for name, annotation in task.inputs.items():
            key = tasks.param_name(name)
            if key in plan.values:
                arguments[name] = values.load(annotation, resource.Output(kind=resource.Kind.VALUE,
                                                                          value=plan.values[key]), store)
            elif key in plan.inputs:
                arguments[name] = values.load(annotation, plan.inputs[key], store)
        returned = task.fn(**arguments)
        returned = returned if len(task.outputs) > 1 else (returned,)
        return taskpod.PublishResult(outputs={
            name: values.dump(annotation, value, store, f"{plan.output_prefix}/{name}.json")
            for (name, annotation), value in zip(task.outputs.items(), returned)})


def run_function() -> int:
    plan = read_plan()
    workdir = pathlib.Path(os.environ.get(WORKDIR_ENV) or tempfile.mkdtemp(prefix=f"ferry-{plan.task}-"))
    try:
        result = execute(plan, store_.Store(output_prefix=plan.output_prefix), workdir)
    except BaseException as error:  # the message becomes the attempt's failure in status
        traceback.print_exc()
        result = taskpod.PublishResult(error=f"{type(error).__name__}: {error}")
    report(result, os.environ.get(RESULT_PATH_ENV, TERMINATION_LOG))
    return 0 if result.error is None else 1
