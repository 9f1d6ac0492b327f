"""A map of many no-op items on simulated pods, against the real API server.

Starts the harness ``benchmarks/orchestration.py`` uses (the suite's control plane with
kube-scheduler, MinIO, the operator as a process) with the suite's *virtual node*, which finishes
every pod the moment it is bound and leaves the termination message a real pod's runtime would:
the split reports ``--items`` items, each item unit succeeds, the gather reports its stored result.
Nothing reads the store: this measures the operator and the API server. Then it submits one
Workflow: a task whose value output is the list, and a map over it (``podRetention: KeepNone``:
each item pod is deleted once its end is recorded). It reports:

- wall time, and item pods per minute during the items' stage;
- API requests per item, from kube-apiserver's own ``apiserver_request_total``, by resource and verb;
- the Workflow object's size at its largest (read every second) and the number of status writes;
- the operator's peak RSS, and CPU time per item of each process.

Run from the repository root (it builds or reuses the pinned binaries in ``~/.cache/ferry``):

    .venv/bin/python benchmarks/map_scale.py --items 100000 --parallelism 500
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pathlib
import shutil
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kubernetes import client  # noqa: E402

from benchmarks.orchestration import bench_cluster, cpu_by_process  # noqa: E402
from ferry.api import resource  # noqa: E402
from tests.cluster import apirequests  # noqa: E402
from tests.cluster.virtualnode import map_messages, map_workflow  # noqa: E402
from tests.cluster.processes import interrupt_on_sigterm, peak_rss_mib  # noqa: E402

NAME = "map-scale"


class Sizes:
    """The Workflow's size (its JSON) and the map's progress, read every second in a thread."""

    def __init__(self, custom: client.CustomObjectsApi, namespace: str):
        self.largest, self.reads, self.phase, self.samples = 0, 0, None, []
        self._custom, self._namespace, self._stop = custom, namespace, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        started = time.monotonic()
        while not self._stop.wait(1):
            try:
                body = self._custom.get_namespaced_custom_object(resource.GROUP, resource.VERSION, self._namespace,
                                                                 resource.PLURAL, NAME)
            except client.ApiException:
                continue
            self.reads += 1
            self.largest = max(self.largest, len(json.dumps(body, separators=(",", ":"))))
            status = body.get("status") or {}
            self.phase = status.get("phase")
            progress = (status.get("tasks") or {}).get("work", {}).get("map") or {}
            self.samples.append((time.monotonic() - started, progress.get("succeeded") or 0))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--parallelism", type=int, default=500)
    parser.add_argument("--timeout-minutes", type=float, default=90)
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()
    interrupt_on_sigterm()
    work = pathlib.Path(tempfile.mkdtemp(prefix="ferry-map-scale-"))
    sizes = None
    try:
        with bench_cluster(work, "virtual", map_messages(args.items)) as (cluster, api, namespace, operator, _, servers):
            custom = client.CustomObjectsApi(api)
            before = apirequests.request_counts(cluster)
            cpu_before = cpu_by_process(servers)
            started = time.monotonic()
            custom.create_namespaced_custom_object(resource.GROUP, resource.VERSION, namespace, resource.PLURAL,
                                                   map_workflow(NAME, args.parallelism))
            sizes = Sizes(custom, namespace)
            while sizes.phase not in ("Succeeded", "Failed"):
                if time.monotonic() - started > args.timeout_minutes * 60:
                    raise SystemExit(f"the map did not finish within {args.timeout_minutes:g} minutes")
                time.sleep(1)
            elapsed = time.monotonic() - started
            sizes.stop()
            after = apirequests.request_counts(cluster)
            cpu = {name: seconds - cpu_before[name] for name, seconds in cpu_by_process(servers).items()}
            reasons = collections.Counter(event.reason for event in
                                          client.CoreV1Api(api).list_namespaced_event(namespace).items)
            report(args, sizes, elapsed, before, after, reasons, peak_rss_mib(operator.server.process.pid), cpu)
    finally:
        if sizes is not None:
            sizes.stop()
        shutil.rmtree(work, ignore_errors=True)


def report(args, sizes: Sizes, elapsed: float, before, after, reasons, rss: float, cpu: dict[str, float]) -> None:
    n = args.items
    delta = apirequests.made_since(before, after, {("workflows", "", "POST"): 1, ("workflows", "", "GET"): sizes.reads})
    by_operator = apirequests.by_operator(delta, reasons)
    moving = [(t, done) for t, done in sizes.samples if 0 < done < n]
    rate = ((moving[-1][1] - moving[0][1]) / (moving[-1][0] - moving[0][0]) * 60
            if len(moving) > 1 and moving[-1][0] > moving[0][0] else float("nan"))
    status_writes = delta.get(("workflows", "status", "PATCH"), 0)
    print(f"\nmap of {n:,} no-op items, parallelism {args.parallelism}, on the virtual node: "
          f"succeeded={sizes.phase == 'Succeeded'} after {elapsed:.0f}s\n")
    rows = {
        "wall time (s)": f"{elapsed:,.0f}",
        "item pods per minute (items' stage)": f"{rate:,.0f}",
        "operator API requests per item": f"{by_operator / n:.2f}",
        "all API requests per item": f"{sum(delta.values()) / n:.2f}",
        "status writes": f"{status_writes:,.0f}",
        "Workflow object at its largest (KiB)": f"{sizes.largest / 1024:,.1f}",
        "operator peak RSS (MiB)": f"{rss:.0f}",
        "operator CPU per item (ms)": f"{cpu['ferry-operator-bench'] / n * 1000:.2f}",
        "kube-apiserver CPU per item (ms)": f"{cpu.get('kube-apiserver', 0) / n * 1000:.2f}",
    }
    print("| figure | value |\n| --- | ---: |")
    for name, value in rows.items():
        print(f"| {name} | {value} |")
    print(f"\nCPU time during the run ({elapsed * os.cpu_count():.0f} s of CPU on {os.cpu_count()} cores), by process:\n")
    print("| process | CPU s | ms per item |\n| --- | ---: | ---: |")
    for name, seconds in sorted(cpu.items(), key=lambda item: -item[1]):
        print(f"| {name} | {seconds:.1f} | {seconds / n * 1000:.2f} |")
    print("\nAPI requests during the run, by resource and verb (this script's own taken out):\n")
    print("| resource | verb | requests | per item | whose |\n| --- | --- | ---: | ---: | --- |")
    for (res, sub, verb), count in sorted(delta.items(), key=lambda item: -item[1]):
        print(f"| {res}{'/' + sub if sub else ''} | {verb} | {count:,.0f} | {count / n:.3f} | "
              f"{apirequests.whose((res, sub, verb))} |")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"rows": rows, "cpu_seconds": cpu}, indent=1))


if __name__ == "__main__":
    main()
