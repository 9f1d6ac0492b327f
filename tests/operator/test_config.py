import pytest

from ferry_operator.config import Config


def test_task_start_and_success_events_are_posted_only_when_asked_for():
    quiet = Config(raw_data_prefix="s3://bucket/ferry")
    loud = Config(raw_data_prefix="s3://bucket/ferry", task_events=True)
    for config in (quiet, loud):  # what a user needs to see is always told
        assert config.posts("Warning", "TaskRetrying") and config.posts("Warning", "TaskFailed")
        assert config.posts("Normal", "Started") and config.posts("Normal", "Succeeded")
        assert config.posts("Warning", "InvalidWorkflow")
    assert not quiet.posts("Normal", "TaskStarted") and not quiet.posts("Normal", "TaskSucceeded")
    assert loud.posts("Normal", "TaskStarted") and loud.posts("Normal", "TaskSucceeded")
    assert Config.from_env({"FERRY_OPERATOR_RAW_DATA_PREFIX": "s3://b/f", "FERRY_OPERATOR_TASK_EVENTS": "true"}).task_events


def test_finished_workflows_stay_unless_a_default_ttl_is_set():
    assert Config(raw_data_prefix="s3://bucket/ferry").ttl_seconds_after_finished is None
    environ = {"FERRY_OPERATOR_RAW_DATA_PREFIX": "s3://b/f", "FERRY_OPERATOR_TTL_SECONDS_AFTER_FINISHED": "0"}
    assert Config.from_env(environ).ttl_seconds_after_finished == 0
    with pytest.raises(ValueError, match="FERRY_OPERATOR_TTL_SECONDS_AFTER_FINISHED"):
        Config.from_env({**environ, "FERRY_OPERATOR_TTL_SECONDS_AFTER_FINISHED": "-5"})
