"""The UI over local runs, in a real browser: the list, live updates, the DAG, a task's logs, a
directory output's tree and a CSV preview. No cluster: ``ferry ui --local-only`` reads the history."""

from __future__ import annotations

import json
import os
import pathlib
import re
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.parse

import pytest

import ferry
from ferry.data import manifest
from ferry.execution import history
from ferry_ui import graph
from tests.cluster.fixtures import REPO, eventually
from tests.ui.conftest import snap

SAMPLES = pathlib.Path(__file__).with_name("samples.py")


def ferry_run(target: str, env: dict, *args: str, wait: bool = True):
    command = [sys.executable, "-m", "ferry", "run", target, *args]
    if not wait:
        return subprocess.Popen(command, env={**os.environ, **env}, cwd=REPO, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, env={**os.environ, **env}, cwd=REPO, capture_output=True, text=True, timeout=120)


def run_id(finished: subprocess.CompletedProcess) -> str:
    return next(line.split()[1].rstrip(";") for line in finished.stderr.splitlines() if line.startswith("run "))


def local_env(tmp_path: pathlib.Path) -> dict:
    return {"FERRY_HISTORY": str(tmp_path / "history.sqlite3"), "FERRY_RAW_DATA_PREFIX": (tmp_path / "raw").as_uri()}


def graph_phases(page) -> dict:
    page.wait_for_selector("#dag[data-ready='1']")
    return dict(page.evaluate("window.ferryGraph.nodes().map(n => [n.id(), n.data('phase')])"))


def tap(page, node: str) -> None:
    """Click a node of the DAG (drawn on a canvas: no element to click)."""
    page.evaluate("id => { window.ferryGraph.getElementById(id).emit('tap'); }", node)


def test_the_list_shows_local_runs_and_updates_live(page, start_ui, tmp_path):
    env = local_env(tmp_path)
    first = ferry_run("examples/quickstart.py:pipeline", env, "--days", "3")
    assert first.returncode == 0, first.stderr
    ui = start_ui("--local-only", **env)
    page.goto(f"{ui.url}/workflows")
    row = page.locator(f"tr[data-name='{run_id(first)}']")
    assert row.locator(".phase").inner_text() == "Succeeded"
    assert "5/5" in row.inner_text()

    slow = ferry_run(f"{SAMPLES}:slow", env, "--seconds", "4", wait=False)  # while the page is open
    try:
        running = page.locator("tr[data-name^='slow-'] .phase")
        running.wait_for()
        assert running.inner_text() in ("Pending", "Running")
        page.wait_for_function("() => document.querySelector(\"tr[data-name^='slow-'] .phase\").textContent"
                               " === 'Succeeded'", timeout=60_000)
    finally:
        assert slow.wait(60) == 0, slow.stderr.read()
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1  # no reload

    page.select_option("select[name=phase]", "Running")
    page.wait_for_function("() => document.querySelectorAll('#rows tbody tr[data-name]').length === 0")
    page.select_option("select[name=phase]", "")
    page.fill("input[name=name]", "slow")
    page.wait_for_function("() => document.querySelectorAll('#rows tbody tr[data-name]').length === 1")


def test_a_workflow_page_draws_the_dag_and_opens_a_directory_output(page, start_ui, tmp_path):
    env = local_env(tmp_path)
    finished = ferry_run("examples/quickstart.py:pipeline", env, "--days", "3")
    assert finished.returncode == 0, finished.stderr
    ui = start_ui("--local-only", **env)
    page.goto(f"{ui.url}/workflows/local/{run_id(finished)}")
    assert graph_phases(page) == {"collect": "Succeeded", "count": "Succeeded", "total": "Succeeded",
                                  "render": "Succeeded", "index": "Succeeded"}
    labels = page.evaluate("window.ferryGraph.edges().map(e => e.data('label'))")
    assert any(label.startswith("o0 · directory") and "3 files" in label for label in labels), labels

    tap(page, "count")  # the map over collect's 3 files: one unit each
    eventually(lambda: page.locator("#units tr.unit.phase-Succeeded").count() == 3, 20, what="the map's units")
    assert "report ← each item" in page.locator("#task").inner_text()

    tap(page, "render")
    page.locator("#task h2", has_text="render").wait_for()
    snap(page, "local-dag")
    tap(page, "collect")
    page.locator("#task h2", has_text="collect").wait_for()
    page.locator("#task a.data", has_text="o0").click()
    page.locator("#tree").wait_for()
    assert "collect" in page.locator("#producer").inner_text()
    assert "render" in page.locator("#readers").inner_text()  # count maps over it: the history records no map's reads
    files = page.locator("#tree tr.file td:first-child").all_inner_texts()
    assert files == ["day-1.csv", "day-2.csv", "day-3.csv"]
    page.locator("#tree a.preview", has_text="day-2.csv").click()
    table = page.locator("#preview table.csv")
    table.wait_for()
    assert table.locator("th").all_inner_texts() == ["day", "visits"]
    assert table.locator("tbody tr td").all_inner_texts() == ["2", "200"]
    download = page.locator("#preview a.button").get_attribute("href")
    assert ui.get(download.replace("&download=1", "")) == "day,visits\n2,200\n"


