import http.server
import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from ferry_operator import kube, pods
from tests.cluster.processes import http_server


def failing(status: int, message: str = "nope"):
    class Failing:
        @kube._refusals("create a task pod in {0}")
        def call(self, namespace: str):
            error = ApiException(status=status, reason="Reason")
            error.body = f'{{"message": "{message}"}}'
            raise error

    return Failing().call


def test_a_busy_api_server_is_tried_again_not_reported_as_a_refusal():
    for status in (429, 500, 503):
        with pytest.raises(kube.Busy, match=f"create a task pod in team-a: {status}"):
            failing(status)("team-a")


def test_a_refusal_names_the_action_and_the_missing_permission():
    with pytest.raises(kube.Refused, match="refused to create a task pod in team-a: pods is forbidden "
                                           r"\(the operator's ServiceAccount lacks this permission\)"):
        failing(403, "pods is forbidden")("team-a")
    with pytest.raises(kube.Refused, match="invalid"):
        failing(422, "invalid")("team-a")


def test_a_full_resource_quota_is_told_apart_from_a_missing_permission():
    """The quota's 403 is a wait for room (``handlers``), and blaming the ServiceAccount would mislead."""
    with pytest.raises(kube.Refused) as refused:
        failing(403, 'pods \\"wf-m-3-1\\" is forbidden: exceeded quota: pods, requested: pods=1, used: pods=10, '
                     'limited: pods=10')("team-a")
    assert refused.value.quota and "exceeded quota" in str(refused.value) and "ServiceAccount" not in str(refused.value)
    with pytest.raises(kube.Refused) as refused:
        failing(403, "pods is forbidden")("team-a")
    assert not refused.value.quota


class _FakeAPIServer(http.server.BaseHTTPRequestHandler):
    """Answers every request with a pod (409 for a pod named ``taken``), over keep-alive
    connections, counting the connections opened."""
    protocol_version = "HTTP/1.1"
    connections = 0
    requests: list[str] = []
    bodies: list[bytes] = []

    def setup(self):
        super().setup()
        type(self).connections += 1

    def _answer(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).requests.append(f"{self.command} {self.path}")
        type(self).bodies.append(body)
        status = 409 if b'"taken"' in body else 200
        data = json.dumps({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p"}, "spec": {"containers": []}}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_PATCH = do_DELETE = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_api():
    _FakeAPIServer.connections, _FakeAPIServer.requests, _FakeAPIServer.bodies = 0, [], []
    with http_server(_FakeAPIServer) as server:
        _FakeAPIServer.url = f"http://127.0.0.1:{server.server_address[1]}"
        yield _FakeAPIServer


@pytest.fixture
def calls(fake_api):
    """The operator's API calls, to the fake API server."""
    api = client.ApiClient(client.Configuration(host=fake_api.url))
    yield kube.Client(api)
    api.close()  # its kept-alive connection, which the server's thread answers


def test_pod_writes_skip_the_clients_models_and_reuse_one_connection(fake_api, calls, monkeypatch):
    def no_models(*args, **kwargs):
        raise AssertionError("the answer was turned into the client's models")

    monkeypatch.setattr(client.ApiClient, "deserialize", no_models)
    for name in ("first", "taken", "second"):  # a pod there already (409) is kept
        calls.create_pod({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "team-a"}})
    calls.patch_pod("team-a", "first", [{"op": "remove", "path": "/metadata/finalizers/0"}])
    calls.delete_pod("team-a", "first")
    assert fake_api.requests == ["POST /api/v1/namespaces/team-a/pods"] * 3 + [
        "PATCH /api/v1/namespaces/team-a/pods/first", f"DELETE /api/v1/namespaces/team-a/pods/first?gracePeriodSeconds={pods.STOP_GRACE_SECONDS}"]
    assert fake_api.connections == 1, "each answer was read to its end, so its connection went back to the pool"


def test_a_pod_reaches_the_api_server_as_built_whatever_the_client_library_knows(fake_api, calls):
    """The API server judges a pod (a field newer than the client library, a user's affinity as
    written), not the client's own models: they refused what they did not know, and cost a
    model of every pod made and dropped (part of the 13 % of the operator's CPU they took)."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "new", "namespace": "team-a"},
           "spec": {"containers": [{"name": "main", "image": "busybox"}], "fieldFromKubernetes2": {"on": True},
                    "affinity": {"nodeAffinity": {"anyFutureTerm": [1]}}}}
    calls.create_pod(pod)
    calls.patch_status("team-a", "wf", [{"op": "add", "path": "/status/future", "value": {"x": 1}}], "7")
    assert json.loads(fake_api.bodies[0]) == pod
    assert json.loads(fake_api.bodies[1]) == [{"op": "replace", "path": "/metadata/resourceVersion", "value": "7"},
                                              {"op": "add", "path": "/status/future", "value": {"x": 1}}]


def test_a_workflow_is_deleted_only_if_it_is_still_the_one_with_that_uid(fake_api, calls):
    """A workflow past its TTL may have been deleted and created again under its name meanwhile."""
    calls.delete_workflow("team-a", "wf", "uid-1")
    assert fake_api.requests == ["DELETE /apis/ferry.dev/v1alpha1/namespaces/team-a/workflows/wf"]
    assert json.loads(fake_api.bodies[0])["preconditions"] == {"uid": "uid-1"}
