"""The operator at scale: API requests per task, latency added per task, memory and throughput.

Starts the suite's own control plane (etcd, kube-apiserver, kube-controller-manager) with
kube-scheduler, MinIO, the operator as a process, and a node that finishes every pod the moment
it is bound: KWOK (``--node kwok``, the default: ``tests/cluster/kwoknode.py``, built from its Go
module) or the suite's *virtual node* (``--node virtual``: ``tests/cluster/virtualnode.py``, in
this process). The API server, the scheduler and the operator do all their real work, without
containers (the end-to-end tests run the same pods on the real node). Then it submits
``--workflows`` workflows of ``--tasks`` chained no-op tasks at once and reports:

- **API requests**, from kube-apiserver's own ``apiserver_request_total`` before and after, by
  resource and verb, and those the operator makes per task (workflow reads and writes; pod
  creates, lists, patches and deletes; events). The scheduler's bindings, the node's status
  patches and this script's own requests are listed apart;
- **added latency per task**: a task's pod seen finished → the next task's pod seen created, both
  by one watch in this process, p50 and p95;
- the operator's **peak RSS** (``VmHWM``) and **throughput** (workflows per minute from the first
  submission to the last success);
- **CPU time per task** of each process (the operator, kube-apiserver, etcd, the scheduler, the
  controller manager, MinIO, KWOK, and this script), which tells what bounds the
  throughput on this machine, and what one operator would do with a core of its own.

Run from the repository root (it builds or reuses the pinned binaries in ``~/.cache/ferry``):

    .venv/bin/python benchmarks/orchestration.py --workflows 100 --tasks 10
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import contextlib
import json
import os
import pathlib
import shutil
import statistics
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kubernetes import client, config, watch  # noqa: E402

from ferry.api import resource  # noqa: E402
from tests.cluster import apirequests, binaries, controlplane, kwoknode, s3 as s3_server, virtualnode  # noqa: E402
from tests.cluster.fixtures import Cluster, eventually  # noqa: E402
from tests.cluster.processes import Server, cpu_seconds, interrupt_on_sigterm, peak_rss_mib  # noqa: E402
from tests.operator.fixtures import Operator, namespace_with_storage  # noqa: E402


def chain(n: int, tasks: int) -> dict:
    steps = [{"name": f"t{i}", "image": "busybox:1.36", "command": ["true"],
              **({"dependsOn": [f"t{i - 1}"]} if i else {})} for i in range(tasks)]
    return {"apiVersion": resource.API_VERSION, "kind": resource.KIND, "metadata": {"name": f"chain-{n:05d}"},
            "spec": {"tasks": steps}}


def cpu_by_process(servers: list[Server]) -> dict[str, float]:
    times = {server.name: cpu_seconds(server.process.pid) for server in servers}
    return {**times, "this script (with the virtual node, if used)": sum(os.times()[:2])}


class PodTimes:
    """When each task's pod was first seen, and seen finished, from a watch in this process."""

    def __init__(self, api: client.ApiClient, namespace: str):
        self.created: dict[tuple[str, str], float] = {}
        self.finished: dict[tuple[str, str], float] = {}
        self._core, self._namespace = client.CoreV1Api(api), namespace
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            # Plain dicts: building the client's models of thousands of pods would load this process.
            try:
                for event in watch.Watch(return_type="object").stream(self._core.list_namespaced_pod,
                                                                       self._namespace, timeout_seconds=10):
                    pod, now = event["raw_object"], time.monotonic()
                    key = (pod["metadata"]["labels"]["ferry.dev/workflow"], pod["metadata"]["labels"]["ferry.dev/task"])
                    self.created.setdefault(key, now)
                    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                        self.finished.setdefault(key, now)
            except client.ApiException as error:  # a backlogged watch cache answers 504 (too large resource version)
                if error.status not in (410, 500, 503, 504):
                    raise
                time.sleep(0.5)

    def stop(self) -> None:
        self._stop.set()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@contextlib.contextmanager
