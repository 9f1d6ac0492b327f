"""The embedded default: run a workflow on this machine, each task in its own process.

Tasks go through the same path as in pods (``ferry pod run-function``: inputs loaded from the
raw data store, the function run, outputs published), and the same scheduler decides what runs
when (``ferry.api.scheduler``), so retries, timeouts and failure policies behave as on a cluster.
Container tasks run their image under podman or docker (``ferry pod run-container``, see
``ferry.execution.localpod``); with neither working here, a workflow that has one fails before any task runs.
Independent tasks run in parallel. The raw data store is ``file://~/.cache/ferry/raw`` unless
``FERRY_RAW_DATA_PREFIX`` (or ``--store``) says otherwise. Each run is recorded in the history
(``ferry.execution.history``) as it goes, with each attempt's log, so the scratch directories the task
processes run in are removed when the run ends.

A map (``Task.map``) runs as on a cluster: its split (``ferry pod split``), its item units (each a
process of ``run-function`` or ``run-container`` with the unit's plan) and its gather (``ferry pod
gather``), at most ``parallelism`` units at once (``FERRY_LOCAL_PARALLELISM``, default a few per
core). The history records the map as one task, with its progress in its status; its units have
no attempt rows of their own (a map of 100,000 items would be 100,000 of them).
"""

from __future__ import annotations

import dataclasses
import contextlib
import datetime
import logging
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

from ferry.api import resource, scheduler, taskpod
from ferry.core import lifetime
from ferry.definitions import sources
from ferry.data import settings as settings_, store as store_
from ferry.execution import containers, forkserver, history, localpod
from ferry.pod import runner
from ferry.values import typed as values
from ferry.api.resource import Phase

logger = logging.getLogger(__name__)

Report = Callable[[str, str, str], None]
"""Receives (type, reason, message) of each event, e.g. to show progress."""
PARALLELISM_ENV = "FERRY_LOCAL_PARALLELISM"
UNITS_PER_CORE = 2
"""A map's units run at once per core by default: a unit's process mostly waits on its store."""


def default_parallelism(environ=os.environ) -> int:
    """Most units of a map running at once locally, unless the map says: ``FERRY_LOCAL_PARALLELISM``,
    else ``UNITS_PER_CORE`` per core."""
    text = environ.get(PARALLELISM_ENV, "").strip()
    if not text:
        return UNITS_PER_CORE * (os.cpu_count() or 1)
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{PARALLELISM_ENV}={text!r}: give a whole number of processes, 1 or more")
    return int(text)


def code_references(spec: resource.WorkflowSpec) -> set[str]:
    """``module:...`` of every function and shipped plugin the workflow's tasks import."""
    return ({t.function for t in spec.tasks if t.function} |
            {f"{t.plugin.module}:" for t in spec.tasks if t.plugin and t.plugin.module})


def new_run_id(workflow: str) -> str:
    """``pipeline-1a2b3c4d``: the run's execution id, its name in the history."""
    return f"{workflow}-{uuid.uuid4().hex[:8]}"


def name_problem(name: str) -> str | None:
    """What keeps ``name`` from naming a local run, or None: its run id (``new_run_id``) names the
    run's folders in the store and in the scratch folder, so it must be a Workflow's name and stay one
    with its 9 characters added."""
    return resource.object_name_problem(name, resource.MAX_OBJECT_NAME_LENGTH - len(new_run_id("")))


@dataclasses.dataclass
class _Process:
    popen: subprocess.Popen | forkserver.Child
    result: pathlib.Path
    log: pathlib.Path
    task: str
    attempt: int
    role: str | None = None
    """A map's unit (``scheduler.Unit.role``), which the history does not record one by one."""
    started: datetime.datetime | None = None


