import pytest
from kubernetes.client.rest import ApiException

from ferry_operator import kube


def failing(status: int, message: str = "nope"):
    @kube._refusals("create a task pod in {0}")
    def call(namespace: str):
        error = ApiException(status=status, reason="Reason")
        error.body = f'{{"message": "{message}"}}'
        raise error

    return call


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
