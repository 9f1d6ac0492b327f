"""Faults under load: the operator SIGKILLed at random moments while 50 workflows of mixed shapes
run, and the API server restarted under it. Every workflow must finish with the right outputs, no
attempt may get a second pod, and no finished task may run again."""

from __future__ import annotations

import json
import random
import time

import pytest
from kubernetes import client

from tests.cluster.fixtures import Cluster, eventually
from tests.operator.fixtures import get_workflow, wait_for_phase
from tests.operator.test_workflows_e2e import apply_manifest, read_object, workflow_pods

pytestmark = [pytest.mark.cluster, pytest.mark.s3]
WORKFLOWS = 50
KILLS = 10


def sh(name: str, script: str, **fields) -> dict:
    return {"name": name, "image": "busybox:1.36", "command": ["sh", "-c", script], **fields}


def shape(kind: str, n: int) -> tuple[dict, dict, dict]:
    """(spec, expected attempts per task, expected workflow outputs) of workflow ``n`` of one shape."""
    if kind == "chain":  # values passed from task to task
        tasks = [sh("first", f"echo {n} > /ferry/outputs/v", outputs=[{"name": "v", "kind": "value"}]),
                 sh("second", 'echo $(($(cat "$FERRY_INPUT_V") * 2)) > /ferry/outputs/v', outputs=[{"name": "v", "kind": "value"}],
                    inputs=[{"name": "v", "fromTask": {"task": "first", "output": "v"}}]),
                 sh("third", 'echo $(($(cat "$FERRY_INPUT_V") + 1)) > /ferry/outputs/v', outputs=[{"name": "v", "kind": "value"}],
                    inputs=[{"name": "v", "fromTask": {"task": "second", "output": "v"}}])]
        return {"tasks": tasks, "outputs": [{"name": "result", "fromTask": {"task": "third", "output": "v"}}]}, \
            {"first": 1, "second": 1, "third": 1}, {"result": n * 2 + 1}
    if kind == "files":  # a directory fetched, checked and passed on as a file
        tasks = [sh("make", f"mkdir -p /ferry/outputs/d/sub && seq 1 {n + 100} > /ferry/outputs/d/sub/numbers",
                    outputs=[{"name": "d", "kind": "directory"}]),
                 sh("count", "wc -l < /ferry/inputs/d/sub/numbers > /ferry/outputs/lines",
                    inputs=[{"name": "d", "fromTask": {"task": "make", "output": "d"}}],
                    outputs=[{"name": "lines", "kind": "file"}])]
        return {"tasks": tasks, "outputs": [{"name": "lines", "fromTask": {"task": "count", "output": "lines"}}]}, \
            {"make": 1, "count": 1}, {"lines": f"{n + 100}\n".encode()}
    if kind == "retry":  # the first attempt fails; the second succeeds
        tasks = [sh("flaky", f'[ "$FERRY_ATTEMPT" -gt 1 ] || exit 3; echo {n} > /ferry/outputs/v',
                    retries={"limit": 2, "backoffSeconds": 1}, outputs=[{"name": "v", "kind": "value"}])]
        return {"tasks": tasks, "outputs": [{"name": "v", "fromTask": {"task": "flaky", "output": "v"}}]}, \
            {"flaky": 2}, {"v": n}
    tasks = [*(sh(f"leaf-{i}", "sleep 1") for i in range(3)),  # wide: no data, just the DAG
             sh("join", f"echo {n} > /ferry/outputs/v", dependsOn=[f"leaf-{i}" for i in range(3)],
                outputs=[{"name": "v", "kind": "value"}])]
    return {"tasks": tasks, "outputs": [{"name": "v", "fromTask": {"task": "join", "output": "v"}}]}, \
        {"leaf-0": 1, "leaf-1": 1, "leaf-2": 1, "join": 1}, {"v": n}


def check(cluster: Cluster, s3, namespace: str, name: str, attempts: dict, outputs: dict,
          stalled_mounts_retried: bool = False) -> None:
    """``stalled_mounts_retried``: each infrastructure failure of a task (there, ``MountStalled``: its
    node could not mount its Secrets within the start timeout) counts one more attempt and pod. A
    task's reason is cleared once it succeeds, so the kind of failure is not checked here."""
    workflow = get_workflow(cluster, namespace, name)
    status = workflow["status"]
    assert status["phase"] == "Succeeded", (name, status)
    if stalled_mounts_retried:
        attempts = {t: n + (status["tasks"][t].get("infrastructureFailures") or 0) for t, n in attempts.items()}
    assert {t: s["attempts"] for t, s in status["tasks"].items()} == attempts, f"{name}: {json.dumps(status['tasks'])}"
    for key, expected in outputs.items():
        got = status["outputs"][key]
        assert (read_object(s3, got["uri"]) if isinstance(expected, bytes) else got["value"]) == expected, (name, key)
    pods = sorted(p.metadata.name for p in workflow_pods(cluster, namespace, name))
    wanted = sorted(f"{name}-{task}-{a}" for task, n in attempts.items() for a in range(1, n + 1))
    assert pods == wanted, f"{name}: pods {pods}, one per attempt expected: {wanted}"


