import pytest

from ferry.api import resource
from ferry.api.resource import Phase
from ferry_operator import metrics


def gauge(metric, phase: Phase) -> float:
    return metric.labels(phase.value)._value.get()


def status(phase: Phase, *tasks: Phase) -> resource.WorkflowStatus:
    return resource.WorkflowStatus(phase=phase, tasks={f"t{i}": resource.TaskStatus(phase=p) for i, p in enumerate(tasks)})


@pytest.fixture
def tally():
    """A tally of its own, whose workflows leave the process's gauges as they were."""
    made = metrics.Tally()
    yield made
    for key in [("metrics-test", "a"), ("metrics-test", "b")]:
        made.forget(key)


@pytest.fixture
def counted():
    before = {(m, p): gauge(m, p) for m in (metrics.WORKFLOWS, metrics.TASKS) for p in Phase}
    return lambda metric, phase: gauge(metric, phase) - before[metric, phase]


def test_gauges_follow_each_workflow_s_latest_status(tally, counted):
    a, b = ("metrics-test", "a"), ("metrics-test", "b")
    empty = resource.WorkflowStatus()
    tally.observe(a, None, empty, status(Phase.RUNNING, Phase.RUNNING, Phase.PENDING))
    tally.observe(b, None, empty, status(Phase.RUNNING, Phase.SUCCEEDED))
    assert counted(metrics.WORKFLOWS, Phase.RUNNING) == 2
    assert (counted(metrics.TASKS, Phase.RUNNING), counted(metrics.TASKS, Phase.PENDING)) == (1, 1)
    tally.observe(a, None, empty, status(Phase.SUCCEEDED, Phase.SUCCEEDED, Phase.SUCCEEDED))
    assert (counted(metrics.WORKFLOWS, Phase.RUNNING), counted(metrics.WORKFLOWS, Phase.SUCCEEDED)) == (1, 1)
    assert (counted(metrics.TASKS, Phase.RUNNING), counted(metrics.TASKS, Phase.SUCCEEDED)) == (0, 3)
    tally.forget(a)
    tally.forget(("metrics-test", "never seen"))
    assert counted(metrics.WORKFLOWS, Phase.SUCCEEDED) == 0 and counted(metrics.TASKS, Phase.SUCCEEDED) == 1
