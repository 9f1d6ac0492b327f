"""Running a Python task (a ``@ferry.task`` function or a task plugin) in a process of its own.

In a pod this is the main container (``ferry pod run-function``); the local executor starts the
same command as a local process. Either way the task's inputs are rebuilt from the plan (stored
ones lazily), the function runs in a fresh working directory with its execution context, what
it returns is published under the attempt's own prefix, and the references are reported like a
sidecar reports a container task's outputs. A cacheable task's earlier result is reused.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import os
import pathlib
import shutil
import sys
import tarfile
import tempfile
import traceback
import typing

from ferry.api import resource, taskpod
from ferry.definitions import sources
from ferry.core import digests, errors, lifetime, uris
from ferry.data import manifest, store as store_
from ferry.pod import podruntime



def import_task(reference: str):
    """The ``@ferry.task`` object named by ``module:qualname``."""
    from ferry.definitions import tasks

    module_name, _, qualname = reference.partition(":")
    target = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    if not isinstance(target, tasks.Task):
        raise TypeError(f"{reference} is not a @ferry.task")
    return target


def fetch_code(uri: str, store: store_.Store) -> pathlib.Path:
    """Unpack the workflow's source archive and put it first on ``sys.path``.

    An archive named by its digest (``<sha256>.tar.gz``, as ``ferry run --remote`` stores them, in a
    folder every namespace reads) must have that digest: no one can swap the code another runs."""
    with store.open(uri) as stream:
        data = stream.read(sources.MAX_ARCHIVE + 1)
    if len(data) > sources.MAX_ARCHIVE:
        raise ValueError(f"{uri} is larger than a code archive may be ({sources.MAX_ARCHIVE >> 20} MiB)")
    named, actual = uris.basename(uri).removesuffix(".tar.gz"), hashlib.sha256(data).hexdigest()
    if digests.is_sha256(named) and actual != named:
        raise errors.IntegrityError(uri, "sha256", named, actual)
    # Python before 3.11.4 (Debian bookworm has 3.11.2) has no extraction filters: check each member.
    filters = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    target = pathlib.Path(tempfile.mkdtemp(prefix="ferry-code-"))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            archive.extractall(target, members=_code_members(archive, uri), **filters)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)  # nothing half-unpacked stays behind
        raise
    sys.path.insert(0, str(target))
    return target


def _code_members(archive: tarfile.TarFile, uri: str):
    """The archive's files and folders, refusing links, devices and paths that would leave it."""
    for member in archive:
        manifest.check_relpath(member.name.rstrip("/"))
        if not (member.isfile() or member.isdir()):
            raise errors.PathEscapeError(f"{uri}: {member.name} is neither a file nor a folder; "
                                         f"code archives made by 'ferry run --remote' hold only those")
        yield member


cached_result = podruntime.cached_result


def execute(plan: taskpod.PodPlan, store: store_.Store, workdir: pathlib.Path) -> taskpod.PublishResult:
    """Run a Python task: rebuild its inputs (stored ones lazily), call it, publish what it returns."""
    if plan.item is not None:
        return _execute_items(plan, store, workdir)
    result = cached_result(plan, store)
    if result is not None:
        return result.model_copy(update={"cached_from": None})  # reported as an older operator still reads it
    result = _call(plan, store, workdir, _load_task(plan, store))
    podruntime.store_cache_entry(plan, store, result)
    return result