def bench_cluster(work: pathlib.Path, node_kind: str, messages=None, env: dict | None = None):
    """The suite's control plane with kube-scheduler, MinIO, a simulated node (``kwok`` or the
    ``virtual`` node, which leaves ``messages`` as termination messages) and the operator as a
    process (``env``: more of its settings), for the benchmarks that load them. Yields
    (cluster, api client, namespace, operator, node, the servers whose CPU to count)."""
    plane = store = operator = node = None
    try:
        bins = binaries.build_node()  # the control plane's binaries and kube-scheduler
        plane = controlplane.start(work / "plane")
        scheduler = plane.kubeconfig_of("system:kube-scheduler")
        plane.servers.append(Server("kube-scheduler", [
            str(bins / "kube-scheduler"), f"--kubeconfig={scheduler}", f"--authentication-kubeconfig={scheduler}",
            f"--authorization-kubeconfig={scheduler}", "--leader-elect=false", "--bind-address=127.0.0.1",
            "--secure-port=0"], work / "plane" / "logs"))
        cluster = Cluster(plane.kubeconfig, str(bins / "kubectl"), local=True)
        cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        store = s3_server.start(work / "minio")
        api = config.new_client_from_config(str(plane.kubeconfig))
        node = (kwoknode.KwokNode(api, plane.kubeconfig, work / "plane" / "logs") if node_kind == "kwok"
                else virtualnode.VirtualNode(api, messages))
        node.start()
        namespace = namespace_with_storage(cluster, store, "ferry-bench")
        eventually(lambda: client.CoreV1Api(api).read_namespaced_service_account("default", namespace), 60,
                   what="the namespace's default ServiceAccount")  # pods are refused until it exists
        operator = Operator(cluster, store, work, name="ferry-operator-bench", args=("--namespace=ferry-bench-*",))
        operator.env.update(env or {})
        operator.start()
        servers = [*plane.servers, store.server, operator.server, *([node.server] if node_kind == "kwok" else [])]
        yield cluster, api, namespace, operator, node, servers
    finally:
        for part in (node, operator):
            if part is not None:
                part.stop()
        if store is not None:
            store.stop()
        if plane is not None:
            plane.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workflows", type=int, default=100)
    parser.add_argument("--tasks", type=int, default=10, help="chained no-op tasks per workflow")
    parser.add_argument("--node", choices=("kwok", "virtual"), default="kwok",
                        help="what plays the kubelet: KWOK, or the suite's virtual node in this process")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()
    interrupt_on_sigterm()  # stopped by timeout or kill, it still stops what it started
    work = pathlib.Path(tempfile.mkdtemp(prefix="ferry-orchestration-"))
    pods = None
    try:
        with bench_cluster(work, args.node) as (cluster, api, namespace, operator, node, servers):
            pods = PodTimes(api, namespace)
            custom = client.CustomObjectsApi(api)
            lists = 0

            def succeeded() -> int:
                """From the API server's watch cache (resourceVersion 0): a quorum read of 1,000 whole
                Workflows every few seconds timed out (504) on a 2-core machine busy running them."""
                nonlocal lists
                lists += 1
                try:
                    items = custom.list_namespaced_custom_object(resource.GROUP, resource.VERSION, namespace,
                                                                 resource.PLURAL, resource_version="0")["items"]
                except client.ApiException as error:
                    if error.status not in (429, 500, 503, 504):
                        raise
                    return -1  # too busy to answer: ask again later
                return sum((item.get("status") or {}).get("phase") == "Succeeded" for item in items)

            before = apirequests.request_counts(cluster)
            cpu_before = cpu_by_process(servers)
            started = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda n: custom.create_namespaced_custom_object(
                    resource.GROUP, resource.VERSION, namespace, resource.PLURAL, chain(n, args.tasks)),
                    range(args.workflows)))
            submitted = time.monotonic() - started
            while succeeded() < args.workflows:
                if time.monotonic() - started > 60 * 60:
                    raise SystemExit("not all workflows succeeded within an hour")
                time.sleep(2 if args.workflows <= 100 else 10)
            elapsed = time.monotonic() - started
            after = apirequests.request_counts(cluster)
            cpu = {name: seconds - cpu_before[name] for name, seconds in cpu_by_process(servers).items()}
            reasons = collections.Counter(event.reason for event in
                                          client.CoreV1Api(api).list_namespaced_event(namespace).items)
            report(args, before, after, lists, reasons, submitted, elapsed, pods,
                   peak_rss_mib(operator.server.process.pid), cpu)
    finally:
        if pods is not None:
            pods.stop()
        shutil.rmtree(work, ignore_errors=True)