def large_run(path: pathlib.Path, chains: int = 50, length: int = 100) -> str:
    """A 5,000-task run in a local history: 50 chains of distinct tasks, every tenth step also
    waiting for the chain before, so no fan-out collapses. Written as a row, as a run's is: a
    workflow spec holds 1,000 tasks at most, which the UI does not rely on."""
    name = lambda c, s: f"c{c:02d}-s{s:03d}"  # noqa: E731
    tasks = [{"name": name(c, s), "image": "busybox:1.36",
              **({"dependsOn": [name(c, s - 1)] + ([name(c - 1, s)] if c and s % 10 == 5 else [])} if s else {})}
             for c in range(chains) for s in range(length)]
    status = {"phase": "Running", "progress": f"1/{len(tasks)}",
              "tasks": {t["name"]: {"phase": "Succeeded" if i % 7 else "Running"} for i, t in enumerate(tasks)}}
    history.History(path).close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO runs (id, workflow, phase, progress, created, spec, status, store_prefix) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", ("chains-0123abcd", "chains", "Running", status["progress"],
                                                      "2026-12-03T00:00:00Z", json.dumps({"tasks": tasks}),
                                                      json.dumps(status), "file:///tmp/ferry"))
    return "chains-0123abcd"


def test_a_5000_task_workflow_opens_folded_and_search_reveals_a_task_inside_a_group(page, start_ui, tmp_path):
    env = local_env(tmp_path)
    run = large_run(pathlib.Path(env["FERRY_HISTORY"]))
    ui = start_ui("--local-only", **env)
    page.goto(f"{ui.url}/workflows/local/{run}")
    page.wait_for_selector("#dag[data-ready='1']")
    folded = page.evaluate("ferryGraph.nodes().map(n => [n.id(), n.data('kind'), n.data('members') || []])")
    assert len(folded) <= graph.FOLD_ABOVE and {kind for _, kind, _ in folded} == {"group"}
    assert sum(len(members) for _, _, members in folded) == 5000
    group = next(node for node, _, members in folded if "c25-s050" in members)
    assert page.evaluate("ferryGraph.getElementById('c25-s050').empty()")

    page.fill("#find", "c25-s050")  # a whole name: its group expands, the task is marked and opened
    page.wait_for_function("() => ferryGraph.getElementById('c25-s050').hasClass('match')")
    page.locator("#task h2", has_text="c25-s050").wait_for()
    assert page.evaluate("id => ferryGraph.getElementById(id).empty()", group)
    assert page.evaluate("ferryGraph.nodes().length") == len(folded) - 1 + 100
    snap(page, "large-dag-search")

    page.fill("#find", "c40-s09")  # a part of a name: Enter shows the first task that has it
    page.press("#find", "Enter")
    page.wait_for_function("() => ferryGraph.getElementById('c40-s090').hasClass('match')")
    page.locator("#fold").click()
    page.wait_for_function("n => ferryGraph.nodes().length === n", arg=len(folded))
    assert page.locator("#fold").is_hidden()


def test_a_failed_tasks_message_and_logs_are_one_click_away(page, start_ui, tmp_path):
    env = local_env(tmp_path)
    failed = ferry_run(f"{SAMPLES}:broken", env)
    assert failed.returncode == 1, failed.stderr
    ui = start_ui("--local-only", **env)
    page.goto(f"{ui.url}/workflows?phase=Failed")
    page.locator("#rows a", has_text="broken-").click()
    assert graph_phases(page)["explode"] == "Failed"
    tap(page, "explode")
    assert "no rows to count" in page.locator("#task .task-message").inner_text()
    page.locator("#task button.log").first.click()
    eventually(lambda: "about to fail after reading 3 rows" in page.locator("#log").inner_text(), 20,
               what="the task's log in the page")


