"""The UI against hostile requests and hostile workflows, over HTTP on loopback (issue 24): it
reads only what lies under the store's raw data prefix, whatever the URI's encoding, a symlink or
a workflow names; it answers only the hosts it is served as; its pages carry a CSP that runs no
inline script; and a directory's page shows one bounded page of one folder level."""

from __future__ import annotations

import os
import pathlib
import re
import socket
import subprocess
import sys
import urllib.parse

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import ferry
from ferry.data import manifest
from ferry_ui import app, stored
from tests.cluster.fixtures import REPO
from tests.ui import fakes

SECRET = "OUTSIDE-THE-STORE"


@pytest.fixture
def store_tree(tmp_path: pathlib.Path):
    """A raw data prefix holding ``kept.txt``, beside a secret it must never serve, and symlinks
    inside it that point out of it (to the secret file, and to its folder)."""
    root = tmp_path / "raw"
    (root / "out").mkdir(parents=True)
    (root / "kept.txt").write_text("inside: kept")
    (root / "out" / "a.txt").write_text("inside: a")
    (tmp_path / "secret.txt").write_text(SECRET)
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    (root / "away").symlink_to(tmp_path)
    (root / "out" / "leak.txt").symlink_to(tmp_path / "secret.txt")
    return root


@pytest.fixture
def served(store_tree):
    with fakes.serve(app.Sources(cluster=fakes.FakeCluster([])), fakes.store_at(store_tree)) as ui:
        yield ui


def raw_query(uri: str, route: str = "/raw", **extra: str) -> str:
    return f"{route}?{urllib.parse.urlencode({'uri': uri, **extra})}"


def test_encoded_dots_symlinks_and_other_places_are_refused_without_naming_the_prefix(served, store_tree, tmp_path):
    prefix = store_tree.as_uri()
    hostile = [f"{prefix}/%2e%2e/secret.txt", f"{prefix}/%2E%2E/secret.txt", f"{prefix}/%2e%2e%2fsecret.txt",
               f"{prefix}/out/..%2f..%2fsecret.txt", f"{prefix}/link.txt", f"{prefix}/out/leak.txt", f"{prefix}/away/secret.txt",
               f"{prefix}/%2e%2e/%2e%2e" + str(tmp_path / "secret.txt"), (tmp_path / "secret.txt").as_uri(),
               str(tmp_path / "secret.txt"), f"file://localhost{tmp_path}/secret.txt", "file:///proc/self/environ",
               f"{prefix}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/proc/self/environ",
               f"FILE://{tmp_path}/secret.txt", f"{prefix}/out%5c..%5c..%5csecret.txt"]
    for uri in hostile:
        for route in ("/raw", "/preview"):
            status, _, body = served.get(raw_query(uri, route))
            assert status in (403, 404), (route, uri, status, body)
            assert SECRET.encode() not in body and str(store_tree).encode() not in body, (route, uri, body)
    for uri in (f"{prefix}/%2e%2e", f"{prefix}/away", "file:///etc", f"{prefix}/%2e%2e/%2e%2e/%2e%2e/etc"):
        status, _, body = served.get(raw_query(uri, "/output", kind="directory"))
        assert b"secret.txt" not in body and b"passwd" not in body, uri
        if uri.endswith("/away"):  # under the prefix, but a link out of it
            assert status == 403 and str(store_tree).encode() not in body
        else:  # the page echoes the URI asked for, and reads nothing of it
            assert_shown_unread(status, body)
    assert served.get(raw_query(f"{prefix}/kept.txt"))[2] == b"inside: kept"
    listing = served.get(raw_query(f"{prefix}/out", "/output", kind="directory"))[2]
    assert b"a.txt" in listing and b"leak.txt" not in listing  # a symlink is not even listed


def assert_shown_unread(status: int, body: bytes) -> None:
    """An output's page for a URI outside the stores: what the workflows say of it, and nothing read."""
    assert status == 200 and b"Not shown: this object lies outside the stores" in body, (status, body[:300])
    assert b'id="tree"' not in body and b"/raw?" not in body and b"/preview?" not in body


