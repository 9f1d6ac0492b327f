"""A map of no-op items under ``ferry run``: what an item costs on a laptop.

Each item is a unit of its own by default (a process forked from the warm fork server, its item
read from the split's index, the function run, its result stored), as a pod is on a cluster;
``batch_size`` runs many items per process. Beside them, in the same run, the floors a user would
compare with: ``concurrent.futures.ProcessPoolExecutor.map`` over the same function (processes
reused, nothing stored) and a plain loop in one task.

    .venv/bin/python benchmarks/map_local.py --items 10000
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import pathlib
import sys
import tempfile
import time

import ferry
from ferry.execution import local

PIPELINE = '''
import ferry

@ferry.task
def numbers(n: int) -> list[int]:
    return list(range(n))

@ferry.task
def noop(x: int) -> int:
    return x

@ferry.task
def total(values: list[int]) -> int:
    return sum(values)

@ferry.task
def loop(values: list[int]) -> list[int]:
    return [noop.fn(x=x) for x in values]

@ferry.workflow
def mapped(n: int = 10) -> int:
    return total(values=noop.map(x=numbers(n=n)))

@ferry.workflow
def batched(n: int = 10) -> int:
    return total(values=ferry.map(noop, batch_size=100)(x=numbers(n=n)))

@ferry.workflow
def looped(n: int = 10) -> int:
    return total(values=loop(values=numbers(n=n)))
'''


def noop(x: int) -> int:
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    args = parser.parse_args()
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="ferry-map-bench-"))
    (workdir / "map_bench.py").write_text(PIPELINE)
    sys.path.insert(0, str(workdir))
    os.environ.setdefault("FERRY_HISTORY", "off")
    import map_bench

    store = ferry.Store(ferry.Settings(raw_data_prefix=(workdir / "raw").as_uri()))
    rows = []
    for label, workflow in (("ferry run, one process per item (the default)", map_bench.mapped),
                            ("ferry run, batch_size=100", map_bench.batched),
                            ("ferry run, a loop inside one task", map_bench.looped)):
        started = time.perf_counter()
        run = local.run_workflow(workflow, {"n": args.items}, store)
        elapsed = time.perf_counter() - started
        assert run.result() == sum(range(args.items)), run.status.message
        rows.append((label, elapsed))
    started = time.perf_counter()
    with concurrent.futures.ProcessPoolExecutor(local.default_parallelism()) as pool:
        assert sum(pool.map(noop, range(args.items), chunksize=1)) == sum(range(args.items))
    rows.append(("ProcessPoolExecutor.map, chunksize=1 (nothing stored)", time.perf_counter() - started))
    print(f"\n{args.items:,} no-op items, {local.default_parallelism()} at once, on {os.cpu_count()} cores\n")
    print("| how | wall s | ms per item |\n| --- | ---: | ---: |")
    for label, seconds in rows:
        print(f"| {label} | {seconds:.1f} | {seconds / args.items * 1000:.2f} |")


if __name__ == "__main__":
    main()
