"""The runtime around container tasks: fetching inputs and publishing outputs, without a cluster."""

import json

import ferry
from ferry import podruntime, resource, taskpod


def plan(tmp_path, **fields) -> taskpod.PodPlan:
    return taskpod.PodPlan(workflow="wf", namespace="ns", execution_id="x", task="t", attempt=1,
                           output_prefix=(tmp_path / "published").as_uri(), **fields)


def test_publish_then_fetch_round_trips_files_directories_and_values(tmp_path):
    store = ferry.Store(ferry.Settings(raw_data_prefix=(tmp_path / "raw").as_uri()))
    outputs = tmp_path / "outputs"
    (outputs / "tree" / "sub").mkdir(parents=True)
    (outputs / "tree" / "sub" / "a.txt").write_text("a")
    (outputs / "report").write_text("r")
    (outputs / "count").write_text("42\n")
    declared = [resource.TaskOutput(name="tree", kind="directory"), resource.TaskOutput(name="report"),
                resource.TaskOutput(name="count", kind="value")]
    result = podruntime.publish(plan(tmp_path, outputs=declared), store, outputs)
    assert result.error is None
    assert result.outputs["count"].value == 42
    assert result.outputs["tree"].uri.endswith("/published/tree") and result.outputs["tree"].file_count == 1

    inputs = tmp_path / "inputs"
    podruntime.fetch(plan(tmp_path, inputs={"tree": result.outputs["tree"], "report": result.outputs["report"]}),
                     store, inputs)
    assert (inputs / "tree" / "sub" / "a.txt").read_text() == "a"
    assert (inputs / "report").read_text() == "r"


def test_publish_names_what_is_missing_or_of_the_wrong_kind(tmp_path):
    store = ferry.Store(ferry.Settings(raw_data_prefix=(tmp_path / "raw").as_uri()))
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    missing = podruntime.publish(plan(tmp_path, outputs=[resource.TaskOutput(name="model")]), store, outputs)
    assert missing.error == f"output 'model': the task did not write {outputs / 'model'}"
    (outputs / "model").write_text("not a directory")
    wrong = podruntime.publish(plan(tmp_path, outputs=[resource.TaskOutput(name="model", kind="directory")]),
                               store, outputs)
    assert "declared as a directory" in wrong.error and "must be a directory" in wrong.error


def test_report_refuses_results_larger_than_a_termination_message(tmp_path):
    many = {f"output-{i}": resource.Output(kind="file", uri=f"s3://bucket/{'x' * 200}/{i}", sha256="0" * 64)
            for i in range(20)}
    podruntime.report(taskpod.PublishResult(outputs=many), str(tmp_path / "message"))
    written = json.loads((tmp_path / "message").read_text())
    assert "do not fit in a termination message" in written["error"] and "declare fewer outputs" in written["error"]
