"""Per-task overhead of the embedded default: a chain of no-op tasks run with ``ferry run``.

Each task is its own process going through the same path as in pods (plan, inputs loaded from
the raw data store, function, outputs published), so this measures what a task costs beyond its
own work. It compares with the floor for a process per task: starting ``python -c pass`` and
``python -c "import ferry"`` the same number of times.

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
from ferry import local

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

    store = ferry.Store(ferry.Settings(raw_data_prefix=(workdir / "raw").as_uri(), cache_dir=workdir / "cache"))
    runs = []
    for _ in range(args.repeat):
        run = None

        def once():
            nonlocal run
            run = local.run_workflow(chain_bench.chain, {}, store)

        runs.append(timed(once))
        assert run.result() == args.tasks
    floors = {
        "python -c pass": [timed(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True))
                           for _ in range(args.tasks)],
        "python -c 'import ferry'": [timed(lambda: subprocess.run([sys.executable, "-c", "import ferry"], check=True))
                                     for _ in range(args.tasks)],
    }
    best = min(runs)
    print(f"{args.tasks}-task chain of no-op tasks, best of {args.repeat}: {best:.2f}s "
          f"(median {statistics.median(runs):.2f}s)")
    print(f"per-task overhead (ferry run): {best / args.tasks * 1000:.0f} ms")
    for name, samples in floors.items():
        print(f"per-process floor ({name}): {statistics.median(samples) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
