"""The few Kubernetes API calls the operator makes, in one place (blocking; run them in threads).

They are methods of a ``Client``, made once at the operator's start (``login``) and passed in: no
module holds a connection pool, and tests hand the handlers a fake one."""

from __future__ import annotations

import functools
import json
from typing import Any

from kubernetes import client, config
from kubernetes.client import rest
from kubernetes.client.rest import ApiException

from ferry.api import resource
from ferry_operator import pods

class Refused(Exception):
    """The API server refused a call the operator needs; the message says which and why."""

    def __init__(self, what: str, error: ApiException):
        try:
            detail = json.loads(error.body)["message"]
        except (TypeError, ValueError, KeyError):
            detail = error.reason
        self.quota = error.status == 403 and "exceeded quota" in str(detail)
        """A namespace's ResourceQuota is full: a wait for room, not the operator's permissions."""
        hint = " (the operator's ServiceAccount lacks this permission)" if error.status == 403 and not self.quota else ""
        super().__init__(f"the Kubernetes API refused to {what}: {detail}{hint}")


class Busy(Exception):
    """The API server could not answer now (too many requests, or a server error): nothing to tell
    the user, only to try again shortly."""


BUSY_STATUSES = (429, 500, 502, 503, 504)


def _refusals(what: str):
    """Turn API errors a caller does not handle into ``Refused`` naming the action (formatted with the
    call's arguments after ``self``), or ``Busy``."""

    def wrap(call):
        @functools.wraps(call)
        def guarded(self, *args, **kwargs):
            try:
                return call(self, *args, **kwargs)
            except ApiException as error:
                if error.status in BUSY_STATUSES:
                    raise Busy(f"{what.format(*args)}: {error.status} {error.reason}") from error
                raise Refused(what.format(*args), error) from error

        return guarded

    return wrap


CALLS_IN_FLIGHT = 32
"""API calls made at once (threads and pooled connections): reconciliations wait on the API
server, not on the CPU, so a handful of threads (asyncio's default) would serialize them."""


