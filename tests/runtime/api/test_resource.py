"""The Workflow's models: which names they accept, checked once here for the SDK's compile, the
local executor and the operator alike (the CRD's patterns come from the same fields)."""

from __future__ import annotations

import pydantic
import pytest
from pydantic.alias_generators import to_camel

from ferry.api import resource, taskpod
from ferry.core import blobs as core_blobs, records
from ferry.data import blobs


def task(**fields) -> dict:
    return {"name": "count", "image": "busybox", **fields}


def spec(*tasks: dict, **fields) -> resource.WorkflowSpec:
    return resource.WorkflowSpec.model_validate({"tasks": list(tasks), **fields})


@pytest.mark.parametrize("name", ["row_count", "max_rows", "row-count", "o0", "2nd", "_private", "type_", "N",
                                  "maxRows", "a" * 40])
def test_inputs_and_outputs_take_python_names_and_dns_labels(name):
    wf = spec(task(inputs=[{"name": name, "value": 1}], outputs=[{"name": name}]),
              task(name="show", inputs=[{"name": "x", "fromTask": {"task": "count", "output": name}}]),
              inputs=[{"name": name, "value": 1}],
              outputs=[{"name": name, "fromTask": {"task": "count", "output": name}}])
    assert wf.tasks[0].inputs[0].name == wf.tasks[0].outputs[0].name == wf.inputs[0].name == name


@pytest.mark.parametrize("name", ["a/b", ".", "..", "../etc", "-x", "x-", "row count", "größe", "a.b", "", "a" * 41,
                                  "x\x00", "x\n"])
def test_names_that_are_no_path_segment_or_variable_are_refused_naming_the_field(name):
    with pytest.raises(pydantic.ValidationError) as error:
        spec(task(inputs=[{"name": name, "value": 1}]))
    assert error.value.errors()[0]["loc"] == ("tasks", 0, "inputs", 0, "name")
    with pytest.raises(pydantic.ValidationError) as error:
        spec(task(outputs=[{"name": name}]))
    assert error.value.errors()[0]["loc"] == ("tasks", 0, "outputs", 0, "name")


def test_task_names_stay_dns_labels_because_they_name_pods():
    with pytest.raises(pydantic.ValidationError) as error:
        spec(task(name="count_rows"))
    assert error.value.errors()[0]["loc"] == ("tasks", 0, "name")
    with pytest.raises(pydantic.ValidationError):
        spec(task(), task(name="b", dependsOn=["count_rows"]))


def test_an_input_finds_its_variable_whatever_its_spelling():
    assert taskpod.input_env_name("row_count") == taskpod.input_env_name("row-count") == "FERRY_INPUT_ROW_COUNT"
    assert taskpod.input_env_name("maxRows") == "FERRY_INPUT_MAXROWS"


@pytest.mark.parametrize("names", [("row-count", "row_count"), ("rows", "Rows"), ("x", "x")])
def test_two_inputs_of_one_variable_are_refused_naming_the_task_and_the_variable(names):
    first, second = names
    with pytest.raises(pydantic.ValidationError) as error:
        spec(task(inputs=[{"name": first, "value": 1}, {"name": second, "value": 2}]))
    problem, = error.value.errors()
    assert problem["loc"] == ("tasks", 0)
    assert f"task count: inputs {first!r} and {second!r}" in problem["msg"]
    assert f"FERRY_INPUT_{first.replace('-', '_').upper()}" in problem["msg"] and "rename one" in problem["msg"]


