"""What the Ferry runtime does around a container task: fetch inputs before it, publish after.

``ferry pod fetch`` runs as the init container; ``ferry pod publish`` runs as the native sidecar:
it waits for the kubelet's SIGTERM (sent once the task's container has exited), publishes each
declared output, and reports the references in its termination message for the operator.
See ``ferry.api.taskpod`` for the paths and the plan both read.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import signal

from ferry.api import resource, taskpod
from ferry.core import errors, localfiles
from ferry.data import blobs, itemindex, store as store_
from ferry.data.entries import StoredEntry
from ferry.values import typed as values


def read_plan(environ=os.environ) -> taskpod.PodPlan:
    raw = environ.get(taskpod.PLAN_ENV)
    if not raw:
        raise SystemExit(f"{taskpod.PLAN_ENV} is not set: this command runs inside a task pod built by the operator")
    return taskpod.PodPlan.model_validate_json(raw)


MAX_RESULT_BYTES = 64 * 1024 * 1024
"""Largest stored result read back (64 outputs of 1 MiB references would be far less)."""


def dereference(ref: resource.Output, store: store_.Store) -> resource.Output:
    """``ref`` itself, or the reference it points to in a stored result, whose digest is checked."""
    if ref.result is None:
        return ref
    pointer = ref.result
    with store.open(pointer.uri) as stream:
        data = stream.read(MAX_RESULT_BYTES)
    actual = hashlib.sha256(data).hexdigest()
    if actual != pointer.sha256:
        raise errors.IntegrityError(pointer.uri, "sha256", pointer.sha256, actual)
    outputs = taskpod.PublishResult.model_validate_json(data).outputs
    if pointer.output not in outputs:
        raise errors.IncompleteOutputError(f"{pointer.uri} has no output {pointer.output!r}")
    return outputs[pointer.output]


def unit_items(plan: taskpod.PodPlan, store: store_.Store) -> list[tuple[int, taskpod.PodPlan]]:
    """The items of a map's item unit (``plan.item``), each with the plan of an ordinary run of the
    task on that item: the item as its input (a file: that one object, with its digest; a value),
    publishing under ``taskpod.item_prefix``, cached under the item's own key. Reads the item index
    and the one shard holding the unit's items, both checked against their digests."""
    spec = plan.item
    backend = store.backend(spec.index.uri)
    index = itemindex.read_index(backend, spec.index.uri, spec.index.sha256)
    found = itemindex.read(backend, index, spec.index.uri, spec.first, spec.count, store.settings.raw_data_prefix)
    return [(spec.first + n, _item_plan(plan, spec.first + n, item)) for n, item in enumerate(found)]


def _item_plan(plan: taskpod.PodPlan, number: int, item) -> taskpod.PodPlan:
    values_, inputs = dict(plan.values), dict(plan.inputs)
    if isinstance(item, StoredEntry):
        inputs[plan.item.input] = resource.Output(kind=resource.Kind.FILE, uri=item.object, size=item.size,
                                                  sha256=item.sha256)
    else:
        values_[plan.item.input] = item
    return plan.model_copy(update={
        "values": values_, "inputs": inputs, "role": None, "item": None,
        "output_prefix": taskpod.item_prefix(plan.item.folder, number, plan.attempt),
        "cache_key": item_cache_key(plan.cache_key, itemindex.item_digest(item)) if plan.cache_key else None})


def item_cache_key(cache_key: str, item_digest: str) -> str:
    """An item's cache entry: the map task's key (its inputs but the item) with the item's content mixed in."""
    folder, _, name = cache_key.rpartition("/")
    return f"{folder}/{hashlib.sha256(f'{name}|{item_digest}'.encode()).hexdigest()}.json"


def store_item_result(plan: taskpod.PodPlan, store: store_.Store, result: taskpod.PublishResult) -> None:
    """``<item prefix>/.ferry-result.json``, for every item run, failed or not: what the gather reads."""
    uri = f"{plan.output_prefix}/{taskpod.RESULT_NAME}"
    store.backend(uri).write_bytes(uri, result.model_dump_json(by_alias=True, exclude_none=True).encode())


