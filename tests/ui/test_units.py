"""A map's units on its task page: failed first, then running, then the rest, 100 a page, filtered
by phase; the first failures with their messages; a damaged status said in one line."""

from __future__ import annotations

import base64
import json
import tracemalloc
import zlib

import pytest

from ferry.api import items, resource, scheduler
from ferry_ui import app, units
from tests.ui import fakes
from tests.ui.test_routes import request, run

Phase = resource.Phase


def map_workflow(count: int, phases: dict[int, Phase], batch: int = 1, message: str = "unit 5 fell over",
                 namespace: str = "team-a", **progress) -> dict:
    """Workflow ``etl`` whose task ``process`` maps over ``count * batch`` items; units in ``phases``
    are in that phase on their 2nd attempt, the others succeeded on their 1st."""
    record = items.Record(count)
    record.replace((Phase.PENDING,), Phase.SUCCEEDED)
    record.attempts[:] = b"\1" * count
    for unit, phase in phases.items():
        record.set(unit, phase, 2)
    status = {"stage": "Items", "items": count * batch, "units": count, "record": record.encode(),
              **{phase.value.lower(): record.count(phase) for phase in (Phase.PENDING, Phase.RUNNING, Phase.SUCCEEDED,
                                                                        Phase.FAILED)},
              "failures": [{"unit": u, "attempt": 2, "reason": "TaskFailed", "message": message}
                           for u, p in sorted(phases.items()) if p == Phase.FAILED][:8], **progress}
    return {"metadata": {"namespace": namespace, "name": "etl", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"tasks": [{"name": "list", "function": "m:g", "outputs": [{"name": "names", "kind": "value"}]},
                               {"name": "process", "function": "m:f", "inputs": [{"name": "n", "fromItem": True}],
                                "map": {"over": {"fromTask": {"task": "list", "output": "names"}, "kind": "value"},
                                        **({"batchSize": batch} if batch > 1 else {})}}]},
            "status": {"phase": "Running", "tasks": {"process": {"phase": "Running", "map": status}}}}


def page_of(workflow: dict, phase: Phase | None = None, number: int = 0) -> units.Page:
    task = workflow["spec"]["tasks"][1]
    return units.page("etl", task, workflow["status"]["tasks"]["process"], phase, number)


PHASES = {5: Phase.FAILED, 200: Phase.FAILED, 3: Phase.RUNNING, 150: Phase.RUNNING, 7: Phase.PENDING,
          8: Phase.SKIPPED}


def test_units_are_listed_failed_first_then_running_then_the_rest_a_hundred_a_page():
    first, second, third = (page_of(map_workflow(250, PHASES), number=n) for n in (0, 1, 2))
    assert [u.index for u in first.rows][:8] == [5, 200, 3, 150, 0, 1, 2, 4]
    assert [u.index for u in first.rows][8:10] == [6, 7], "then the rest in order, whatever their phase"
    listed = [u.index for page in (first, second, third) for u in page.rows]
    assert len(first.rows) == len(second.rows) == units.PAGE and len(third.rows) == 50
    assert sorted(listed) == list(range(250)), "every unit once"
    assert (first.pages, first.matching, third.number) == (3, 250, 2)
    assert first.counts == {"Pending": 1, "Running": 2, "Succeeded": 244, "Failed": 2, "Skipped": 1}
    unit = first.rows[0]
    assert (unit.phase, unit.attempts, unit.logs) == ("Failed", 2, (2, 1))
    assert unit.pod == scheduler.unit_name("etl", "process", "item", 2, 5)
    assert page_of(map_workflow(250, PHASES), number=99).number == 2, "past the last page: the last"


def test_a_phase_filter_lists_that_phases_units_in_order_and_a_batch_names_its_items():
    chosen = page_of(map_workflow(1000, {**PHASES, 999: Phase.FAILED}, batch=4), Phase.FAILED)
    assert [(u.index, u.items) for u in chosen.rows] == [(5, "20–23"), (200, "800–803"), (999, "3996–3999")]
    assert (chosen.matching, chosen.pages, chosen.phase) == (3, 1, "Failed")
    assert [(f["unit"], f["span"], f["message"]) for f in chosen.failures][:1] == [(5, "20–23", "unit 5 fell over")]
    succeeded = page_of(map_workflow(1000, PHASES), Phase.SUCCEEDED, 4)
    expected = [u for u in range(1000) if u not in PHASES][400:500]
    assert [u.index for u in succeeded.rows] == expected
    assert page_of(map_workflow(10, {}), Phase.FAILED).rows == []
    with pytest.raises(ValueError, match="^phase: expected one of Pending, Running, Succeeded, Failed, Skipped"):
        units.phase_filter("Stopped")


BOMB = base64.b64encode(zlib.compress(bytes(400_000_000), 9)).decode()
"""A few hundred KB that inflate to 400 MB: a record must never be inflated past its size."""