def report(args, before, after, lists: int, reasons: collections.Counter, submitted: float, elapsed: float,
           pods, rss: float, cpu: dict[str, float]) -> None:
    tasks = args.workflows * args.tasks
    own = {("workflows", "", "POST"): args.workflows, ("workflows", "", "LIST"): lists}  # this script's
    delta = apirequests.made_since(before, after, own)
    operator_events = apirequests.operator_events(reasons)
    by_operator = apirequests.by_operator(delta, reasons)
    hops = [pods.created[(wf, f"t{i}")] - pods.finished[(wf, f"t{i - 1}")]
            for wf in {wf for wf, _ in pods.created} for i in range(1, args.tasks)
            if (wf, f"t{i}") in pods.created and (wf, f"t{i - 1}") in pods.finished]
    print(f"\n{args.workflows} workflows × {args.tasks} chained no-op tasks = {tasks} tasks; submitted in "
          f"{submitted:.1f}s, all succeeded after {elapsed:.1f}s\n")
    print("| figure | value |\n| --- | ---: |")
    rows = {
        "throughput (workflows/min)": f"{args.workflows / elapsed * 60:,.0f}",
        "tasks/s": f"{tasks / elapsed:,.1f}",
        "operator API requests per task": f"{by_operator / tasks:.2f}",
        "all API requests per task": f"{sum(delta.values()) / tasks:.2f}",
        "added latency per task, p50 (ms)": f"{statistics.median(hops) * 1000:.0f}" if hops else "—",
        "added latency per task, p95 (ms)": f"{percentile(hops, 0.95) * 1000:.0f}" if hops else "—",
        "operator peak RSS (MiB)": f"{rss:.0f}",
        "operator CPU per task (ms)": f"{cpu['ferry-operator-bench'] / tasks * 1000:.1f}",
    }
    for name, value in rows.items():
        print(f"| {name} | {value} |")
    print(f"\nCPU time during the run ({elapsed * os.cpu_count():.0f} s of CPU on {os.cpu_count()} cores), by process:\n")
    print("| process | CPU s | ms per task |\n| --- | ---: | ---: |")
    for name, seconds in sorted(cpu.items(), key=lambda item: -item[1]):
        print(f"| {name} | {seconds:.1f} | {seconds / tasks * 1000:.1f} |")
    print("\nAPI requests during the run, by resource and verb (this script's creates and lists taken out):\n")
    print("| resource | verb | requests | per task | whose |\n| --- | --- | ---: | ---: | --- |")
    for (res, sub, verb), count in sorted(delta.items(), key=lambda item: -item[1]):
        if count <= 0:
            continue
        whose = apirequests.whose((res, sub, verb))
        if whose == "events":
            whose = f"operator {operator_events:,.0f}, scheduler {count - operator_events:,.0f}"
        print(f"| {res}{'/' + sub if sub else ''} | {verb} | {count:,.0f} | {count / tasks:.2f} | {whose} |")
    print("\nEvents in the namespace, by reason: " + ", ".join(f"{reason} {count}" for reason, count in
                                                           reasons.most_common()))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"rows": rows, "cpu_seconds": cpu, "requests": {
            f"{res}/{sub}/{verb}": count for (res, sub, verb), count in delta.items()}}, indent=1))


if __name__ == "__main__":
    main()
