"""Per-task overhead of the embedded default: a chain of no-op tasks run with ``ferry run``.

Each task is its own process going through the same path as in pods (plan, inputs loaded from
the raw data store, function, outputs published), so this measures what a task costs beyond its
own work: with task processes forked from the warm fork server (the default) and with a fresh
interpreter per task (``FERRY_LOCAL_FORK=false``), in turn. It compares with the floor for a
fresh process per task: starting ``python -c pass``, ``python -c "import ferry"`` and importing
what a task process runs (``ferry.pod.runner``) the same number of times.

    .venv/bin/python benchmarks/local_overhead.py --tasks 10 --repeat 3
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import ferry
from ferry.execution import local

CHAIN = '''
import ferry

@ferry.task
def step(x: int) -> int:
    return x + 1

@ferry.workflow
def chain(n: int = 0) -> int:
    x = n
    for _ in range({tasks}):
        x = step(x=x)
    return x
'''


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="ferry-bench-"))
    (workdir / "chain_bench.py").write_text(CHAIN.format(tasks=args.tasks))
    sys.path.insert(0, str(workdir))
    import chain_bench

    modes = {"forked from the fork server": True, "fresh interpreter per task": False}
    runs: dict[str, list[float]] = {mode: [] for mode in modes}
    for _ in range(args.repeat):
        for mode, fork in modes.items():
            store = ferry.Store(ferry.Settings(raw_data_prefix=(workdir / "raw").as_uri(), cache_dir=workdir / "cache",
                                               local_fork=fork))
            run = None

            def once():
                nonlocal run
                run = local.run_workflow(chain_bench.chain, {}, store)

            runs[mode].append(timed(once))
            assert run.result() == args.tasks
    floors = {code: [timed(lambda code=code: subprocess.run([sys.executable, "-c", code], check=True))
                     for _ in range(args.tasks)]
              for code in ("pass", "import ferry", "import ferry.pod.runner")}
    print(f"{args.tasks}-task chain of no-op tasks, best of {args.repeat}, per task:")
    for mode, times in runs.items():
        print(f"  ferry run, {mode}: {min(times) / args.tasks * 1000:.0f} ms "
              f"(chain {min(times):.2f}s, median {statistics.median(times):.2f}s)")
    for code, samples in floors.items():
        print(f"  floor, python -c '{code}': {statistics.median(samples) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
