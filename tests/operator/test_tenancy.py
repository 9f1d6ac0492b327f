"""A workflow reads only its own namespace's folder (and data outside Ferry's)."""

from ferry.api import resource, scheduler
from ferry_operator import tenancy
from ferry_operator.config import Config

CONFIG = Config.model_validate({"raw_data_prefix": "s3://bucket/ferry", "storage_secret": "keys",
                                "namespaces": {"team-c": {"raw_data_prefix": "s3://team-c/data"}}})


def spec(uri: str, code: str | None = None) -> resource.WorkflowSpec:
    return resource.WorkflowSpec.model_validate({
        "inputs": [{"name": "top", "uri": "s3://public/data.csv"}], **({"code": code} if code else {}),
        "tasks": [{"name": "t", "image": "x", "inputs": [{"name": "x", "uri": uri}]}]})


def test_another_namespace_s_outputs_are_refused_naming_the_field():
    for uri in ("s3://bucket/ferry/team-b/uid/t/1/out", "s3://team-c/data/uid/t/1/out",
                "s3://bucket/ferry/team-a-evil/x", "s3://bucket/ferry/"):
        problems = tenancy.foreign_uris(spec(uri), "team-a", CONFIG)
        assert len(problems) == 1 and problems[0].startswith(f"spec.tasks[0].inputs[0].uri: {uri} is in another")


def test_own_folder_shared_code_and_outside_data_are_fine():
    for uri in ("s3://bucket/ferry/team-a/uid/t/1/out", "s3://public/x", "s3://bucket/other/x"):
        assert tenancy.foreign_uris(spec(uri, code="s3://bucket/ferry/code/" + "a" * 64 + ".tar.gz"),
                                    "team-a", CONFIG) == []
    assert tenancy.foreign_uris(spec("s3://team-c/data/x"), "team-c", CONFIG) == []
    assert tenancy.foreign_uris(spec("s3://x/y", code="s3://bucket/ferry/team-b/code.tar.gz"), "team-a",
                                CONFIG)[0].startswith("spec.code:")


def test_a_mapped_namespace_s_default_folder_is_not_its_own():
    """team-c lives in its own bucket: s3://bucket/ferry/team-c/ is nobody's, so it is refused too."""
    assert tenancy.foreign_uris(spec("s3://bucket/ferry/team-c/x"), "team-c", CONFIG)


def test_a_value_that_names_another_namespace_s_data_is_refused_too():
    """The pod's credentials may read URIs given as values (a sensor's path), so those are checked."""
    wf = resource.WorkflowSpec.model_validate({"tasks": [{"name": "t", "image": "x", "inputs": [
        {"name": "path", "value": "s3://bucket/ferry/team-b/x"}, {"name": "other", "value": "s3://public/x"},
        {"name": "n", "value": 3}]}]})
    problems = tenancy.foreign_uris(wf, "team-a", CONFIG)
    assert len(problems) == 1 and problems[0].startswith("spec.tasks[0].inputs[0].value: s3://bucket/ferry/team-b/x")


def test_a_task_reporting_another_namespace_s_data_as_its_output_fails():
    """A Python task's code can write its own report: were a reference into team-b's folder taken into
    status, the next task's scoped credentials would be allowed to read it."""
    theirs = resource.Output(kind="file", uri="s3://bucket/ferry/team-b/uid/t/1/out", sha256="0" * 64)
    lying = scheduler.Attempt(True, succeeded=True, outputs={"o0": theirs})
    refused = tenancy.checked(lying, "team-a", CONFIG)
    assert refused.finished and not refused.succeeded and refused.reason == resource.FailureReason.PUBLISH_FAILED
    assert "output 'o0': s3://bucket/ferry/team-b/uid/t/1/out is in another namespace's folder" in refused.message
    pointer = resource.StoredResult(uri="s3://team-c/data/x/.ferry-result.json", sha256="a" * 64, size=1)
    assert not tenancy.checked(scheduler.Attempt(True, succeeded=True, result=pointer), "team-a", CONFIG).succeeded
    own = resource.Output(kind="file", uri="s3://bucket/ferry/team-a/uid/t/1/out")
    outside = resource.Output(kind="file", uri="s3://public/data.csv")  # a Python task may pass data through
    fine = scheduler.Attempt(True, succeeded=True, outputs={"a": own, "b": outside})
    assert tenancy.checked(fine, "team-a", CONFIG) is fine


def test_a_map_over_another_namespace_s_directory_is_refused():
    """Its split would be given credentials to read what it maps over."""
    for over in ({"uri": "s3://bucket/ferry/team-b/uid/t/1/dir/", "kind": "directory"},
                 {"value": "s3://bucket/ferry/team-b/uid/t/1/list.json"}):
        wf = resource.WorkflowSpec.model_validate({"tasks": [{"name": "m", "image": "x", "map": {"over": over},
                                                               "inputs": [{"name": "f", "fromItem": True}]}]})
        field = "uri" if "uri" in over else "value"
        assert [p.split(":")[0] for p in tenancy.foreign_uris(wf, "team-a", CONFIG)] == [f"spec.tasks[0].map.over.{field}"]