@pytest.mark.timeout(1500)  # ~150 pods on one 2-core node: 545 s on CI's slowest run, then the leak check
def test_fifty_workflows_survive_ten_operator_kills(cluster: Cluster, workflow_namespace: str, s3, operator):
    seed = random.randrange(1 << 30)
    print(f"random seed {seed}")
    rng = random.Random(seed)
    kinds = ["chain", "files", "retry", "wide"]
    expected = {}
    started = time.monotonic()
    for n in range(WORKFLOWS):
        spec, attempts, outputs = shape(kinds[n % len(kinds)], n)
        name = f"mixed-{n:02d}"
        apply_manifest(cluster, workflow_namespace, {"apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow",
                                                     "metadata": {"name": name}, "spec": spec})
        expected[name] = (attempts, outputs)
    kills = []
    for _ in range(KILLS):
        time.sleep(rng.uniform(1, 8))
        operator.kill()
        kills.append(round(time.monotonic() - started, 1))
        time.sleep(rng.uniform(0, 3))
        operator.start()
    for name in expected:
        wait_for_phase(cluster, workflow_namespace, name, timeout=600)
    elapsed = time.monotonic() - started
    print(f"{WORKFLOWS} workflows, operator killed at {kills} s: all finished after {elapsed:.0f} s")
    for name, (attempts, outputs) in expected.items():
        check(cluster, s3, workflow_namespace, name, attempts, outputs)


def test_the_operator_rides_out_an_api_server_restart(cluster: Cluster, workflow_namespace: str, s3, operator):
    spec, attempts, outputs = shape("chain", 7)
    apply_manifest(cluster, workflow_namespace, {"apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow",
                                                 "metadata": {"name": "before"}, "spec": spec})
    cluster.outage("kube-apiserver", 5)
    # Created after the restart: only a watch that resumed sees it.
    apply_manifest(cluster, workflow_namespace, {"apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow",
                                                 "metadata": {"name": "after"}, "spec": spec})
    for name in ("before", "after"):
        wait_for_phase(cluster, workflow_namespace, name, timeout=240)
        # The kubelet's mounts back off while the API server is away: a pod then starting may pass
        # the suite's start timeout of 15 s (the product's is 300 s).
        check(cluster, s3, workflow_namespace, name, attempts, outputs, stalled_mounts_retried=True)
    assert operator.server.process.poll() is None, "the operator kept running through the outage"


def test_a_running_task_whose_pod_is_deleted_is_retried(cluster: Cluster, workflow_namespace: str, s3):
    """Node loss, eviction or a hand's ``kubectl delete``: the attempt is the infrastructure's loss,
    retried from ``retries.infrastructure`` even though the task allows no retries of its own."""
    spec = {"tasks": [sh("long", '[ "$FERRY_ATTEMPT" -gt 1 ] || sleep 300; echo done > /ferry/outputs/v',
                         outputs=[{"name": "v", "kind": "value"}])]}
    apply_manifest(cluster, workflow_namespace, {"apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow",
                                                 "metadata": {"name": "evicted"}, "spec": spec})
    core = client.CoreV1Api(cluster.api_client())

    def running():
        pod = core.read_namespaced_pod("evicted-long-1", workflow_namespace)
        return any(s.state.running for s in pod.status.container_statuses or [] if s.name == "main")

    eventually(running, 120, what="the first attempt to run")
    core.delete_namespaced_pod("evicted-long-1", workflow_namespace, grace_period_seconds=2)
    workflow = wait_for_phase(cluster, workflow_namespace, "evicted", timeout=180)
    task = workflow["status"]["tasks"]["long"]
    assert workflow["status"]["phase"] == "Succeeded", workflow["status"]
    assert (task["attempts"], task["infrastructureFailures"], task["outputs"]["v"]["value"]) == (2, 1, "done")
