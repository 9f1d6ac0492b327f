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
import math

from collections.abc import Callable

from ferry.api import dag, items, resource
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
    deadline: datetime.datetime | None = None
    """The earliest moment a map unit seen running in this step reaches its timeout (the status
    keeps no time per unit): pass it to ``next_deadline``."""

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


def next_deadline(spec: resource.WorkflowSpec, status: resource.WorkflowStatus,
                  units: datetime.datetime | None = None) -> datetime.datetime | None:
    """The earliest moment the workflow moves on with no event to say so: a retry's back-off ends
    (a task's, a map stage's or a map unit's), or a running attempt reaches its timeout (a map
    unit's: ``units``, the step's ``Step.deadline``). An executor wakes then, rather than polling."""
    moments = [units] if units else []
    for task in spec.tasks:
        ts = status.tasks.get(task.name)
        if ts is None or ts.phase not in (Phase.PENDING, Phase.RUNNING):
            continue
        if ts.next_attempt_at:
            moments.append(parse_time(ts.next_attempt_at))
        if task.map and ts.map and ts.map.retry_at:
            moments.append(parse_time(min(ts.map.retry_at.values())))  # one format: text order is time order
        elif ts.phase == Phase.RUNNING and not task.map and task.timeout_seconds and ts.started_at:
            moments.append(parse_time(ts.started_at) + datetime.timedelta(seconds=task.timeout_seconds))
    return min(moments, default=None)


def backoff(policy: resource.RetryPolicy, retry: int) -> int:
    """Seconds to wait before retry number ``retry`` (1-based)."""
    return min(policy.backoff_seconds * 2 ** (retry - 1), policy.max_backoff_seconds)


def _copy(status: resource.WorkflowStatus) -> resource.WorkflowStatus:
    """A copy for a step to change, rebuilt from the status's JSON form (as the API server stores it):
    half a deep copy's time, which was most of a step of a 1,000-task workflow."""
    return resource.WorkflowStatus.model_validate(status.dump())


DEFAULT_PARALLELISM = 100
"""Most pods of one map running at once when neither the map nor the executor says."""


@dataclasses.dataclass
class _Maps:
    """What one step knows of the workflow's maps: each one's record, decoded once and packed again
    at the end (``_pack``), and how many of its units may run at once."""

    workflow: str
    parallelism: int
    records: dict[str, items.Record] = dataclasses.field(default_factory=dict)
    damaged: dict[str, str] = dataclasses.field(default_factory=dict)
    """Maps whose record is not one (a status edited by hand), and why."""

    def record(self, name: str, ms: resource.MapStatus) -> items.Record | None:
        if name not in self.records and name not in self.damaged:
            try:
                self.records[name] = items.Record.decode(ms.record, ms.units or 0)
            except ValueError as error:
                self.damaged[name] = f"its status is damaged ({error}): run it again"
        return self.records.get(name)


