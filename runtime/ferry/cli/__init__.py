"""The ``ferry`` command line."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import difflib
import importlib
import inspect
import json
import os
import pathlib
import signal
import sqlite3
import sys
import time
import typing
from typing import Any, NoReturn

import ferry
from ferry.cli import terminal

if typing.TYPE_CHECKING:  # each command imports the models it uses: ``ferry --help`` loads no pydantic
    from ferry.api import resource
    from ferry.execution import history


def load_workflow(target: str, command: str = "run"):
    """``path/to/module.py:name`` or ``package.module:name`` → the ``@ferry.workflow`` object. One that
    is not there is a ``usage_error``; an import that fails inside the user's module shows their traceback."""
    from ferry.definitions import workflows  # here, not at the top: ``ferry --help`` loads no pydantic

    location, _, name = target.rpartition(":")
    if not location or not name:
        raise SystemExit(f"expected MODULE:WORKFLOW (e.g. examples/quickstart.py:pipeline), got {target!r}")
    hint = "write path/to/file.py:WORKFLOW or package.module:WORKFLOW"
    if location.endswith(".py"):
        path = pathlib.Path(location).resolve()
        if not path.exists():
            usage_error(command, f"no file {location} in {pathlib.Path.cwd()}; {hint}")
        sys.path.insert(0, str(path.parent))
        location = path.stem
    try:
        module = importlib.import_module(location)
    except ModuleNotFoundError as error:
        if error.name is None or not f"{location}.".startswith(f"{error.name}."):
            raise  # a module theirs imports: their bug, their traceback
        file = f" (nor a file {location})" if "/" in location or pathlib.PurePath(location).suffix else ""
        usage_error(command, f"no module {location}{file} in {pathlib.Path.cwd()} or on the Python path; {hint}")
    workflow = getattr(module, name, None)
    if not isinstance(workflow, workflows.Workflow):
        raise SystemExit(f"{target} is not a @ferry.workflow")
    return workflow


MANIFEST_SUFFIXES = (".yaml", ".yml")


def load_manifest(path: str) -> tuple[str, resource.WorkflowSpec]:
    """A Workflow manifest, as ``kubectl create -f`` takes it, → its name and spec, to run here."""
    import pydantic
    import yaml

    from ferry.api import resource
    from ferry.execution import local

    try:
        document = yaml.safe_load(pathlib.Path(path).read_text())
    except FileNotFoundError:
        raise SystemExit(f"{path}: no such file") from None
    if not isinstance(document, dict) or document.get("kind") != resource.KIND:
        raise SystemExit(f"{path} is not a {resource.KIND} manifest (it has no 'kind: {resource.KIND}')")
    meta = document.get("metadata") or {}
    try:
        spec = resource.WorkflowSpec.model_validate(document.get("spec") or {})
    except pydantic.ValidationError as error:
        raise SystemExit(f"{path}: {error}") from None
    field = "name" if meta.get("name") else "generateName"
    name = str(meta["name"]) if meta.get("name") else str(meta.get("generateName") or "workflow").rstrip("-")
    problem = local.name_problem(name)
    if problem:
        usage_error("run", f"{path}: metadata.{field} {terminal.printable(repr(name))} {problem}")
    return name, spec


def usage_error(command: str, message: str) -> NoReturn:
    """One line on stderr and exit 2, as argparse ends a bad command line, but with no usage block."""
    print(f"ferry {command}: {message}", file=sys.stderr)
    raise SystemExit(2)


def parse_inputs(workflow, arguments: list[str], command: str = "run") -> dict[str, Any]:
    """``--name value`` (or ``--name=value``) for each workflow input, converted by its annotation
    (``convert``); anything wrong is ``usage_error``, naming the input, its type and what was given."""
    from ferry.definitions import tasks

    options = {f"--{tasks.param_name(name)}": name for name in workflow.inputs}
    given: dict[str, Any] = {}
    position = 0
    while position < len(arguments):
        option, equals, text = arguments[position].partition("=")
        position += 1
        if option not in options:
            near = difflib.get_close_matches(option, [*options, *_OPTIONS[command]], n=1)
            usage_error(command, f"workflow {workflow.__name__} has no input {option}"
                                 f"{f' (did you mean {near[0]}?)' if near else ''}; "
                                 f"its inputs are {', '.join(options) or 'none'}")
        name = options[option]
        if not equals:
            if position == len(arguments):
                usage_error(command, f"input {option} of {workflow.__name__} expects {_expected(workflow.inputs[name])}"
                                     ", got nothing")
            text, position = arguments[position], position + 1
        try:
            given[name] = convert(workflow.inputs[name], text)
        except ValueError as error:
            reason = f": {error}" if str(error) else ""
            usage_error(command, f"input {option} of {workflow.__name__} expects {_expected(workflow.inputs[name])}, "
                                 f"got {text!r}{reason}")
    missing = [f"--{tasks.param_name(name)} of {workflow.__name__} ({_type_name(annotation)})"
               for name, annotation in workflow.inputs.items()
               if name not in given and workflow.signature.parameters[name].default is inspect.Parameter.empty]
    if missing:
        usage_error(command, f"input {missing[0]} is required" if len(missing) == 1 else
                    f"inputs {', '.join(missing)} are required")
    return given


def convert(annotation: Any, text: str) -> Any:
    """A command-line value as ``annotation`` wants it: JSON where it parses as the type wants (``3``,
    ``true``, ``["a"]``), else the text itself (a ``str``; pydantic reads ``yes``, dates... from text);
    a File or Directory from a path or URI, an Asset from a directory (published now) or a stored asset."""
    from ferry.api import resource
    from ferry.values import typed as values

    kind = values.kind_of(annotation)
    if kind != resource.Kind.VALUE:
        return _reference(annotation, kind, text)
    candidates = [text] if annotation is str else []
    with contextlib.suppress(ValueError):
        candidates.append(json.loads(text))
    for candidate in [*candidates, text]:
        with contextlib.suppress(ValueError):
            return values.check(annotation, candidate)
    raise ValueError()