@dataclasses.dataclass
class LocalRun:
    name: str
    spec: resource.WorkflowSpec
    status: resource.WorkflowStatus
    store: store_.Store
    annotations: dict[str, Any]
    """Types of the workflow's outputs, to rebuild them as Python values."""
    run_id: str = ""
    """The execution id, the run's name in the history (``ferry get --local RUN_ID``)."""
    returns: type | None = None
    """The workflow's ``NamedTuple`` return type, which ``result`` gives back filled in."""

    def outputs(self) -> dict[str, Any]:
        return {name: values.load(self.annotations[name], output, self.store)
                for name, output in self.status.outputs.items()}

    def result(self):
        """The workflow's return value, as a Python value; raises if the run failed."""
        if self.status.phase != Phase.SUCCEEDED:
            raise RuntimeError(f"workflow {self.name} failed: {self.status.message}")
        outputs = self.outputs()
        ordered = [outputs[name] for name in self.annotations]
        if self.returns:
            return self.returns(*ordered)
        return None if not ordered else ordered[0] if len(ordered) == 1 else tuple(ordered)


class LocalExecutor:
    def __init__(self, store: store_.Store | None = None, report: Report | None = None,
                 parallelism: int | None = None):
        self.store = store or store_.current()
        self.parallelism = parallelism or default_parallelism()
        """Most units of a map running at once, for maps that set no ``parallelism``."""
        self.report = report or (lambda kind, reason, message: None)
        self.processes: dict[str, _Process] = {}
        self.scratch = pathlib.Path(tempfile.mkdtemp(prefix=history.SCRATCH_PREFIX))
        self.forks: forkserver.ForkServer | None = None
        """Where task processes come from, started with the first task (none with ``local_fork``
        off: each task starts a fresh interpreter)."""
        self.runtime: containers.Runtime | None = None
        """What runs container tasks, found before the first task starts (None: the workflow has none)."""
        self.hits: dict[str, taskpod.PublishResult] = {}
        """Results found in the cache, by attempt name, until observed: such an attempt runs no process."""
        self.cached: dict[str, str | None] = {}
        """Tasks served from the cache → the run that stored their outputs (None: not recorded)."""

    def run(self, name: str, spec: resource.WorkflowSpec, annotations: dict[str, Any],
            run_id: str | None = None) -> LocalRun:
        for field, value, problem in (("workflow name", name, name_problem(name)),
                                      ("run id", run_id, run_id and resource.object_name_problem(run_id))):
            if problem:  # before anything is made under that name
                shutil.rmtree(self.scratch, ignore_errors=True)
                raise ValueError(f"{field} {value!r} {problem}")
        execution_id = run_id or new_run_id(name)
        roots = {sources.code_root(ref) for ref in code_references(spec)}
        status = resource.WorkflowStatus()
        record = _Recorder(self.store.settings if history.enabled() else None)
        record(history.History.open_run, execution_id, name, spec, self.store.raw_data_prefix, self.scratch)
        try:
            refusal = self._refusal(spec)
            if refusal:
                step = scheduler.refuse(spec, status, refusal, "NoContainerRuntime",
                                        datetime.datetime.now(datetime.timezone.utc))
                record(history.History.update, execution_id, step.status)
                for event in step.events:
                    self.report(*event)
                status = step.status
            for task in spec.tasks:  # a Python task runs here as a process, never in its image
                if task.image and (task.function or task.plugin):
                    self.report("Normal", "ImageNotUsed", f"task {task.name}: its image {task.image} is not used in a "
                                "local run: the task runs on this machine's Python (ferry run --remote runs it "
                                "in its image)")
            while status.phase not in scheduler.DONE:
                now = datetime.datetime.now(datetime.timezone.utc)
                # A map's units run at most ``parallelism`` at once, unless the map says.
                step = scheduler.step(name, spec, status, self.observe, now, default_parallelism=self.parallelism)
                where = dict(workflow=name, namespace="local", execution_id=execution_id,
                             root=f"{self.store.raw_data_prefix}/local")
                for unit in step.units:
                    plan = taskpod.build_unit_plan(spec, step.status, unit, **where)
                    self.start(unit.name, plan.model_copy(update={"inline_limit": None}), roots,
                               next(t for t in spec.tasks if t.name == unit.task))
                for task, attempt in step.create:
                    plan = taskpod.build_plan(spec, step.status, task, attempt, **where
                                              ).model_copy(update={"inline_limit": None})  # no message to fit
                    state = step.status.tasks[task]
                    if not self._from_cache(task, state.pod_name, plan):
                        self.start(state.pod_name, plan, roots, next(t for t in spec.tasks if t.name == task))
                    record(history.History.attempt_started, execution_id, task, attempt, state.pod_name,
                           state.started_at, log_path=getattr(self.processes.get(state.pod_name), "log", None))
                for attempt_name in step.delete:
                    self.stop(attempt_name)
                self._record_ended(record, execution_id, status, step.status, now)
                record(history.History.update, execution_id, step.status)
                for task, state in step.status.tasks.items():
                    newly = state.phase == Phase.SUCCEEDED and status.tasks.get(task, state).phase != Phase.SUCCEEDED
                    if newly and any(o.uri for o in state.outputs.values()) and task not in self.cached:
                        self.report("Normal", "Published", published(task, state))
                for event in self._shown(step.events):
                    self.report(*event)
                status = step.status
                if status.phase not in scheduler.DONE:
                    self._wait()
        except BaseException as error:  # Ctrl-C, a task that cannot run here: the history says the run ended
            self._record_stopped(record, execution_id, status, error)
            raise
        finally:
            for attempt_name in list(self.processes):
                self.stop(attempt_name)
            if self.forks is not None:
                self.forks.close()
            record.close()
            shutil.rmtree(self.scratch, ignore_errors=True)  # every log that matters is in the history now
        return LocalRun(name, spec, status, self.store, annotations, execution_id)

    def _record_ended(self, record: _Recorder, run_id: str, before: resource.WorkflowStatus,
                      after: resource.WorkflowStatus, now: datetime.datetime) -> None:
        """Each attempt that ended in this step, with its log (read now: its directory goes with the run)."""
        for task, was in before.tasks.items():
            state = after.tasks[task]
            if was.phase != Phase.RUNNING or (state.phase, state.attempts) == (Phase.RUNNING, was.attempts) \
                    or was.map is not None:  # a map's units are not recorded one by one: its status says how it went
                continue
            record(history.History.attempt_finished, run_id, task, was.attempts,
                   Phase.SUCCEEDED if state.phase == Phase.SUCCEEDED else Phase.FAILED,
                   state.finished_at or scheduler.timestamp(now), state.message, state.reason,
                   history.tail(self.scratch / was.pod_name / "log"))

    def _record_stopped(self, record: _Recorder, run_id: str, status: resource.WorkflowStatus,
                        error: BaseException) -> None:
        """The run ended by ``error`` rather than the scheduler: its running attempts are stopped and
        recorded as failed, the tasks still to run as skipped."""
        ended = scheduler.timestamp(datetime.datetime.now(datetime.timezone.utc))
        for attempt_name, process in list(self.processes.items()):
            self.stop(attempt_name)
            if process.role is not None:
                continue
            record(history.History.attempt_finished, run_id, process.task, process.attempt, Phase.FAILED, ended,
                   "the run stopped", None, history.tail(process.log))
        # Ctrl-C or SIGTERM is the user stopping the run, as ``ferry stop`` on a cluster; anything else, a failure.
        phase = Phase.STOPPED if isinstance(error, KeyboardInterrupt) else Phase.FAILED
        record(history.History.update, run_id, scheduler.ended_outside(status, phase, stop_message(error), ended))

    def _refusal(self, spec: resource.WorkflowSpec) -> str | None:
        """Why the workflow cannot run here (its container tasks, no container runtime), or None;
        finds the runtime that will run them."""
        boxed = [t for t in spec.tasks if t.image and not (t.function or t.plugin)]  # none at all: the scheduler says
        if not boxed:
            return None
        others = f" (and {len(boxed) - 1} more container tasks)" if len(boxed) > 1 else ""
        try:
            self.runtime = containers.detect()
        except containers.Unavailable as error:
            return f"task {boxed[0].name} runs image {boxed[0].image}{others}: {error}"
        return None

    def start(self, attempt_name: str, plan: taskpod.PodPlan, roots: set[pathlib.Path], task: resource.Task) -> None:
        directory = self.scratch / attempt_name
        directory.mkdir(parents=True)
        env = {
            **os.environ,
            taskpod.PLAN_ENV: plan.model_dump_json(by_alias=True, exclude_none=True),
            taskpod.TERMINATION_LOG_ENV: str(directory / "result.json"),
            taskpod.WORKDIR_ENV: str(directory / "work"),
            "FERRY_RAW_DATA_PREFIX": self.store.raw_data_prefix,
            "FERRY_WORKFLOW": plan.workflow,
            "FERRY_TASK": plan.task,
            "FERRY_ATTEMPT": str(plan.attempt),
            "PYTHONPATH": os.pathsep.join(p for p in [*map(str, roots), os.environ.get("PYTHONPATH", "")] if p),
        }
        log = directory / "log"
        step = plan.role if plan.role in ("split", "gather") else \
            "run-function" if plan.function or plan.plugin else "run-container"
        if step == "run-container":
            env[localpod.CONTAINER_ENV] = self._container(plan, task, directory, log).to_json()
        if step == "run-function" and self.store.settings.local_fork and hasattr(os, "fork"):
            if self.forks is None:
                self.forks = forkserver.ForkServer()
            popen = self.forks.spawn(env, str(directory), str(log))
        else:
            env[lifetime.PARENT_ENV] = str(os.getpid())
            with open(log, "wb") as out:
                popen = subprocess.Popen([sys.executable, "-P", "-m", "ferry", "pod", step], env=env,
                                         stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, cwd=directory)
        self.processes[attempt_name] = _Process(popen, directory / "result.json", log, plan.task, plan.attempt,
                                                plan.role, datetime.datetime.now(datetime.timezone.utc))

    def _container(self, plan: taskpod.PodPlan, task: resource.Task, directory: pathlib.Path,
                   log: pathlib.Path) -> localpod.Container:
        """How ``ferry pod run-container`` runs this attempt, in folders of its own."""
        name = containers.container_name(plan)
        inputs, outputs = directory / "inputs", directory / "outputs"
        host_ids = (os.geteuid(), os.getegid()) if hasattr(os, "geteuid") else None
        return localpod.Container(
            runtime=self.runtime.name, log=str(log), inputs=str(inputs), outputs=str(outputs),
            run=containers.run_command(self.runtime, task, plan, name=name, inputs=str(inputs), outputs=str(outputs),
                                       network=containers.network(), host_ids=host_ids),
            stop=containers.stop_command(self.runtime, name, localpod.STOP_GRACE_SECONDS),
            remove=containers.remove_command(self.runtime, name))

    def _wait(self) -> None:
        """Until a task process ends, or a short while (timeouts and retry delays are due on time)."""
        if self.forks is None:
            time.sleep(0.05)
            return
        self.forks.ended.wait(0.25)
        self.forks.ended.clear()

    def _from_cache(self, task: str, attempt_name: str, plan: taskpod.PodPlan) -> bool:
        """Whether the attempt's outputs are in the cache, taken from there instead of starting a
        process (the task process would look them up the same way)."""
        hit = runner.cached_result(plan, self.store)
        if hit is not None:
            self.hits[attempt_name], self.cached[task] = hit, hit.cached_from
        return hit is not None

    def _shown(self, events: list[tuple[str, str, str]]):
        """The scheduler's events, a task served from the cache as one line of its own (it neither
        started nor published anything)."""
        for kind, reason, message in events:
            task = next((name for name in self.cached if message.startswith(f"task {name} ")), None)
            if task is None:
                yield kind, reason, message
            elif reason == "TaskSucceeded":
                source = self.cached[task]
                yield kind, "TaskCached", f"task {task} cached" + (f" (from {source})" if source else "")

    def observe(self, task: resource.Task, attempt_name: str) -> scheduler.Attempt | None:
        if attempt_name in self.hits:
            return scheduler.Attempt(True, succeeded=True, outputs=self.hits.pop(attempt_name).outputs,
                                     message="outputs reused from the cache")
        process = self.processes.get(attempt_name)
        if process is None:
            return None
        if process.popen.poll() is None:
            return scheduler.Attempt(False, started=process.started)
        del self.processes[attempt_name]
        if not process.result.exists():
            tail = process.log.read_text(errors="replace")[-800:]
            return scheduler.Attempt(True, message=f"the task process exited ({process.popen.returncode}) "
                                                   f"without a result:\n{tail}", started=process.started)
        result = taskpod.PublishResult.model_validate_json(process.result.read_text())
        if result.error:
            return scheduler.Attempt(True, message=result.error, started=process.started)
        if process.role is not None:  # a unit that succeeded: nothing of it is read again (its result is stored)
            shutil.rmtree(self.scratch / attempt_name, ignore_errors=True)
        return scheduler.Attempt(True, succeeded=True, outputs=result.outputs, result=result.result,
                                 message="outputs reused from the cache" if result.cached else None,
                                 started=process.started)

    def stop(self, attempt_name: str) -> None:
        process = self.processes.pop(attempt_name, None)
        if process and process.popen.poll() is None:
            _signal(process.popen.pid, signal.SIGTERM)
            try:
                process.popen.wait(10)
            except subprocess.TimeoutExpired:
                _signal(process.popen.pid, signal.SIGKILL)
                process.popen.wait()


