"""A source of workflows held in memory (what ``ClusterSource`` gives the app, without a cluster),
and the app served by uvicorn in a thread on a free loopback port."""

from __future__ import annotations

import contextlib
import pathlib
import threading
import time
import urllib.parse
from collections.abc import Iterator

import ferry
from ferry_ui import app, lineage, summaries
from tests.cluster.processes import free_port


class FakeCluster:
    """Workflows, attempts and logs as a cluster would give them (any namespace but ``local``)."""

    name = "fake-cluster"

    def __init__(self, workflows: list[dict], logs: dict[str, str] | None = None):
        self.workflows = {(w["metadata"]["namespace"], w["metadata"]["name"]): w for w in workflows}
        self.logs = logs or {}
        self.index = lineage.Index()
        for found in workflows:
            self.index.put(found)
        self.error: str | None = None
        self.version = 1

    def page(self, query: summaries.Query) -> tuple[list[summaries.Summary], int]:
        rows = [summaries.summarize(w) for w in self.workflows.values()]
        return rows[query.offset:query.offset + query.limit], len(rows)

    def namespaces(self) -> list[str]:
        return sorted({namespace for namespace, _ in self.workflows})

    def workflow(self, namespace: str, name: str) -> dict | None:
        return self.workflows.get((namespace, name))

    def attempts(self, namespace: str, name: str) -> list[dict]:
        found = self.workflows.get((namespace, name)) or {"spec": {}}
        return [{"task": t["name"], "attempt": 1, "name": f"{name}-{t['name']}-1", "phase": "Failed",
                 "started_at": None, "finished_at": None, "reason": "Error", "exit_code": 1,
                 "containers": [{"name": "main", "state": "terminated"}]} for t in found["spec"].get("tasks", [])]

    def log(self, namespace, name, task, attempt, container, follow, role=None, unit=None) -> Iterator[bytes]:
        yield self.logs.get(task if role is None else f"{task}/{role}/{unit}/{attempt}", "").encode()

    def lineage(self, uri: str):
        return self.index.producers.get(uri), sorted(self.index.readers.get(uri, ()), key=repr)

    def version_of(self, namespace: str, name: str) -> int:
        return self.version


def store_at(root: pathlib.Path) -> ferry.Store:
    return ferry.Store(ferry.Settings(raw_data_prefix=root.as_uri(), cache_dir=root.parent / "cache"))


class Served:
    """``app.create(...)`` on loopback; ``get`` answers (status, headers, body) and never raises."""

    def __init__(self, url: str):
        self.url = url

    def get(self, target: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        import http.client

        parsed = urllib.parse.urlsplit(self.url)
        connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=20)
        try:
            connection.putrequest("GET", target, skip_host=bool(headers and "Host" in headers))
            for key, value in (headers or {}).items():
                connection.putheader(key, value)
            connection.endheaders()
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()


@contextlib.contextmanager
def serve(sources: app.Sources, store: ferry.Store, **options) -> Iterator[Served]:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app.create(sources, store, **options), host="127.0.0.1", port=port,
                                           log_level="warning", timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the UI did not start")
        time.sleep(0.02)
    try:
        yield Served(f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(10)
