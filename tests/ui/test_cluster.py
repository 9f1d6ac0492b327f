"""ClusterSource against a fake API server on loopback: a paged LIST, then a WATCH; one line per
workflow kept, lineage indexed, pods read as attempts, and a refused cluster-wide LIST falls back
to the context's namespace."""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.parse

import pytest
from kubernetes import client

from ferry.api import scheduler
from ferry_ui import cluster, summaries
from tests.cluster.fixtures import eventually
from tests.cluster.processes import http_server


def workflow(namespace: str, name: str, phase: str, version: str) -> dict:
    return {"metadata": {"namespace": namespace, "name": name, "resourceVersion": version,
                         "creationTimestamp": f"2026-12-01T00:00:0{version[-1]}Z"},
            "spec": {"tasks": [{"name": "make", "outputs": [{"name": "data", "kind": "directory"}]}]},
            "status": {"phase": phase, "tasks": {"make": {"outputs": {"data": {"kind": "directory",
                                                                               "uri": f"s3://b/{name}"}}}}}}


POD = {"metadata": {"name": "wf-a-make-2", "labels": {"ferry.dev/workflow": "wf-a", "ferry.dev/task": "make",
                                                     "ferry.dev/attempt": "2"},
                    "ownerReferences": [{"kind": "Workflow", "name": "wf-a"}]},
       "spec": {"containers": [{"name": "main"}], "initContainers": [{"name": "ferry-fetch"}]},
       "status": {"phase": "Failed", "startTime": "2026-12-01T00:00:00Z",
                  "initContainerStatuses": [{"name": "ferry-fetch", "state": {"terminated": {"exitCode": 0}}}],
                  "containerStatuses": [{"name": "main", "state": {"terminated": {
                      "exitCode": 137, "reason": "OOMKilled", "finishedAt": "2026-12-01T00:00:09Z"}}}]}}


class FakeAPI(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    forbid_cluster_wide = False
    paths: list[str] = []
    pods: list[dict] = [POD]

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        type(self).paths.append(self.path)
        if url.path.endswith("/log"):
            return self._raw(f"log of {url.path.split('/')[-2]}".encode())
        if url.path.endswith("/pods"):
            wanted = dict(pair.split("=", 1) for pair in query.get("labelSelector", [""])[0].split(",") if pair)
            return self._json({"items": [pod for pod in type(self).pods
                                         if wanted.items() <= pod["metadata"]["labels"].items()]})
        if self.forbid_cluster_wide and url.path.startswith("/apis/ferry.dev/v1alpha1/workflows"):
            return self._json({"kind": "Status", "code": 403, "message": "forbidden"}, 403)
        if query.get("watch") == ["true"]:
            events = [{"type": "MODIFIED", "object": workflow("team", "wf-a", "Failed", "13")},
                      {"type": "DELETED", "object": workflow("team", "wf-b", "Running", "14")},
                      {"type": "ADDED", "object": workflow("other", "wf-c", "Pending", "15")}]
            body = b"".join(json.dumps(e).encode() + b"\n" for e in events)
            time.sleep(0.3)
            return self._raw(body)
        if "continue" not in query:
            return self._json({"items": [workflow("team", "wf-a", "Running", "11")],
                               "metadata": {"continue": "next", "resourceVersion": "12"}})
        return self._json({"items": [workflow("team", "wf-b", "Running", "12")], "metadata": {"resourceVersion": "12"}})

    def _json(self, data: dict, status: int = 200):
        self._raw(json.dumps(data).encode(), status)

    def _raw(self, body: bytes, status: int = 200):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def api():
    FakeAPI.paths, FakeAPI.forbid_cluster_wide, FakeAPI.pods = [], False, [POD]
    with http_server(FakeAPI) as server:
        api = client.ApiClient(client.Configuration(host=f"http://127.0.0.1:{server.server_port}"))
        yield api
        api.close()  # its kept-alive connections, which the server's threads answer


@pytest.fixture
def watching(api):
    """Started sources, stopped at the end: no thread is left in a socket call when Python exits."""
    sources = []

    def start() -> cluster.ClusterSource:
        sources.append(cluster.ClusterSource(api=api).start())
        return sources[-1]

    yield start
    for source in sources:
        source.stop()


def watchers() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("ferry-ui-watch-")]