def _reference(annotation: Any, kind: resource.Kind, text: str) -> Any:
    """A File, Directory or Asset input from a URI, or from a local path that exists (checked now,
    not when the run has started); a list of Files or Directories as ``_listed`` reads it."""
    from ferry.api import resource
    from ferry.core import uris
    from ferry.data import blobs
    from ferry.values import lists

    if lists.item_type(annotation) is not None:
        return _listed(annotation, text)
    if uris.is_uri(text):
        return annotation(blobs.BlobRef(uri=text, kind=blobs.Kind.ASSET)) if kind == resource.Kind.ASSET \
            else annotation(text)
    path = pathlib.Path(text)
    if kind == resource.Kind.FILE and not path.is_file():
        raise ValueError("a directory, not a file" if path.is_dir() else "no such file")
    if kind != resource.Kind.FILE and not path.is_dir():
        raise ValueError("a file, not a directory" if path.is_file() else "no such directory")
    return ferry.asset(at=path) if kind == resource.Kind.ASSET else annotation(text)


def _listed(annotation: Any, text: str) -> Any:
    """A ``list[File]`` or ``list[Directory]`` input: a local directory (the list of its files, or of
    its directories), a stored directory's URI (the same, read when a task reads it), or a JSON list
    of local paths or URIs, each an item."""
    from ferry.core import uris
    from ferry.values import lists, typed as values

    item = lists.item_type(annotation)
    if uris.is_uri(text):
        return ferry.Directory(text)
    path = pathlib.Path(text)
    if path.is_dir():
        top = sorted(entry.name for entry in path.iterdir() if not entry.is_dir())
        if item is ferry.Directory and top:
            raise ValueError(f"it holds files at its top ({top[0]}), not only directories")
        return ferry.Directory(text)
    if path.is_file():
        raise ValueError(f"a file, not a directory (a list of it alone is {json.dumps([text])})")
    try:
        given = json.loads(text)
    except ValueError:
        raise ValueError("no such directory") from None
    if not isinstance(given, list) or not all(isinstance(element, str) for element in given):
        raise ValueError("JSON, but not a list of paths or URIs")
    kind = values.kind_of(item)
    found = []
    for index, element in enumerate(given):
        try:
            found.append(_reference(item, kind, element))
        except ValueError as error:
            raise ValueError(f"item {index}: {error}") from None
    return found


def _type_name(annotation: Any) -> str:
    """``int``, ``list[str]``, ``File``: a type as the user wrote it."""
    if typing.get_origin(annotation) is not None or not inspect.isclass(annotation):
        return str(annotation).replace("typing.", "").replace("ferry.values.files.", "").replace("ferry.values.directories.", "")
    return annotation.__name__


def _hint(annotation: Any) -> str:
    """How to write a value of ``annotation`` on the command line, where its name does not say."""
    from ferry.api import resource
    from ferry.values import lists, typed as values

    item = lists.item_type(annotation)
    if item is not None:
        return (f"a local directory (its {'files' if item is ferry.File else 'directories'}), a URI of a stored "
                "directory, or a JSON list of local paths or URIs")
    if values.kind_of(annotation) != resource.Kind.VALUE:
        return "a local path or a URI"
    if annotation is bool:
        return "true or false"
    return "" if annotation in (int, float, str, Any) else "JSON"


def _expected(annotation: Any) -> str:
    hint = _hint(annotation)
    return f"{_type_name(annotation)} ({hint})" if hint else _type_name(annotation)


def _default(annotation: Any, default: Any) -> str:
    from ferry.values import typed as values

    if isinstance(default, str):
        return default
    try:
        return json.dumps(values.to_json(annotation, default))
    except (TypeError, ValueError):
        return describe(default)


def show(kind: str, reason: str, message: str) -> None:
    mark = {"TaskStarted": "▶", "TaskSucceeded": "✔", "TaskFailed": "✘", "TaskRetrying": "↻",
            "Published": "⇪", "TaskCached": "≡"}.get(reason, "•")
    print(f"{time.strftime('%H:%M:%S')} {mark} {terminal.printable(message, lines=True)}", file=sys.stderr, flush=True)


def describe(value: Any) -> str:
    source = getattr(value, "remote_source", None) or getattr(value, "uri", None)
    return terminal.printable(f"{value.__class__.__name__}({source})" if source else repr(value))


def _store(uri: str | None) -> ferry.Store:
    """The store of ``--store``, read as ``FERRY_RAW_DATA_PREFIX`` is: a path becomes a ``file://`` URI,
    trailing slashes go (``s3://bucket/`` is ``s3://bucket``)."""
    from ferry.data import settings

    return ferry.Store(settings.Settings.from_env({**os.environ, "FERRY_RAW_DATA_PREFIX": uri}) if uri else None)


