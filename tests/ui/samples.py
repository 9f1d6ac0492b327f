"""Workflows the UI's tests run here: one that takes a few seconds, one whose task fails."""

import sys
import time

import ferry


@ferry.task
def wait(seconds: float) -> str:
    time.sleep(seconds)
    return "waited"


@ferry.task
def after(note: str) -> int:
    return len(note)


@ferry.workflow
def slow(seconds: float = 3.0) -> int:
    return after(note=wait(seconds=seconds))


@ferry.task
def explode(rows: int) -> int:
    print(f"about to fail after reading {rows} rows", file=sys.stderr, flush=True)
    raise ValueError("no rows to count")


@ferry.workflow
def broken(rows: int = 3) -> int:
    wait(seconds=0.1)
    return explode(rows=rows)