def test_a_uri_a_cluster_workflow_names_outside_the_store_is_not_served(store_tree, tmp_path):
    """A tenant's Workflow names the user's own files as its input: ``ferry ui`` on the user's
    machine must not serve them (the cluster is not the user's filesystem's owner)."""
    secret = (tmp_path / "secret.txt").as_uri()
    hostile = {"metadata": {"namespace": "other-team", "name": "grab"},
               "spec": {"inputs": [{"name": "x", "uri": secret}],
                        "tasks": [{"name": "t", "inputs": [{"name": "x", "uri": secret},
                                                           {"name": "y", "uri": "file:///etc/passwd"}]}]},
               "status": {"phase": "Succeeded", "tasks": {"t": {"phase": "Succeeded", "outputs": {
                   "o": {"kind": "directory", "uri": tmp_path.as_uri()}}}}}}
    sources = app.Sources(cluster=fakes.FakeCluster([hostile]))
    with fakes.serve(sources, fakes.store_at(store_tree)) as ui:
        for uri in (secret, "file:///etc/passwd"):
            for route in ("/raw", "/preview", "/output"):
                status, _, body = ui.get(raw_query(uri, route))
                assert SECRET.encode() not in body and b"root:" not in body, (route, uri)
                if route == "/output":
                    assert_shown_unread(status, body)
                    assert b"other-team/grab" in body  # who reads it, as the workflow says
                else:
                    assert status == 403, (route, uri)
        status, _, body = ui.get(raw_query(tmp_path.as_uri(), "/output", kind="directory"))
        assert_shown_unread(status, body)
        assert b"secret.txt" not in body


def test_a_store_given_with_store_is_read_and_nothing_beside_it(store_tree, tmp_path):
    """``ferry ui --store s3://cluster-bucket/prefix`` on a laptop: the cluster's outputs are read
    from there, the local store still, and neither the rest of the machine nor of the bucket."""
    cluster_store = tmp_path / "cluster-store"
    (cluster_store / "ns").mkdir(parents=True)
    (cluster_store / "ns" / "out.txt").write_text("from the cluster's store")
    (tmp_path / "cluster-store-2").mkdir()
    (tmp_path / "cluster-store-2" / "beside.txt").write_text(SECRET)
    with fakes.serve(app.Sources(cluster=fakes.FakeCluster([])), fakes.store_at(store_tree),
                     stores=(cluster_store.as_uri() + "/",)) as ui:
        assert ui.get(raw_query(f"{cluster_store.as_uri()}/ns/out.txt"))[2] == b"from the cluster's store"
        assert ui.get(raw_query(f"{store_tree.as_uri()}/kept.txt"))[2] == b"inside: kept"
        for uri in (f"{cluster_store.as_uri()}-2/beside.txt", f"{cluster_store.as_uri()}/%2e%2e/secret.txt",
                    (tmp_path / "secret.txt").as_uri()):
            status, _, body = ui.get(raw_query(uri))
            assert status == 403 and SECRET.encode() not in body, uri


def test_only_the_hosts_the_ui_is_served_as_are_answered(store_tree):
    """DNS rebinding: a page of evil.example that resolves to 127.0.0.1 sends ``Host: evil.example``."""
    with fakes.serve(app.Sources(cluster=fakes.FakeCluster([])), fakes.store_at(store_tree),
                     allow_hosts=["ferry.internal"]) as ui:
        for host in ("evil.example", "evil.example:8686", "127.0.0.1.evil.example", "localhost.evil.example"):
            status, headers, body = ui.get("/workflows", {"Host": host})
            assert status in (400, 421) and headers["content-type"].startswith("text/plain"), host
            assert b"<" not in body and b"--allow-host" in body
        # kubectl port-forward reaches the chart's UI as localhost, on whatever local port it picks
        for host in ("localhost:9999", "127.0.0.1:8686", "[::1]:8686", "localhost", "ferry.internal:80"):
            assert ui.get("/workflows", {"Host": host})[0] == 200, host
        assert ui.get("/healthz", {"Host": "10.1.2.3:8686"})[0] == 200  # the kubelet's probes
        status, _, _ = ui.get("/events", {"Origin": "http://evil.example"})
        assert status == 403
        assert ui.get("/workflows", {"Origin": ui.url})[0] == 200


