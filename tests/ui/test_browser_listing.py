"""A folder of 100,000 files in a real browser: one page of ``stored.LEVEL_PAGE`` entries at a time
(it was one page of 45 MB, 34 s to open in Chromium), with sub-folders summed and a next page."""

from __future__ import annotations

import urllib.parse

from ferry_ui import app, stored
from tests.ui import fakes
from tests.ui.test_security import big_directory


def test_a_100000_file_folder_opens_one_page_at_a_time(page, tmp_path):
    root = tmp_path / "raw"
    root.mkdir()
    ref = big_directory(root, 100_000)
    with fakes.serve(app.Sources(cluster=fakes.FakeCluster([])), fakes.store_at(root)) as ui:
        query = urllib.parse.urlencode({"uri": ref.uri, "digest": ref.manifest_digest, "kind": "directory"})
        page.goto(f"{ui.url}/output?{query}")
        rows = page.locator("#tree tbody tr")
        assert rows.count() == stored.LEVEL_PAGE
        assert rows.first.inner_text().split("\t")[:3] == ["sub/", "30 B", "3"]
        assert "1–500 of 100,001 entries" in page.locator("#pager").inner_text()
        page.locator("#pager a.next").click()
        page.wait_for_url("**page=1")
        assert rows.count() == stored.LEVEL_PAGE
        assert rows.first.locator("td").first.inner_text() == f"f{stored.LEVEL_PAGE - 1:06d}.txt"
        assert page.locator("#pager a.previous").is_visible()