def step(name: str, spec: resource.WorkflowSpec, status: resource.WorkflowStatus, observe: Observe,
         now: datetime.datetime, *, default_parallelism: int = DEFAULT_PARALLELISM) -> Step:
    """Advance the workflow ``name`` by one step, learning about running attempts (a map's units
    too) from ``observe``. ``default_parallelism``: most units of a map running at once when the
    map does not say (``Map.parallelism``), the executor's setting."""
    out = Step(_copy(status))
    st = out.status
    maps = _Maps(name, default_parallelism)
    if st.phase in DONE:
        if not rerun_asked(st.phase, spec.stop, spec.rerun, st.rerun):
            return out
        _rerun(out, spec, maps)
    elif spec.rerun:
        st.rerun = spec.rerun  # asked while it runs: nothing to run again
    found = dag.problems(spec)
    if found:
        _pack(out, spec, maps)
        return _fail_at_once(out, "invalid workflow: " + "; ".join(found), "InvalidWorkflow", now)
    if st.started_at is None:
        st.started_at = timestamp(now)
        out.event("Normal", "Started", f"workflow started with {len(spec.tasks)} tasks")
    for task in spec.tasks:
        st.tasks.setdefault(task.name, resource.TaskStatus())
    limit = min(2048, room_per_task(spec))
    for task in spec.tasks:
        if st.tasks[task.name].phase == Phase.RUNNING:
            if task.map and st.tasks[task.name].map:
                _observe_map(out, task, observe, now, maps)
            else:
                _observe(out, task, observe, now, limit)
    if spec.stop:
        _stop_all(out, "the workflow was stopped", now, maps)
        _pack(out, spec, maps)
        st.phase, st.message, st.finished_at = Phase.STOPPED, "stopped on request", timestamp(now)
        st.progress = _progress(spec, st)
        _set_conditions(st, "Stopped", now)
        out.event("Normal", "Stopped", f"workflow stopped on request ({st.progress} tasks had succeeded)")
        return out
    failed = [t for t, s in st.tasks.items() if s.phase == Phase.FAILED]
    if failed and spec.failure_policy == resource.FailurePolicy.STOP:
        _stop_all(out, f"task {failed[0]} failed", now, maps)
    else:
        for skipped in dag.unreachable(spec, st.tasks):
            st.tasks[skipped].phase = Phase.SKIPPED
            st.tasks[skipped].message = "skipped: a task it needs did not succeed"
        for ready in dag.ready(spec, st.tasks):
            _start(out, name, next(t for t in spec.tasks if t.name == ready), now)
        for task in spec.tasks:
            if task.map and st.tasks[task.name].map and st.tasks[task.name].phase == Phase.RUNNING:
                _launch_map(out, task, now, maps)
    _pack(out, spec, maps)
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
    wait = _retry_wait(task, ts, ts.attempts, reason, now)
    if wait is not None:
        ts.phase = Phase.PENDING
        ts.message = f"attempt {ts.attempts} failed: {message}; retrying in {wait}s"
        out.event("Warning", "TaskRetrying", f"task {task.name}: {ts.message}")
    else:
        ts.phase, ts.finished_at = Phase.FAILED, timestamp(now)
        ts.message = f"attempt {ts.attempts} failed: {message}"
        out.event("Warning", "TaskFailed", f"task {task.name}: {ts.message}")


def _retry_wait(task: resource.Task, ts: resource.TaskStatus, attempts: int, reason: resource.FailureReason,
                now: datetime.datetime) -> int | None:
    """After a failed attempt (``attempts`` made, of the task or of its map's split or gather): the
    seconds until it is tried again, its ``next_attempt_at`` set; None when its budget is spent.
    Records the reason, and counts an infrastructure failure."""
    ts.reason = reason
    infrastructure = ts.infrastructure_failures or 0
    if reason in resource.INFRASTRUCTURE_FAILURES:
        ts.infrastructure_failures = infrastructure = infrastructure + 1
    tries = attempts - (ts.earlier_attempts or 0)
    if not _retried(task.retries, tries - infrastructure, infrastructure, reason):
        return None
    wait = backoff(task.retries, tries)
    ts.next_attempt_at = timestamp(now + datetime.timedelta(seconds=wait))
    return wait


def _retried(policy: resource.RetryPolicy, own: int, infrastructure: int, reason: resource.FailureReason) -> bool:
    """Whether a failure for ``reason`` is tried again, ``own`` and ``infrastructure`` failures
    counted so far, this one included: each kind has its own budget (``RetryPolicy``)."""
    if reason in resource.INFRASTRUCTURE_FAILURES:
        return infrastructure <= policy.infrastructure
    return own <= policy.limit


def _start(out: Step, workflow: str, task: resource.Task, now: datetime.datetime) -> None:
    ts = out.status.tasks[task.name]
    if task.map:
        _start_map(out, workflow, task, now)
        return
    if ts.next_attempt_at and parse_time(ts.next_attempt_at) > now:
        return
    ts.attempts += 1
    ts.phase, ts.pod_name, ts.next_attempt_at = Phase.RUNNING, pod_name(workflow, task.name, ts.attempts), None
    ts.started_at, ts.finished_at = timestamp(now), None
    out.create.append((task.name, ts.attempts))
    out.event("Normal", "TaskStarted", f"task {task.name} attempt {ts.attempts}: pod {ts.pod_name}")