def _signal(pid: int, number: int) -> None:
    """Signal a task process and everything it started (its process group); a process stopped just
    after it started may not lead its group yet (Ctrl-C at that moment): then the process alone."""
    try:
        os.killpg(pid, number)
    except ProcessLookupError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, number)


class _Recorder:
    """Writes a run into the history, and never fails the run: the first error is logged as a
    warning, and the run goes on unrecorded."""

    def __init__(self, settings: settings_.Settings | None):
        """``settings``: whose cache holds the history; None records nothing."""
        self.history: history.History | None = None
        self.path = history.default_path(settings) if settings is not None else None
        if self.path is not None:
            self._guarded(lambda: setattr(self, "history", history.History(self.path)))

    def __call__(self, method: Callable[..., None], *args, **kwargs) -> None:
        if self.history is not None:
            self._guarded(lambda: method(self.history, *args, **kwargs))

    def close(self) -> None:
        if self.history is not None:
            self._guarded(self.history.close)
            self.history = None

    def _guarded(self, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception as error:  # noqa: BLE001 - the history is a record, not part of the run
            logger.warning("this run is not recorded in the history %s (%s: %s); FERRY_HISTORY=off stops trying",
                           self.path, type(error).__name__, error)
            if self.history is not None:
                try:
                    self.history.close()
                except Exception:  # noqa: BLE001
                    pass
            self.history = None
            self.path = None


def stop_message(error: BaseException) -> str:
    """Why a run ended before the scheduler ended it: ``the run was stopped (SIGTERM)``."""
    if isinstance(error, KeyboardInterrupt):
        return f"the run was stopped ({'SIGTERM' if isinstance(error, lifetime.Terminated) else 'Ctrl-C'})"
    return f"the run stopped: {type(error).__name__}{f': {error}' if str(error) else ''}"


def published(task: str, state: resource.TaskStatus) -> str:
    """``task collect published 3 files (1.2 KiB)``: what a finished task moved to the store."""
    stored = [o for o in state.outputs.values() if o.uri]
    size = float(sum(o.size or 0 for o in stored))
    files = sum(o.file_count or 1 for o in stored)
    return f"task {task} published {files} file{'' if files == 1 else 's'} ({_human(size)})"


def _human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def run_workflow(workflow, inputs: dict[str, Any], store: store_.Store | None = None,
                 report: Report | None = None, overwrite_cache: bool = False, run_id: str | None = None) -> LocalRun:
    """Run a ``@ferry.workflow`` here, with ``inputs`` over its defaults; ``run_id`` names the run
    (``new_run_id`` by default)."""
    spec = workflow.compile(**inputs).model_copy(update={"overwrite_cache": overwrite_cache})
    run = LocalExecutor(store, report).run(workflow.name, spec, workflow.outputs, run_id)
    return dataclasses.replace(run, returns=workflow.returns)


def run_task(task, arguments: dict[str, Any]):
    """Run one ``@ferry.task`` here, as a one-task workflow; returns its value."""
    from ferry.definitions import workflows

    def one(**kwargs):
        return task(**kwargs)

    one.__annotations__ = {**task.inputs, "return": _return_annotation(task)}
    one.__signature__ = task.signature
    one.__name__ = task.fn.__name__
    workflow = workflows.Workflow(one)
    return run_workflow(workflow, arguments).result()


def _return_annotation(task) -> Any:
    if task.returns:
        return task.returns
    outputs = list(task.outputs.values())
    if not outputs:
        return None
    return outputs[0] if len(outputs) == 1 else tuple[tuple(outputs)]