def _check_remote_store(store: ferry.Store) -> None:
    """Pods read the code and inputs from the store: one on this machine's disk would be uploaded where
    no pod can read it, so refuse it before uploading anything."""
    from ferry.core import uris

    if uris.scheme(store.raw_data_prefix) in ("", "file"):
        usage_error("run --remote", f"the code and inputs go through the raw data store ({store.raw_data_prefix}), "
                                    "and task pods cannot read this machine's disk; give the store the operator "
                                    "uses, e.g. --store s3://my-bucket/ferry (or set FERRY_RAW_DATA_PREFIX)")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from ferry.api import resource
    from ferry.core import lifetime
    from ferry.execution import history, local

    store = _store(args.store)
    parallelism = _parallelism(args)
    if args.workflow.endswith(MANIFEST_SUFFIXES):
        return run_manifest(args, extra, store, parallelism)
    if args.remote:
        _check_remote_store(store)
    workflow = load_workflow(args.workflow, "run")
    with ferry.use_store(store):  # an Asset input given as a directory is published while parsing
        inputs = parse_inputs(workflow, extra, "run")
    if args.remote:
        return run_remote(args, workflow, inputs, store)
    problem = local.name_problem(workflow.name)
    if problem:
        usage_error("run", f"workflow {workflow.__name__} runs as {workflow.name!r}, which {problem}; "
                           "rename its function")
    with ferry.use_store(store):  # compiled before the run is announced: a DefinitionError is the code's
        spec = workflow.compile(**inputs).model_copy(update={"overwrite_cache": args.overwrite_cache})
    run_id = local.new_run_id(workflow.name)
    print(f"run {run_id}" + (f"; see it with: ferry get --local {run_id}" if history.enabled() else ""),
          file=sys.stderr, flush=True)
    started = time.monotonic()
    with ferry.use_store(store):
        try:
            with lifetime.stopped_by_sigterm():
                outcome = local.LocalExecutor(store, show, parallelism).run(workflow.name, spec, workflow.outputs,
                                                                            run_id)
        except KeyboardInterrupt as error:
            return stopped(workflow.name, run_id, error)
        print(f"{workflow.name}: {outcome.status.phase.value} in {time.monotonic() - started:.1f}s", file=sys.stderr)
        if outcome.status.phase != resource.Phase.SUCCEEDED:
            print(terminal.printable(outcome.status.message, lines=True), file=sys.stderr)
            return 1
        for name, value in outcome.outputs().items():
            print(f"{terminal.printable(name)} = {describe(value)}")
    return 0


def stopped(name: str, run_id: str, error: KeyboardInterrupt) -> int:
    """A local run stopped by Ctrl-C or SIGTERM (its tasks are, its scratch folder is gone, the history
    says ``Stopped``): one line instead of a traceback, and the exit status a shell gives the signal."""
    from ferry.core import lifetime
    from ferry.execution import history, local

    print(f"\n{name}: {local.stop_message(error).removeprefix('the run ')}"
          + (f"; see it with: ferry get --local {run_id}" if history.enabled() else ""), file=sys.stderr)
    return 128 + (signal.SIGTERM if isinstance(error, lifetime.Terminated) else signal.SIGINT)


def _parallelism(args: argparse.Namespace) -> int | None:
    """``--parallelism``, else ``FERRY_LOCAL_PARALLELISM``, checked before anything runs (None with
    ``--remote``, where a map's parallelism is its own or the operator's)."""
    from ferry.execution import local

    if args.remote:
        if args.parallelism is not None:
            usage_error("run", "--parallelism is for runs here; on a cluster a map runs as many units at once as it "
                               "says (ferry.map(task, parallelism=N)) or the operator does (map.parallelism in the chart)")
        return None
    if args.parallelism is None:
        try:
            return local.default_parallelism()
        except ValueError as error:
            usage_error("run", terminal.printable(error))
    text = args.parallelism
    if not text.isdecimal() or int(text) < 1:
        shown = text if text.isdecimal() else repr(text)
        usage_error("run", f"--parallelism {terminal.printable(shown)}: give a whole number of units, 1 or more")
    return int(text)


def run_manifest(args: argparse.Namespace, extra: list[str], store: ferry.Store, parallelism: int | None) -> int:
    """Run a Workflow manifest here: its container tasks under podman or docker (``ferry.execution.containers``)."""
    from ferry.api import resource
    from ferry.core import lifetime
    from ferry.execution import history, local

    if args.remote:
        usage_error("run", f"a manifest goes to the cluster as it is: kubectl create -f {args.workflow}")
    if extra:
        usage_error("run", f"a manifest's inputs are its spec.inputs: change them there (got {extra[0]})")
    name, spec = load_manifest(args.workflow)
    spec = spec.model_copy(update={"overwrite_cache": args.overwrite_cache or spec.overwrite_cache})
    run_id = local.new_run_id(name)
    print(f"run {run_id}" + (f"; see it with: ferry get --local {run_id}" if history.enabled() else ""),
          file=sys.stderr, flush=True)
    started = time.monotonic()
    try:
        with ferry.use_store(store), lifetime.stopped_by_sigterm():
            outcome = local.LocalExecutor(store, show, parallelism).run(name, spec, {}, run_id)
    except KeyboardInterrupt as error:
        return stopped(name, run_id, error)
    print(f"{name}: {outcome.status.phase.value} in {time.monotonic() - started:.1f}s", file=sys.stderr)
    if outcome.status.phase != resource.Phase.SUCCEEDED:
        print(terminal.printable(outcome.status.message, lines=True), file=sys.stderr)
        return 1
    for output_name, output in outcome.status.outputs.items():
        print(f"{terminal.printable(output_name)} = {_shown(output, store)}")
    return 0


def run_remote(args: argparse.Namespace, workflow, inputs: dict[str, Any], store: ferry.Store) -> int:
    """Upload the code, create the Workflow on the cluster, follow it, print its outputs."""
    from ferry.api import resource
    from ferry.cluster import remote
    from ferry.definitions import sources
    from ferry.execution import local

    with ferry.use_store(store):
        manifest = workflow.manifest(**inputs)
        roots = {sources.code_root(ref) for ref in local.code_references(resource.WorkflowSpec.model_validate(
            manifest["spec"]))}
        if len(roots) > 1:
            raise SystemExit(f"tasks come from several source trees ({', '.join(map(str, sorted(roots)))}); "
                             "keep a workflow's tasks under one directory")
        if roots:
            manifest["spec"]["code"] = remote.upload_code(roots.pop(), store)
        manifest["spec"]["overwriteCache"] = args.overwrite_cache
        name = remote.create(manifest, args.namespace, args.context)
        print(f"workflow {name} created; follow it with: kubectl get fwf {name}", file=sys.stderr)
        if args.no_wait:
            print(name)
            return 0
        try:
            status = remote.follow(name, args.namespace, show, args.context)
        except KeyboardInterrupt:
            return interrupted(name, args)
        print(f"{name}: {status.phase.value}", file=sys.stderr)
        if status.phase != resource.Phase.SUCCEEDED:
            print(terminal.printable(status.message, lines=True), file=sys.stderr)
            return 1
        for output_name, output in status.outputs.items():
            print(f"{terminal.printable(output_name)} = {_shown(output, store)}")
    return 0


