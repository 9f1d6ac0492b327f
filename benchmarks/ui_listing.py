"""A directory output of 100,000 files in the web UI (issue 24, item 8): one folder level a page.

Publishes a directory of ``--files`` empty files (flat, as a map's outputs are, plus a few nested
folders) to a local store, starts ``ferry ui --local-only`` as a process on a free loopback port,
and measures the output's page: its size in bytes, the server's time for the first request (which
reads the manifest) and for later ones (median of ``--repeat``), a page deep in the folder, and the
server's peak RSS (``VmHWM``). Beside it, in the same run, Python's own ``http.server`` lists the
same folder from disk: what a plain directory listing of that many files costs.

Run from the repository root:

    .venv/bin/python benchmarks/ui_listing.py --files 100000
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.cluster.processes import free_port, interrupt_on_sigterm  # noqa: E402


def publish(root: pathlib.Path, files: int) -> tuple[str, str]:
    """The directory's URI and manifest digest, its files written on disk under ``root/tree``."""
    import ferry

    tree = root / "tree"
    for i in range(files):
        folder = tree / (f"nested/{i % 10}" if i < 100 else "")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"part-{i:06d}.csv").touch()
    store = ferry.Store(ferry.Settings(raw_data_prefix=(root / "raw").as_uri(), cache_dir=root / "cache"))
    ref = store.upload_directory(tree)
    return ref.uri, ref.manifest_digest


def timed_get(url: str) -> tuple[float, int]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=600) as answer:
        size = len(answer.read())
    return time.perf_counter() - started, size


def peak_rss_mib(pid: int) -> float:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextlib.contextmanager
def serving(command: list[str], env: dict[str, str], port: int, cwd: pathlib.Path | None = None):
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{command[0]} did not start: {process.stderr.read().decode()}") from None
                time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        process.wait(10)


def measure(url: str, repeat: int, pid: int, deep: str | None = None) -> dict:
    first, size = timed_get(url)
    warm = [timed_get(url)[0] for _ in range(repeat)]
    row = {"first_s": first, "warm_s": statistics.median(warm), "bytes": size}
    if deep:
        row["deep_s"], row["deep_bytes"] = timed_get(deep)
    row["peak_rss_mib"] = peak_rss_mib(pid)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    interrupt_on_sigterm()
    with tempfile.TemporaryDirectory(prefix="ferry-ui-listing-") as scratch:
        root = pathlib.Path(scratch)
        started = time.perf_counter()
        uri, digest = publish(root, args.files)
        print(f"published {args.files:,} files in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        rows = {}
        port = free_port()
        env = {**os.environ, "FERRY_RAW_DATA_PREFIX": (root / "raw").as_uri(), "FERRY_HISTORY": str(root / "h.sqlite3"),
               "FERRY_CACHE_DIR": str(root / "cache")}
        ui = [sys.executable, "-m", "ferry", "ui", "--local-only", "--port", str(port)]
        with serving(ui, env, port) as process:
            query = {"uri": uri, "digest": digest, "kind": "directory"}
            url = f"http://127.0.0.1:{port}/output?{urllib.parse.urlencode(query)}"
            rows["ferry ui (one folder level, 500 a page)"] = measure(url, args.repeat, process.pid,
                                                                     deep=f"{url}&page={args.files // 1000}")
        port = free_port()
        plain = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(root / "tree")]
        with serving(plain, env, port) as process:
            rows["python -m http.server (the folder on disk)"] = measure(f"http://127.0.0.1:{port}/", args.repeat,
                                                                         process.pid)
    print(f"| {args.files:,} files | first request | later (median of {args.repeat}) | page size | "
          "a page deep in the folder | server peak RSS |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, row in rows.items():
        deep = f"{row['deep_s'] * 1000:.0f} ms, {row['deep_bytes'] / 1024:.0f} KiB" if "deep_s" in row else "-"
        print(f"| {name} | {row['first_s'] * 1000:.0f} ms | {row['warm_s'] * 1000:.0f} ms | "
              f"{row['bytes'] / 1024:,.0f} KiB | {deep} | {row['peak_rss_mib']:.0f} MiB |")


if __name__ == "__main__":
    main()