def test_outputs_and_the_workflow_s_own_names_may_not_differ_only_in_case_or_dash():
    """Their folders (``/ferry/outputs/<name>``, ``ferry outputs``' ``out/<name>``) would be one on a
    disk that ignores case, and a name passed on as an input would share a variable."""
    with pytest.raises(pydantic.ValidationError, match="task count: outputs 'Rows' and 'rows'"):
        spec(task(outputs=[{"name": "Rows"}, {"name": "rows"}]))
    with pytest.raises(pydantic.ValidationError) as error:
        spec(task(), inputs=[{"name": "max-rows", "value": 1}, {"name": "max_rows", "value": 2}])
    problem, = error.value.errors()
    assert problem["loc"] == ("inputs",)
    assert "workflow inputs 'max-rows' and 'max_rows' are both MAX_ROWS" in problem["msg"]
    out = {"fromTask": {"task": "count", "output": "n"}}
    with pytest.raises(pydantic.ValidationError) as error:
        spec(task(outputs=[{"name": "n"}]), outputs=[{"name": "n", **out}, {"name": "N", **out}])
    problem, = error.value.errors()
    assert problem["loc"] == ("outputs",) and "workflow outputs 'n' and 'N' are both N" in problem["msg"]
    # An input and an output of one task are read and written in different folders: no clash.
    assert spec(task(inputs=[{"name": "rows", "value": 1}], outputs=[{"name": "rows"}])).tasks[0].outputs


# --- an output in status: a stored reference (``ferry.core.blobs``) or a small value ---------

DIGEST = "a" * 64


def test_an_output_is_the_stored_reference_declared_once_plus_what_status_adds():
    """Its shared fields, with their checks and the CRD's descriptions, come from the one declaration."""
    assert blobs.BlobRef is core_blobs.BlobRef  # the data plane's name for it
    assert list(resource.Output.model_fields) == ["kind", "uri", "size", "file_count", "manifest_digest", "sha256",
                                                  "value", "result"]  # kind first, as status always had it
    assert set(blobs.BlobRef.FIELDS) == set(resource.Output.model_fields) - {"value", "result"}
    properties = resource.Output.model_json_schema(by_alias=True)["properties"]
    for name, doc in records.docstrings(blobs.BlobRef).items():
        if name != "kind":  # an output's kind has one more: value
            assert properties[to_camel(name)]["description"] == doc


@pytest.mark.parametrize("ref", [
    blobs.BlobRef(uri="s3://b/k", kind="file", size=3, file_count=1, sha256=DIGEST),
    blobs.BlobRef(uri="s3://b/d", kind="directory", size=9, file_count=2, manifest_digest="sha256:" + DIGEST),
    blobs.BlobRef(uri="file:///x", kind="asset")])
def test_a_reference_goes_into_status_and_back_unchanged(ref):
    output = resource.Output.of(ref, resource.Kind(ref.kind.value))
    assert resource.Output.model_validate(output.dump()) == output  # as the status holds it, camelCase
    assert output.blob() == ref
    assert output.blob(blobs.Kind.FILE).kind == blobs.Kind.FILE


@pytest.mark.parametrize("field, hostile", [("sha256", "../../etc"), ("sha256", "A" * 64), ("sha256", DIGEST + "\n"),
                                            ("manifestDigest", "sha256:" + "G" * 64), ("manifestDigest", DIGEST),
                                            ("size", -1), ("fileCount", -1)])
def test_a_status_refuses_an_output_a_pod_would_refuse_naming_the_field(field, hostile):
    """Status is written by the operator from what tasks report (a Python task writes its own report):
    the operator, and the API server through the CRD's patterns, refuse what the next pod would."""
    with pytest.raises(pydantic.ValidationError) as error:
        resource.Output.model_validate({"kind": "file", "uri": "s3://b/k", field: hostile})
    assert error.value.errors()[0]["loc"] == (field,)
    with pytest.raises(pydantic.ValidationError):
        blobs.BlobRef.model_validate({"kind": "file", "uri": "s3://b/k", field: hostile})


def test_a_uri_without_a_scheme_is_refused_by_the_pod_that_reads_it():
    """A spec may name any ``uri``: its output in a pod's plan is refused when the pod reads it, naming it."""
    output = resource.Output.model_validate({"kind": "file", "uri": "no-scheme"})
    with pytest.raises(pydantic.ValidationError, match="uri"):
        output.blob()