def test_only_outputs_and_the_raw_data_prefix_can_be_read(start_ui, tmp_path):
    env = local_env(tmp_path)
    secret = tmp_path / "not-an-output.txt"
    secret.write_text("private")
    ui = start_ui("--local-only", **env)
    for route in ("/raw", "/preview"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            ui.get(f"{route}?uri={urllib.parse.quote(secret.as_uri())}")
        assert refused.value.code == 403 and "outside the store" in refused.value.read().decode()
    page = ui.get(f"/output?uri={urllib.parse.quote(secret.as_uri())}")
    assert "lies outside the stores this UI reads" in page and "private" not in page and "/raw?" not in page
    inside = tmp_path / "raw" / "kept.txt"
    inside.parent.mkdir()
    inside.write_text("published")
    assert ui.get(f"/raw?uri={urllib.parse.quote(inside.as_uri())}") == "published"


def test_a_drive_lists_its_files_with_who_put_them(start_ui, tmp_path, monkeypatch):
    env = local_env(tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FERRY_WORKFLOW", "nightly")
    monkeypatch.setenv("FERRY_TASK", "collect")
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    with ferry.use_store(ferry.Store()):
        ferry.Drive("ferry://team-notes").put(tmp_path / "notes.csv", "2026/notes.csv")
    ui = start_ui("--local-only", **env)
    assert 'href="/drives/team-notes"' in ui.get("/drives")
    page = ui.get("/drives/team-notes")
    assert "2026/notes.csv" in page and "nightly/collect" in page and "8 B" in page
    download = re.search(r'href="(/raw\?[^"]+)"', page).group(1).replace("&amp;", "&")
    assert ui.get(download) == "a,b\n1,2\n"


def test_a_manifest_or_a_dotted_uri_cannot_lead_outside_what_the_ui_may_read(start_ui, tmp_path):
    """A task writes its own manifests: an entry naming an object elsewhere (in a pod, the UI's
    own ``/proc/self/environ`` holds the store's keys) is refused, as is a ``..`` out of the prefix."""
    env = local_env(tmp_path)
    secret = tmp_path / "keys.txt"
    secret.write_text("AWS_SECRET_ACCESS_KEY=hunter2")
    directory = (tmp_path / "raw" / "out").as_uri()
    store = ferry.Store(ferry.Settings(raw_data_prefix=env["FERRY_RAW_DATA_PREFIX"], cache_dir=tmp_path / "c"))
    published = store.publish_manifest(manifest.Manifest(files=[manifest.Entry(
        path="keys.txt", size=secret.stat().st_size, sha256="0" * 64, object=secret.as_uri())]), directory)
    ui = start_ui("--local-only", **env)
    query = {"uri": directory, "digest": published.manifest_digest, "path": "keys.txt"}
    for route in ("/raw", "/preview"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            ui.get(f"{route}?{urllib.parse.urlencode(query)}")
        assert refused.value.code == 403
    dotted = env["FERRY_RAW_DATA_PREFIX"] + "/../keys.txt"
    with pytest.raises(urllib.error.HTTPError) as refused:
        ui.get(f"/raw?uri={urllib.parse.quote(dotted)}")
    assert refused.value.code == 403


def test_a_maps_panel_pages_and_filters_its_units(page, start_ui, tmp_path):
    from ferry.api import resource
    from tests.ui.test_units import PHASES, map_workflow

    env = local_env(tmp_path)
    recorded = map_workflow(250, PHASES, message="unit 5: <b>no</b> such row")
    with history.History(pathlib.Path(env["FERRY_HISTORY"])) as records:
        records.open_run("etl-00000001", "etl", resource.WorkflowSpec.model_validate(recorded["spec"]), "file:///r")
        records.update("etl-00000001", resource.WorkflowStatus.model_validate(recorded["status"]))
    ui = start_ui("--local-only", **env)
    page.goto(f"{ui.url}/workflows/local/etl-00000001")
    assert graph_phases(page) == {"list": "Pending", "process": "Running"}, "a map of 250 units is one node"
    tap(page, "process")
    rows = page.locator("#units tr.unit")
    eventually(lambda: rows.count() == 100, 20, what="the first page of units")
    assert [rows.nth(i).locator("td").first.inner_text() for i in range(4)] == ["5", "200", "3", "150"]
    assert "unit 5: <b>no</b> such row" in page.locator("#units .failures").inner_text()
    assert page.locator("#units button.log").count() == 0, "a local run keeps no log per unit"
    page.locator("#units .unit-filter a", has_text="Failed").click()
    eventually(lambda: rows.count() == 2, 20, what="the failed units only")
    page.locator("#units .unit-filter a", has_text="all").click()
    eventually(lambda: rows.count() == 100, 20, what="all units again")
    page.locator("#units a.next").click()
    eventually(lambda: "page 2 of 3" in page.locator("#units .pages").inner_text(), 20, what="the second page")
    assert rows.first.locator("td").first.inner_text() == "98", "after 4 failed or running, 0 to 97 but 3 and 5"
    snap(page, "map-units")
