import pytest

from ferry.api import resource
from ferry_operator import bodies


def workflow(version, phase="Running", name="wf"):
    return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": version}, "status": {"phase": phase}}


@pytest.fixture(autouse=True)
def empty():
    yield
    bodies._bodies.clear()
    bodies._finished.clear()
    bodies._specs.clear()


def test_the_newest_body_wins_whatever_order_they_arrive_in():
    assert bodies.offer(workflow("12"))  # the answer to the operator's own write...
    assert not bodies.offer(workflow("9"))  # ... and then the watch's event of an earlier state
    assert bodies.get("ns", "wf")["metadata"]["resourceVersion"] == "12"
    bodies.offer(workflow("100"))  # numbers, not strings: "100" < "12" as text
    assert bodies.get("ns", "wf")["metadata"]["resourceVersion"] == "100"
    assert bodies.get("ns", "other") is None


def test_an_opaque_version_always_wins():
    bodies.offer(workflow("12"))
    bodies.offer(workflow("v-7"))
    assert bodies.get("ns", "wf")["metadata"]["resourceVersion"] == "v-7"
    bodies.offer(workflow("3"))
    assert bodies.get("ns", "wf")["metadata"]["resourceVersion"] == "3"


def test_finished_workflows_are_remembered_by_name_only_until_deleted():
    bodies.offer(workflow("5"))
    assert not bodies.finished("ns", "wf")
    failed = workflow("6", phase="Failed")
    failed["metadata"]["uid"] = "u1"
    failed["status"]["tasks"] = {"a": {"phase": "Succeeded", "podName": "wf-a-1"},
                                 "b": {"phase": "Running", "podName": "wf-b-1"}}  # being stopped
    bodies.offer(failed)
    assert bodies.get("ns", "wf") is None and bodies.known() == []
    finished = bodies.finished("ns", "wf")
    assert (finished.uid, finished.running) == ("u1", {"wf-b-1"}) and bodies.finished_keys() == [("ns", "wf")]
    bodies.forget("ns", "wf")  # deleted: a new workflow may take the name
    assert not bodies.finished("ns", "wf")
    bodies.offer(workflow("7", name="b"))
    bodies.forget("ns", "b")
    assert bodies.known() == []


def test_a_finished_workflow_keeps_what_its_retention_needs():
    """Its TTL and finish time (when it is deleted), its pod retention and, only where that keeps
    failed attempts' pods, the pods of the succeeded ones: what is left of it decides."""
    done = workflow("8", phase="Succeeded")
    done["metadata"]["uid"] = "u2"
    done["spec"] = {"ttlSecondsAfterFinished": 60, "podRetention": "KeepFailed"}
    done["status"].update(finishedAt="2030-01-01T12:00:00Z", tasks={
        "a": {"phase": "Succeeded", "podName": "wf-a-2"}, "b": {"phase": "Failed", "podName": "wf-b-1"}})
    bodies.offer(done)
    finished = bodies.finished("ns", "wf")
    assert (finished.ttl, finished.finished_at, finished.pod_retention) == (60, "2030-01-01T12:00:00Z", "KeepFailed")
    assert finished.succeeded == {"wf-a-2"}
    done["metadata"]["resourceVersion"], done["spec"] = "9", {}
    bodies.offer(done)
    finished = bodies.finished("ns", "wf")
    assert (finished.ttl, finished.pod_retention, finished.succeeded) == (None, "KeepAll", frozenset())


def test_a_finished_workflow_asked_to_rerun_is_running_again():
    failed = workflow("6", phase="Failed")
    failed["metadata"]["uid"] = "u1"
    bodies.offer(failed)
    assert bodies.finished("ns", "wf") and bodies.known() == []
    # ``ferry retry``: spec.rerun raised past status.rerun; the operator must reconcile it again.
    asked = {**failed, "metadata": {**failed["metadata"], "resourceVersion": "7"}, "spec": {"rerun": 1}}
    assert not bodies.settled(asked)
    assert bodies.offer(asked)
    assert bodies.finished("ns", "wf") is None and bodies.get("ns", "wf") is asked
    # Acted on (status.rerun), or still asked to stop, or succeeded: settled.
    assert bodies.settled({**asked, "status": {"phase": "Failed", "rerun": 1}})
    assert bodies.settled({**asked, "spec": {"rerun": 1, "stop": True}})
    assert bodies.settled({**asked, "status": {"phase": "Succeeded"}})
    assert bodies.settled({**asked, "status": {"phase": "Stopped"}, "spec": {}})


def test_a_spec_is_read_once_per_generation_of_the_workflow(monkeypatch):
    reads = []
    real = resource.WorkflowSpec.model_validate
    monkeypatch.setattr(resource.WorkflowSpec, "model_validate", lambda data: reads.append(data) or real(data))

    def running(version, generation, uid="u1", stop=False):
        body = workflow(version)
        body["metadata"].update(uid=uid, generation=generation)
        body["spec"] = {"tasks": [{"name": "a", "image": "busybox"}], "stop": stop}
        return body

    first = bodies.spec(running("5", 1))
    assert bodies.spec(running("6", 1)) is first and len(reads) == 1  # a status write: the same spec
    assert bodies.spec(running("7", 2, stop=True)).stop and len(reads) == 2  # ferry stop: a new generation
    assert not bodies.spec(running("8", 1, uid="u2")).stop and len(reads) == 3  # deleted, made again
    bodies.forget("ns", "wf")
    bodies.spec(running("9", 1, uid="u2"))
    assert len(reads) == 4
    unversioned = running("10", 1)
    del unversioned["metadata"]["generation"]
    bodies.spec(unversioned), bodies.spec(unversioned)
    assert len(reads) == 6, "without a generation, nothing tells a changed spec: read each time"