def _stop_all(out: Step, why: str, now: datetime.datetime, maps: _Maps) -> None:
    """Failure policy Stop, or the workflow stopped: stop running attempts (a map's running units)
    and skip everything not started (a map's pending units)."""
    for name, ts in out.status.tasks.items():
        if ts.phase == Phase.RUNNING:
            if ts.map:
                _halt_map(out, name, maps)
            else:
                out.delete.append(ts.pod_name)
            ts.phase, ts.finished_at, ts.reason = Phase.FAILED, timestamp(now), resource.FailureReason.STOPPED
            ts.message = f"stopped: {why}"
        elif ts.phase == Phase.PENDING:
            ts.phase, ts.message, ts.next_attempt_at = Phase.SKIPPED, f"skipped: {why}", None


def _rerun(out: Step, spec: resource.WorkflowSpec, maps: _Maps) -> None:
    """``spec.rerun`` raised on a failed or stopped workflow: every task that did not succeed is
    pending again with a fresh retry budget; attempt numbers go on, so no pod name is reused. A
    map keeps its split and its succeeded units, and runs the others again."""
    st = out.status
    again = sorted(name for name, ts in st.tasks.items() if ts.phase != Phase.SUCCEEDED)
    for name in again:
        ts = st.tasks[name]
        ms = ts.map
        if ms is not None:
            if ms.index is not None and (record := maps.record(name, ms)) is not None:
                record.replace((Phase.RUNNING, Phase.FAILED, Phase.SKIPPED), Phase.PENDING)
            ms = ms.model_copy(update={"stage": "Items" if ms.index is not None else "Split", "retry_at": {},
                                       "failures": []})
        earlier = (ms.attempts if ms else ts.attempts) or None
        st.tasks[name] = resource.TaskStatus(attempts=ts.attempts, earlier_attempts=earlier, pod_name=ts.pod_name,
                                             map=ms)
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
    """``running: a, b, c (+2 more)``: what a workflow in progress is doing, for its MESSAGE column;
    a map with its progress, ``process (1,532/100,000)``."""
    running = sorted(name for name, s in st.tasks.items() if s.phase == Phase.RUNNING)
    return "running: " + _listed([_with_progress(name, st.tasks[name].map) for name in running]) if running else None


def _with_progress(name: str, ms: resource.MapStatus | None) -> str:
    if ms is None:
        return name
    if ms.stage == "Items":
        return f"{name} ({ms.succeeded:,}/{ms.units:,})"
    return f"{name} ({ms.stage.lower()})"


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


# Maps: a task run once per item, in three stages (``resource.MapStatus``). Each step observes the
# running units (at most the map's parallelism) and starts as many as there is room for; every
# scan over all units is one of the record's, in C.

FAILURE_MESSAGE = 300
"""Characters kept of each of a map's recorded failures' messages."""


def _start_map(out: Step, workflow: str, task: resource.Task, now: datetime.datetime) -> None:
    """A map's first step (its split), or its first after a rerun (where it stood)."""
    ts = out.status.tasks[task.name]
    ts.phase, ts.finished_at, ts.next_attempt_at = Phase.RUNNING, None, None
    ts.started_at = ts.started_at or timestamp(now)
    if ts.map is None:
        ts.map = resource.MapStatus()
    if ts.map.stage != "Items":
        _start_stage(out, workflow, task)


def _start_stage(out: Step, workflow: str, task: resource.Task) -> None:
    """The next attempt of the current stage's one pod (the split or the gather)."""
    ts = out.status.tasks[task.name]
    ms = ts.map
    ms.attempts += 1
    ts.next_attempt_at = None
    role = ms.stage.lower()
    unit = Unit(task.name, role, ms.attempts, name=unit_name(workflow, task.name, role, ms.attempts))
    out.units.append(unit)
    out.event("Normal", "TaskStarted", f"task {task.name}: {role} attempt {ms.attempts}: pod {unit.name}")


