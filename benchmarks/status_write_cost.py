"""What one status write of a Workflow costs the API server, by the workflow's size, with the CRD as
generated and with its CEL rules taken out.

The operator writes a workflow's status about once per task (``benchmarks/orchestration.py``
counts 1.0-1.1 writes per task). This starts the suite's control plane (etcd, kube-apiserver,
kube-controller-manager; no node, no operator), installs the CRD, makes a chain of ``--tasks``
tasks for each size with a status of that many finished tasks (an output each), and then times
``--writes`` JSON patches of one field of its status: kube-apiserver's CPU time (from ``/proc``)
and the wall time per write. Then again with a copy of the CRD without ``x-kubernetes-validations``,
and with each CRD file given with ``--crd`` (another revision's, to compare), all of them in turn
``--rounds`` times, so that a busy machine weighs on each alike.

    .venv/bin/python benchmarks/status_write_cost.py --tasks 10 250 --writes 100
    git show fc65440:crds/ferry.dev_workflows.yaml > /tmp/before.yaml
    .venv/bin/python benchmarks/status_write_cost.py --tasks 250 --writes 60 --rounds 3 --crd /tmp/before.yaml
"""

from __future__ import annotations

import argparse
import copy
import json
import pathlib
import shutil
import sys
import tempfile
import time
from typing import Any

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kubernetes import client, config  # noqa: E402

from ferry.api import resource  # noqa: E402
from tests.cluster import binaries, controlplane  # noqa: E402
from tests.cluster.fixtures import Cluster  # noqa: E402
from tests.cluster.processes import cpu_seconds, interrupt_on_sigterm  # noqa: E402

NAMESPACE = "default"


def without_rules(node: Any) -> Any:
    """``node`` without any ``x-kubernetes-validations`` (CEL rules)."""
    if isinstance(node, dict):
        return {key: without_rules(value) for key, value in node.items() if key != "x-kubernetes-validations"}
    if isinstance(node, list):
        return [without_rules(value) for value in node]
    return node


def chain(name: str, tasks: int) -> tuple[dict, dict]:
    """A workflow of ``tasks`` chained tasks, and a status with every one of them finished."""
    steps = [{"name": f"t{i}", "image": "busybox:1.36", "command": ["true"], "outputs": [{"name": "o", "kind": "file"}],
              **({"inputs": [{"name": "i", "fromTask": {"task": f"t{i - 1}", "output": "o"}}]} if i else {})}
             for i in range(tasks)]
    status = {"phase": "Running", "progress": f"0/{tasks}", "tasks": {
        f"t{i}": {"phase": "Succeeded", "podName": f"{name}-t{i}-1", "attempts": 1,
                  "outputs": {"o": {"kind": "file", "uri": f"s3://bucket/{NAMESPACE}/uid/t{i}/1/o", "size": 3,
                                    "sha256": "0" * 64}}} for i in range(tasks)}}
    return ({"apiVersion": resource.API_VERSION, "kind": resource.KIND, "metadata": {"name": name},
             "spec": {"tasks": steps}}, status)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[10, 250])
    parser.add_argument("--writes", type=int, default=100)
    parser.add_argument("--crd", type=pathlib.Path, action="append", default=[], help="another CRD file to measure")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    interrupt_on_sigterm()  # stopped by timeout or kill, it still stops what it started
    work = pathlib.Path(tempfile.mkdtemp(prefix="ferry-status-cost-"))
    plane = controlplane.start(work / "plane")
    try:
        cluster = Cluster(plane.kubeconfig, str(binaries.build_kubernetes() / "kubectl"), local=True)
        custom = client.CustomObjectsApi(config.new_client_from_config(str(plane.kubeconfig)))
        api_server = next(server.process.pid for server in plane.servers if "apiserver" in server.name)
        generated = yaml.safe_load((ROOT / "crds" / "ferry.dev_workflows.yaml").read_text())
        variants = [("as generated", generated), ("without CEL rules", without_rules(copy.deepcopy(generated))),
                    *((str(path), yaml.safe_load(path.read_text())) for path in args.crd)]
        print(f"{args.writes} status patches each; kube-apiserver CPU and wall time per patch:")
        for number, (variant, crd) in enumerate(variants * args.rounds):
            (work / "crd.json").write_text(json.dumps(crd))
            cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(work / "crd.json"))
            cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{resource.PLURAL}.{resource.GROUP}")
            time.sleep(3)  # the API server takes the new schema in the background
            for tasks in args.tasks:
                name = f"chain-{tasks}-{number}"
                body, status = chain(name, tasks)
                custom.create_namespaced_custom_object(resource.GROUP, resource.VERSION, NAMESPACE, resource.PLURAL, body)
                custom.patch_namespaced_custom_object_status(
                    resource.GROUP, resource.VERSION, NAMESPACE, resource.PLURAL, name,
                    [{"op": "add", "path": "/status", "value": status}], _content_type="application/json-patch+json")
                before, started = cpu_seconds(api_server), time.monotonic()
                for write in range(args.writes):
                    custom.patch_namespaced_custom_object_status(
                        resource.GROUP, resource.VERSION, NAMESPACE, resource.PLURAL, name,
                        [{"op": "replace", "path": "/status/progress", "value": f"{write}/{tasks}"}],
                        _content_type="application/json-patch+json", _preload_content=False)
                spent, wall = cpu_seconds(api_server) - before, time.monotonic() - started
                print(f"  CRD {variant:18s} {tasks:5d} tasks: {spent / args.writes * 1000:7.1f} ms CPU, "
                      f"{wall / args.writes * 1000:7.1f} ms wall", flush=True)
    finally:
        plane.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
