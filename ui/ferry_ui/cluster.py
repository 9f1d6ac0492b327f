"""Workflows, pods and logs of a cluster, read with the user's own credentials (a kubeconfig
context) or, inside the cluster, the UI's ServiceAccount.

One LIST and WATCH of Workflows keeps a line per workflow (``summaries.Summary``) and its URIs
(``lineage.Index``); the whole object is read only when a page shows it. So the server's memory
follows the number of workflows, not the size of their statuses, and the list page costs the API
server nothing.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator

from kubernetes import client, config, watch

from ferry.api import resource
from ferry_ui import lineage, summaries

log = logging.getLogger(__name__)

LIST_PAGE = 500
CONTAINERS = ("main", "ferry-fetch", "ferry-publish", "ferry-credentials")
"""A task pod's containers, the user's first (``ferry_operator.results`` names them)."""


class ClusterSource:
    """A source of workflows (see ``ferry_ui.app``) backed by a cluster."""

    def __init__(self, context: str | None = None, namespaces: list[str] | None = None,
                 api: client.ApiClient | None = None):
        if api is None:
            try:
                config.load_kube_config(context=context)
            except config.ConfigException:
                config.load_incluster_config()
            api = client.ApiClient()
        self.context = context
        self.name = context or _current_context() or "in-cluster"
        self.custom, self.core = client.CustomObjectsApi(api), client.CoreV1Api(api)
        self.scope = namespaces
        """Only these namespaces; all the user may list when None."""
        self.lines: dict[tuple[str, str], summaries.Summary] = {}
        self.index = lineage.Index()
        self.versions: dict[tuple[str, str], int] = {}
        self.version = 0
        """Grows with every change seen: the live pages compare it to what they showed."""
        self.error: str | None = None
        self.synced = threading.Event()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watchers: list[threading.Thread] = []

    def start(self) -> ClusterSource:
        for namespace in self.scope or [None]:
            watcher = threading.Thread(target=self._keep_watching, args=(namespace,),
                                       name=f"ferry-ui-watch-{namespace}", daemon=True)
            watcher.start()
            self._watchers.append(watcher)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop watching: each watch ends at its next event, or its retry's wait (a daemon thread
        still in a socket call when Python exits can abort the process)."""
        self._stopping.set()
        for watcher in self._watchers:
            watcher.join(timeout)

    # Reading ------------------------------------------------------------------------------------

    def page(self, query: summaries.Query) -> tuple[list[summaries.Summary], int]:
        with self._lock:
            lines = list(self.lines.values())
        return summaries.select(lines, query)

    def namespaces(self) -> list[str]:
        with self._lock:
            return sorted({namespace for namespace, _ in self.lines})

    def workflow(self, namespace: str, name: str) -> dict | None:
        try:
            return self.custom.get_namespaced_custom_object(resource.GROUP, resource.VERSION, namespace,
                                                            resource.PLURAL, name)
        except client.ApiException as error:
            if error.status == 404:
                return None
            raise

    def attempts(self, namespace: str, name: str, labels: dict[str, str] | None = None) -> list[dict]:
        """Every attempt's pod still on the cluster (those with ``labels`` too): task, attempt, times,
        how each container ended."""
        selector = {resource.LABEL_WORKFLOW: resource.label_value(name), **(labels or {})}
        pods = self.core.list_namespaced_pod(
            namespace, label_selector=",".join(f"{key}={value}" for key, value in selector.items()),
            _preload_content=False)
        found = []
        for pod in json.loads(pods.data)["items"]:
            owners = pod["metadata"].get("ownerReferences") or []
            if owners and not any(o.get("kind") == resource.KIND and o.get("name") == name for o in owners):
                continue  # another workflow whose long name shares the label
            found.append(_attempt(pod))
        return sorted(found, key=lambda a: (a["task"], a["attempt"]))

    def log(self, namespace: str, name: str, task: str, attempt: int, container: str, follow: bool,
            role: str | None = None, unit: int | None = None) -> Iterator[bytes]:
        """The container's log, streamed as the kubelet gives it (to its end while it runs, with
        ``follow``): of the task's pod, or of a map's (``role``, and ``unit`` for an item's)."""
        labels = {resource.LABEL_TASK: task, resource.LABEL_ATTEMPT: str(attempt),
                  **({resource.LABEL_UNIT: str(unit)} if unit is not None else {})}
        pod = next((a["name"] for a in self.attempts(namespace, name, labels)
                    if a["task"] == task and a["attempt"] == attempt and a["role"] == role and a["unit"] == unit),
                   None)
        if pod is None:
            which = f"task {task}" + (f" {role}" if role else "") + (f" unit {unit}" if unit is not None else "")
            raise LookupError(f"no pod of {which} attempt {attempt} is left on the cluster")
        response = self.core.read_namespaced_pod_log(pod, namespace, container=container, follow=follow,
                                                     _preload_content=False)
        try:
            yield from response.stream(16 * 1024)
        finally:
            response.release_conn()

    def lineage(self, uri: str) -> tuple[lineage.Use | None, list[lineage.Use]]:
        with self._lock:
            return self.index.producers.get(uri), sorted(self.index.readers.get(uri, ()),
                                                         key=lambda u: (u.namespace, u.workflow, u.task))

    def version_of(self, namespace: str, name: str) -> int:
        with self._lock:
            return self.versions.get((namespace, name), 0)

    # Watching -----------------------------------------------------------------------------------

    def _keep_watching(self, namespace: str | None) -> None:
        while not self._stopping.is_set():
            try:
                self._watch(namespace, self._relist(namespace))
            except client.ApiException as error:
                if error.status == 403 and namespace is None:
                    namespace = _current_namespace(self.context)
                    log.info("listing workflows in all namespaces is not allowed; showing namespace %s", namespace)
                    continue
                if error.status != 410:  # 410: the watch's version expired, list again
                    self._failed(f"the API server refused: {error.status} {error.reason}")
            except Exception as error:  # noqa: BLE001 - a lost connection: keep trying, say so on the page
                self._failed(f"{type(error).__name__}: {error}")

    def _failed(self, message: str) -> None:
        self.error = message
        log.warning("watching workflows: %s; trying again in 2 s", message)
        self._stopping.wait(2)

    def _list(self, namespace: str | None, **options):
        if namespace:
            return self.custom.list_namespaced_custom_object(resource.GROUP, resource.VERSION, namespace,
                                                             resource.PLURAL, **options)
        return self.custom.list_cluster_custom_object(resource.GROUP, resource.VERSION, resource.PLURAL, **options)

    def _relist(self, namespace: str | None) -> str:
        """All workflows (of ``namespace``), a page at a time (never every status in memory at
        once); returns the resourceVersion to watch from."""
        lines, items, token = {}, {}, None
        while True:
            page = json.loads(self._list(namespace, limit=LIST_PAGE, _continue=token, _preload_content=False).data)
            for item in page["items"]:
                line = summaries.summarize(item)
                lines[line.namespace, line.name] = line
                items[line.namespace, line.name] = lineage.uses(item)
            token = page["metadata"].get("continue")
            if not token:
                break
        with self._lock:
            known = {key for key in self.lines if namespace is None or key[0] == namespace}
            changed = {key for key in lines.keys() | known if lines.get(key) != self.lines.get(key)}
            for key in known - lines.keys():
                del self.lines[key]
                self.index.remove(key)
            self.lines.update(lines)
            for key, uses in items.items():
                self.index.put_uses(key, *uses)
            self._bump(changed)
        self.error = None
        self.synced.set()
        return page["metadata"]["resourceVersion"]

    def _watch(self, namespace: str | None, version: str) -> None:
        stream = watch.Watch().stream(self._list, namespace, resource_version=version, allow_watch_bookmarks=True,
                                      timeout_seconds=300)
        for event in stream:
            if self._stopping.is_set():
                return
            kind, item = event["type"], event["object"]
            if kind == "BOOKMARK":
                continue
            if kind == "ERROR":
                raise client.ApiException(status=item.get("code", 500), reason=item.get("message"))
            line = summaries.summarize(item)
            key = (line.namespace, line.name)
            with self._lock:
                if kind == "DELETED":
                    self.lines.pop(key, None)
                    self.index.remove(key)
                else:
                    self.lines[key] = line
                    self.index.put(item)
                self._bump({key})

    def _bump(self, keys: set[tuple[str, str]]) -> None:
        if keys:
            self.version += 1
            for key in keys:
                self.versions[key] = self.version


