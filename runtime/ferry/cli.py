"""The ``ferry`` command line."""

from __future__ import annotations

import argparse

import ferry


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ferry", description=ferry.__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"ferry {ferry.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    pod = commands.add_parser("pod", help="run inside a task pod (used by the operator's pods)")
    pod_commands = pod.add_subparsers(dest="pod_command", metavar="STEP", required=True)
    pod_commands.add_parser("fetch", help="download the task's inputs (init container)")
    pod_commands.add_parser("publish", help="after the task exits, publish its outputs (sidecar)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "pod":
        from ferry import podruntime

        return {"fetch": podruntime.run_fetch, "publish": podruntime.run_publish}[args.pod_command]()
    parser.print_help()
    return 0
