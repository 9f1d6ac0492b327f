"""End to end: maps on the real node. A map over a directory's files runs one pod per file, each
receiving exactly its own file and nothing else; the items' outputs come back gathered; items
that fail are retried alone, and ``minSuccessRatio`` decides whether the map succeeds."""

from __future__ import annotations

import json

import pytest

from tests.cluster.fixtures import Cluster, eventually
from tests.operator.fixtures import wait_for_phase
from tests.operator.test_workflows_e2e import apply_example, apply_manifest, read_object, workflow_pods

pytestmark = [pytest.mark.cluster, pytest.mark.s3]

FILES = 200


def each_file_checked(name: str, files: int, fail_every: int = 0, ratio: float = 1.0) -> dict:
    """``files`` files made by one task, mapped over by a task that checks its pod received exactly
    one file (its own, named in its content) and returns that content; items whose number is a
    multiple of ``fail_every`` fail."""
    fail = f'[ "$(echo "${{n#f}}" | awk \'{{print $1 % {fail_every}}}\')" = 0 ] && exit 3; ' if fail_every else ""
    return {"apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow", "metadata": {"name": name}, "spec": {
        "podRetention": "KeepFailed",
        "tasks": [
            {"name": "produce", "image": "busybox:1.36", "command": ["sh", "-c"], "args": [
                f"mkdir -p /ferry/outputs/files && for i in $(seq -w 0 {files - 1}); do "
                "echo -n f$i > /ferry/outputs/files/f$i.txt; done"],
             "outputs": [{"name": "files", "kind": "directory"}]},
            {"name": "check", "image": "busybox:1.36", "command": ["sh", "-c"], "args": [
                'set -e; [ "$(ls /ferry/inputs)" = file ] || { ls -la /ferry/inputs; exit 2; }; '
                'n=$(cat "$FERRY_INPUT_FILE"); ' + fail + 'echo -n "$n" > /ferry/outputs/name'],
             "map": {"over": {"fromTask": {"task": "produce", "output": "files"}}, "parallelism": 20,
                     "minSuccessRatio": ratio},
             "retries": {"limit": 0, "backoffSeconds": 0},
             "inputs": [{"name": "file", "fromItem": True}],
             "outputs": [{"name": "name", "kind": "value"}]},
            {"name": "total", "image": "busybox:1.36", "command": ["sh", "-c"],
             "args": ['cat "$FERRY_INPUT_NAMES" > /ferry/outputs/names'],
             "inputs": [{"name": "names", "fromTask": {"task": "check", "output": "name"}}],
             "outputs": [{"name": "names", "kind": "file"}]}],
        "outputs": [{"name": "names", "fromTask": {"task": "total", "output": "names"}}]}}


def test_a_map_over_200_files_gives_each_pod_exactly_its_file_and_gathers_them(cluster: Cluster,
                                                                               workflow_namespace: str, s3):
    apply_manifest(cluster, workflow_namespace, each_file_checked("map-200", FILES))
    workflow = wait_for_phase(cluster, workflow_namespace, "map-200", timeout=900)
    status = workflow["status"]
    assert status["phase"] == "Succeeded", status["message"]
    progress = status["tasks"]["check"]["map"]
    assert (progress["items"], progress["units"], progress["succeeded"], progress["failed"]) == (FILES, FILES, FILES, 0)
    names = json.loads(read_object(s3, status["outputs"]["names"]["uri"]))
    assert names == [f"f{i:03d}" for i in range(FILES)]
    # The map's whole state is a few fields: the Workflow is as small as a 3-task workflow's.
    assert len(json.dumps(status)) < 8_000
    # Each item ran in one pod: the succeeded ones go (KeepFailed) once their ends are written.
    eventually(lambda: not [p for p in workflow_pods(cluster, workflow_namespace, "map-200")
                            if (p.metadata.labels or {}).get("ferry.dev/role") == "item"], 30,
               what="the succeeded items' pods to go")


def test_failed_items_are_null_under_min_success_ratio_and_fail_the_map_above_it(cluster: Cluster,
                                                                                  workflow_namespace: str, s3):
    apply_manifest(cluster, workflow_namespace, each_file_checked("map-tolerant", 20, fail_every=7, ratio=0.8))
    apply_manifest(cluster, workflow_namespace, each_file_checked("map-strict", 20, fail_every=7, ratio=0.95))
    tolerant = wait_for_phase(cluster, workflow_namespace, "map-tolerant", timeout=600)["status"]
    assert tolerant["phase"] == "Succeeded", tolerant["message"]
    names = json.loads(read_object(s3, tolerant["outputs"]["names"]["uri"]))
    assert names == [None if i % 7 == 0 else f"f{i:02d}" for i in range(20)]  # items 0, 7, 14 failed
    assert tolerant["tasks"]["check"]["map"]["failed"] == 3
    strict = wait_for_phase(cluster, workflow_namespace, "map-strict", timeout=600)["status"]
    assert strict["phase"] == "Failed" and strict["tasks"]["total"]["phase"] == "Skipped"
    # It fails as soon as 0.95 cannot be reached (a second failure of 20), its other items stopped.
    assert "of 20 items failed (min success ratio 0.95)" in strict["tasks"]["check"]["message"]
    failures = strict["tasks"]["check"]["map"]["failures"]
    failed = sorted(f["unit"] for f in failures)
    assert len(failed) >= 2 and set(failed) <= {0, 7, 14}, failures
    assert all("exited with code 3" in f["message"] for f in failures)
    # The failed items' pods stay for their logs (KeepFailed), each named by its unit.
    def kept() -> set[str]:
        return {p.metadata.name for p in workflow_pods(cluster, workflow_namespace, "map-strict")
                if (p.metadata.labels or {}).get("ferry.dev/role") == "item" and not p.metadata.deletion_timestamp}

    # The others go as the operator lets go of them, just after the status that records their ends.
    expected = {f"map-strict-check-{unit}-1" for unit in failed}
    eventually(lambda: kept() == expected, 30, what=f"only the failed items' pods {sorted(expected)} to stay")


def test_the_yaml_example_counts_lines_per_file(cluster: Cluster, workflow_namespace: str, s3):
    apply_example(cluster, workflow_namespace, "map-over-files")
    status = wait_for_phase(cluster, workflow_namespace, "map-over-files", timeout=600)["status"]
    assert status["phase"] == "Succeeded", status["message"]
    assert status["outputs"]["sum"]["value"] == 15
