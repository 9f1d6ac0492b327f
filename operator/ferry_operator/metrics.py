"""Prometheus metrics: workflows and tasks by phase, task durations, bytes moved.

Updated from each reconciliation's before/after status, so they need no extra API calls.
"""

from __future__ import annotations

import collections

import prometheus_client

from ferry.api import resource, scheduler
from ferry.api.resource import Phase

WORKFLOWS = prometheus_client.Gauge("ferry_workflows", "Workflows seen by this operator, by phase", ["phase"])
TASKS = prometheus_client.Gauge("ferry_tasks", "Tasks of the workflows seen by this operator, by phase", ["phase"])
TASK_SECONDS = prometheus_client.Histogram(
    "ferry_task_duration_seconds", "Wall time of finished task attempts", ["outcome"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600))
BYTES_MOVED = prometheus_client.Counter(
    "ferry_bytes_moved", "Bytes published as task outputs and fetched as task inputs", ["direction"])

for _phase in Phase:  # every phase shown, at zero until one counts
    WORKFLOWS.labels(_phase.value)
    TASKS.labels(_phase.value)


def serve(port: int) -> None:
    prometheus_client.start_http_server(port)


def _input_bytes(spec: resource.WorkflowSpec, status: resource.WorkflowStatus, name: str):
    task = next((t for t in spec.tasks if t.name == name), None)
    for item in task.inputs if task else ():
        if item.from_task:
            produced = status.tasks.get(item.from_task.task, resource.TaskStatus()).outputs.get(item.from_task.output)
            yield (produced.size or 0) if produced and produced.kind != resource.Kind.VALUE else 0


class Tally:
    """Each workflow's share of the gauges, as its last reconciliation left it: what to take away
    when it changes or goes. The gauges themselves are the process's (Prometheus' registry is)."""

    def __init__(self) -> None:
        self._phases: dict[tuple[str, str], tuple[Phase, collections.Counter[Phase]]] = {}

    def observe(self, key: tuple[str, str], spec: resource.WorkflowSpec | None, before: resource.WorkflowStatus,
                after: resource.WorkflowStatus) -> None:
        """Account for one reconciliation of the workflow ``key`` (namespace, name)."""
        self._count(key, -1)
        self._phases[key] = (after.phase, collections.Counter(t.phase for t in after.tasks.values()))
        self._count(key, +1)
        for name, task in after.tasks.items():
            previous = before.tasks.get(name, resource.TaskStatus())
            if task.attempts > previous.attempts and spec is not None:
                fetched = sum(_input_bytes(spec, after, name))
                BYTES_MOVED.labels("fetched").inc(fetched)
            ended = task.phase in (Phase.SUCCEEDED, Phase.FAILED) and previous.phase == Phase.RUNNING
            if ended and task.started_at and task.finished_at:
                seconds = scheduler.parse_time(task.finished_at) - scheduler.parse_time(task.started_at)
                TASK_SECONDS.labels(task.phase.value.lower()).observe(seconds.total_seconds())
            if task.phase == Phase.SUCCEEDED and previous.phase != Phase.SUCCEEDED:
                BYTES_MOVED.labels("published").inc(sum(o.size or 0 for o in task.outputs.values()))

    def forget(self, key: tuple[str, str]) -> None:
        self._count(key, -1)
        self._phases.pop(key, None)

    def _count(self, key: tuple[str, str], sign: int) -> None:
        """Add (or take away) the workflow's share of the gauges: a reconciliation costs the same
        with ten thousand workflows known as with one."""
        if key in self._phases:
            phase, tasks = self._phases[key]
            WORKFLOWS.labels(phase.value).inc(sign)
            for task_phase, count in tasks.items():
                TASKS.labels(task_phase.value).inc(sign * count)