def _observe_map(out: Step, task: resource.Task, observe: Observe, now: datetime.datetime, maps: _Maps) -> None:
    ts = out.status.tasks[task.name]
    ms = ts.map
    if ms.stage != "Items":
        if ts.next_attempt_at is None:  # else waiting for a retry's back-off: no pod
            _observe_stage(out, task, observe, now, maps)
        return
    record = maps.record(task.name, ms)
    if record is None:
        _map_failed(out, task.name, maps.damaged[task.name], now, maps, None)
        return
    for unit in record.units(Phase.RUNNING):
        name = unit_name(maps.workflow, task.name, "item", record.attempt(unit), unit)
        attempt = observe(task, name)
        if attempt is None:
            _unit_failed(out, task, record, unit, f"{name} disappeared before the attempt finished", now,
                         resource.FailureReason.POD_LOST)
        elif attempt.finished and attempt.succeeded:
            record.set(unit, Phase.SUCCEEDED)
        elif attempt.finished:
            if attempt.stop:
                out.delete.append(name)
            _unit_failed(out, task, record, unit, attempt.message or "the attempt failed", now,
                         attempt.reason or resource.FailureReason.TASK_FAILED)
        elif task.timeout_seconds and attempt.started:
            ends = attempt.started + datetime.timedelta(seconds=task.timeout_seconds)
            if now > ends:
                out.delete.append(name)
                _unit_failed(out, task, record, unit, f"timed out after {task.timeout_seconds}s", now,
                             resource.FailureReason.TIMED_OUT)
            else:
                out.deadline = min(out.deadline or ends, ends)
    allowed = ms.units - _needed(task.map.min_success_ratio, ms.units)
    if record.count(Phase.FAILED) > allowed:  # it cannot succeed any more: no need to run the rest
        _map_failed(out, task.name, _too_many_failed(task, ms, record), now, maps,
                     ms.failures[0].reason if ms.failures else None)


def _observe_stage(out: Step, task: resource.Task, observe: Observe, now: datetime.datetime, maps: _Maps) -> None:
    ts = out.status.tasks[task.name]
    ms = ts.map
    name = unit_name(maps.workflow, task.name, ms.stage.lower(), ms.attempts)
    attempt = observe(task, name)
    if attempt is None:
        _stage_failed(out, task, f"{name} disappeared before the attempt finished", now, maps,
                      resource.FailureReason.POD_LOST)
    elif attempt.finished and not attempt.succeeded:
        if attempt.stop:
            out.delete.append(name)
        _stage_failed(out, task, bounded(attempt.message, FAILURE_MESSAGE) or "the attempt failed", now, maps,
                      attempt.reason or resource.FailureReason.TASK_FAILED)
    elif attempt.finished and ms.stage == "Split":
        _split_done(out, task, attempt, now, maps)
    elif attempt.finished:
        if attempt.result is None and not attempt.outputs and task.outputs:
            _stage_failed(out, task, "the gather reported no result", now, maps, resource.FailureReason.PUBLISH_FAILED)
            return
        ts.phase, ts.finished_at, ts.reason = Phase.SUCCEEDED, timestamp(now), None
        ts.outputs = {n: resource.Output.model_validate(o) for n, o in attempt.outputs.items()}
        ts.result = attempt.result
        ts.message = _finished_message(task, ms)
        out.event("Normal", "TaskSucceeded", f"task {task.name} succeeded: {ts.message}")


def _split_done(out: Step, task: resource.Task, attempt: Attempt, now: datetime.datetime, maps: _Maps) -> None:
    """The split stored the item index: the map knows its size, and its units can start."""
    ts = out.status.tasks[task.name]
    ms = ts.map
    counted = attempt.outputs.get("items")
    count = resource.Output.model_validate(counted).value if counted is not None else None
    if type(count) is not int or count < 0 or attempt.result is None:
        _stage_failed(out, task, "the split reported no item count and index", now, maps,
                      resource.FailureReason.PUBLISH_FAILED)
        return
    batch = task.map.batch_size
    units = math.ceil(count / batch)
    if count > resource.MAX_MAP_ITEMS or units > resource.MAX_MAP_UNITS:
        fix = (f"set map.batchSize to {math.ceil(count / resource.MAX_MAP_UNITS)} or more"
               if count <= resource.MAX_MAP_ITEMS else f"split what it maps over into maps of at most "
               f"{resource.MAX_MAP_ITEMS:,} items")
        _map_failed(out, task.name, f"map over {count:,} items needs {units:,} pods, more than "
                    f"{resource.MAX_MAP_UNITS:,}: {fix}", now, maps, None)
        return
    record = items.Record(units)
    maps.records[task.name] = record
    ms.stage, ms.items, ms.units, ms.index, ms.attempts = "Items", count, units, attempt.result, 0
    ts.earlier_attempts = ts.infrastructure_failures = ts.reason = None
    out.event("Normal", "MapSplit", f"task {task.name}: {count:,} items in {units:,} pods")


