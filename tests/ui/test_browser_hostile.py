"""Markup planted in every field a user or another tenant controls, in a real browser: names of
workflows, namespaces and tasks, messages, input URIs, output names, manifest entries, drive
files, log text and the query string. No script may run (``window.__pwned`` stays unset, no
dialog opens), no markup may be parsed (the CSP reports none), and the text shows as text."""

from __future__ import annotations

import urllib.parse

import ferry
from ferry.data import manifest
from ferry_ui import app
from tests.ui import fakes
from tests.ui.test_browser_local import graph_phases, tap


def payload(n: int) -> str:
    """Markup that sets ``window.__pwned`` wherever a browser parses it as HTML; no '/' in it, so it
    fits a name that is one segment of a URL path."""
    return f"<img src=x onerror=window.__pwned={n};alert({n})>\"'><svg onload=window.__pwned={n}>"


def script(n: int) -> str:
    return f"{payload(n)}<script>window.__pwned={n}</script>"


def hostile_world(root, tmp_path):
    """A cluster's workflow whose every name and message is markup, its outputs in the store at ``root``."""
    store = fakes.store_at(root)
    (tmp_path / "cell.csv").write_text(f"name,{script(20)}\n1,{script(21)}\n")
    out = root.joinpath("out").as_uri()
    entry = store.upload_file(tmp_path / "cell.csv", f"{out}/{payload(22)}.csv")
    listed = store.publish_manifest(manifest.Manifest(files=[manifest.Entry(
        path=f"{payload(23)}/{payload(24)}.csv", size=entry.size, sha256=entry.sha256, object=entry.uri)]), out)
    with ferry.use_store(store):
        ferry.Drive("ferry://notes").put(tmp_path / "cell.csv", f"{payload(25)}/{payload(26)}.csv")
    task, namespace, name = payload(1), f"ns{payload(2)}", f"wf{payload(3)}"
    (root / "missing").mkdir()  # the 404 names the one missing component: the markup
    missing = f"{root.as_uri()}/missing/{payload(4)}"
    workflow = {
        "metadata": {"namespace": namespace, "name": name, "creationTimestamp": "2026-12-01T00:00:00Z"},
        "spec": {"tasks": [{"name": task, "image": script(5), "outputs": [{"name": payload(6), "kind": "directory"}],
                            "inputs": [{"name": payload(7), "uri": missing},
                                       {"name": payload(8), "uri": f"file:///nonexistent/{payload(9)}"},
                                       {"name": payload(10), "value": script(11)}]},
                           {"name": "after", "dependsOn": [task]}]},
        "status": {"phase": "Failed", "message": script(12), "progress": script(13), "tasks": {
            task: {"phase": "Failed", "message": script(14), "reason": script(15), "outputs": {
                payload(6): {"kind": "directory", "uri": listed.uri, "manifestDigest": listed.manifest_digest,
                             "fileCount": 1, "size": entry.size}}}}}}
    return app.Sources(cluster=fakes.FakeCluster([workflow], logs={task: script(16)})), store, namespace, name, task


def test_markup_from_tenants_and_the_query_string_never_runs(page, tmp_path):
    root = tmp_path / "raw"
    root.mkdir()
    sources, store, namespace, name, task = hostile_world(root, tmp_path)
    dialogs, violations = [], []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("console", lambda message: "Content Security Policy" in message.text and violations.append(message.text))

    def safe(where: str) -> None:
        page.wait_for_timeout(300)  # an <img src=x> fails, and its onerror would run, within this
        assert page.evaluate("window.__pwned") is None, where
        assert not dialogs and not violations, (where, dialogs, violations)

    with fakes.serve(sources, store) as ui:
        quoted = urllib.parse.quote
        page.goto(f"{ui.url}/workflows")
        page.locator("tr[data-name] a").first.wait_for()
        assert page.locator("tr[data-name] a").first.inner_text() == name
        safe("the list")
        page.goto(f"{ui.url}/workflows?" + urllib.parse.urlencode({"name": script(30), "phase": script(31),
                                                                    "namespace": script(32)}))
        safe("the list's query")

        page.goto(f"{ui.url}/workflows/{quoted(namespace)}/{quoted(name)}")
        assert graph_phases(page)[task] == "Failed"
        assert page.locator("#wf-message").inner_text() == script(12)
        tap(page, task)
        page.locator("#task h2", has_text="onerror").wait_for()
        assert script(14) in page.locator("#task .task-message").inner_text()
        page.locator("#task button.log").first.click()
        page.wait_for_function("() => document.getElementById('log').textContent.includes('__pwned=16')")
        safe("the workflow, its task and its log")

        page.locator("#task a.data").first.click()  # the output, a directory whose entries are markup
        page.locator("#tree a", has_text="onerror").first.click()
        page.locator("#tree a.preview").first.click()
        page.locator("#preview table.csv").wait_for()
        assert script(20) in page.locator("#preview th").all_inner_texts()
        safe("a directory output and a preview")

        page.goto(f"{ui.url}/workflows/{quoted(namespace)}/{quoted(name)}")
        graph_phases(page)
        tap(page, task)
        page.locator("#task ul.data a", has_text="missing").click()  # an input that is not there: a 404
        page.locator("#preview .error").wait_for()
        assert "<img src=x onerror=window.__pwned=4;" in page.locator("#preview .error").inner_text()  # as text
        safe("a missing input's preview")

        for uri, extra in ((f"{root.as_uri()}/{payload(40)}", {"size": script(41)}),
                           (f"file:///nonexistent/{payload(42)}", {}),
                           (f"{root.as_uri()}/x", {"sha256": script(43), "digest": script(44), "files": script(45)})):
            page.goto(f"{ui.url}/output?" + urllib.parse.urlencode({"uri": uri, **extra}))
            safe(f"an output named in the query ({uri})")

        page.goto(f"{ui.url}/drives/notes")
        assert "onerror" in page.locator("#files").inner_text()
        safe("a drive's files")