def interrupted(name: str, args: argparse.Namespace) -> int:
    """Ctrl-C while following a run on the cluster: the run goes on there unless the user, asked,
    says to stop it (no question without a terminal to answer it)."""
    from ferry.cluster import remote

    again = f"ferry stop {name}" + (f" -n {args.namespace}" if args.namespace else "")
    answer = ""
    if sys.stdin.isatty():
        try:
            answer = input(f"\nstop workflow {name} on the cluster? [y/N] ").strip().lower()
        except (EOFError, KeyboardInterrupt):
            pass
    if answer in ("y", "yes"):
        remote.stop(name, args.namespace, args.context)
        print(f"workflow {name}: stopping", file=sys.stderr)
    else:
        print(f"\nworkflow {name} goes on running on the cluster; {again} stops it", file=sys.stderr)
    return 130


def stop(args: argparse.Namespace) -> int:
    from ferry.cluster import remote

    for name in args.names:
        remote.stop(name, args.namespace, args.context)
        print(f"workflow {name}: stopping (its running tasks' pods are stopped; phase Stopped)")
    return 0


def retry(args: argparse.Namespace) -> int:
    """Run a failed or stopped workflow's unfinished tasks again; ``--follow`` as ``ferry run --remote``."""
    from ferry.api import resource
    from ferry.cluster import remote

    tasks = remote.rerun(args.name, args.namespace, args.context)
    print(f"workflow {args.name}: running {len(tasks)} tasks again ({', '.join(tasks)}); succeeded ones are kept")
    if not args.follow:
        return 0
    status = remote.follow(args.name, args.namespace, show, args.context)
    print(f"{args.name}: {status.phase.value}", file=sys.stderr)
    return 0 if status.phase == resource.Phase.SUCCEEDED else 1


def delete(args: argparse.Namespace) -> int:
    from ferry.cluster import remote

    if args.local:
        with _history("delete") as records:
            for name in args.names:
                if not records.delete(name):
                    return _no_run("delete", name, records)
                print(f"run {name} deleted from {records.path}")
        return 0
    sys.stdout.write(remote.delete(args.names, args.namespace, args.context))
    return 0


