"""The UI over a cluster, in a real browser: a Workflow created with kubectl shows in the list and
changes phase without a reload; its DAG shows each task's phase; a failed task's message and logs
are one click away; a directory output's tree is read from the store. Runs unchanged against a
real cluster given a KUBECONFIG."""

from __future__ import annotations

import json

import pytest

from tests.cluster.fixtures import REPO, Cluster, eventually
from tests.operator.fixtures import wait_for_phase
from tests.ui.conftest import snap
from tests.ui.test_browser_local import ferry_run, graph_phases, local_env, run_id, tap

pytestmark = [pytest.mark.cluster, pytest.mark.s3]

FAILING = {
    "apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow", "metadata": {"name": "ui-watch"},
    "spec": {"tasks": [
        {"name": "wait", "image": "busybox:1.36", "command": ["sh", "-c", "sleep 5; echo waited"]},
        {"name": "fail", "image": "busybox:1.36", "dependsOn": ["wait"],
         "command": ["sh", "-c", "echo oops-from-the-task; exit 3"]}]},
}


def cluster_ui(start_ui, cluster: Cluster, s3):
    return start_ui("--cluster-only", "--store", f"s3://{s3.bucket}/runs", KUBECONFIG=str(cluster.kubeconfig),
                    **s3.env(), FERRY_S3_ADDRESSING_STYLE="path")


def test_local_runs_and_a_workflow_made_with_kubectl_go_live_from_list_to_logs(page, start_ui, cluster: Cluster,
                                                                                workflow_namespace: str, s3,
                                                                                tmp_path):
    local = local_env(tmp_path)
    ran = ferry_run("examples/quickstart.py:pipeline", local, "--days", "2")
    assert ran.returncode == 0, ran.stderr
    ui = start_ui(KUBECONFIG=str(cluster.kubeconfig), **s3.env(), FERRY_S3_ADDRESSING_STYLE="path", **local)
    page.goto(f"{ui.url}/workflows")
    assert page.locator(f"tr[data-name='{run_id(ran)}'] td:nth-child(2)").inner_text() == "local"
    cluster.kubectl("apply", "-n", workflow_namespace, "-f", "-", input=json.dumps(FAILING))
    phase = page.locator("tr[data-name='ui-watch'] .phase")
    page.wait_for_function("() => ['Pending', 'Running'].includes("
                           "document.querySelector(\"tr[data-name='ui-watch'] .phase\")?.textContent)")
    page.wait_for_function("() => document.querySelector(\"tr[data-name='ui-watch'] .phase\").textContent === 'Failed'",
                           timeout=120_000)
    assert phase.inner_text() == "Failed"
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1  # no reload
    assert page.locator(f"tr[data-name='{run_id(ran)}']").count() == 1  # both sources in one list
    snap(page, "cluster-and-local-list")
    page.select_option("select[name=namespace]", workflow_namespace)
    page.wait_for_function("() => document.querySelectorAll('#rows tbody tr[data-name]').length === 1")

    page.locator("#rows a", has_text="ui-watch").click()
    assert graph_phases(page) == {"wait": "Succeeded", "fail": "Failed"}
    tap(page, "fail")
    assert page.locator("#task .task-message").inner_text().strip()
    assert "TaskFailed" in page.locator("#task dl.facts").inner_text()
    assert "Error (3)" in page.locator("#task table.attempts").inner_text()  # how the pod's container ended
    page.locator("#task button.log", has_text="main").click()
    eventually(lambda: "oops-from-the-task" in page.locator("#log").inner_text(), 30, what="the pod's log in the page")
    snap(page, "cluster-failed-task")


def test_a_directory_output_on_the_cluster_is_browsed_from_the_store(page, start_ui, cluster: Cluster,
                                                                     workflow_namespace: str, s3):
    cluster.kubectl("apply", "-n", workflow_namespace, "-f", str(REPO / "examples/workflows/directory-between-tasks.yaml"))
    assert wait_for_phase(cluster, workflow_namespace, "directory-between-tasks")["status"]["phase"] == "Succeeded"
    ui = cluster_ui(start_ui, cluster, s3)
    page.goto(f"{ui.url}/workflows/{workflow_namespace}/directory-between-tasks")
    assert graph_phases(page) == {"produce": "Succeeded", "summarize": "Succeeded"}
    labels = " ".join(page.evaluate("window.ferryGraph.edges().map(e => e.data('label'))"))
    assert "reports · directory" in labels and "4 files" in labels
    tap(page, "produce")
    page.locator("#task a.data", has_text="reports").click()
    assert "summarize" in page.locator("#readers").inner_text()
    assert page.locator("#tree tr.folder td:first-child").all_inner_texts() == ["daily/"]
    page.locator("#tree a", has_text="daily/").click()
    page.locator("#tree a.preview", has_text="tue.txt").click()
    assert page.locator("#preview pre.text").inner_text().strip() == "hello tue"
