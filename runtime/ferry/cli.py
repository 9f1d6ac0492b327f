"""The ``ferry`` command line."""

from __future__ import annotations

import argparse

import ferry


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ferry", description=ferry.__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"ferry {ferry.__version__}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
    return 0