def cached_result(plan: taskpod.PodPlan, store: store_.Store) -> taskpod.PublishResult | None:
    """The outputs stored under the plan's cache key, with the run that stored them (``cached_from``);
    None if there are none or the run overwrites the cache."""
    if not plan.cache_key or plan.overwrite_cache or not store.exists(plan.cache_key):
        return None
    with store.open(plan.cache_key) as stream:
        return taskpod.PublishResult.model_validate_json(stream.read()).model_copy(update={"cached": True})


def store_cache_entry(plan: taskpod.PodPlan, store: store_.Store, result: taskpod.PublishResult) -> None:
    """Keep a successful result under the plan's cache key (if it has one), saying which run made it."""
    if plan.cache_key and result.error is None:
        entry = result.model_copy(update={"cached_from": plan.execution_id})
        store.backend(plan.cache_key).write_bytes(plan.cache_key, entry.model_dump_json(by_alias=True).encode())


def _one_item(plan: taskpod.PodPlan, store: store_.Store) -> tuple[int, taskpod.PodPlan]:
    found = unit_items(plan, store)
    if len(found) != 1:
        raise ValueError(f"task {plan.task!r}: a container task runs one item per pod, not {len(found)}; "
                         f"set the map's batchSize to 1 (batches are for Python tasks)")
    return found[0]


def fetch(plan: taskpod.PodPlan, store: store_.Store, inputs_dir: pathlib.Path) -> None:
    """Write every input to ``inputs_dir/<name>``: each value as ``taskpod.value_bytes``, small or
    large, and everything else downloaded, verified against its manifest or digest. An item unit
    of a map fetches its one item and the task's other inputs, nothing else."""
    if plan.item is not None:
        plan = _one_item(plan, store)[1]
    for name, value in plan.values.items():
        _write_value(inputs_dir / name, name, value)
    for name, ref in plan.inputs.items():
        ref = dereference(ref, store)
        if ref.kind == resource.Kind.VALUE and ref.uri is None:  # a value that was in a stored result
            _write_value(inputs_dir / name, name, ref.value)
        elif ref.kind == resource.Kind.VALUE:  # a large value, stored as its JSON
            store.get(ref.blob(blobs.Kind.FILE), inputs_dir / name)
            _unquote(inputs_dir / name, name)
        else:
            store.get(ref.blob(), inputs_dir / name, recursive=ref.kind != resource.Kind.FILE)


def _write_value(path: pathlib.Path, name: str, value) -> None:
    try:
        path.write_bytes(taskpod.value_bytes(value))
    except UnicodeEncodeError as error:  # a lone surrogate ("\ud800"), which JSON can spell and UTF-8 cannot
        raise ValueError(f"input {name!r}: the string is not valid Unicode text ({error.reason} at character "
                         f"{error.start}); pass it as a file instead") from None


def _unquote(path: pathlib.Path, name: str) -> None:
    """A stored string becomes its text, as a small one's file is; any other stored value is its JSON
    already, as ``values.publish_json`` wrote it."""
    with open(path, "rb") as stream:
        quoted = stream.read(4096).lstrip().startswith(b'"')
    if quoted:
        _write_value(path, name, json.loads(path.read_bytes()))


def publish(plan: taskpod.PodPlan, store: store_.Store, outputs_dir: pathlib.Path) -> taskpod.PublishResult:
    """Publish every declared output under the attempt's own prefix; any problem fails them all.

    Outputs are read only from inside ``outputs_dir``: a link out of it (to ``/proc/self/environ``,
    which holds this process's store credentials, or to any other file of this container) is
    refused, and so are FIFOs, devices and sockets.

    An item unit of a map publishes under its item's prefix, stores the item's result there
    (``store_item_result``) and returns only whether it failed; with the item's outputs in the
    cache, those are its outputs.
    """
    if plan.item is not None:
        return _publish_item(plan, store, outputs_dir)
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