def login() -> Client:
    """In-cluster credentials in a pod, the kubeconfig elsewhere (``KUBECONFIG``)."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    configuration = client.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = CALLS_IN_FLIGHT
    return Client(client.ApiClient(configuration))


WORKFLOWS = f"/apis/{resource.GROUP}/{resource.VERSION}/namespaces/{{namespace}}/{resource.PLURAL}"
PODS = "/api/v1/namespaces/{namespace}/pods"
JSON_PATCH = "application/json-patch+json"


def _json(answer: rest.RESTResponse) -> Any:
    return json.loads(answer.read())


def _unread(answer: rest.RESTResponse) -> None:
    """Let an answer's connection go back to the pool without reading the pod it holds into the
    client's model (about 4 ms of CPU per pod, with the GIL held, for a result the operator never
    reads: its pods come from the watch)."""
    answer.response.drain_conn()
    answer.response.release_conn()


class Client:
    """The operator's API calls, through one pooled ``ApiClient``."""

    def __init__(self, api: client.ApiClient):
        self._api = api

    def _request(self, method: str, path: str, *, body: Any = None, query: dict[str, Any] | None = None,
                 content_type: str = "application/json", **names: str) -> rest.RESTResponse:
        """One call through the client's pooled connections and credentials, its answer unread, with
        ``{names}`` in ``path`` quoted. Not through the client's API methods: those check their arguments
        with the client's own models (pydantic ``validate_call``), which refused any field newer than
        the library (a pod's, a user's affinity as written; the API server is the judge) and rebuilt
        every pod body as a model: 13 % of the operator's CPU at 100 x 10. Non-2xx raises ``ApiException``."""
        method, url, headers, body, post = self._api.param_serialize(
            method, path, path_params=names or None, query_params=list((query or {}).items()) or None,
            header_params={"Accept": "application/json", "Content-Type": content_type}, body=body,
            auth_settings=["BearerToken"])
        answer = self._api.call_api(method, url, headers, body, post)
        if not 200 <= answer.status <= 299:
            answer.read()
            ApiException.from_response(http_resp=answer, body=None, data=None)  # raises the status's exception
        return answer

    @_refusals("get workflow {0}/{1}")
    def get_workflow(self, namespace: str, name: str) -> dict | None:
        try:
            return _json(self._request("GET", WORKFLOWS + "/{name}", namespace=namespace, name=name))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    @_refusals("list workflows in {0}")
    def list_workflows(self, namespace: str) -> list[dict]:
        """Every Workflow of the namespace, whole (a deleted one's cleanup reads what the others name)."""
        return _json(self._request("GET", WORKFLOWS, namespace=namespace))["items"]

    @_refusals("update the status of workflow {0}/{1}")
    def patch_status(self, namespace: str, name: str, ops: list[dict],
                     resource_version: str | None = None) -> dict | None:
        """JSON-patch the Workflow's status; with ``resource_version``, only if the Workflow is still at
        it. The Workflow as written, or None when someone else wrote first."""
        return self._patch(WORKFLOWS + "/{name}/status", namespace, name, ops, resource_version, (409,))

    @_refusals("update the status of workflow {0}/{1}")
    def merge_status(self, namespace: str, name: str, fields: dict) -> None:
        """Set some fields of the status, whatever else it holds (the message of a refusal)."""
        _unread(self._request("PATCH", WORKFLOWS + "/{name}/status", body={"status": fields},
                              content_type="application/merge-patch+json", namespace=namespace, name=name))

    @_refusals("update workflow {0}/{1}")
    def patch_workflow(self, namespace: str, name: str, ops: list[dict],
                       resource_version: str | None = None) -> dict | None:
        """JSON-patch the Workflow (its finalizers); None when it is gone, was written meanwhile or a
        tested value changed."""
        return self._patch(WORKFLOWS + "/{name}", namespace, name, ops, resource_version, (404, 409, 422))

    @_refusals("delete workflow {0}/{1}")
    def delete_workflow(self, namespace: str, name: str, uid: str) -> None:
        """Delete the Workflow with ``uid`` (its finalizer still runs); one that is gone, or a newer
        one that took its name (the uid precondition fails), is left alone."""
        try:
            _unread(self._request("DELETE", WORKFLOWS + "/{name}", body={"preconditions": {"uid": uid}},
                                  namespace=namespace, name=name))
        except ApiException as error:
            if error.status not in (404, 409):
                raise

    def _patch(self, path: str, namespace: str, name: str, ops: list[dict], resource_version: str | None,
               tolerated: tuple[int, ...]) -> dict | None:
        if resource_version:  # a changed resourceVersion makes the update conditional, as in a PUT
            ops = [{"op": "replace", "path": "/metadata/resourceVersion", "value": resource_version}, *ops]
        try:
            return _json(self._request("PATCH", path, body=ops, content_type=JSON_PATCH, namespace=namespace,
                                       name=name))
        except ApiException as error:
            if error.status in tolerated:
                return None
            raise

    @_refusals("create a task pod")
    def create_pod(self, body: dict) -> None:
        """Create a pod; one that already exists (same attempt, created before a restart) is kept."""
        try:
            _unread(self._request("POST", PODS, body=body, namespace=body["metadata"]["namespace"]))
        except ApiException as error:
            if error.status != 409:
                raise

    @_refusals("list events in {0}")
    def mount_failures(self, namespace: str) -> dict[str, list[str]]:
        """Messages of ``FailedMount`` events (a Secret or ConfigMap a pod mounts is missing) of the
        namespace's pods, by pod uid: one LIST, filtered by the API server, for all its pods."""
        events = _json(self._request("GET", "/api/v1/namespaces/{namespace}/events", namespace=namespace,
                                     query={"fieldSelector": "involvedObject.kind=Pod,reason=FailedMount"}))
        found: dict[str, list[str]] = {}
        for event in events["items"]:
            if event.get("message"):
                found.setdefault(event["involvedObject"].get("uid", ""), []).append(event["message"])
        return found

    @_refusals("release pod {0}/{1}")
    def patch_pod(self, namespace: str, name: str, patch: list[dict]) -> None:
        """JSON-patch a pod; one that is gone, or whose tested value changed meanwhile (the next
        reconciliation tries again), is fine."""
        try:
            _unread(self._request("PATCH", PODS + "/{name}", body=patch, content_type=JSON_PATCH,
                                  namespace=namespace, name=name))
        except ApiException as error:
            if error.status not in (404, 409, 422):
                raise

    @_refusals("delete pod {0}/{1}")
    def delete_pod(self, namespace: str, name: str, grace_seconds: int = pods.STOP_GRACE_SECONDS) -> None:
        try:
            _unread(self._request("DELETE", PODS + "/{name}", query={"gracePeriodSeconds": grace_seconds},
                                  namespace=namespace, name=name))
        except ApiException as error:
            if error.status != 404:
                raise