def test_lines_follow_the_list_then_the_watch(watching):
    source = watching()
    assert source.synced.wait(10)
    eventually(lambda: {(s.namespace, s.name, s.phase) for s in source.page(summaries.Query())[0]}
               == {("team", "wf-a", "Failed"), ("other", "wf-c", "Pending")}, 10, what="the watch's events")
    assert source.namespaces() == ["other", "team"] and source.version >= 3
    assert source.version_of("team", "wf-a") > source.version_of("team", "nope") == 0
    assert source.lineage("s3://b/wf-a")[0].task == "make" and source.lineage("s3://b/wf-b") == (None, [])
    assert any("continue=next" in p for p in FakeAPI.paths) and any("resourceVersion=12" in p for p in FakeAPI.paths)


def test_a_pod_is_an_attempt_with_how_each_container_ended(api):
    attempt, = cluster.ClusterSource(api=api).attempts("team", "wf-a")
    assert (attempt["task"], attempt["attempt"], attempt["phase"]) == ("make", 2, "Failed")
    assert (attempt["reason"], attempt["exit_code"], attempt["finished_at"]) == ("OOMKilled", 137,
                                                                              "2026-12-01T00:00:09Z")
    assert [c["name"] for c in attempt["containers"]] == ["main", "ferry-fetch"]


def map_pod(role: str, attempt: int, unit: int | None = None) -> dict:
    """A pod of map ``process`` of ``wf-a``, as the operator labels it."""
    name = scheduler.unit_name("wf-a", "process", role, attempt, unit)
    labels = {**POD["metadata"]["labels"], "ferry.dev/task": "process", "ferry.dev/attempt": str(attempt),
              "ferry.dev/role": role, **({"ferry.dev/unit": str(unit)} if unit is not None else {})}
    return {**POD, "metadata": {**POD["metadata"], "name": name, "labels": labels}}


def test_a_map_units_log_is_its_own_pods_of_all_those_of_that_attempt(api):
    FakeAPI.pods = [map_pod("split", 1), map_pod("item", 1, 4), map_pod("item", 1, 17), map_pod("item", 2, 17)]
    source = cluster.ClusterSource(api=api)
    read = lambda *unit: b"".join(source.log("team", "wf-a", "process", 1, "main", False, *unit)).decode()  # noqa: E731
    assert read("item", 17) == f"log of {scheduler.unit_name('wf-a', 'process', 'item', 1, 17)}"
    assert read("split") == f"log of {scheduler.unit_name('wf-a', 'process', 'split', 1)}"
    assert [(a["role"], a["unit"]) for a in source.attempts("team", "wf-a")] == [
        ("split", None), ("item", 4), ("item", 17), ("item", 17)]
    with pytest.raises(LookupError, match="no pod of task process item unit 5 attempt 1 is left on the cluster"):
        read("item", 5)
    with pytest.raises(LookupError):
        read()  # the map's task has no pod of its own


def test_a_refused_cluster_wide_list_falls_back_to_the_contexts_namespace(watching, monkeypatch):
    FakeAPI.forbid_cluster_wide = True
    monkeypatch.setattr(cluster, "_current_namespace", lambda context: "team")
    source = watching()
    assert source.synced.wait(10)
    assert any(p.startswith("/apis/ferry.dev/v1alpha1/namespaces/team/workflows") for p in FakeAPI.paths)


def test_stop_ends_the_watches(api):
    source = cluster.ClusterSource(api=api).start()
    assert source.synced.wait(10) and watchers()
    source.stop()
    assert not watchers()