@pytest.mark.parametrize("change", [
    {"record": "not base64 at all!"}, {"record": base64.b64encode(b"not zlib").decode()},
    {"record": base64.b64encode(zlib.compress(b"\0" * 7)).decode()},  # another length
    {"record": base64.b64encode(zlib.compress(b"\x09" * 500)).decode()},  # no phase's code
    {"record": 17}, {"units": -1}, {"units": 10 ** 12}, {"units": "many"},
    {"failures": [{"unit": 1, "attempt": 1}] * 9}, {"stage": "<b>Nope</b>"},
])
def test_a_damaged_map_status_is_one_line_on_the_page_not_an_error(change):
    workflow = map_workflow(250, PHASES)
    workflow["status"]["tasks"]["process"]["map"].update(change)
    shown = page_of(workflow)
    assert shown.error.startswith("This map's status is damaged, so its units are not listed: ")
    assert "\n" not in shown.error and shown.rows == []


def test_a_record_that_inflates_to_gigabytes_is_refused_before_it_does():
    workflow = map_workflow(250, PHASES)
    workflow["status"]["tasks"]["process"]["map"]["record"] = BOMB
    tracemalloc.start()
    try:
        shown = page_of(workflow)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert shown.error.startswith("This map's status is damaged") and peak < 20 * 1024 * 1024, peak


def test_a_map_still_splitting_has_no_units_yet():
    workflow = map_workflow(10, {})
    workflow["status"]["tasks"]["process"] = {"phase": "Running"}
    shown = page_of(workflow)
    assert (shown.stage, shown.items, shown.rows, shown.error) == ("Split", None, [], None)


@pytest.fixture
def ui(tmp_path):
    """The ``routes.UI`` of an app showing one workflow (as ``app.create`` makes it: its templates' globals)."""
    def made(workflow: dict):
        source = fakes.FakeCluster([workflow])  # the local runs' source too, for namespace ``local``
        return app.create(app.Sources(local=source, cluster=source), fakes.store_at(tmp_path / "s")
                          ).routes[0].endpoint.args[0]
    return made


def test_the_task_page_of_a_map_shows_its_stage_counts_units_and_failures(ui):
    shown = ui(map_workflow(250, PHASES))
    body = task_page(shown, "phase=Failed").decode()
    assert "<dd>Items</dd>" in body and "244/250" in body and "<dd>list.names</dd>" in body
    assert "<li>n ← each item</li>" in body and "Split and gather pods" in body
    gathered = map_workflow(250, {}, namespace="local")
    gathered["spec"]["tasks"][1]["outputs"] = [{"name": "o0", "kind": "value"}]
    gathered["status"]["tasks"]["process"].update(phase="Succeeded", result={"uri": "file:///r/g.json", "sha256": "0" * 64,
                                                                             "size": 10})
    local = task_page(ui(gathered), "", namespace="local").decode()
    assert "<li>o0 <small>value, gathered · in the stored result file:///r/g.json</small></li>" in local
    assert "Split and gather pods" not in local and "<th>Pod</th>" not in local
    assert "<li>unit 5, attempt 2 · TaskFailed" in body and "unit 5 fell over" in body
    rows = body.count('<tr class="unit ')
    assert rows == 2 and f"<code>{scheduler.unit_name('etl', 'process', 'item', 2, 5)}</code>" in body
    assert 'data-log="/workflows/team-a/etl/tasks/process/attempts/2/log?role=item&unit=5"' in body
    assert 'data-units="?phase=Running"' in body and 'data-units="?page=1"' not in body
    everything = task_page(shown, "").decode()
    assert everything.count('<tr class="unit ') == 100 and 'data-units="?page=1"' in everything
    batched = task_page(ui(map_workflow(250, PHASES, batch=4)), "phase=Failed").decode()
    assert "1,000 in 250 pods of 4" in batched and "<li>unit 5 (items 20–23), attempt 2" in batched
    assert '<tr class="unit phase-Failed"><td>5</td><td>20–23</td>' in batched


def task_page(ui, query: str, namespace: str = "team-a") -> bytes:
    from ferry_ui import routes

    return run(routes.task(ui, request(query, namespace=namespace, name="etl", task="process"))).body


def test_a_page_of_a_map_of_100000_units_is_small(ui):
    phases = {unit: Phase.FAILED for unit in range(0, 100_000, 97)}
    phases.update({unit: Phase.RUNNING for unit in range(1, 100_000, 1001)})
    shown = ui(map_workflow(100_000, phases, message="x" * 2000))
    for query in ("", "page=999", "phase=Succeeded&page=500", "phase=Failed&page=3"):
        body = task_page(shown, query)
        assert body.count(b'<tr class="unit ') == 100, query
        assert len(body) < 64 * 1024, (query, len(body))
