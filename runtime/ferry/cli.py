"""The ``ferry`` command line."""

from __future__ import annotations

import argparse
import importlib
import json
import pathlib
import sys
import time
from typing import Any

import ferry
from ferry import resource, values


def load_workflow(target: str):
    """``path/to/module.py:name`` or ``package.module:name`` → the ``@ferry.workflow`` object."""
    location, _, name = target.rpartition(":")
    if not location or not name:
        raise SystemExit(f"expected MODULE:WORKFLOW (e.g. examples/quickstart.py:pipeline), got {target!r}")
    if location.endswith(".py"):
        path = pathlib.Path(location).resolve()
        if not path.exists():
            raise SystemExit(f"{location}: no such file")
        sys.path.insert(0, str(path.parent))
        location = path.stem
    workflow = getattr(importlib.import_module(location), name, None)
    if not isinstance(workflow, ferry.workflows.Workflow):
        raise SystemExit(f"{target} is not a @ferry.workflow")
    return workflow


def parse_inputs(workflow, arguments: list[str]) -> dict[str, Any]:
    """``--name value`` for each workflow input; values are JSON when they parse as JSON."""
    parser = argparse.ArgumentParser(prog=f"ferry run ... {workflow.__name__}", add_help=False)
    for name, annotation in workflow.inputs.items():
        parser.add_argument(f"--{ferry.tasks.param_name(name)}", dest=name, metavar=getattr(annotation, "__name__", "VALUE"))
    given = {k: v for k, v in vars(parser.parse_args(arguments)).items() if v is not None}
    inputs = {}
    for name, text in given.items():
        annotation = workflow.inputs[name]
        kind = values.kind_of(annotation)
        if kind != resource.Kind.VALUE:
            inputs[name] = annotation(text)
            continue
        try:
            inputs[name] = json.loads(text) if annotation is not str else text
        except ValueError:
            inputs[name] = text
    return inputs


def show(kind: str, reason: str, message: str) -> None:
    mark = {"TaskStarted": "▶", "TaskSucceeded": "✔", "TaskFailed": "✘", "TaskRetrying": "↻"}.get(reason, "•")
    print(f"{time.strftime('%H:%M:%S')} {mark} {message}", file=sys.stderr, flush=True)


def describe(value: Any) -> str:
    source = getattr(value, "remote_source", None)
    return f"{value.__class__.__name__}({source})" if source else repr(value)


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from ferry import local, settings

    workflow = load_workflow(args.workflow)
    store = ferry.Store(settings.Settings.from_env().model_copy(update={"raw_data_prefix": args.store})
                        if args.store else None)
    started = time.monotonic()
    with ferry.use_store(store):
        outcome = local.run_workflow(workflow, parse_inputs(workflow, extra), store, report=show,
                                     overwrite_cache=args.overwrite_cache)
        print(f"{workflow.name}: {outcome.status.phase.value} in {time.monotonic() - started:.1f}s", file=sys.stderr)
        if outcome.status.phase != resource.Phase.SUCCEEDED:
            print(outcome.status.message, file=sys.stderr)
            return 1
        for name, value in outcome.outputs().items():
            print(f"{name} = {describe(value)}")
    return 0


def compile_(args: argparse.Namespace, extra: list[str]) -> int:
    import yaml

    workflow = load_workflow(args.workflow)
    manifest = workflow.manifest(args.name, **parse_inputs(workflow, extra))
    sys.stdout.write(yaml.safe_dump(manifest, sort_keys=False))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ferry", description=ferry.__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"ferry {ferry.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run_parser = commands.add_parser("run", help="run a workflow here (tasks as local processes)",
                                     description="Run WORKFLOW locally; its inputs are --name value options.")
    run_parser.add_argument("workflow", metavar="MODULE:WORKFLOW")
    run_parser.add_argument("--store", help="raw data store for outputs (default: file://~/.cache/ferry/raw)")
    run_parser.add_argument("--overwrite-cache", action="store_true",
                            help="run cached tasks again and replace their cached outputs")
    compile_parser = commands.add_parser("compile", help="write a Workflow manifest for kubectl apply")
    compile_parser.add_argument("workflow", metavar="MODULE:WORKFLOW")
    compile_parser.add_argument("--name", help="metadata.name of the Workflow (default: the function's name)")
    pod = commands.add_parser("pod", help="run inside a task pod (used by the operator's pods)")
    pod_commands = pod.add_subparsers(dest="pod_command", metavar="STEP", required=True)
    pod_commands.add_parser("fetch", help="download the task's inputs (init container)")
    pod_commands.add_parser("publish", help="after the task exits, publish its outputs (sidecar)")
    pod_commands.add_parser("run-function", help="run a Python task")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "run":
        return run(args, extra)
    if args.command == "compile":
        return compile_(args, extra)
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "pod":
        from ferry import podruntime

        steps = {"fetch": podruntime.run_fetch, "publish": podruntime.run_publish,
                 "run-function": podruntime.run_function}
        return steps[args.pod_command]()
    parser.print_help()
    return 0
