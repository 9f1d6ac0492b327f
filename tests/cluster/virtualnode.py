"""A virtual node for load tests: thousands of pods "run" without a container, as KWOK does.

It registers a Node with room for 10,000 pods, keeps its Lease renewed, and finishes every pod
the scheduler binds to it at once: the pod's status says its containers ran and exited 0. So the
operator, the API server and the scheduler do all their real work, at a scale the machine's real
node could not run. The real node is cordoned meanwhile, so that every pod lands here; it proves
separately, in the other end-to-end tests, that the same pods work for real.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime
import json
import logging
import threading
import time
from collections.abc import Iterator

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

NAME = "ferry-virtual-node"
MERGE_PATCH = "application/merge-patch+json"
log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class VirtualNode:
    def __init__(self, api: client.ApiClient, messages=None):
        """``messages``: pod (as a dict) → the termination message each of its containers leaves
        (what a real pod's runtime containers report), or None for none."""
        self.messages = messages
        self.core = client.CoreV1Api(api)
        self.leases = client.CoordinationV1Api(api)
        self.finished: set[str] = set()
        """Uids of the pods it finished."""
        self._queued: set[tuple[str, str]] = set()
        """(what, pod uid) submitted and not yet done."""
        self._stop = threading.Event()
        self._pool = concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="virtual-node")
        self._threads = [threading.Thread(target=self._heartbeats, daemon=True),
                         threading.Thread(target=self._watch, daemon=True)]

    def start(self) -> None:
        with contextlib.suppress(ApiException):
            self.core.delete_node(NAME)
        self.core.create_node(client.V1Node(metadata=client.V1ObjectMeta(
            name=NAME, labels={"kubernetes.io/hostname": NAME, "kubernetes.io/os": "linux"})))
        self._heartbeat()
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)  # pods still queued are nobody's business now
        with contextlib.suppress(ApiException):
            self.core.delete_node(NAME)

    def _heartbeat(self) -> None:
        stamp = _now()
        room = {"cpu": "1000", "memory": "4Ti", "pods": "10000", "ephemeral-storage": "100Ti"}
        self.core.patch_node_status(NAME, {"status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "virtual",
                            "lastHeartbeatTime": stamp, "lastTransitionTime": stamp}],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.2"}],
            "capacity": room, "allocatable": room,
            "nodeInfo": {"kubeletVersion": "virtual", "kubeProxyVersion": "", "operatingSystem": "linux",
                         "architecture": "amd64", "containerRuntimeVersion": "virtual://1", "osImage": "",
                         "kernelVersion": "", "machineID": "", "systemUUID": "", "bootID": ""}}},
            _content_type=MERGE_PATCH)
        renewed = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=1)
        try:
            lease = self.leases.read_namespaced_lease(NAME, "kube-node-lease")
        except ApiException as error:
            if error.status != 404:
                raise
            self.leases.create_namespaced_lease("kube-node-lease", client.V1Lease(
                metadata=client.V1ObjectMeta(name=NAME),
                spec=client.V1LeaseSpec(holder_identity=NAME, lease_duration_seconds=40, renew_time=renewed)))
            return
        lease.spec.renew_time = renewed
        self.leases.replace_namespaced_lease(NAME, "kube-node-lease", lease)

    def _heartbeats(self) -> None:
        while not self._stop.wait(10):
            try:
                self._heartbeat()
            except Exception:  # noqa: BLE001 - the next beat tries again
                log.exception("virtual node heartbeat")

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                # Plain dicts: building the client's models of every pod would load the test process.
                for event in watch.Watch(return_type="object").stream(
                        self.core.list_pod_for_all_namespaces, timeout_seconds=30, field_selector=f"spec.nodeName={NAME}"):
                    pod = event["raw_object"]
                    if event["type"] == "DELETED" or self._stop.is_set():
                        continue
                    if pod["metadata"].get("deletionTimestamp"):
                        self._submit(self._remove, pod)
                    elif (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                        self._submit(self._finish, pod)
            except Exception:  # noqa: BLE001 - watches end; start another
                if not self._stop.is_set():
                    log.exception("virtual node watch")
                    time.sleep(1)

    def _submit(self, work, pod: dict) -> None:
        """Queue ``work`` for ``pod`` unless it is queued already: each watch begins by listing every
        pod again, and under load a backlog queued twice every 30 s snowballs."""
        key = (work.__name__, pod["metadata"]["uid"])
        if key not in self._queued:
            self._queued.add(key)
            self._pool.submit(self._run, work, pod, key)

    def _run(self, work, pod: dict, key: tuple[str, str]) -> None:
        try:
            work(pod)
        finally:
            self._queued.discard(key)

    def _finish(self, pod: dict) -> None:
        """Every container ran and exited 0, now."""
        stamp = _now()
        ended = {"exitCode": 0, "reason": "Completed", "startedAt": stamp, "finishedAt": stamp}
        message = self.messages(pod) if self.messages else None

        def statuses(containers: list[dict]) -> list[dict]:
            return [{"name": c["name"], "image": c["image"], "imageID": "", "ready": False, "restartCount": 0,
                     "state": {"terminated": {**ended, **({"message": message} if message else {})}}}
                    for c in containers]

        spec = pod["spec"]
        try:
            self.core.patch_namespaced_pod_status(pod["metadata"]["name"], pod["metadata"]["namespace"], {"status": {
                "phase": "Succeeded", "startTime": stamp, "hostIP": "127.0.0.2", "podIP": "10.255.0.1",
                "conditions": [{"type": t, "status": "False" if t == "Ready" else "True", "lastTransitionTime": stamp}
                               for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")],
                "initContainerStatuses": statuses(spec.get("initContainers") or []),
                "containerStatuses": statuses(spec["containers"])}}, _content_type=MERGE_PATCH)
            self.finished.add(pod["metadata"]["uid"])
        except ApiException as error:
            if error.status != 404:
                log.warning("finishing %s: %s", pod["metadata"]["name"], error.reason)

    def _remove(self, pod: dict) -> None:
        """What a kubelet does last for a deleted pod: remove the object (finalizers permitting)."""
        meta = pod["metadata"]
        options = client.V1DeleteOptions(grace_period_seconds=0, preconditions=client.V1Preconditions(uid=meta["uid"]))
        with contextlib.suppress(ApiException):
            self.core.delete_namespaced_pod(meta["name"], meta["namespace"], body=options)


def map_workflow(name: str, parallelism: int) -> dict:
    """A Workflow for ``map_messages``: a task whose value output is the list, and a map of no-op
    items over it whose pods go once their ends are recorded (``KeepNone``)."""
    return {"apiVersion": "ferry.dev/v1alpha1", "kind": "Workflow", "metadata": {"name": name}, "spec": {
        "podRetention": "KeepNone",
        "tasks": [
            {"name": "produce", "image": "busybox:1.36", "command": ["true"],
             "outputs": [{"name": "items", "kind": "value"}]},
            {"name": "work", "image": "busybox:1.36", "command": ["true"],
             "map": {"over": {"fromTask": {"task": "produce", "output": "items"}}, "parallelism": parallelism},
             "inputs": [{"name": "item", "fromItem": True}], "outputs": [{"name": "out", "kind": "value"}]}],
        "outputs": [{"name": "out", "fromTask": {"task": "work", "output": "out"}}]}}


def map_messages(items: int):
    """``messages`` for workflows of maps, as their pods' runtime would report: a plain task's value
    outputs stored, a split's item count (``items``) and index, a gather's stored result, an
    item's success. Nothing is in the store: the operator never reads it."""
    stored = {"uri": "s3://virtual/stored.json", "sha256": "0" * 64, "size": 10}

    def message(pod: dict) -> str:
        labels = pod["metadata"].get("labels") or {}
        role = labels.get("ferry.dev/role")
        if role is None:
            return json.dumps({"outputs": {"items": {"kind": "value", **stored}}})
        if role == "split":
            return json.dumps({"outputs": {"items": {"kind": "value", "value": items}}, "result": stored})
        return json.dumps({"result": stored}) if role == "gather" else "{}"

    return message


@contextlib.contextmanager
def only_virtual(api: client.ApiClient, messages=None) -> Iterator[VirtualNode]:
    """A virtual node, with every other node cordoned until the block ends (``messages``: as
    ``VirtualNode`` takes them)."""
    core = client.CoreV1Api(api)
    others = [n.metadata.name for n in core.list_node().items if not n.spec.unschedulable and n.metadata.name != NAME]
    node = VirtualNode(api, messages)
    node.start()
    for name in others:
        core.patch_node(name, {"spec": {"unschedulable": True}})
    try:
        yield node
    finally:
        for name in others:
            core.patch_node(name, {"spec": {"unschedulable": False}})
        node.stop()