def _attempt(pod: dict) -> dict:
    labels, status = pod["metadata"].get("labels") or {}, pod.get("status") or {}
    states = {c["name"]: c for c in [*(status.get("initContainerStatuses") or []),
                                     *(status.get("containerStatuses") or [])]}
    containers = []
    for name in [c["name"] for c in pod["spec"].get("containers", [])] + \
                [c["name"] for c in pod["spec"].get("initContainers", [])]:
        state = (states.get(name) or {}).get("state") or {}
        ended = state.get("terminated")
        containers.append({"name": name, "state": next(iter(state), "waiting"),
                           "reason": (ended or state.get("waiting") or {}).get("reason"),
                           "exit_code": ended.get("exitCode") if ended else None,
                           "started_at": (ended or state.get("running") or {}).get("startedAt"),
                           "finished_at": ended.get("finishedAt") if ended else None})
    main = next((c for c in containers if c["name"] == "main"), {})
    unit = labels.get(resource.LABEL_UNIT, "")
    return {"task": labels.get(resource.LABEL_TASK, ""), "attempt": int(labels.get(resource.LABEL_ATTEMPT, 0)),
            "role": labels.get(resource.LABEL_ROLE), "unit": int(unit) if unit.isdecimal() else None,
            "name": pod["metadata"]["name"], "phase": status.get("phase", "Pending"),
            "started_at": status.get("startTime"), "finished_at": main.get("finished_at"),
            "reason": main.get("reason"), "exit_code": main.get("exit_code"), "containers": containers}


def _current_context() -> str | None:
    try:
        return config.list_kube_config_contexts()[1]["name"]
    except Exception:  # noqa: BLE001 - no kubeconfig: in the cluster
        return None


def _current_namespace(context: str | None) -> str:
    """The namespace of ``context`` (the current one by default) in the kubeconfig, else the pod's own."""
    try:
        contexts, current = config.list_kube_config_contexts()
        chosen = next((c for c in contexts if c["name"] == context), current) if context else current
        return chosen["context"].get("namespace") or "default"
    except Exception:  # noqa: BLE001
        try:
            with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as handle:
                return handle.read().strip()
        except OSError:
            return "default"
