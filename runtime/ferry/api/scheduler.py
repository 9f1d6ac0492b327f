"""One step of running a workflow: from what is (spec, status, attempts) to what to do. Pure.

Both executors use it: the operator (attempts are pods) and the local executor (attempts are
processes). ``step`` does no I/O. It returns the new status, the attempts to start and stop, and
the events to report; the executor carries them out. Every decision is recorded in the status,
so an executor restarted from it continues where it stood: a task's attempt number names its pod,
so an attempt never gets a second pod, and a finished task is never run again.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib

from collections.abc import Callable

from ferry.api import dag, resource
from ferry.api.resource import Phase

DONE = (Phase.SUCCEEDED, Phase.FAILED, Phase.STOPPED)


def rerun_asked(phase: str | None, stop: bool, rerun: int, acted_on: int | None) -> bool:
    """Whether a workflow in ``phase`` is asked to run its unfinished tasks again: it failed or was
    stopped, and ``spec.rerun`` was raised since (``acted_on``: ``status.rerun``)."""
    return phase in (Phase.FAILED, Phase.STOPPED) and not stop and rerun > (acted_on or 0)


@dataclasses.dataclass(frozen=True)
class Attempt:
    """What is known about one running attempt of a task."""

    finished: bool
    succeeded: bool = False
    message: str | None = None
    outputs: dict[str, resource.Output] = dataclasses.field(default_factory=dict)
    stop: bool = False
    """The attempt has failed but its pod would never end by itself (stuck before starting): delete it."""
    reason: resource.FailureReason | None = None
    """Why it failed; unset means the task's own failure."""
    result: resource.StoredResult | None = None
    """Its outputs are in this stored result (too large to report inline; a map's split, items
    and gather always report this way)."""
    started: datetime.datetime | None = None
    """When the attempt began (map units: their pod's or process's start), for their timeouts:
    a map's status keeps no time per unit."""


Observe = Callable[[resource.Task, str], Attempt | None]
"""How an executor reports on the attempt named ``pod_name`` of a task (or of a map's unit,
``Unit.name``); None if it is gone."""


@dataclasses.dataclass(frozen=True)
class Unit:
    """One attempt of a part of a map task (``resource.Task.map``), started as a pod of its own:
    its ``split`` (writes the item index), an ``item`` unit (``batchSize`` items from item
    ``index * batchSize``), or its ``gather``. ``name`` names the pod (``unit_name``)."""

    task: str
    role: str
    attempt: int
    index: int | None = None
    name: str = ""

    ROLES = ("split", "item", "gather")


def unit_name(workflow: str, task: str, role: str, attempt: int, index: int | None = None) -> str:
    """``<workflow>-<task>-split-1``, ``<workflow>-<task>-17-1``, ``<workflow>-<task>-gather-1``:
    deterministic, as ``pod_name`` is, so a unit never gets a second pod for one attempt."""
    part = str(index) if role == "item" else role
    return pod_name(workflow, f"{task}-{part}", attempt)


@dataclasses.dataclass
class Step:
    status: resource.WorkflowStatus
    create: list[tuple[str, int]] = dataclasses.field(default_factory=list)
    """(task, attempt) pairs to start (pods must exist)."""
    units: list[Unit] = dataclasses.field(default_factory=list)
    """Attempts of maps' splits, item units and gathers to start."""
    delete: list[str] = dataclasses.field(default_factory=list)
    """Attempts (pods) to stop, a map unit's too."""
    events: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)
    """(type, reason, message) for Kubernetes Events on the workflow."""

    def event(self, kind: str, reason: str, message: str) -> None:
        self.events.append((kind, reason, message))


def timestamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)


def pod_name(workflow: str, task: str, attempt: int) -> str:
    """Deterministic, so that creating the same attempt twice is refused by the API server."""
    name = f"{workflow}-{task}-{attempt}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(workflow.encode()).hexdigest()[:8]
    keep = 63 - len(f"-{digest}-{task}-{attempt}")
    return f"{workflow[:keep].rstrip('-')}-{digest}-{task}-{attempt}"


OBJECT_BYTES = 1_400_000
"""What a Workflow may take, spec and status together: etcd keeps objects up to 1.5 MiB, and
metadata needs the rest."""
TASK_STATUS_BYTES = 320
"""A task's status without its message or outputs (phase, attempts, pod name, times), as JSON."""


