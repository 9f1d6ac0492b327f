"""The routes called as functions, each with a request and the ``UI`` it reads from: no server."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json

import pytest
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from ferry_ui import app, confined, routes
from tests.ui import fakes


def run(coroutine):
    """In a thread of its own: the browser tests' Playwright keeps an event loop running in this one."""
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


def request(query: str = "", **path_params) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "query_string": query.encode(), "headers": [],
                    "path_params": path_params})


@pytest.fixture
def ui(tmp_path):
    workflow = {
        "metadata": {"namespace": "team-a", "name": "etl", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"tasks": [{"name": "a", "image": "busybox"}]}, "status": {"phase": "Running"}}
    sources = app.Sources(cluster=fakes.FakeCluster([workflow]))
    store = confined.Store(fakes.store_at(tmp_path / "store").settings)
    return routes.UI(sources, store, Jinja2Templates(directory=app.HERE / "templates"))


def test_a_route_reads_the_workflow_from_the_ui_it_is_given(ui):
    answer = run(routes.dag(ui, request(namespace="team-a", name="etl")))
    found = json.loads(answer.body)
    assert [node["id"] for node in found["nodes"]] == ["a"] and found["summary"]["phase"] == "Running"
    with pytest.raises(HTTPException) as missing:
        run(routes.dag(ui, request(namespace="team-a", name="other")))
    assert missing.value.status_code == 404 and "team-a/other" in missing.value.detail


def test_only_uris_inside_the_store_are_readable_whoever_names_them(ui):
    for uri, status in (("s3://another-tenant/data", 403), ("", 400), (None, 400)):
        with pytest.raises(HTTPException) as refused:
            routes.readable(ui, uri)
        assert refused.value.status_code == status, uri
    assert routes.readable(ui, ui.store.raw_data_prefix + "/x") == (None, [])


def test_the_list_s_page_is_bounded_and_a_bad_number_is_named():
    query = routes.query_of(request("offset=-3&limit=9999&phase=Failed"))
    assert (query.offset, query.limit, query.phase) == (0, 500, "Failed")
    with pytest.raises(HTTPException) as bad:
        routes.query_of(request("limit=lots"))
    assert bad.value.status_code == 400 and bad.value.detail.startswith("limit: expected a whole number")
    assert routes.query_string(query, 50) == "phase=Failed&offset=50"


def test_create_wires_every_route_behind_the_guard(tmp_path):
    made = app.create(app.Sources(cluster=fakes.FakeCluster([])), fakes.store_at(tmp_path))
    assert [r.path for r in made.routes] == [path for path, _ in app.ROUTES] + ["/static"]
    assert [m.cls for m in made.user_middleware] == [app.protect.Guard]