def gc(args: argparse.Namespace) -> int:
    """Empty the folders of workflows (or local runs) that are gone, written before ``--older-than``,
    except what is still referenced (``ferry.data.cleanup`` says what is)."""
    from ferry.api import resource
    from ferry.cluster import remote
    from ferry.data import cleanup, collect
    from ferry.execution import history

    try:
        before = time.time() - cleanup.older_than(args.older_than).total_seconds()
    except ValueError as error:
        usage_error("gc", str(error))
    store = _store(args.store)
    forgotten: set[str] = set()
    if args.local:
        root = f"{store.raw_data_prefix}/local"
        with _history("gc") as records:
            live = {run["name"] for run in records.runs(limit=1 << 62)[0]}
            documents = [records.workflow(name) for name in live]
            forgotten = records.deleted()
        names = cleanup.RUN_ID
    else:
        namespace = args.namespace or remote.kubectl("config", "view", "--minify", "-o", "jsonpath={..namespace}",
                                                     context=args.context).strip() or "default"
        root = args.folder or f"{store.raw_data_prefix}/{namespace}"
        documents = json.loads(remote.kubectl("get", f"{resource.PLURAL}.{resource.GROUP}", "-o", "json", "-n",
                                              namespace, context=args.context))["items"]
        live, names = {w["metadata"]["uid"] for w in documents}, cleanup.UID
    listing = ((info.path, info.modified) for info in store.backend(root).list(root))
    folders = cleanup.abandoned(listing, live, before, names)
    unrecorded = [name for name in folders if name not in forgotten] if args.local and not args.unrecorded else []
    if unrecorded:  # another history's runs (FERRY_HISTORY), or another store's history: not gone at all
        print(f"ferry gc --local: the history {records.path} ({history.ENV}) never recorded {len(unrecorded)} of the "
              f"{len(folders)} runs to delete under {root}/ (e.g. {terminal.printable(unrecorded[0])}): they may be "
              f"another history's; gc with the {history.ENV} that ran them, or add --unrecorded to delete them too",
              file=sys.stderr)
        return 1
    outcome = collect.collect(store, root, [cleanup.folder(root, name) for name in folders], documents, args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    print(f"{len(folders)} folders of {'runs' if args.local else 'workflows'} gone and older than {args.older_than} "
          f"under {root}/: {verb} {outcome.deleted} objects ({outcome.bytes} bytes), kept {outcome.kept} "
          "still referenced")
    return 0


def get(args: argparse.Namespace) -> int:
    from ferry.cluster import remote

    if args.local:
        return get_local(args)
    if not args.name:
        sys.stdout.write(remote.kubectl("get", "fwf", *(["-n", args.namespace] if args.namespace else []),
                                        context=args.context))
        return 0
    show_workflow(remote.get(args.name, args.namespace, args.context))
    return 0


def show_workflow(workflow: dict) -> None:
    """One workflow in detail: a Workflow from the cluster, or a local run from the history (same shape)."""
    from ferry.api import resource

    name, status = workflow["metadata"]["name"], resource.WorkflowStatus.model_validate(workflow.get("status") or {})
    shown = terminal.printable
    print(shown(f"{name}: {status.phase.value} {status.progress or ''} {status.message or ''}".rstrip(), lines=True))
    for task, state in status.tasks.items():
        tried = f"attempts={state.attempts}" if state.map is None else map_counts(state.map, state.phase)
        print(f"  {shown(task):<24} {state.phase.value:<10} {tried} {shown(state.message or '', lines=True)}".rstrip())
    for name, output in status.outputs.items():
        print(f"  output {shown(name)} = {_shown(output, _store(None))}")


def map_counts(progress, phase=None) -> str:
    """``items 1,532/100,000 (3 failed, 100 running)``: a map's progress; counted in pods when
    each runs a batch of items (``pods 153/10,000 of 100,000 items``); ``gathering`` while its task,
    in ``phase``, has not finished."""
    from ferry.api import scheduler

    if progress.units is None:
        return "items: splitting"
    others = ", ".join(f"{count:,} {what}" for what, count in (("failed", progress.failed),
                                                               ("running", progress.running)) if count)
    batched = progress.items is not None and progress.items != progress.units
    done = (f"pods {progress.succeeded:,}/{progress.units:,} of {progress.items:,} items" if batched
            else f"items {progress.succeeded:,}/{progress.units:,}")
    gathering = progress.stage == "Gather" and phase not in scheduler.DONE
    return done + (f" ({others})" if others else "") + (" gathering" if gathering else "")


def get_local(args: argparse.Namespace) -> int:
    """Runs recorded on this machine, as ``kubectl get fwf`` lists a cluster's; or one in detail."""
    from ferry.api import scheduler

    with _history("get") as records:
        if args.name:
            workflow = records.workflow(args.name)
            if workflow is None:
                return _no_run("get", args.name, records)
            show_workflow(workflow)
            return 0
        runs, total = records.runs(limit=args.limit)
    if not runs:
        print(f"no local runs recorded in {records.path}", file=sys.stderr)
        return 0
    now = datetime.datetime.now(datetime.timezone.utc)
    rows = [("NAME", "PHASE", "PROGRESS", "AGE", "MESSAGE")]
    rows += [tuple(map(terminal.printable, (run["name"], run["phase"], run["progress"] or "",
                                            age(scheduler.parse_time(run["created"]), now),
                                            (run["message"] or "").partition("\n")[0]))) for run in runs]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for row in rows:
        print("   ".join(cell.ljust(width) for cell, width in zip(row, widths)) + f"   {row[4]}".rstrip())
    if total > len(runs):
        print(f"({len(runs)} newest of {total} runs; --limit N shows more)", file=sys.stderr)
    return 0


def age(then: datetime.datetime, now: datetime.datetime) -> str:
    """``45s``, ``5m30s``, ``3h``, ``2d``: how ``kubectl get`` writes an AGE."""
    seconds = max(0, int((now - then).total_seconds()))
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    return f"{days}d" if days < 730 else f"{days // 365}y"


@contextlib.contextmanager
def _history(command: str):
    """The local history, or one line on stderr and exit 1 if it cannot be read."""
    from ferry.execution import history

    try:
        records = history.History()
    except (history.HistoryError, sqlite3.Error, OSError) as error:
        raise SystemExit(f"ferry {command}: cannot read the history of local runs: {error}") from None
    with records:
        yield records


def _no_run(command: str, name: str, records: history.History) -> int:
    print(f"ferry {command}: no local run {name} in {records.path} (ferry get --local lists them)", file=sys.stderr)
    return 1


def _shown(output: resource.Output, store: ferry.Store) -> str:
    """An output as a line shows it: its value, or its URI (read from a stored result if need be)."""
    from ferry.pod import podruntime

    if output.result is not None:
        try:
            output = podruntime.dereference(output, store)
        except Exception as error:  # noqa: BLE001 - showing the pointer is the fallback
            return terminal.printable(f"(in {output.result.uri}: {type(error).__name__})")
    return terminal.printable(json.dumps(output.value) if output.uri is None else output.uri)


def logs(args: argparse.Namespace) -> int:
    from ferry.cluster import remote

    if not args.local:
        workflow = remote.get(args.name, args.namespace, args.context)
        try:
            pod = remote.log_pod(args.name, workflow, args.task, args.attempt, args.item)
        except remote.UsageError as error:
            usage_error("logs", terminal.printable(error))
        if args.item is not None:
            _say_batch(args.name, workflow, args.task, args.item)
        sys.stdout.write(remote.logs(pod, args.namespace, args.context, args.container, args.follow))
        return 0
    if args.container != "main" or args.follow:
        print("ferry logs: a local run keeps its tasks' own logs only, once they end: "
              "--container and --follow are for runs on a cluster", file=sys.stderr)
        return 2
    with _history("logs") as records:
        workflow = records.workflow(args.name)
        if workflow is None:
            return _no_run("logs", args.name, records)
        tasks = [task["name"] for task in workflow["spec"]["tasks"]]
        if args.task not in tasks:
            print(f"ferry logs: run {args.name} has no task {args.task} (its tasks: {', '.join(tasks)})",
                  file=sys.stderr)
            return 1
        defined = workflow["spec"]["tasks"][tasks.index(args.task)]
        if defined.get("map") is not None or args.item is not None:
            return _local_item_log(args, workflow, defined)
        text = records.log(args.name, args.task, args.attempt)
    if text is None:
        which = f"attempt {args.attempt} of task {args.task}" if args.attempt is not None else f"task {args.task}"
        print(f"ferry logs: {which} of run {args.name} never started", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0


def _local_item_log(args: argparse.Namespace, workflow: dict, task: dict) -> int:
    """What a local run keeps of a map's item: not its log (the history records a map as one task, not
    a row per unit), but the message of its failure if it is one of the first (``MapStatus.failures``)."""
    from ferry.api import items, resource
    from ferry.cluster import remote

    state = resource.WorkflowStatus.model_validate(workflow.get("status") or {}).tasks.get(args.task)
    try:
        remote.log_pod(args.name, workflow, args.task, args.attempt, args.item)  # the checks a cluster's run has
    except remote.UsageError as error:
        usage_error("logs", terminal.printable(error))
    unit, _, _ = remote.map_item(args.name, task, state, args.item)
    kept = "ferry logs: a local run keeps no log per item of a map, only its first failures' messages"
    failure = next((f for f in state.map.failures if f.unit == unit and args.attempt in (None, f.attempt)), None)
    if failure is None:
        record = items.Record.decode(state.map.record, state.map.units)
        print(f"{kept}: item {args.item} is {record.phase(unit).value}, on attempt {record.attempt(unit)}",
              file=sys.stderr)
        return 1
    print(f"{kept}: item {args.item}'s, on attempt {failure.attempt}:", file=sys.stderr)
    print(terminal.printable(failure.message or failure.reason or "", lines=True))
    return 0


def _say_batch(name: str, workflow: dict, task: str, item: int) -> None:
    """That a batch's log is its unit's, with its other items' in it (``batchSize`` above 1)."""
    from ferry.api import resource
    from ferry.cluster import remote

    defined = next(t for t in workflow["spec"]["tasks"] if t["name"] == task)
    state = resource.WorkflowStatus.model_validate(workflow.get("status") or {}).tasks.get(task)
    unit, first, count = remote.map_item(name, defined, state, item)
    if count > 1:
        print(f"ferry logs: item {item} runs in unit {unit} with items {first}..{first + count - 1}: its log is "
              "theirs too", file=sys.stderr)


def outputs(args: argparse.Namespace) -> int:
    """Download a workflow's (or one task's) outputs into a directory; values go to ``values.json``.

    The names come from the Workflow's status, written by the operator from what tasks report: each
    must be an output's name, one segment inside the directory, reached through no link."""
    from ferry.api import resource
    from ferry.pod import podruntime
    from ferry.values import typed as values

    workflow = _workflow_of(args)
    status = resource.WorkflowStatus.model_validate(workflow.get("status") or {})
    if args.task:
        task = next((t for t in resource.WorkflowSpec.model_validate(workflow["spec"]).tasks if t.name == args.task),
                    None)
        if task is None or args.task not in status.tasks:
            print(f"ferry outputs: {args.name} has no task {terminal.printable(args.task)}"
                  f"{'' if task is None else ' that has started'}", file=sys.stderr)
            return 1
        chosen = {o.name: status.tasks[args.task].output(o.name, o.kind) for o in task.outputs}
    else:
        chosen = status.outputs
    target = pathlib.Path(args.output or args.name)
    for name in chosen:
        problem = resource.io_name_problem(name)
        if problem:
            print(f"ferry outputs: the status of {args.name} names an output {terminal.printable(repr(name))}, which "
                  f"{problem}; nothing downloaded", file=sys.stderr)
            return 1
    for path in [target / name for name in chosen] + [target / "values.json"]:
        if path.is_symlink():
            print(f"ferry outputs: {path} is a link; remove it, or choose another folder with -o", file=sys.stderr)
            return 1
    target.mkdir(parents=True, exist_ok=True)
    store = _store(None)
    plain = {}
    for name, output in chosen.items():
        output = podruntime.dereference(output, store)
        if output.kind == resource.Kind.VALUE and output.uri is None:
            plain[name] = output.value
            continue
        ref = output.blob(ferry.Kind.FILE if output.kind == resource.Kind.VALUE else None)
        path = store.get(ref, target / name, recursive=ref.kind != ferry.Kind.FILE)
        print(f"{name} -> {path}")
    if plain:
        (target / "values.json").write_text(json.dumps(plain, indent=2) + "\n")
        print(f"values -> {target / 'values.json'}")
    return 0


def _workflow_of(args: argparse.Namespace) -> dict:
    """The Workflow ``args.name``: a local run from the history (with ``--local``, or when the history
    has it: a run id names one run), else the cluster's."""
    from ferry.cluster import remote
    from ferry.execution import history

    if args.local or (history.enabled() and history.default_path().is_file()):
        with _history(args.command) as records:
            found = records.workflow(args.name)
        if found is not None:
            return found
        if args.local:
            raise SystemExit(_no_run(args.command, args.name, records))
    return remote.get(args.name, args.namespace, args.context)


def ls(args: argparse.Namespace) -> int:
    """List a drive (``ferry://name``) or a stored directory or asset, from its manifest."""
    if args.uri.startswith("ferry://"):
        for path in ferry.Drive(args.uri).list(args.prefix or ""):
            print(terminal.printable(path))
        return 0
    for entry in _store(None).manifest(args.uri).files:
        print(f"{entry.size:>12}  {terminal.printable(entry.path)}")
    return 0


def compile_(args: argparse.Namespace, extra: list[str]) -> int:
    import yaml

    from ferry.api import resource

    class Dumper(yaml.SafeDumper):
        """Quotes strings that YAML 1.1 readers such as kubectl take for booleans (``n``, ``on``...)."""

    def string(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
        ambiguous = text.lower() in {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style='"' if ambiguous else None)

    Dumper.add_representer(str, string)
    problem = args.name is not None and resource.object_name_problem(args.name)
    if problem:
        usage_error("compile", f"--name {terminal.printable(repr(args.name))} {problem}")
    workflow = load_workflow(args.workflow, "compile")
    with ferry.use_store(_store(None)):
        manifest = workflow.manifest(args.name, **parse_inputs(workflow, extra, "compile"))
    sys.stdout.write(yaml.dump(manifest, Dumper=Dumper, sort_keys=False))
    return 0


def _cluster_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--namespace", default=os.environ.get("FERRY_NAMESPACE"))
    parser.add_argument("--context", help="kubeconfig context")


def _run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", help="raw data store (default: file://~/.cache/ferry/raw; with --remote, the "
                                        "operator's, e.g. s3://my-bucket/ferry)")
    parser.add_argument("--overwrite-cache", action="store_true",
                        help="run cached tasks again and replace their cached outputs")
    parser.add_argument("--remote", action="store_true",
                        help="run on the cluster of the current kubeconfig context (code goes through --store)")
    parser.add_argument("--no-wait", action="store_true", help="with --remote: print the name and return")
    parser.add_argument("--parallelism", metavar="N",
                        help="most units of a map running at once here, for maps that set none (default: "
                             "FERRY_LOCAL_PARALLELISM, else 2 per core; on a cluster, the operator's)")
    _cluster_options(parser)


def _compile_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", help="metadata.name of the Workflow (default: metadata.generateName "
                                       "'<workflow>-', which kubectl create completes and kubectl apply refuses)")


_OPTIONS = {"run": ["--store", "--overwrite-cache", "--remote", "--no-wait", "--parallelism", "--namespace",
                    "--context"],
            "compile": ["--name"]}
_DESCRIPTIONS = {
    "run": "Run a workflow here (each task a local process), or on a cluster with --remote. The workflow's inputs "
           "are options too (--INPUT VALUE): ferry run MODULE:WORKFLOW --help lists them. A Workflow manifest "
           "(ferry run FILE.yaml) runs here as it is, its container tasks under podman or docker "
           "(FERRY_CONTAINER_RUNTIME chooses).",
    "compile": "Write a workflow as a Workflow manifest for kubectl create -f. Without --name it has "
               "metadata.generateName, so each create starts a new run; kubectl apply needs --name. The workflow's "
               "inputs are options too (--INPUT VALUE): ferry compile MODULE:WORKFLOW --help lists them."}


def command_parser(command: str, target: str | None = None, workflow=None) -> argparse.ArgumentParser:
    """``ferry run`` or ``ferry compile``: its options, and with a workflow its inputs (its --help)."""
    parser = argparse.ArgumentParser(
        prog=f"ferry {command}" + (f" {target}" if workflow else ""), add_help=False, allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter if workflow and workflow.__doc__ else
        argparse.HelpFormatter,  # a docstring is shown as written
        description=inspect.cleandoc(workflow.__doc__) if workflow and workflow.__doc__ else _DESCRIPTIONS[command])
    if workflow is None:
        parser.add_argument("workflow", metavar="MODULE:WORKFLOW", nargs="?",
                            help="the workflow: path/to/file.py:name or package.module:name"
                                 + (", or a Workflow manifest (FILE.yaml) to run here" if command == "run" else ""))
    else:
        from ferry.definitions import tasks  # a workflow is loaded: its models are too

        inputs = parser.add_argument_group(f"inputs of {workflow.__name__}")
        for name, annotation in workflow.inputs.items():
            default = workflow.signature.parameters[name].default
            shown = "required" if default is inspect.Parameter.empty else f"default: {_default(annotation, default)}"
            hint = _hint(annotation)
            inputs.add_argument(f"--{tasks.param_name(name)}", dest=f"input_{name}",
                                metavar=_type_name(annotation), help=f"{hint}; {shown}" if hint else shown)
    options = parser.add_argument_group("options")
    options.add_argument("-h", "--help", action="store_true", help="show this help (with a workflow: its inputs)")
    {"run": _run_options, "compile": _compile_options}[command](options)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ferry", description=ferry.__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"ferry {ferry.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    cluster_options = argparse.ArgumentParser(add_help=False)
    _cluster_options(cluster_options)
    commands.add_parser("run", help="run a workflow here (tasks as local processes), or on a cluster with --remote",
                        parents=[command_parser("run")], add_help=False, allow_abbrev=False)
    get_parser = commands.add_parser("get", parents=[cluster_options], help="workflows on the cluster, or one in detail")
    get_parser.add_argument("name", nargs="?")
    get_parser.add_argument("--local", action="store_true", help="runs on this machine (ferry run), not the cluster's")
    get_parser.add_argument("--limit", type=int, default=50, help="with --local: how many runs to list, newest first")
    logs_parser = commands.add_parser("logs", parents=[cluster_options], help="a task's logs")
    logs_parser.add_argument("name")
    logs_parser.add_argument("task")
    logs_parser.add_argument("--local", action="store_true", help="a run on this machine (ferry run)")
    logs_parser.add_argument("--attempt", type=int, help="attempt N of the task (default: the latest)")
    logs_parser.add_argument("--item", type=int, metavar="N",
                             help="a map's item N (from 0): the log of the pod that ran it (one per batchSize items)")
    logs_parser.add_argument("-c", "--container", choices=["fetch", "main", "publish"], default="main",
                             help="the task's own container (main), or Ferry's: fetch (inputs), publish (outputs)")
    logs_parser.add_argument("-f", "--follow", action="store_true", help="stream the log while the task runs")
    stop_parser = commands.add_parser("stop", parents=[cluster_options],
                                      help="stop workflows on the cluster: running tasks end, none starts")
    stop_parser.add_argument("names", nargs="+", metavar="name")
    retry_parser = commands.add_parser("retry", parents=[cluster_options],
                                       help="run a failed or stopped workflow's unfinished tasks again, "
                                            "keeping what succeeded")
    retry_parser.add_argument("name")
    retry_parser.add_argument("-f", "--follow", action="store_true", help="follow it until it finishes")
    delete_parser = commands.add_parser("delete", parents=[cluster_options],
                                        help="delete workflows (and their pods) from the cluster, or local runs")
    delete_parser.add_argument("names", nargs="+", metavar="name")
    delete_parser.add_argument("--local", action="store_true", help="runs recorded on this machine (ferry run)")
    gc_parser = commands.add_parser("gc", parents=[cluster_options],
                                    help="delete the stored objects of deleted workflows, but what is still referenced")
    gc_parser.add_argument("--older-than", required=True, metavar="AGE",
                           help="only folders whose every object is older: 30d, 12h, 90m")
    gc_parser.add_argument("--store", help="the raw data store (the operator's; default FERRY_RAW_DATA_PREFIX)")
    gc_parser.add_argument("--folder", help="the namespace's folder when it has its own (default: <store>/<namespace>)")
    gc_parser.add_argument("--local", action="store_true",
                           help="runs on this machine deleted from its history (ferry delete --local)")
    gc_parser.add_argument("--unrecorded", action="store_true",
                           help="with --local: also runs the history never recorded (another history's, or deleted "
                                "before the history kept deletions)")
    gc_parser.add_argument("--dry-run", action="store_true", help="say what would be deleted; delete nothing")
    outputs_parser = commands.add_parser("outputs", parents=[cluster_options],
                                         help="download a workflow's (or a task's) outputs")
    outputs_parser.add_argument("name")
    outputs_parser.add_argument("--task")
    outputs_parser.add_argument("-o", "--output", help="directory to write to (default: the workflow's name)")
    outputs_parser.add_argument("--local", action="store_true",
                                help="a run on this machine (ferry run); found there without it too")
    ls_parser = commands.add_parser("ls", help="list a drive (ferry://name) or a stored directory or asset")
    ls_parser.add_argument("uri")
    ls_parser.add_argument("prefix", nargs="?")
    commands.add_parser("compile", help="write a Workflow manifest for kubectl create", add_help=False,
                        parents=[command_parser("compile")], allow_abbrev=False)
    # Its options are ferry_ui's own (``ferry ui --help``): the SDK and the pods never import the UI.
    commands.add_parser("ui", help="serve the web UI on localhost: local runs and the current cluster",
                        add_help=False)
    pod = commands.add_parser("pod", help="run inside a task pod (used by the operator's pods)")
    pod_commands = pod.add_subparsers(dest="pod_command", metavar="STEP", required=True)
    pod_commands.add_parser("fetch", help="download the task's inputs (init container)")
    pod_commands.add_parser("publish", help="after the task exits, publish its outputs (sidecar)")
    pod_commands.add_parser("run-function", help="run a Python task")
    pod_commands.add_parser("split", help="store a map's item index (a map's first pod)")
    pod_commands.add_parser("gather", help="store a map's gathered outputs (a map's last pod)")
    pod_commands.add_parser("run-container", help="fetch, run a container task under podman or docker, publish "
                                                  "(the local executor's stand-in for a pod)")
    pod_commands.add_parser("credentials", help="keep the pod's scoped store credentials fresh (sidecar)")
    pod_commands.add_parser("cleanup", help="delete a deleted workflow's unreferenced objects (artifactCleanup)")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # ``ferry get --local | head``: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
        return 128 + signal.SIGPIPE


def _kubectl_failed(args: argparse.Namespace, error: Exception) -> int:
    """What kubectl said, in one line when no cluster answered (and where a local run is, if any)."""
    if getattr(error, "unreachable", False):
        local = f"; for runs on this machine: ferry {args.command} --local" if "local" in args else ""
        print(f"ferry {args.command}: no cluster is reachable ({terminal.printable(str(error).splitlines()[-1])})"
              f"{local}", file=sys.stderr)
    else:
        print(f"ferry {args.command}: {terminal.printable(error, lines=True)}", file=sys.stderr)
    return 1


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)  # ``--help`` ends here, having loaded no pydantic
    if args.command in ("run", "compile") and args.help:  # and this one with no workflow to load
        manifest = (args.workflow or "").endswith(MANIFEST_SUFFIXES)
        try:
            workflow = load_workflow(args.workflow, args.command) if args.workflow and not manifest else None
        except ferry.DefinitionError as error:
            usage_error(args.command, terminal.printable(error))
        command_parser(args.command, args.workflow, workflow).print_help()
        raise SystemExit(0)
    from ferry.cluster import remote

    if args.command in ("run", "compile"):
        try:
            if not args.workflow:
                usage_error(args.command, "which workflow? give MODULE:WORKFLOW, e.g. examples/quickstart.py:pipeline "
                                          f"(ferry {args.command} --help says more)")
            return run(args, extra) if args.command == "run" else compile_(args, extra)
        except ferry.DefinitionError as error:  # the workflow's code: the message says what to change
            usage_error(args.command, terminal.printable(error))
        except remote.KubectlError as error:  # --remote
            return _kubectl_failed(args, error)
    if args.command == "ui":
        # By name: ``ferry_ui`` is another package (the ``ui`` extra), above the SDK, which never imports it.
        return importlib.import_module("ferry_ui.__main__").main(extra)
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    commands = {"get": get, "logs": logs, "outputs": outputs, "ls": ls, "stop": stop, "retry": retry, "delete": delete,
                "gc": gc}
    if args.command in commands:
        try:
            return commands[args.command](args)
        except remote.KubectlError as error:
            return _kubectl_failed(args, error)
    if args.command == "pod":
        from ferry.core import lifetime, malloc
        from ferry.execution import localpod
        from ferry.pod import cleanup, credentials, fanout, podruntime, runner

        lifetime.die_with_parent_from_env()  # a local run's task process: it ends with the run
        if args.pod_command in ("fetch", "publish", "run-container", "split", "gather"):  # no user code allocates
            malloc.return_large_buffers()
        steps = {"fetch": podruntime.run_fetch, "publish": podruntime.run_publish,
                 "run-function": runner.run_function, "run-container": localpod.run_container,
                 "split": fanout.run_split, "gather": fanout.run_gather,
                 "credentials": credentials.run_sidecar,
                 "cleanup": cleanup.run}
        return steps[args.pod_command]()
    parser.print_help()
    return 0
