"""The few Kubernetes API calls the operator makes, in one place (blocking; run them in threads)."""

from __future__ import annotations

import json

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from ferry import resource
from ferry_operator import pods

_api: client.ApiClient | None = None


def login() -> None:
    """In-cluster credentials in a pod, the kubeconfig elsewhere (``KUBECONFIG``)."""
    global _api
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    _api = client.ApiClient()


def _core() -> client.CoreV1Api:
    return client.CoreV1Api(_api)


def _custom() -> client.CustomObjectsApi:
    return client.CustomObjectsApi(_api)


def get_workflow(namespace: str, name: str) -> dict | None:
    try:
        return _custom().get_namespaced_custom_object(resource.GROUP, resource.VERSION, namespace,
                                                      resource.PLURAL, name)
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def replace_status(workflow: dict) -> bool:
    """Write the whole status, guarded by resourceVersion; False when someone else wrote first."""
    meta = workflow["metadata"]
    try:
        _custom().replace_namespaced_custom_object_status(resource.GROUP, resource.VERSION, meta["namespace"],
                                                          resource.PLURAL, meta["name"], workflow)
    except ApiException as error:
        if error.status == 409:
            return False
        raise
    return True


def list_pods(namespace: str, workflow: str, uid: str) -> dict[str, dict]:
    """The workflow's pods by name (only those it owns: a same-named older workflow's are ignored)."""
    listed = _core().list_namespaced_pod(namespace, label_selector=f"{pods.LABEL_WORKFLOW}={workflow}",
                                         _preload_content=False)
    items = json.loads(listed.data)["items"]
    return {p["metadata"]["name"]: p for p in items
            if any(o.get("uid") == uid for o in p["metadata"].get("ownerReferences") or [])}


def create_pod(body: dict) -> None:
    """Create a pod; one that already exists (same attempt, created before a restart) is kept."""
    try:
        _core().create_namespaced_pod(body["metadata"]["namespace"], body)
    except ApiException as error:
        if error.status != 409:
            raise


def delete_pod(namespace: str, name: str, grace_seconds: int = 10) -> None:
    try:
        _core().delete_namespaced_pod(name, namespace, grace_period_seconds=grace_seconds)
    except ApiException as error:
        if error.status != 404:
            raise
