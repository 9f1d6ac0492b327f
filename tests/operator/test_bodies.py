import pytest

from ferry.api import resource
from ferry_operator import bodies


def workflow(version, phase="Running", name="wf"):
    return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": version}, "status": {"phase": phase}}


@pytest.fixture
def known():
    return bodies.Bodies()


def test_the_newest_body_wins_whatever_order_they_arrive_in(known):
    assert known.offer(workflow("12"))  # the answer to the operator's own write...
    assert not known.offer(workflow("9"))  # ... and then the watch's event of an earlier state
    assert known.get("ns", "wf")["metadata"]["resourceVersion"] == "12"
    known.offer(workflow("100"))  # numbers, not strings: "100" < "12" as text
    assert known.get("ns", "wf")["metadata"]["resourceVersion"] == "100"
    assert known.get("ns", "other") is None


def test_an_opaque_version_always_wins(known):
    known.offer(workflow("12"))
    known.offer(workflow("v-7"))
    assert known.get("ns", "wf")["metadata"]["resourceVersion"] == "v-7"
    known.offer(workflow("3"))
    assert known.get("ns", "wf")["metadata"]["resourceVersion"] == "3"


def test_finished_workflows_are_remembered_by_name_only_until_deleted(known):
    known.offer(workflow("5"))
    assert not known.finished("ns", "wf")
    failed = workflow("6", phase="Failed")
    failed["metadata"]["uid"] = "u1"
    failed["status"]["tasks"] = {"a": {"phase": "Succeeded", "podName": "wf-a-1"},
                                 "b": {"phase": "Running", "podName": "wf-b-1"}}  # being stopped
    known.offer(failed)
    assert known.get("ns", "wf") is None and known.known() == []
    finished = known.finished("ns", "wf")
    assert (finished.uid, finished.running) == ("u1", {"wf-b-1"}) and known.finished_keys() == [("ns", "wf")]
    known.forget("ns", "wf")  # deleted: a new workflow may take the name
    assert not known.finished("ns", "wf")
    known.offer(workflow("7", name="b"))
    known.forget("ns", "b")
    assert known.known() == []


def test_a_finished_workflow_keeps_what_its_retention_needs(known):
    """Its TTL and finish time (when it is deleted), its pod retention and, only where that keeps
    failed attempts' pods, the pods of the succeeded ones: what is left of it decides."""
    done = workflow("8", phase="Succeeded")
    done["metadata"]["uid"] = "u2"
    done["spec"] = {"ttlSecondsAfterFinished": 60, "podRetention": "KeepFailed"}
    done["status"].update(finishedAt="2030-01-01T12:00:00Z", tasks={
        "a": {"phase": "Succeeded", "podName": "wf-a-2"}, "b": {"phase": "Failed", "podName": "wf-b-1"}})
    known.offer(done)
    finished = known.finished("ns", "wf")
    assert (finished.ttl, finished.finished_at, finished.pod_retention) == (60, "2030-01-01T12:00:00Z", "KeepFailed")
    assert finished.succeeded == {"wf-a-2"}
    done["metadata"]["resourceVersion"], done["spec"] = "9", {}
    known.offer(done)
    finished = known.finished("ns", "wf")
    assert (finished.ttl, finished.pod_retention, finished.succeeded) == (None, "KeepAll", frozenset())


def test_a_finished_workflow_asked_to_rerun_is_running_again(known):
    failed = workflow("6", phase="Failed")
    failed["metadata"]["uid"] = "u1"
    known.offer(failed)
    assert known.finished("ns", "wf") and known.known() == []
    # ``ferry retry``: spec.rerun raised past status.rerun; the operator must reconcile it again.
    asked = {**failed, "metadata": {**failed["metadata"], "resourceVersion": "7"}, "spec": {"rerun": 1}}
    assert not bodies.settled(asked)
    assert known.offer(asked)
    assert known.finished("ns", "wf") is None and known.get("ns", "wf") is asked
    # Acted on (status.rerun), or still asked to stop, or succeeded: settled.
    assert bodies.settled({**asked, "status": {"phase": "Failed", "rerun": 1}})
    assert bodies.settled({**asked, "spec": {"rerun": 1, "stop": True}})
    assert bodies.settled({**asked, "status": {"phase": "Succeeded"}})
    assert bodies.settled({**asked, "status": {"phase": "Stopped"}, "spec": {}})


def test_a_spec_is_read_once_per_generation_of_the_workflow(known, monkeypatch):
    reads = []
    real = resource.WorkflowSpec.model_validate
    monkeypatch.setattr(resource.WorkflowSpec, "model_validate", lambda data: reads.append(data) or real(data))

    def running(version, generation, uid="u1", stop=False):
        body = workflow(version)
        body["metadata"].update(uid=uid, generation=generation)
        body["spec"] = {"tasks": [{"name": "a", "image": "busybox"}], "stop": stop}
        return body

    first = known.spec(running("5", 1))
    assert known.spec(running("6", 1)) is first and len(reads) == 1  # a status write: the same spec
    assert known.spec(running("7", 2, stop=True)).stop and len(reads) == 2  # ferry stop: a new generation
    assert not known.spec(running("8", 1, uid="u2")).stop and len(reads) == 3  # deleted, made again
    known.forget("ns", "wf")
    known.spec(running("9", 1, uid="u2"))
    assert len(reads) == 4
    unversioned = running("10", 1)
    del unversioned["metadata"]["generation"]
    known.spec(unversioned), known.spec(unversioned)
    assert len(reads) == 6, "without a generation, nothing tells a changed spec: read each time"