def _publish_item(plan: taskpod.PodPlan, store: store_.Store, outputs_dir: pathlib.Path) -> taskpod.PublishResult:
    number, one = _one_item(plan, store)
    try:
        result = cached_result(one, store)
        if result is None:
            result = publish(one, store, outputs_dir)
            store_cache_entry(one, store, result)
    except Exception as error:
        result = taskpod.PublishResult(error=f"{type(error).__name__}: {error}")
    store_item_result(one, store, result)
    return taskpod.PublishResult(error=result.error and f"item {number}: {result.error}", cached=result.cached)


class _WrongKind(ValueError):
    pass


def _publish_one(plan: taskpod.PodPlan, store: store_.Store, output: resource.TaskOutput,
                 path: pathlib.Path) -> resource.Output:
    if output.kind == resource.Kind.VALUE:
        return _read_value(output.name, path, store, f"{plan.output_prefix}/{output.name}.json")
    want_directory = output.kind != resource.Kind.FILE
    if path.is_dir() != want_directory:
        expected = "a directory" if want_directory else "a file"
        raise _WrongKind(f"output {output.name!r} is declared as a {output.kind.value}, so {path} must be {expected}")
    uri = f"{plan.output_prefix}/{output.name}"
    ref = store.upload_directory(path, uri) if want_directory else store.upload_file(path, uri)
    return resource.Output.of(ref, output.kind)


def _read_value(name: str, path: pathlib.Path, store: store_.Store, uri_for_large: str) -> resource.Output:
    """The value in the file: JSON if it parses, else text. Up to ``values.MAX_INLINE_VALUE`` it rides in
    status; a larger one is stored and passed by reference, as a Python task's large values are."""
    with localfiles.open_regular(path) as stream:
        data = stream.read(taskpod.MAX_STORED_VALUE_BYTES + 1)
    if len(data) > taskpod.MAX_STORED_VALUE_BYTES:
        raise ValueError(f"value output {name!r} is larger than {taskpod.MAX_STORED_VALUE_BYTES >> 20} MiB: "
                         f"declare it as a file instead")
    text = data.decode().strip()
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    return values.publish_json(value, store, uri_for_large)


def report(result: taskpod.PublishResult, plan: taskpod.PodPlan, store: store_.Store, path: str | None = None) -> None:
    """Write the result where the operator reads it. One larger than the plan's inline limit is
    stored next to the outputs, and only a pointer with its digest is reported; an error that long
    is cut from its start (its end says most)."""
    message = result.model_dump_json(by_alias=True, exclude_none=True)
    if plan.inline_limit is not None and len(message.encode()) > min(plan.inline_limit, taskpod.MAX_MESSAGE):
        if result.error is None:
            uri = f"{plan.output_prefix}/{taskpod.RESULT_NAME}"
            data = message.encode()
            store.backend(uri).write_bytes(uri, data)
            pointer = resource.StoredResult(uri=uri, sha256=hashlib.sha256(data).hexdigest(), size=len(data))
            message = taskpod.PublishResult(result=pointer, cached=result.cached).model_dump_json(exclude_none=True)
        else:
            message = taskpod.PublishResult(error=result.error[-(taskpod.MAX_MESSAGE - 200):]).model_dump_json(exclude_none=True)
    taskpod.write_termination_message(message, path, limit=None)


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
        taskpod.write_termination_message(f"{type(error).__name__}: {error}")
        raise
    return 0


def run_publish() -> int:
    plan = read_plan()
    wait_for_sigterm(pathlib.Path(taskpod.PUBLISH_READY))
    store = store_.current()
    try:
        result = publish(plan, store, pathlib.Path(taskpod.OUTPUTS_DIR))
        report(result, plan, store)
    except Exception as error:  # reported to the operator, which fails the attempt with this message
        result = taskpod.PublishResult(error=f"{type(error).__name__}: {error}")
        report(result, plan, store)
    return 0 if result.error is None else 1