def room_per_task(spec: resource.WorkflowSpec) -> int:
    """Bytes of message or outputs each task may have in status, at worst all at once: what the
    object leaves after the spec and every task's fixed fields, shared equally (a failed task has
    a message, a succeeded one outputs). At most 3,500 (a termination message keeps 4 KiB), at
    least 256; larger results are stored (``TaskStatus.result``), longer messages cut."""
    spec_bytes = len(spec.model_dump_json(by_alias=True, exclude_none=True))
    return max(256, min(3500, (OBJECT_BYTES - spec_bytes) // len(spec.tasks) - TASK_STATUS_BYTES))


def bounded(message: str | None, limit: int) -> str | None:
    """``message`` cut to ``limit`` characters, keeping its start (what failed) and its end (a
    traceback's last line says why)."""
    if message is None or len(message) <= limit:
        return message
    marker = " […] "
    head = (limit - len(marker)) // 3
    return message[:head] + marker + message[-(limit - len(marker) - head):]


def next_deadline(spec: resource.WorkflowSpec, status: resource.WorkflowStatus) -> datetime.datetime | None:
    """The earliest moment the workflow moves on with no event to say so: a retry's back-off ends,
    or a running attempt reaches its timeout. An executor wakes then, rather than polling."""
    moments = []
    for task in spec.tasks:
        ts = status.tasks.get(task.name)
        if ts is None:
            continue
        if ts.phase == Phase.PENDING and ts.next_attempt_at:
            moments.append(parse_time(ts.next_attempt_at))
        elif ts.phase == Phase.RUNNING and task.timeout_seconds and ts.started_at:
            moments.append(parse_time(ts.started_at) + datetime.timedelta(seconds=task.timeout_seconds))
    return min(moments, default=None)


def backoff(policy: resource.RetryPolicy, retry: int) -> int:
    """Seconds to wait before retry number ``retry`` (1-based)."""
    return min(policy.backoff_seconds * 2 ** (retry - 1), policy.max_backoff_seconds)


def _copy(status: resource.WorkflowStatus) -> resource.WorkflowStatus:
    """A copy for a step to change, rebuilt from the status's JSON form (as the API server stores it):
    half a deep copy's time, which was most of a step of a 1,000-task workflow."""
    return resource.WorkflowStatus.model_validate(status.dump())


def step(name: str, spec: resource.WorkflowSpec, status: resource.WorkflowStatus, observe: Observe,
         now: datetime.datetime) -> Step:
    """Advance the workflow ``name`` by one step, learning about running attempts from ``observe``."""
    out = Step(_copy(status))
    st = out.status
    if st.phase in DONE:
        if not rerun_asked(st.phase, spec.stop, spec.rerun, st.rerun):
            return out
        _rerun(out, spec)
    elif spec.rerun:
        st.rerun = spec.rerun  # asked while it runs: nothing to run again
    found = dag.problems(spec)
    if found:
        return _fail_at_once(out, "invalid workflow: " + "; ".join(found), "InvalidWorkflow", now)
    if st.started_at is None:
        st.started_at = timestamp(now)
        out.event("Normal", "Started", f"workflow started with {len(spec.tasks)} tasks")
    for task in spec.tasks:
        st.tasks.setdefault(task.name, resource.TaskStatus())
    limit = min(2048, room_per_task(spec))
    for task in spec.tasks:
        if st.tasks[task.name].phase == Phase.RUNNING:
            _observe(out, task, observe, now, limit)
    if spec.stop:
        _stop_all(out, "the workflow was stopped", now)
        st.phase, st.message, st.finished_at = Phase.STOPPED, "stopped on request", timestamp(now)
        st.progress = _progress(spec, st)
        _set_conditions(st, "Stopped", now)
        out.event("Normal", "Stopped", f"workflow stopped on request ({st.progress} tasks had succeeded)")
        return out
    failed = [t for t, s in st.tasks.items() if s.phase == Phase.FAILED]
    if failed and spec.failure_policy == resource.FailurePolicy.STOP:
        _stop_all(out, f"task {failed[0]} failed", now)
    else:
        for skipped in dag.unreachable(spec, st.tasks):
            st.tasks[skipped].phase = Phase.SKIPPED
            st.tasks[skipped].message = "skipped: a task it needs did not succeed"
        for ready in dag.ready(spec, st.tasks):
            _start(out, name, next(t for t in spec.tasks if t.name == ready), now)
    _summarize(out, spec, now)
    return out


def ended_outside(status: resource.WorkflowStatus, phase: Phase, message: str, ended: str) -> resource.WorkflowStatus:
    """The status of a run its executor ended rather than the scheduler (Ctrl-C, SIGTERM, a killed
    ``ferry run``): running tasks failed, those still to run skipped, the run ``phase``."""
    out = _copy(status)
    out.phase, out.finished_at, out.message = phase, ended, message
    for state in out.tasks.values():
        if state.phase == Phase.RUNNING:
            state.phase, state.finished_at, state.message = Phase.FAILED, ended, "the run stopped"
        elif state.phase == Phase.PENDING:
            state.phase, state.message = Phase.SKIPPED, "skipped: the run stopped"
    return out


def refuse(spec: resource.WorkflowSpec, status: resource.WorkflowStatus, message: str, reason: str,
           now: datetime.datetime) -> Step:
    """Fail the workflow before any task starts, because the executor cannot run it (the local
    executor finds no container runtime for its container tasks): better at once than after its
    other tasks have run for an hour. Every task is skipped; ``message`` says why."""
    out = Step(_copy(status))
    for task in spec.tasks:
        out.status.tasks[task.name] = resource.TaskStatus(phase=Phase.SKIPPED,
                                                          message="skipped: the workflow cannot run here")
    out.status.progress = _progress(spec, out.status)
    return _fail_at_once(out, message, reason, now)


def _fail_at_once(out: Step, message: str, reason: str, now: datetime.datetime) -> Step:
    """``out`` failed for ``reason`` without running (more of) its tasks: an invalid workflow, or one
    its executor cannot run."""
    st = out.status
    st.phase, st.message, st.finished_at = Phase.FAILED, message, timestamp(now)
    st.started_at = st.started_at or st.finished_at
    _set_conditions(st, reason, now)
    out.event("Warning", reason, message)
    return out


def _observe(out: Step, task: resource.Task, observe: Observe, now: datetime.datetime, limit: int) -> None:
    ts = out.status.tasks[task.name]
    attempt = observe(task, ts.pod_name)
    if attempt is not None and attempt.message:
        # What a pod reports is the task's to write (up to 4 KiB): cut so the status stays small.
        attempt = dataclasses.replace(attempt, message=bounded(attempt.message, limit - 60))
    if attempt is None:
        _attempt_failed(out, task, f"{ts.pod_name} disappeared before the attempt finished", now,
                        resource.FailureReason.POD_LOST)
        return
    if attempt.finished and attempt.succeeded:
        ts.phase, ts.finished_at, ts.message, ts.reason = Phase.SUCCEEDED, timestamp(now), attempt.message, None
        ts.outputs = {n: resource.Output.model_validate(o) for n, o in attempt.outputs.items()}
        ts.result = attempt.result
        out.event("Normal", "TaskSucceeded", f"task {task.name} succeeded (attempt {ts.attempts})")
    elif attempt.finished:
        if attempt.stop:
            out.delete.append(ts.pod_name)
        _attempt_failed(out, task, attempt.message or "the attempt failed", now,
                        attempt.reason or resource.FailureReason.TASK_FAILED)
    elif task.timeout_seconds and now - parse_time(ts.started_at) > datetime.timedelta(seconds=task.timeout_seconds):
        out.delete.append(ts.pod_name)
        _attempt_failed(out, task, f"timed out after {task.timeout_seconds}s", now, resource.FailureReason.TIMED_OUT)
    else:
        ts.message = attempt.message


def _attempt_failed(out: Step, task: resource.Task, message: str, now: datetime.datetime,
                    reason: resource.FailureReason) -> None:
    ts = out.status.tasks[task.name]
    ts.reason = reason
    infrastructure = ts.infrastructure_failures or 0
    if reason in resource.INFRASTRUCTURE_FAILURES:
        ts.infrastructure_failures = infrastructure = infrastructure + 1
        retry = infrastructure <= task.retries.infrastructure
    else:
        retry = ts.attempts - (ts.earlier_attempts or 0) - infrastructure <= task.retries.limit
    if retry:
        wait = backoff(task.retries, ts.attempts - (ts.earlier_attempts or 0))
        ts.phase = Phase.PENDING
        ts.next_attempt_at = timestamp(now + datetime.timedelta(seconds=wait))
        ts.message = f"attempt {ts.attempts} failed: {message}; retrying in {wait}s"
        out.event("Warning", "TaskRetrying", f"task {task.name}: {ts.message}")
    else:
        ts.phase, ts.finished_at = Phase.FAILED, timestamp(now)
        ts.message = f"attempt {ts.attempts} failed: {message}"
        out.event("Warning", "TaskFailed", f"task {task.name}: {ts.message}")


def _start(out: Step, workflow: str, task: resource.Task, now: datetime.datetime) -> None:
    ts = out.status.tasks[task.name]
    if ts.next_attempt_at and parse_time(ts.next_attempt_at) > now:
        return
    ts.attempts += 1
    ts.phase, ts.pod_name, ts.next_attempt_at = Phase.RUNNING, pod_name(workflow, task.name, ts.attempts), None
    ts.started_at, ts.finished_at = timestamp(now), None
    out.create.append((task.name, ts.attempts))
    out.event("Normal", "TaskStarted", f"task {task.name} attempt {ts.attempts}: pod {ts.pod_name}")


def _stop_all(out: Step, why: str, now: datetime.datetime) -> None:
    """Failure policy Stop, or the workflow stopped: stop running attempts and skip everything not
    started."""
    for name, ts in out.status.tasks.items():
        if ts.phase == Phase.RUNNING:
            out.delete.append(ts.pod_name)
            ts.phase, ts.finished_at, ts.reason = Phase.FAILED, timestamp(now), resource.FailureReason.STOPPED
            ts.message = f"stopped: {why}"
        elif ts.phase == Phase.PENDING:
            ts.phase, ts.message, ts.next_attempt_at = Phase.SKIPPED, f"skipped: {why}", None


def _rerun(out: Step, spec: resource.WorkflowSpec) -> None:
    """``spec.rerun`` raised on a failed or stopped workflow: every task that did not succeed is
    pending again with a fresh retry budget; attempt numbers go on, so no pod name is reused."""
    st = out.status
    again = sorted(name for name, ts in st.tasks.items() if ts.phase != Phase.SUCCEEDED)
    for name in again:
        ts = st.tasks[name]
        st.tasks[name] = resource.TaskStatus(attempts=ts.attempts, earlier_attempts=ts.attempts or None,
                                             pod_name=ts.pod_name)
    st.phase, st.message, st.finished_at, st.outputs, st.rerun = Phase.RUNNING, None, None, {}, spec.rerun
    out.event("Normal", "Rerun", f"rerun {spec.rerun}: running {len(again)} tasks again ({_listed(again)}); "
                                 f"{len(st.tasks) - len(again)} succeeded tasks kept")


def _progress(spec: resource.WorkflowSpec, st: resource.WorkflowStatus) -> str:
    return f"{sum(s.phase == Phase.SUCCEEDED for s in st.tasks.values())}/{len(spec.tasks)}"


def _summarize(out: Step, spec: resource.WorkflowSpec, now: datetime.datetime) -> None:
    st = out.status
    finished = [s for s in st.tasks.values() if s.phase in (*DONE, Phase.SKIPPED)]
    st.progress = _progress(spec, st)
    if len(finished) < len(spec.tasks):
        st.phase = Phase.RUNNING
        st.message = _running(st)
        _set_conditions(st, "TasksRunning", now)
        return
    st.finished_at = timestamp(now)
    failed = sorted(name for name, s in st.tasks.items() if s.phase == Phase.FAILED)
    if failed:
        st.phase = Phase.FAILED
        st.message = f"task {failed[0]} failed: {st.tasks[failed[0]].message}"
        reason = st.tasks[failed[0]].reason
        _set_conditions(st, reason.value if reason else resource.FailureReason.TASK_FAILED.value, now)
        out.event("Warning", "Failed", st.message)
        return
    st.phase, st.message = Phase.SUCCEEDED, None
    _set_conditions(st, "Succeeded", now)
    st.outputs = {o.name: st.tasks[o.from_task.task].output(
        o.from_task.output, spec.output_kind(o.from_task.task, o.from_task.output)) for o in spec.outputs}
    out.event("Normal", "Succeeded", f"all {len(spec.tasks)} tasks succeeded")


RUNNING_SHOWN = 3
"""Running tasks named in the workflow's message; the rest are counted."""


def _running(st: resource.WorkflowStatus) -> str | None:
    """``running: a, b, c (+2 more)``: what a workflow in progress is doing, for its MESSAGE column."""
    running = sorted(name for name, s in st.tasks.items() if s.phase == Phase.RUNNING)
    return "running: " + _listed(running) if running else None


def _listed(names: list[str]) -> str:
    """``a, b, c (+2 more)``: the first ``RUNNING_SHOWN`` names, the rest counted."""
    more = len(names) - RUNNING_SHOWN
    return ", ".join(names[:RUNNING_SHOWN]) + (f" (+{more} more)" if more > 0 else "")


def _set_conditions(st: resource.WorkflowStatus, reason: str, now: datetime.datetime) -> None:
    """``Running``, ``Succeeded``, ``Failed`` and ``Stopped`` from the phase; a condition's time moves only when
    its status does, as the Kubernetes API's conventions ask."""
    previous = {c.type: c for c in st.conditions}
    conditions = []
    for kind, phase in (("Running", Phase.RUNNING), ("Succeeded", Phase.SUCCEEDED), ("Failed", Phase.FAILED),
                        ("Stopped", Phase.STOPPED)):
        status = "True" if st.phase == phase else "False"
        before = previous.get(kind)
        moved = before is None or before.status != status
        conditions.append(resource.Condition(
            type=kind, status=status, reason=reason, message=st.message if phase == Phase.FAILED == st.phase else None,
            last_transition_time=timestamp(now) if moved else before.last_transition_time))
    st.conditions = conditions