def test_pages_carry_a_csp_without_inline_scripts_and_raw_files_never_render_as_html(served, store_tree):
    (store_tree / "page.html").write_text("<script>window.__pwned = 1</script>")
    (store_tree / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>")
    for target in ("/workflows", raw_query(f"{store_tree.as_uri()}/out", "/output", kind="directory")):
        status, headers, body = served.get(target)
        assert status == 200
        policy = headers["content-security-policy"]
        script = re.search(r"script-src ([^;]*)", policy).group(1)
        assert "'unsafe-inline'" not in script and "frame-ancestors 'none'" in policy, policy
        assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"
        assert not re.search(rb"<script(?![^>]*\ssrc=)[^>]*>", body), "an inline script"
        assert not re.search(rb"\son[a-z]+=", body), "an inline event handler"
    for name in ("page.html", "logo.svg"):
        status, headers, _ = served.get(raw_query(f"{store_tree.as_uri()}/{name}"))
        assert status == 200 and headers["content-disposition"].startswith("attachment"), name
        assert "sandbox" in headers["content-security-policy"] and headers["x-content-type-options"] == "nosniff"
    status, headers, _ = served.get(raw_query(f"{store_tree.as_uri()}/kept.txt"))
    assert headers["content-type"].startswith("text/plain") and headers["content-disposition"].startswith("inline")


def big_directory(root: pathlib.Path, count: int) -> ferry.BlobRef:
    """A directory output whose manifest lists ``count`` files in one folder and a few in sub-folders."""
    store, uri = fakes.store_at(root), root.joinpath("big").as_uri()
    paths = [f"f{i:06d}.txt" for i in range(count)] + [f"sub/{i}/x.bin" for i in range(3)]
    files = [manifest.Entry(path=p, size=10 if p.startswith("sub/") else 1, sha256="0" * 64, object=f"{uri}/{p}")
             for p in paths]
    return store.publish_manifest(manifest.Manifest(files=files), uri)


def test_a_folder_of_many_files_is_shown_a_bounded_page_at_a_time(served, store_tree):
    ref = big_directory(store_tree, 3 * stored.LEVEL_PAGE + 7)
    base = {"uri": ref.uri, "digest": ref.manifest_digest, "kind": "directory"}
    seen, target, pages = [], raw_query(ref.uri, "/output", digest=ref.manifest_digest, kind="directory"), 0
    while target:
        status, _, body = served.get(target)
        assert status == 200
        text = body.decode()
        rows = re.findall(r'<tr class="(?:file|folder)"><td><a[^>]*>([^<]+)</a>', text)
        assert 0 < len(rows) <= stored.LEVEL_PAGE
        seen += rows
        pages += 1
        after = re.search(r'<a class="next" href="([^"]+)"', text)
        target = after.group(1).replace("&amp;", "&") if after else None
    assert pages == 4 and seen[0] == "sub/" and len(seen) == 3 * stored.LEVEL_PAGE + 7 + 1
    assert seen[1:] == [f"f{i:06d}.txt" for i in range(3 * stored.LEVEL_PAGE + 7)]
    first = served.get(raw_query(ref.uri, "/output", **{k: v for k, v in base.items() if k != "uri"}))[2].decode()
    assert re.search(r"sub/</a></td><td>30 B</td><td>3</td>", first)


def test_a_busy_port_is_a_one_line_error_naming_it(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {**os.environ, "FERRY_HISTORY": str(tmp_path / "h.sqlite3"),
               "PYTHONPATH": os.pathsep.join(str(REPO / p) for p in ("runtime", "operator", "ui"))}
        finished = subprocess.run([sys.executable, "-m", "ferry", "ui", "--local-only", "--port", str(port)],
                                  env=env, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert finished.returncode == 2, finished.stderr
    lines = [line for line in finished.stderr.splitlines() if "INFO" not in line]
    assert len(lines) == 1 and str(port) in lines[0] and "--port" in lines[0], finished.stderr
    assert "http://" not in finished.stderr


# A hostile URI: a head (the prefix, or another place or spelling of it), segments (dot segments
# encoded once, twice, in any case, as backslashes; NULs; the symlinks out of the store) and a name.
HEADS = st.sampled_from(["{prefix}", "{prefix}", "{prefix}", "FILE://{root}", "File://{root}", "file://localhost{root}",
                         "file://evil.example{root}", "{root}", "file://{tmp}", "file://", "s3://bucket{root}",
                         "file:{root}", "{prefix}%2f..", "file:////{root}"])
SEGMENTS = st.sampled_from(["..", ".", "%2e%2e", "%2E%2e", "%252e%252e", "%2e", "..%2f", "%2f..", "%5c..", "..\\",
                            "\\..", "%00", "\0", "link.txt", "away", "out", "", "%2fetc", "etc", "proc", "self",
                            "%252f", "tmp"])
NAMES = st.sampled_from(["secret.txt", "link.txt", "leak.txt", "kept.txt", "a.txt", "passwd", "environ", "", "%2e%2e"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(head=HEADS, segments=st.lists(SEGMENTS, max_size=6), name=NAMES, route=st.sampled_from(["/raw", "/preview"]))
def test_no_uri_the_ui_accepts_reads_outside_the_store(served, store_tree, head, segments, name, route):
    tmp = store_tree.parent
    uri = "/".join([head.format(prefix=store_tree.as_uri(), root=store_tree, tmp=tmp), *segments, name])
    status, _, body = served.get(raw_query(uri, route))
    assert SECRET.encode() not in body and b"root:" not in body, (uri, status)
    assert status in (200, 400, 403, 404), (uri, status, body)
    if status == 200 and route == "/raw":  # what was read is one of the store's own files
        assert body.startswith(b"inside: "), (uri, body)


HOSTILE = "<script>window.__pwned = 1</script><img src=x onerror=alert(1)>"


@pytest.fixture
def served_map(store_tree):
    """A map whose failure message is hostile markup, and another whose record is damaged."""
    from tests.ui.test_units import PHASES, map_workflow

    hostile = map_workflow(250, PHASES, message=HOSTILE)
    damaged = map_workflow(250, PHASES, namespace="team-b")
    damaged["status"]["tasks"]["process"]["map"]["record"] = HOSTILE
    cluster = fakes.FakeCluster([hostile, damaged], logs={"process/item/5/2": "the log of unit 5, attempt 2"})
    with fakes.serve(app.Sources(cluster=cluster), fakes.store_at(store_tree)) as ui:
        yield ui


def test_a_maps_page_shows_tenant_text_as_text_and_a_damaged_record_as_one_line(served_map):
    status, _, body = served_map.get("/workflows/team-a/etl/tasks/process?phase=Failed")
    assert status == 200 and body.count(b'<tr class="unit ') == 2
    assert b"&lt;script&gt;window.__pwned = 1&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in body
    assert b"<script>window" not in body and b"<img" not in body
    status, _, body = served_map.get("/workflows/team-b/etl/tasks/process")
    assert status == 200 and b"This map&#39;s status is damaged, so its units are not listed: " in body
    assert b"<script>window" not in body and b"Traceback" not in body


@pytest.mark.parametrize("query, answer", [
    ("phase=Stopped", 400), ("phase=failed", 400), ("phase=" + urllib.parse.quote(HOSTILE), 400),
    ("phase=%00", 400), ("phase=Failed&phase=Running", 200), ("page=abc", 400), ("page=1e9", 400),
    ("page=-5", 200), ("page=" + "9" * 40, 200), ("page=" + "9" * 5000, 400), ("page=%EF%BC%91", 200),
])
def test_a_maps_page_and_filter_are_checked_and_never_echoed(served_map, query, answer):
    status, headers, body = served_map.get(f"/workflows/team-a/etl/tasks/process?{query}")
    assert status == answer, (query, status, body[:300])
    if status == 400:
        assert headers["content-type"].startswith("text/plain") and b"<" not in body and len(body) < 200, body
        assert body.startswith((b"phase: expected one of", b"page: expected a whole number")), body
    else:
        assert body.count(b'<tr class="unit ') > 0


@pytest.mark.parametrize("query, answer", [
    ("role=item&unit=5", 200), ("role=evil&unit=5", 400), ("role=item&unit=-1", 400), ("role=item&unit=x", 400),
    ("unit=5", 400), ("role=item", 400), ("role=split&unit=5", 400), ("role=" + urllib.parse.quote(HOSTILE), 400),
])
def test_a_map_units_log_link_is_checked(served_map, query, answer):
    status, _, body = served_map.get(f"/workflows/team-a/etl/tasks/process/attempts/2/log?{query}")
    assert status == answer, (query, status, body)
    assert body == b"the log of unit 5, attempt 2" if status == 200 else b"<" not in body


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(phase=st.one_of(st.sampled_from(["", "Failed", "Running", "Succeeded", "Pending", "Skipped"]), st.text()),
       page=st.one_of(st.integers(-10 ** 6, 10 ** 30).map(str), st.text()))
def test_no_page_or_phase_makes_a_maps_page_fail(served_map, phase, page):
    query = urllib.parse.urlencode({"phase": phase, "page": page})
    status, _, body = served_map.get(f"/workflows/team-a/etl/tasks/process?{query}")
    assert status in (200, 400), (query, status, body[:300])
