"""DNS rebinding and a tenant's file URI, in a real browser (issue 24, items 2 and 4).

Chromium is told that ``evil.example`` resolves to 127.0.0.1, as an attacker's DNS would answer
once the victim has their page open: everything it then sends still goes to loopback only."""

from __future__ import annotations

import shutil
import urllib.parse

import pytest

from ferry_ui import app
from tests.ui import fakes

SECRET = "THE-USERS-OWN-FILE"


@pytest.fixture
def rebinding_page(browser):
    """A page of a second Chromium, launched by the suite's Playwright, whose resolver maps
    ``evil.example`` to loopback."""
    rebinding = browser.browser_type.launch(
        executable_path=shutil.which("chromium") or shutil.which("chromium-browser"),
        args=["--no-sandbox", "--host-resolver-rules=MAP evil.example 127.0.0.1"])
    try:
        page = rebinding.new_page()
        page.set_default_timeout(20_000)
        yield page
    finally:
        rebinding.close()


def test_a_page_reached_by_a_rebound_name_gets_nothing_from_the_ui(rebinding_page, tmp_path):
    root = tmp_path / "raw"
    root.mkdir()
    (root / "kept.txt").write_text("published")
    workflow = {"metadata": {"namespace": "team", "name": "visible", "creationTimestamp": "2026-12-01T00:00:00Z"},
                "spec": {"tasks": [{"name": "t", "image": "busybox"}]}, "status": {"phase": "Succeeded"}}
    with fakes.serve(app.Sources(cluster=fakes.FakeCluster([workflow])), fakes.store_at(root)) as ui:
        port = urllib.parse.urlsplit(ui.url).port
        page = rebinding_page
        raw = f"/raw?uri={urllib.parse.quote((root / 'kept.txt').as_uri())}"
        for path in ("/workflows", raw):
            answer = page.goto(f"http://evil.example:{port}{path}")
            assert answer.status == 421, (path, answer.status)
            body = page.content()
            assert "visible" not in body and "published" not in body and "--allow-host" in body
        # The same browser, at the name the UI is served as, sees it all: the refusal is the name's.
        assert page.goto(f"http://localhost:{port}/workflows").status == 200
        assert "visible" in page.content()
        assert page.goto(f"http://localhost:{port}{raw}").status == 200 and "published" in page.content()
        # A page of evil.example cannot read the UI at localhost either: no CORS header lets it.
        page.goto(f"http://evil.example:{port}/healthz")  # an origin of the attacker's, answered only "ok"
        read = page.evaluate("""url => fetch(url).then(r => r.text()).then(t => 'read: ' + t, e => 'refused')""",
                             f"http://localhost:{port}{raw}")
        assert read == "refused", read


def test_a_file_a_tenants_workflow_names_is_never_shown_in_the_browser(page, tmp_path):
    secret = tmp_path / "id_rsa"
    secret.write_text(SECRET)
    root = tmp_path / "raw"
    root.mkdir()
    hostile = {"metadata": {"namespace": "other-team", "name": "grab", "creationTimestamp": "2026-12-01T00:00:00Z"},
               "spec": {"tasks": [{"name": "t", "image": "busybox",
                                   "inputs": [{"name": "key", "uri": secret.as_uri()}]}]},
               "status": {"phase": "Succeeded", "tasks": {"t": {"phase": "Succeeded"}}}}
    with fakes.serve(app.Sources(cluster=fakes.FakeCluster([hostile])), fakes.store_at(root)) as ui:
        page.goto(f"{ui.url}/output?" + urllib.parse.urlencode({"uri": secret.as_uri(), "kind": "file"}))
        text = page.inner_text("main")
        assert "lies outside the stores this UI reads" in text and "other-team/grab" in text
        assert SECRET not in page.content() and page.locator("a.button").count() == 0  # no Download
        answer = page.goto(f"{ui.url}/raw?" + urllib.parse.urlencode({"uri": secret.as_uri()}))
        assert answer.status == 403 and SECRET not in page.content()
