"""Task plugins, and the object-store sensor that ships as the first one."""

import threading
import time

import pytest

import ferry
from ferry.api import resource
from ferry.definitions import plugins
from ferry.execution import local

from tests.runtime import sample_workflows as samples
from tests.runtime.execution.test_local import store  # noqa: F401  (fixture)


def test_sensor_waits_for_the_object_then_passes_its_uri_on(store, tmp_path):  # noqa: F811
    target = tmp_path / "arrives-later.txt"
    writer = threading.Timer(0.8, lambda: target.write_text("here now"))
    writer.start()
    started = time.monotonic()
    assert samples.wait_then_read(path=target.as_uri()) == "here now"
    assert time.monotonic() - started >= 0.8
    writer.join()


def test_sensor_timeout_fails_each_attempt_and_retries(store, tmp_path):  # noqa: F811
    run = local.run_workflow(samples.wait_in_vain, {"path": (tmp_path / "never").as_uri()}, store)
    assert run.status.phase == resource.Phase.FAILED
    task = run.status.tasks["impatient"]
    assert task.attempts == 2
    assert "TimeoutError" in task.message and "did not appear within 0.3s" in task.message


def test_plugin_tasks_compile_to_plugin_nodes():
    spec = samples.wait_then_read.compile(path="s3://bucket/key")
    node = spec.tasks[0]
    assert node.name == "wait-for-input" and node.function is None
    assert node.plugin.type == "object-store-sensor" and node.plugin.config["poll_interval_seconds"] == 0.1
    assert node.plugin.module is None, "built-in plugins are found in the runtime image"
    assert samples.shouting.compile().tasks[0].plugin.module == "tests.runtime.sample_workflows"


def test_a_plugin_shipped_with_the_code_runs(store):  # noqa: F811
    assert samples.shouting(word="hey") == "HEY HEY"


def test_bad_config_and_unknown_types_are_clear_errors():
    with pytest.raises(ferry.DefinitionError, match="invalid config.poll_interval_seconds: Input should be greater than 0"):
        ferry.ObjectStoreSensor("bad", config={"poll_interval_seconds": -1})
    with pytest.raises(LookupError, match="no task plugin of type 'nope'.*ferry.definitions.plugins"):
        plugins.get("nope")