def _stage_failed(out: Step, task: resource.Task, message: str, now: datetime.datetime, maps: _Maps,
                  reason: resource.FailureReason) -> None:
    """The split's or the gather's attempt failed: retried with the task's budget, or the map fails."""
    ts = out.status.tasks[task.name]
    ms = ts.map
    role = ms.stage.lower()
    wait = _retry_wait(task, ts, ms.attempts, reason, now)
    if wait is not None:
        ts.message = f"{role} attempt {ms.attempts} failed: {message}; retrying in {wait}s"
        out.event("Warning", "TaskRetrying", f"task {task.name}: {ts.message}")
    else:
        _map_failed(out, task.name, f"{role} attempt {ms.attempts} failed: {message}", now, maps, reason)


def _unit_failed(out: Step, task: resource.Task, record: items.Record, unit: int, message: str,
                 now: datetime.datetime, reason: resource.FailureReason) -> None:
    """An item unit's attempt failed: it waits for its retry (holding its place under parallelism,
    so ``retry_at`` never holds more than that) or fails for good. The first failures are kept."""
    ms = out.status.tasks[task.name].map
    attempt = record.attempt(unit)
    if len(ms.failures) < resource.MAP_FAILURES_KEPT:
        ms.failures.append(resource.ItemFailure(unit=unit, attempt=attempt, reason=reason,
                                                message=bounded(message, FAILURE_MESSAGE)))
        out.event("Warning", "ItemFailed", f"task {task.name}: unit {unit} attempt {attempt} failed: "
                                           f"{ms.failures[-1].message}")
    counts = record.infrastructure if reason in resource.INFRASTRUCTURE_FAILURES else record.failures
    counts[unit] = min(255, counts[unit] + 1)
    own, infrastructure = record.failures[unit], record.infrastructure[unit]
    if attempt < items.MAX_ATTEMPTS and _retried(task.retries, own, infrastructure, reason):
        wait = backoff(task.retries, own + infrastructure)
        record.set(unit, Phase.PENDING)
        ms.retry_at[str(unit)] = timestamp(now + datetime.timedelta(seconds=wait))
    else:
        record.set(unit, Phase.FAILED)


def _launch_map(out: Step, task: resource.Task, now: datetime.datetime, maps: _Maps) -> None:
    """Start what a running map has room for: its stage's pod after a back-off, or item units
    (retries first) up to its parallelism; once every unit has ended, the gather, or the failure."""
    ts = out.status.tasks[task.name]
    ms = ts.map
    if ms.stage != "Items":
        if ts.next_attempt_at and parse_time(ts.next_attempt_at) <= now:
            _start_stage(out, maps.workflow, task)
        return
    record = maps.record(task.name, ms)
    if record is None:
        _map_failed(out, task.name, maps.damaged[task.name], now, maps, None)
        return
    due = timestamp(now)  # one format: text order is time order
    for key in sorted((k for k, at in ms.retry_at.items() if at <= due), key=int):
        del ms.retry_at[key]
        _start_unit(out, task, record, int(key), maps.workflow)
    room = (task.map.parallelism or maps.parallelism) - record.count(Phase.RUNNING) - len(ms.retry_at)
    unit = record.find(Phase.PENDING) if room > 0 else -1
    while unit != -1 and room > 0:
        if str(unit) not in ms.retry_at:
            _start_unit(out, task, record, unit, maps.workflow)
            room -= 1
        unit = record.find(Phase.PENDING, unit + 1)
    if record.count(Phase.PENDING) or record.count(Phase.RUNNING):
        return
    if record.count(Phase.SUCCEEDED) < _needed(task.map.min_success_ratio, ms.units):
        _map_failed(out, task.name, _too_many_failed(task, ms, record), now, maps,
                    ms.failures[0].reason if ms.failures else None)
        return
    ms.stage = "Gather"
    ts.earlier_attempts, ts.infrastructure_failures, ts.reason = ms.attempts or None, None, None
    _start_stage(out, maps.workflow, task)


def _start_unit(out: Step, task: resource.Task, record: items.Record, unit: int, workflow: str) -> None:
    attempt = record.attempt(unit) + 1
    if attempt > items.MAX_ATTEMPTS:  # reruns used every attempt number a pod name can have
        record.set(unit, Phase.FAILED)
        return
    record.set(unit, Phase.RUNNING, attempt)
    out.units.append(Unit(task.name, "item", attempt, unit, unit_name(workflow, task.name, "item", attempt, unit)))


