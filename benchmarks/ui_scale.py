"""The web UI at scale (issue 12, item 4): 10,000 workflows in the list, large DAGs, the server's memory.

Starts the suite's own control plane (etcd, kube-apiserver, kube-controller-manager from
``tests/cluster/controlplane.py``; no node and no operator: nothing runs a pod), installs the CRD
and writes ``--workflows`` Workflow objects over five namespaces, with statuses written through the
status subresource (phases Succeeded, Failed and Running, progress, times, task outputs with URIs),
plus one workflow of 1,000 tasks (the CRD's cap). Then ``ferry ui --cluster-only`` runs as a
process on a free port, and a real headless Chromium (Playwright, Debian's ``chromium``) measures:

- the **watch**: from starting ``ferry ui`` until its list has every workflow (the pager's total);
- the **list page**: navigation to rows visible; a name filter and a phase filter, from the input
  event to the rows replaced (this includes the page's deliberate 200 ms typing debounce, shown
  apart); the next page; and the server's own latency of ``/workflows?fragment=1`` (median of 20);
- the UI server's **peak RSS** (``VmHWM``) with all of them in its list;
- **DAGs**: the 1,000-task workflow (a 900-wide map in four fan-outs of 225, since a task may
  depend on at most 256, plus chains) from navigation to the graph drawn, expanding a collapsed
  fan-out, then all of them, and searching a task (typing its name reveals it: its group expands);
  and the same for two graphs of ``--big-tasks`` tasks: the shape big workflows have (maps of
  4,000 and 800 behind a prepare chain, reduces, a long archive chain: ``pipeline_workflow``) and
  ``--chains`` chains of distinct tasks, each step also depending on the neighbouring chain every
  tenth step, that no fan-out collapses (``chains_workflow``). The CRD refuses more than 1,000
  tasks, so those are written straight into a local history file (the same table
  ``ferry.execution.history`` keeps) and served by ``ferry ui --local-only``. Pan and zoom are measured as
  frame times while the view moves.

``--dags-only`` skips the control plane and the list, and writes the 1,000-task workflow into the
local history as well: a quick run of the DAG figures alone.

Run from the repository root (it reuses the pinned binaries in ``~/.cache/ferry``):

    .venv/bin/python benchmarks/ui_scale.py --workflows 10000
    .venv/bin/python benchmarks/ui_scale.py --dags-only
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import http.client
import json
import os
import pathlib
import random
import re
import shutil
import sqlite3
import ssl
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ferry.api import resource  # noqa: E402
from ferry.execution import history
from tests.cluster import binaries, controlplane  # noqa: E402
from tests.cluster.fixtures import Cluster  # noqa: E402
from tests.cluster.processes import Server, free_port, interrupt_on_sigterm, peak_rss_mib  # noqa: E402

NAMESPACES = ["analytics", "ml-training", "etl-prod", "reports", "research"]
VERBS = ["ingest", "train", "score", "backfill", "report", "export", "clean", "sync"]
NOUNS = ["orders", "clicks", "images", "invoices", "sensors", "users", "logs"]
BIG = "big-fanout"
NAME_FILTER = "clicks-07"
PHASE_FILTER = "Failed"
COMBINED = {"namespace": "etl-prod", "phase": "Running", "name": "orders"}
DEBOUNCE_MS = 200
"""ferry.js waits this long after the last keystroke before it asks the server."""
EPOCH = 1_780_000_000  # 2026-05-28: the workflows' times, spread over the days before


def stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


# The data ----------------------------------------------------------------------------------------

def small_workflow(i: int, rng: random.Random) -> tuple[str, str, dict, dict]:
    """A workflow of 3-5 tasks passing a directory and a file, and its status."""
    namespace = NAMESPACES[i % len(NAMESPACES)]
    name = f"{VERBS[rng.randrange(len(VERBS))]}-{NOUNS[rng.randrange(len(NOUNS))]}-{i:05d}"
    tasks = [
        {"name": "fetch", "image": "busybox:1.36", "command": ["sh", "-c", "true"],
         "outputs": [{"name": "raw", "kind": "directory"}]},
        {"name": "clean", "image": "busybox:1.36", "command": ["sh", "-c", "true"],
         "inputs": [{"name": "raw", "fromTask": {"task": "fetch", "output": "raw"}}],
         "outputs": [{"name": "table", "kind": "file"}]},
        {"name": "report", "image": "busybox:1.36", "command": ["sh", "-c", "true"],
         "inputs": [{"name": "table", "fromTask": {"task": "clean", "output": "table"}}],
         "outputs": [{"name": "summary", "kind": "file"}]},
    ]
    if i % 3:
        tasks.append({"name": "train", "image": "busybox:1.36", "command": ["sh", "-c", "true"],
                      "inputs": [{"name": "table", "fromTask": {"task": "clean", "output": "table"}}]})
    if i % 3 == 2:
        tasks.append({"name": "publish", "image": "busybox:1.36", "command": ["sh", "-c", "true"],
                      "dependsOn": ["report", "train"]})
    roll = rng.random()
    phase = "Succeeded" if roll < 0.7 else "Failed" if roll < 0.85 else "Running"
    started = EPOCH - rng.randrange(30 * 86400)
    done = len(tasks) if phase == "Succeeded" else rng.randrange(1, len(tasks))
    states, clock = {}, started
    for n, task in enumerate(tasks):
        if n < done:
            took = rng.randrange(2, 600)
            state = {"phase": "Succeeded", "attempts": 1, "podName": f"{name}-{task['name']}-1",
                     "startedAt": stamp(clock), "finishedAt": stamp(clock + took), "outputs": {}}
            for output in task.get("outputs", []):
                uri = f"s3://ferry-bench/{namespace}/{name}/{task['name']}/{output['name']}"
                ref = {"kind": output["kind"], "uri": uri, "size": rng.randrange(1, 1 << 30)}
                digest = hashlib.sha256(uri.encode()).hexdigest()
                if output["kind"] == "directory":
                    ref.update(fileCount=rng.randrange(1, 5000), manifestDigest=f"sha256:{digest}")
                else:
                    ref["sha256"] = digest
                state["outputs"][output["name"]] = ref
            clock += took
        elif n == done and phase != "Succeeded":
            state = {"phase": phase, "attempts": 1 + (phase == "Failed") * 2, "podName": f"{name}-{task['name']}-1",
                     "startedAt": stamp(clock)}
            if phase == "Failed":
                state.update(finishedAt=stamp(clock + 30), reason="TaskFailed",
                             message="the main container exited with code 1: ValueError: no rows to count")
        else:
            state = {"phase": "Skipped" if phase == "Failed" else "Pending"}
        states[task["name"]] = state
    finished = sum(s["phase"] in ("Succeeded", "Failed", "Skipped") for s in states.values())
    status = {"phase": phase, "progress": f"{finished}/{len(tasks)}", "startedAt": stamp(started),
              "observedGeneration": 1, "tasks": states}
    if phase != "Running":
        status["finishedAt"] = stamp(clock + 30)
    if phase == "Failed":
        status["message"] = next(f"task {t}: {s['message']}" for t, s in states.items() if s.get("message"))
    return namespace, name, {"apiVersion": resource.API_VERSION, "kind": resource.KIND,
                             "metadata": {"name": name}, "spec": {"tasks": tasks}}, status


def fanout_workflow(rng: random.Random) -> tuple[dict, dict, list[str]]:
    """1,000 tasks: split → map-000..899 → join-0..3 → merge → publish chain, and five side chains.

    A task may depend on at most 256 others, so the 900 maps feed four joins, 225 each: four
    collapsible fan-outs. Returns the Workflow, its status and the task names."""
    tasks = [{"name": "split", "image": "busybox:1.36", "outputs": [{"name": "shards", "kind": "directory"}]}]
    for m in range(900):
        tasks.append({"name": f"map-{m:03d}", "image": "busybox:1.36", "outputs": [{"name": "part", "kind": "file"}],
                      "inputs": [{"name": "shards", "fromTask": {"task": "split", "output": "shards"}}]})
    for j in range(4):
        tasks.append({"name": f"join-{j}", "image": "busybox:1.36", "outputs": [{"name": "table", "kind": "file"}],
                      "dependsOn": [f"map-{m:03d}" for m in range(j * 225, (j + 1) * 225)]})
    tasks.append({"name": "merge", "image": "busybox:1.36", "outputs": [{"name": "table", "kind": "file"}],
                  "inputs": [{"name": f"t{j}", "fromTask": {"task": f"join-{j}", "output": "table"}} for j in range(4)]})
    previous = "merge"
    for s in range(44):
        tasks.append({"name": f"publish-{s:02d}", "image": "busybox:1.36", "dependsOn": [previous]})
        previous = f"publish-{s:02d}"
    for c in "abcde":
        for s in range(10):
            tasks.append({"name": f"prep-{c}-{s}", "image": "busybox:1.36",
                          **({"dependsOn": [f"prep-{c}-{s - 1}"]} if s else {})})
    assert len(tasks) == 1000
    states = {}
    for task in tasks:
        roll = rng.random()
        phase = "Succeeded" if roll < 0.9 else "Running" if roll < 0.97 else "Failed"
        state = {"phase": phase, "attempts": 1, "startedAt": stamp(EPOCH - 3600)}
        if phase == "Succeeded":
            state["finishedAt"] = stamp(EPOCH - 3000)
            state["outputs"] = {o["name"]: {"kind": o["kind"], "uri": f"s3://ferry-bench/analytics/{BIG}/"
                                            f"{task['name']}/{o['name']}", "size": rng.randrange(1, 1 << 24),
                                            **({"fileCount": 64} if o["kind"] == "directory" else {})}
                                for o in task.get("outputs", [])}
        elif phase == "Failed":
            state["message"] = "exit code 1"
        states[task["name"]] = state
    status = {"phase": "Running", "progress": "900/1000", "startedAt": stamp(EPOCH - 3600), "tasks": states}
    return ({"apiVersion": resource.API_VERSION, "kind": resource.KIND, "metadata": {"name": BIG},
             "spec": {"tasks": tasks}}, status, [t["name"] for t in tasks])


def pipeline_workflow(tasks: int, rng: random.Random) -> tuple[dict, dict]:
    """``tasks`` tasks in the shape large workflows have: a 20-step prepare chain, a split, a map
    of 80 % of the tasks (fan-outs of 250, each read by one of the reduces), a merge, a map of
    16 % rendering reports (fan-outs of 200, four publishes) and an archive chain for the rest."""
    maps, renders = tasks * 4 // 5 // 250 * 250, tasks * 4 // 25 // 200 * 200
    spec = [{"name": f"prepare-{s:02d}", "image": "busybox:1.36", **({"dependsOn": [f"prepare-{s - 1:02d}"]} if s else {})}
            for s in range(20)]
    spec.append({"name": "split", "image": "busybox:1.36", "dependsOn": ["prepare-19"],
                 "outputs": [{"name": "shards", "kind": "directory"}]})
    spec += [{"name": f"score-{m:04d}", "image": "busybox:1.36", "outputs": [{"name": "part", "kind": "file"}],
              "inputs": [{"name": "shards", "fromTask": {"task": "split", "output": "shards"}}]} for m in range(maps)]
    spec += [{"name": f"reduce-{r:02d}", "image": "busybox:1.36", "outputs": [{"name": "table", "kind": "file"}],
              "dependsOn": [f"score-{m:04d}" for m in range(r * 250, (r + 1) * 250)]} for r in range(maps // 250)]
    spec.append({"name": "merge", "image": "busybox:1.36", "outputs": [{"name": "table", "kind": "file"}],
                 "inputs": [{"name": f"t{r}", "fromTask": {"task": f"reduce-{r:02d}", "output": "table"}}
                            for r in range(maps // 250)]})
    spec += [{"name": f"render-{m:03d}", "image": "busybox:1.36",
              "inputs": [{"name": "table", "fromTask": {"task": "merge", "output": "table"}}]} for m in range(renders)]
    spec += [{"name": f"publish-{p}", "image": "busybox:1.36",
              "dependsOn": [f"render-{m:03d}" for m in range(p * 200, (p + 1) * 200)]} for p in range(renders // 200)]
    previous = "publish-0"
    for a in range(tasks - len(spec)):
        spec.append({"name": f"archive-{a:03d}", "image": "busybox:1.36", "dependsOn": [previous]})
        previous = spec[-1]["name"]
    states = {}
    for task in spec:
        phase = "Succeeded" if rng.random() < 0.9 else "Running"
        states[task["name"]] = {"phase": phase, "attempts": 1, "outputs": {} if phase != "Succeeded" else {
            o["name"]: {"kind": o["kind"], "uri": f"file:///tmp/ferry/{task['name']}/{o['name']}",
                        "size": rng.randrange(1, 1 << 20)} for o in task.get("outputs", [])}}
    status = {"phase": "Running", "progress": f"{len(spec) // 2}/{len(spec)}", "startedAt": stamp(EPOCH - 600),
              "tasks": states}
    return {"tasks": spec}, status


def chains_workflow(chains: int, length: int, rng: random.Random) -> tuple[dict, dict]:
    """``chains`` × ``length`` tasks, each passing a file to the next; every tenth step also waits
    for the same step of the chain before it. Nothing here collapses."""
    tasks = []
    for c in range(chains):
        for s in range(length):
            task = {"name": f"c{c:02d}-s{s:03d}", "image": "busybox:1.36",
                    "outputs": [{"name": "part", "kind": "file"}]}
            if s:
                task["inputs"] = [{"name": "part", "fromTask": {"task": f"c{c:02d}-s{s - 1:03d}", "output": "part"}}]
            if c and s % 10 == 5:
                task["dependsOn"] = [f"c{c - 1:02d}-s{s:03d}"]
            tasks.append(task)
    states = {}
    for task in tasks:
        phase = "Succeeded" if rng.random() < 0.95 else "Running"
        states[task["name"]] = {"phase": phase, "attempts": 1, "outputs": {} if phase != "Succeeded" else {
            "part": {"kind": "file", "uri": f"file:///tmp/ferry/{task['name']}/part", "size": rng.randrange(1, 1 << 20)}}}
    status = {"phase": "Running", "progress": f"{len(tasks) - 1}/{len(tasks)}", "startedAt": stamp(EPOCH - 600),
              "tasks": states}
    return {"tasks": tasks}, status


# The cluster -------------------------------------------------------------------------------------

class Api:
    """Raw JSON requests to kube-apiserver, one kept-alive connection per thread (the Python
    client's models would make this script the bottleneck)."""

    def __init__(self, plane: controlplane.ControlPlane):
        self.host, self.port = plane.address, plane.api_port
        self.context = ssl.create_default_context(cafile=str(plane.ca_file))
        self.headers = {"Authorization": f"Bearer {plane.admin_token}", "Accept": "application/json"}
        self._local = threading.local()

    def call(self, method: str, path: str, body: dict | None = None,
             content_type: str = "application/json") -> dict:
        for attempt in range(5):
            connection = getattr(self._local, "connection", None)
            if connection is None:
                connection = self._local.connection = http.client.HTTPSConnection(
                    self.host, self.port, context=self.context, timeout=120)
            try:
                connection.request(method, path, body=json.dumps(body) if body is not None else None,
                                   headers={**self.headers, "Content-Type": content_type})
                response = connection.getresponse()
                data = response.read()
            except (http.client.HTTPException, OSError):
                connection.close()
                self._local.connection = None
                time.sleep(0.5 * (attempt + 1))
                continue
            if response.status == 429 or response.status >= 500:
                time.sleep(0.5 * (attempt + 1))
                continue
            if response.status >= 300:
                raise RuntimeError(f"{method} {path}: {response.status} {data[:500]!r}")
            return json.loads(data)
        raise RuntimeError(f"{method} {path}: gave up after 5 attempts")

    def create(self, namespace: str, workflow: dict, status: dict) -> None:
        base = f"/apis/{resource.GROUP}/{resource.VERSION}/namespaces/{namespace}/{resource.PLURAL}"
        self.call("POST", base, workflow)
        self.call("PATCH", f"{base}/{workflow['metadata']['name']}/status", {"status": status},
                  "application/merge-patch+json")


# The UI ------------------------------------------------------------------------------------------

class UI:
    def __init__(self, log_dir: pathlib.Path, args: list[str], env: dict[str, str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        ferry = ROOT / ".venv" / "bin" / "ferry"
        command = [str(ferry)] if ferry.exists() else [sys.executable, "-m", "ferry"]
        self.started = time.monotonic()
        self.server = Server(f"ferry-ui-{args[0].strip('-')}", [*command, "ui", "--port", str(self.port), *args],
                             log_dir, env={**os.environ, **env})
        self.server.wait_until(lambda: urllib.request.urlopen(f"{self.url}/healthz", timeout=2).status == 200,
                               60, "serving")
        self.serving = time.monotonic() - self.started

    def get(self, path: str) -> str:
        try:
            return urllib.request.urlopen(self.url + path, timeout=60).read().decode()
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"GET {path}: {error.code} {error.read()[:2000]!r}") from None

    def total(self, query: str = "") -> int:
        found = re.search(r'data-total="(\d+)"', self.get(f"/workflows?fragment=1&limit=1{query}"))
        return int(found.group(1)) if found else -1

    def latency_ms(self, path: str, repeat: int = 20) -> float:
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            self.get(path)
            times.append(time.perf_counter() - started)
        return statistics.median(times) * 1000

    @property
    def pid(self) -> int:
        return self.server.process.pid

    def stop(self) -> None:
        self.server.stop()


FRAME = "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(performance.now()))))"
"""Resolves after the next frame has been drawn: when what the page just did is on the screen."""

WATCH_ROWS = """() => {
  window.__changed = null;
  new MutationObserver(() => { window.__changed = performance.now(); })
    .observe(document.getElementById('rows'), {childList: true});
  const mark = () => { window.__typed = performance.now(); window.__changed = null; };
  document.getElementById('filters').addEventListener('input', mark, true);
  document.getElementById('rows').addEventListener('click', mark, true);
}"""


def rows_step(page, act, expected_total: int) -> tuple[float, float]:
    """(ms from the input event to the rows replaced, ms to the next frame drawn) for one action."""
    act()
    page.wait_for_function("total => window.__changed !== null && "
                           "document.querySelector('#rows .pager').dataset.total === String(total)",
                           arg=expected_total)
    painted = page.evaluate(FRAME)
    typed, changed = page.evaluate("[window.__typed, window.__changed]")
    return changed - typed, painted - typed


def measure_list(page, ui: UI, expected: dict[str, int], rounds: int) -> dict:
    results: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        results.setdefault(key, []).append(value)

    for _ in range(rounds):
        started = time.perf_counter()
        page.goto(f"{ui.url}/workflows", wait_until="commit")
        page.wait_for_selector("#rows tbody tr[data-name]", state="visible")
        painted = page.evaluate(FRAME)
        add("load /workflows: navigation → rows visible (ms)", (time.perf_counter() - started) * 1000)
        add("load /workflows: navigation start → first frame with rows, in the page (ms)", painted)
        assert page.locator("#rows tbody tr[data-name]").count() == 50
        page.evaluate(WATCH_ROWS)
        name = page.locator("input[name=name]")
        phase = page.locator("select[name=phase]")
        namespace = page.locator("select[name=namespace]")
        _, drawn = rows_step(page, lambda: name.fill(NAME_FILTER), expected["name"])
        add(f"name filter '{NAME_FILTER}': input → rows drawn (ms)", drawn)
        rows_step(page, lambda: name.fill(""), expected["all"])
        _, drawn = rows_step(page, lambda: phase.select_option(PHASE_FILTER), expected["phase"])
        add(f"phase filter {PHASE_FILTER}: input → rows drawn (ms)", drawn)
        if expected["phase"] > 50:
            _, drawn = rows_step(page, lambda: page.locator("#rows a[data-offset]", has_text="older").click(),
                                 expected["phase"])
            add("next page (phase filter on): click → rows drawn (ms)", drawn)

        def combined():
            namespace.select_option(COMBINED["namespace"])
            phase.select_option(COMBINED["phase"])
            name.fill(COMBINED["name"])
        _, drawn = rows_step(page, combined, expected["combined"])
        add("namespace + phase + name filters: last input → rows drawn (ms)", drawn)
    return {key: statistics.median(values) for key, values in results.items()}


def dag_open(page, url: str) -> dict:
    started = time.perf_counter()
    page.goto(url, wait_until="commit")
    page.wait_for_selector("#dag[data-ready='1']", state="attached")
    painted = page.evaluate(FRAME)
    wall = (time.perf_counter() - started) * 1000
    graph = page.evaluate("performance.getEntriesByType('resource').filter(e => e.name.includes('/graph'))"
                          ".map(e => [e.startTime, e.responseEnd])[0]")
    return {"wall": wall, "in_page": painted, "graph_fetch": graph[1] - graph[0], "after_fetch": painted - graph[1],
            "nodes": page.evaluate("ferryGraph.nodes().length"), "edges": page.evaluate("ferryGraph.edges().length")}


def dag_expand(page, group: str) -> tuple[float, int]:
    before = page.evaluate("ferryGraph.nodes().length")
    page.evaluate("id => { window.__t0 = performance.now(); ferryGraph.getElementById(id).emit('tap'); }", group)
    page.wait_for_function("n => ferryGraph.nodes().length > n", arg=before)
    painted = page.evaluate(FRAME)
    return painted - page.evaluate("window.__t0"), page.evaluate("ferryGraph.nodes().length")


def dag_find(page, text: str) -> float:
    """Typing a task's whole name → that task drawn, marked (its group expanded if it was in one)."""
    page.evaluate("""() => {
      document.getElementById('find').addEventListener('input', () => { window.__t0 = performance.now(); }, true);
    }""")
    page.locator("#find").fill(text)
    page.wait_for_function("name => ferryGraph.getElementById(name).hasClass('match')", arg=text)
    painted = page.evaluate(FRAME)
    took = painted - page.evaluate("window.__t0")
    page.wait_for_timeout(400)  # the page's 200 ms animation to the match
    page.locator("#find").fill("")
    return took


def dag_frames(page) -> dict:
    """Frame times (ms) while the view pans, then zooms, 40 frames each (cy.panBy / cy.zoom per
    frame, as a drag or the wheel does)."""
    return page.evaluate("""async () => {
      const cy = window.ferryGraph;
      const frame = () => new Promise(r => requestAnimationFrame(r));
      cy.fit(); await frame(); await frame();
      const run = async (step) => {
        const times = []; let last = await frame().then(() => performance.now());
        for (let i = 0; i < 40; i++) { step(i); await frame(); const now = performance.now(); times.push(now - last); last = now; }
        times.sort((a, b) => a - b);
        return [times[20], times[37]];
      };
      const center = {x: cy.width() / 2, y: cy.height() / 2};
      const pan = await run((i) => cy.panBy({x: i % 20 < 10 ? 12 : -12, y: 4}));
      const zoom = await run((i) => cy.zoom({level: cy.zoom() * (i < 20 ? 1.06 : 1 / 1.06), renderedPosition: center}));
      return {pan, zoom};
    }""")


def guarded(measure, page, *args) -> dict:
    """A measurement, or what stopped it (a page that never draws its graph is a result too)."""
    try:
        return measure(page, *args)
    except Exception as error:  # noqa: BLE001
        return {"failed": f"{type(error).__name__}: {str(error).splitlines()[0]}"}


def measure_dag(page, url: str, search: str, expand_all: bool) -> dict:
    out: dict = {}
    opens = [dag_open(page, url) for _ in range(2)]  # the second with the scripts cached
    out["open"] = opens[0]
    out["open_again"] = opens[1]
    out["frames"] = dag_frames(page)
    out["find"] = dag_find(page, search)
    dag_open(page, url)  # folded again
    groups = page.evaluate("ferryGraph.nodes('[kind = \"group\"]').map(n => n.id())")
    out["groups"] = len(groups)
    if groups:
        out["expand_one"] = dag_expand(page, groups[0])
        if expand_all:
            for group in groups[1:]:
                out["expand_all"] = dag_expand(page, group)
            out["frames_expanded"] = dag_frames(page)
            out["find_expanded"] = dag_find(page, search)
    return out


# Main --------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workflows", type=int, default=10000, help="workflows in the list (besides the 1,000-task one)")
    parser.add_argument("--big-tasks", type=int, default=5000, help="tasks of each large DAG (a multiple of --chains)")
    parser.add_argument("--chains", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the browser's list measurements (medians)")
    parser.add_argument("--parallel", type=int, default=16, help="requests in flight while creating workflows")
    parser.add_argument("--dags-only", action="store_true", help="no control plane and no list: the DAGs alone")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()
    interrupt_on_sigterm()  # stopped by timeout or kill, it still stops what it started
    work = pathlib.Path(tempfile.mkdtemp(prefix="ferry-ui-scale-"))
    rng = random.Random(12)
    results: dict = {"machine": f"{os.cpu_count()} CPUs", "server_ms": {}}
    parts: list = []
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                                  args=["--no-sandbox"])
            context = chromium.new_context(viewport={"width": 1400, "height": 850})
            page = context.new_page()
            page.set_default_timeout(300_000)  # dagre may take long over thousands of nodes, or never finish
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            big, big_status, _ = fanout_workflow(rng)
            if not args.dags_only:
                measure_cluster(args, work, rng, results, page, parts, big, big_status)

            # The large DAGs (and with --dags-only the 1,000-task one), from a local history file.
            path = work / "history.sqlite3"
            history.History(path).close()
            runs = {"pipeline": pipeline_workflow(args.big_tasks, rng),
                    "chains": chains_workflow(args.chains, args.big_tasks // args.chains, rng)}
            if args.dags_only:
                runs = {BIG: (big["spec"], big_status), **runs}
            with sqlite3.connect(path) as db:
                for workflow, (spec, status) in runs.items():
                    db.execute("INSERT INTO runs (id, workflow, phase, progress, message, created, started_at, spec, "
                               "status, store_prefix) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               (f"{workflow}-0123abcd", workflow, status["phase"], status["progress"], None,
                                stamp(EPOCH - 600), status.get("startedAt"), json.dumps(spec), json.dumps(status),
                                "file:///tmp/ferry"))
            local_ui = UI(work, ["--local-only"], {"FERRY_HISTORY": str(path)})
            parts.append(local_ui)
            searches = {BIG: "map-450", "pipeline": f"score-{args.big_tasks // 2:04d}",
                        "chains": f"c{args.chains // 2:02d}-s{args.big_tasks // args.chains // 2:03d}"}
            for workflow, (spec, _) in runs.items():
                key = "dag_1000" if workflow == BIG else f"dag_{workflow}"
                url = f"/workflows/local/{workflow}-0123abcd"
                results["server_ms"][f"{url}/graph ({len(spec['tasks']):,} tasks)"] = local_ui.latency_ms(f"{url}/graph", 5)
                results[key] = guarded(measure_dag, page, local_ui.url + url, searches[workflow], workflow == BIG)
                print(f"{workflow} DAG measured: {json.dumps(results[key])}", flush=True)
            results["page_errors"] = errors
            if args.json:
                pathlib.Path(args.json).write_text(json.dumps(results, indent=1))
            context.close()
            chromium.close()
        report(args, results)
    except BaseException:
        for part in parts:
            if isinstance(part, UI) and part.server.process.poll() is None:
                print(f"--- {part.server.name}'s log:\n{part.server.log_tail(60)}", file=sys.stderr)
        raise
    finally:
        for part in parts:
            part.stop()
        shutil.rmtree(work, ignore_errors=True)


def measure_cluster(args, work: pathlib.Path, rng: random.Random, results: dict, page, parts: list,
                    big: dict, big_status: dict) -> None:
    """The control plane with ``--workflows`` workflows and the 1,000-task one; the list, its
    server's memory and the 1,000-task DAG through ``ferry ui --cluster-only``."""
    bins = binaries.build_kubernetes()
    plane = controlplane.start(work / "plane")
    parts.append(plane)
    cluster = Cluster(plane.kubeconfig, str(bins / "kubectl"), local=True)
    cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/workflows.ferry.dev")
    api = Api(plane)
    for namespace in NAMESPACES:
        api.call("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                "metadata": {"name": namespace}})
    made = [small_workflow(i, rng) for i in range(args.workflows)]
    started = time.monotonic()
    api.create("analytics", big, big_status)
    print(f"created the 1,000-task workflow in {time.monotonic() - started:.1f}s", flush=True)
    with concurrent.futures.ThreadPoolExecutor(args.parallel) as pool:
        list(pool.map(lambda w: api.create(w[0], w[2], w[3]), made))
    results["created_s"] = time.monotonic() - started
    count = args.workflows + 1
    print(f"created {count} workflows with statuses in {results['created_s']:.1f}s", flush=True)
    expected = {
        "all": count,
        "name": sum(NAME_FILTER in w[1] for w in made),
        "phase": sum(w[3]["phase"] == PHASE_FILTER for w in made),
        "combined": sum(w[0] == COMBINED["namespace"] and w[3]["phase"] == COMBINED["phase"]
                        and COMBINED["name"] in w[1] for w in made),
    }
    del made

    ui = UI(work, ["--cluster-only"], {"KUBECONFIG": str(plane.kubeconfig), "FERRY_HISTORY": "off"})
    parts.append(ui)
    results["ui_serving_s"] = ui.serving
    while ui.total() != count:
        if time.monotonic() - ui.started > 600:
            raise SystemExit(f"ferry ui has {ui.total()} of {count} workflows after 10 minutes")
        time.sleep(0.1)
    results["ui_synced_s"] = time.monotonic() - ui.started
    results["rss_synced_mib"] = peak_rss_mib(ui.pid)
    print(f"ferry ui: RSS once synced {results['rss_synced_mib']:.0f} MiB", flush=True)
    print(f"ferry ui serving after {ui.serving:.2f}s, all {count} listed after {results['ui_synced_s']:.2f}s",
          flush=True)
    assert ui.total(f"&name={NAME_FILTER}") == expected["name"]
    assert ui.total(f"&phase={PHASE_FILTER}") == expected["phase"]
    quoted = urllib.parse.urlencode(COMBINED)
    results["server_ms"].update({
        "/workflows (whole page, first 50)": ui.latency_ms("/workflows"),
        "/workflows?fragment=1 (first 50)": ui.latency_ms("/workflows?fragment=1"),
        f"…&name={NAME_FILTER}": ui.latency_ms(f"/workflows?fragment=1&name={NAME_FILTER}"),
        f"…&phase={PHASE_FILTER}": ui.latency_ms(f"/workflows?fragment=1&phase={PHASE_FILTER}"),
        f"…&{quoted}": ui.latency_ms(f"/workflows?fragment=1&{quoted}"),
        f"…&offset={count - 50} (last page)": ui.latency_ms(f"/workflows?fragment=1&offset={count - 50}"),
        f"/workflows/analytics/{BIG}/graph (1,000 tasks)": ui.latency_ms(f"/workflows/analytics/{BIG}/graph", 5),
    })
    results["expected"] = expected
    results["list"] = measure_list(page, ui, expected, args.rounds)
    print(f"list measured: {json.dumps(results['list'], indent=1)}", flush=True)
    results["dag_1000"] = guarded(measure_dag, page, f"{ui.url}/workflows/analytics/{BIG}", "map-450", True)
    print(f"1,000-task DAG measured: {json.dumps(results['dag_1000'])}", flush=True)
    results["rss_peak_mib"] = peak_rss_mib(ui.pid)
    print(f"ferry ui: peak RSS {results['rss_peak_mib']:.0f} MiB; server latencies "
          f"{json.dumps(results['server_ms'], indent=1)}", flush=True)
    ui.stop()
    parts.remove(ui)


def report(args, results: dict) -> None:
    ms = lambda value: f"{value:,.0f}"  # noqa: E731
    count = args.workflows + 1
    rows = []
    if args.dags_only:
        print(f"\nThe DAGs alone, from a local history; {results['machine']}\n")
    else:
        print(f"\n{count:,} workflows ({args.workflows:,} of 3-5 tasks over {len(NAMESPACES)} namespaces, and one of "
              f"1,000 tasks) created with statuses in {results['created_s']:.0f} s; {results['machine']}\n")
        rows += [
            ("`ferry ui` started → serving (s)", f"{results['ui_serving_s']:.2f}", ""),
            (f"`ferry ui` started → all {count:,} in its list (LIST + WATCH) (s)", f"{results['ui_synced_s']:.2f}", ""),
            ("UI server RSS once synced (MiB)", f"{results['rss_synced_mib']:.0f}", "< 300 MB"),
            ("UI server peak RSS, after the list and the 1,000-task DAG (MiB)", f"{results['rss_peak_mib']:.0f}",
             "< 300 MB"),
        ]
        rows += [(f"browser, {name}", ms(value), "< 1,000 ms") for name, value in results["list"].items()]
    print("| figure | value | target |\n| --- | ---: | --- |")
    rows += [(f"server, {name} (ms, median)", f"{value:,.1f}", "") for name, value in results["server_ms"].items()]
    where = "local" if args.dags_only else "cluster"
    for key, title in (("dag_1000", f"1,000-task DAG ({where})"),
                       ("dag_pipeline", f"{args.big_tasks:,}-task DAG, maps and chains (local)"),
                       ("dag_chains", f"{args.big_tasks:,}-task DAG, {args.chains} chains of distinct tasks (local)")):
        dag = results[key]
        if "failed" in dag:
            rows.append((f"{title}: open", f"never drawn: {dag['failed']}", "< 2,000 ms"))
            continue
        opened, again = dag["open"], dag["open_again"]
        rows += [
            (f"{title}: open, navigation → graph drawn ({opened['nodes']:,} nodes, {opened['edges']:,} edges) (ms)",
             ms(opened["in_page"]), "< 2,000 ms"),
            (f"{title}: … of which graph JSON fetched / add + layout + draw (ms)",
             f"{opened['graph_fetch']:,.0f} / {opened['after_fetch']:,.0f}", ""),
            (f"{title}: open again, scripts cached (ms)", ms(again["in_page"]), "< 2,000 ms"),
            (f"{title}: pan frame time p50 / p95 (ms)", "{:,.0f} / {:,.0f}".format(*dag["frames"]["pan"]), ""),
            (f"{title}: zoom frame time p50 / p95 (ms)", "{:,.0f} / {:,.0f}".format(*dag["frames"]["zoom"]), ""),
            (f"{title}: search a task by its name, input → task revealed and drawn (ms)", ms(dag["find"]), ""),
        ]
        if "expand_one" in dag:
            took, nodes = dag["expand_one"]
            rows.append((f"{title}: expand one group of {dag['groups']} → {nodes:,} nodes drawn (ms)", ms(took), ""))
        if "expand_all" in dag:
            took, nodes = dag["expand_all"]
            rows += [
                (f"{title}: expand the last fan-out → all {nodes:,} nodes drawn (ms)", ms(took), ""),
                (f"{title}, all expanded: pan frame p50 / p95 (ms)",
                 "{:,.0f} / {:,.0f}".format(*dag["frames_expanded"]["pan"]), ""),
                (f"{title}, all expanded: zoom frame p50 / p95 (ms)",
                 "{:,.0f} / {:,.0f}".format(*dag["frames_expanded"]["zoom"]), ""),
                (f"{title}, all expanded: search a task (ms)", ms(dag["find_expanded"]), ""),
            ]
    for name, value, target in rows:
        print(f"| {name} | {value} | {target} |")
    if not args.dags_only:
        print(f"\nExpected matches: {results['expected']}; the browser's filter times include ferry.js's "
              f"{DEBOUNCE_MS} ms typing debounce.")
    print(f"Page errors: {results['page_errors'] or 'none'}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
