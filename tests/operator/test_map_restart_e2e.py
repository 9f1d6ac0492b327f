"""A map of 2,000 items on the virtual node (``tests/cluster/virtualnode.py``: pods "run" at once,
with the termination messages a pod's runtime would leave), its operator killed halfway and
restarted: every item's pod is created exactly once, and the map succeeds."""

from __future__ import annotations

import collections
import threading

import pytest
from kubernetes import client, watch

from ferry.api import resource, scheduler
from tests.cluster import virtualnode
from tests.cluster.fixtures import Cluster, eventually
from tests.operator.fixtures import Operator, namespace_with_storage

pytestmark = [pytest.mark.cluster]
ITEMS = 2000


class Creations:
    """How often each pod name was created in the namespace, from a watch."""

    def __init__(self, core: client.CoreV1Api, namespace: str):
        self.count: collections.Counter[str] = collections.Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(core, namespace), daemon=True)
        self._thread.start()

    def _watch(self, core, namespace) -> None:
        seen: set[str] = set()  # uids: a watch that starts again lists every pod again
        while not self._stop.is_set():
            for event in watch.Watch(return_type="object").stream(core.list_namespaced_pod, namespace,
                                                                   timeout_seconds=5):
                uid = event["raw_object"]["metadata"]["uid"]
                if event["type"] in ("ADDED", "MODIFIED") and uid not in seen:
                    seen.add(uid)
                    self.count[event["raw_object"]["metadata"]["name"]] += 1

    def stop(self) -> None:
        self._stop.set()


def test_an_operator_killed_during_a_map_of_2000_items_runs_each_item_exactly_once(cluster: Cluster, s3, crd,
                                                                                     tmp_path):
    if not cluster.local or cluster.emulated:
        pytest.skip("needs the suite's own cluster with kube-scheduler")
    namespace = namespace_with_storage(cluster, s3, "ferry-load")
    api = cluster.api_client()
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    eventually(lambda: core.read_namespaced_service_account("default", namespace), 30, what="the default account")
    operator = Operator(cluster, s3, tmp_path, name="ferry-operator-maps", args=("--namespace=ferry-load-*",))
    creations = Creations(core, namespace)
    try:
        with virtualnode.only_virtual(api, virtualnode.map_messages(ITEMS)):
            operator.start()
            custom.create_namespaced_custom_object(resource.GROUP, resource.VERSION, namespace, resource.PLURAL,
                                                   virtualnode.map_workflow("restarted", 100))

            def progress() -> dict:
                body = custom.get_namespaced_custom_object(resource.GROUP, resource.VERSION, namespace,
                                                           resource.PLURAL, "restarted")
                return body.get("status") or {}

            eventually(lambda: ((progress().get("tasks") or {}).get("work", {}).get("map") or {})
                       .get("succeeded", 0) >= ITEMS // 3, 300, interval=0.5, what="a third of the items")
            operator.kill()
            operator.start()
            status = eventually(lambda: (s := progress()).get("phase") in ("Succeeded", "Failed") and s, 600,
                                interval=1, what="the map to end")
        assert status["phase"] == "Succeeded", status.get("message")
        work = status["tasks"]["work"]["map"]
        assert (work["items"], work["succeeded"], work["failed"]) == (ITEMS, ITEMS, 0)
        items = {scheduler.unit_name("restarted", "work", "item", 1, unit) for unit in range(ITEMS)}
        eventually(lambda: items <= set(creations.count), 30, what="every item's pod seen created")
        created = {name: n for name, n in creations.count.items() if name in items or "-work-" in name}
        assert set(created) == items | {"restarted-work-split-1", "restarted-work-gather-1"}, \
            sorted(set(created) ^ items)[:5]
        assert {name: n for name, n in created.items() if n != 1} == {}, "no pod created twice"
    finally:
        creations.stop()
        operator.stop()
        core.delete_namespace(namespace)