def _needed(ratio: float, units: int) -> int:
    """Units that must succeed: ``ratio`` of them, rounded up (``0.95`` of 10,000 is 9,500)."""
    return min(units, math.ceil(round(ratio * units, 6)))


def _what(task: resource.Task) -> str:
    """``items``, or for batches ``units (batches of 10 items)``: what the counts count."""
    return "items" if task.map.batch_size == 1 else f"units (batches of {task.map.batch_size} items)"


def _too_many_failed(task: resource.Task, ms: resource.MapStatus, record: items.Record) -> str:
    """``412 of 10,000 items failed (min success ratio 0.95): first: unit 17: ...``"""
    failed = record.count(Phase.FAILED)
    final = ([f for f in ms.failures if record.phase(f.unit) == Phase.FAILED and record.attempt(f.unit) == f.attempt]
             or [f for f in ms.failures if record.phase(f.unit) == Phase.FAILED] or ms.failures)
    first = f": first: unit {final[0].unit}: {final[0].message}" if final else ""
    return (f"{failed:,} of {ms.units:,} {_what(task)} failed (min success ratio "
            f"{task.map.min_success_ratio:g}){first}")


def _finished_message(task: resource.Task, ms: resource.MapStatus) -> str:
    failed = ms.failed
    done = f"{ms.succeeded:,} of {ms.units:,} {_what(task)} succeeded"
    return done + (f" ({failed:,} failed, min success ratio {task.map.min_success_ratio:g})" if failed else "")


def _map_failed(out: Step, name: str, message: str, now: datetime.datetime, maps: _Maps,
                reason: resource.FailureReason | None) -> None:
    """The map fails for good: its running pods are stopped, its pending units skipped."""
    ts = out.status.tasks[name]
    _halt_map(out, name, maps)
    ts.phase, ts.finished_at, ts.message = Phase.FAILED, timestamp(now), message
    ts.reason = reason or resource.FailureReason.TASK_FAILED
    out.event("Warning", "TaskFailed", f"task {name}: {message}")


def _halt_map(out: Step, name: str, maps: _Maps) -> None:
    """Delete a map's running pods (its stage's, or its running units') and skip its pending units;
    the caller says how the task ends."""
    ts = out.status.tasks[name]
    ms = ts.map
    if ms.stage != "Items":
        if ts.next_attempt_at is None:
            out.delete.append(unit_name(maps.workflow, name, ms.stage.lower(), ms.attempts))
        ts.next_attempt_at = None
        return
    record = maps.record(name, ms)
    if record is None:
        return
    for unit in record.units(Phase.RUNNING):
        out.delete.append(unit_name(maps.workflow, name, "item", record.attempt(unit), unit))
    record.replace((Phase.RUNNING, Phase.PENDING), Phase.SKIPPED)
    ms.retry_at = {}


def _pack(out: Step, spec: resource.WorkflowSpec, maps: _Maps) -> None:
    """Write each map's record back with its counts, and a running map's message its progress."""
    for name, record in maps.records.items():
        ts = out.status.tasks[name]
        ms = ts.map
        ms.record = record.encode(ms.record)
        ms.pending, ms.running = record.count(Phase.PENDING), record.count(Phase.RUNNING)
        ms.succeeded, ms.failed = record.count(Phase.SUCCEEDED), record.count(Phase.FAILED)
        if ts.phase == Phase.RUNNING and ms.stage == "Items":
            task = next(t for t in spec.tasks if t.name == name)
            waiting = f", {len(ms.retry_at):,} waiting to retry" if ms.retry_at else ""
            failed = f", {ms.failed:,} failed" if ms.failed else ""
            ts.message = (f"{ms.succeeded:,}/{ms.units:,} {_what(task)} succeeded, {ms.running:,} "
                          f"running{waiting}{failed}")
    for task in spec.tasks:
        ts = out.status.tasks.get(task.name)
        if task.map and ts is not None and ts.map and ts.phase == Phase.RUNNING and ts.map.stage != "Items" \
                and ts.next_attempt_at is None:
            ts.message = "splitting: reading what it maps over" if ts.map.stage == "Split" else \
                f"gathering the outputs of {ts.map.items:,} items"