def _execute_items(plan: taskpod.PodPlan, store: store_.Store, workdir: pathlib.Path) -> taskpod.PublishResult:
    """A map's item unit: the task once per item, in order, each item's result stored where the
    gather reads it (``podruntime.store_item_result``); the first item that fails fails the unit,
    and the items after it do not run. The task is imported once, when an item misses the cache."""
    task, cached, prefix = None, True, store.output_prefix
    for number, one in podruntime.unit_items(plan, store):
        store.output_prefix = one.output_prefix  # where the item's files go (File.to_blob), not the unit's
        try:
            result = cached_result(one, store)
            if result is None:
                task = task or _load_task(one, store)
                result = _call(one, store, workdir / "items" / str(number), task)
                podruntime.store_cache_entry(one, store, result)
        except Exception as error:
            traceback.print_exc()
            result = taskpod.PublishResult(error=f"{type(error).__name__}: {error}")
        finally:
            store.output_prefix = prefix
        podruntime.store_item_result(one, store, result)
        if result.error is not None:
            return taskpod.PublishResult(error=f"item {number}: {result.error}")
        cached = cached and result.cached
    return taskpod.PublishResult(cached=cached)


def _load_task(plan: taskpod.PodPlan, store: store_.Store):
    if plan.code:
        fetch_code(plan.code, store)
    if plan.plugin:
        from ferry.definitions import plugins

        return plugins.get(plan.plugin.type, plan.plugin.module)(plan.task, plan.plugin.config)
    return import_task(plan.function)


def _call(plan: taskpod.PodPlan, store: store_.Store, workdir: pathlib.Path, task) -> taskpod.PublishResult:
    from ferry.definitions import context
    from ferry.values import typed as values

    workdir.mkdir(parents=True, exist_ok=True)
    os.chdir(workdir)
    with store_.using(store), context.using(context.for_plan(plan, store, workdir)):
        # Parameters and outputs meet the plan's names by their spelling in variables (resource.env_name,
        # unique in a task), so a Workflow compiled when the SDK wrote max-rows still reaches max_rows.
        given = {resource.env_name(key): key for key in [*plan.values, *plan.inputs]}
        declared = {resource.env_name(o.name): o.name for o in plan.outputs}
        arguments = {}
        for name, annotation in task.inputs.items():
            key = given.get(resource.env_name(name))
            if key in plan.values:
                arguments[name] = values.load(annotation, resource.Output(kind=resource.Kind.VALUE,
                                                                          value=plan.values[key]), store)
            elif key in plan.inputs:
                arguments[name] = values.load(annotation, podruntime.dereference(plan.inputs[key], store), store)
        returned = _as_outputs(task, task.fn(**arguments))
        published = [declared.get(resource.env_name(name), name) for name in task.outputs]
        return taskpod.PublishResult(outputs={
            name: values.dump(annotation, value, store, f"{plan.output_prefix}/{name}.json")
            for name, annotation, value in zip(published, task.outputs.values(), returned)})


def _as_outputs(task, returned) -> tuple:
    """What a task returned, one value per declared output: a count other than declared is the
    task's failure (zipping them silently dropped the extra values)."""
    count = len(task.outputs)
    if not (task.returns or count > 1):
        return (returned,)
    from ferry.definitions import tasks

    declared = tasks.type_name(typing.get_type_hints(task.fn)["return"])
    if not isinstance(returned, (tuple, list)):
        raise TypeError(f"task {task.__name__} returned {type(returned).__name__}, not the {count} values its return "
                        f"type {declared} declares")
    if len(returned) != count:
        raise TypeError(f"task {task.__name__} returned {len(returned)} values but its return type {declared} "
                        f"declares {count}")
    return tuple(returned)


def run_function() -> int:
    podruntime.stop_on_sigterm()
    plan = podruntime.read_plan()
    workdir = pathlib.Path(os.environ.get(taskpod.WORKDIR_ENV) or tempfile.mkdtemp(prefix=f"ferry-{plan.task}-"))
    store = store_.Store(output_prefix=plan.output_prefix)
    try:
        result = execute(plan, store, workdir)
        podruntime.report(result, plan, store)
    except BaseException as error:  # the message becomes the attempt's failure in status
        traceback.print_exc()
        result = taskpod.PublishResult(error=f"{type(error).__name__}: {error}")
        podruntime.report(result, plan, store)
        if isinstance(error, podruntime.Stopped):
            lifetime.end_group()
    return 0 if result.error is None else 1
