"""The history of local runs, in SQLite: what ``ferry get --local`` and the web UI read.

A cluster keeps each run in its Workflow object; a local run (``ferry run``, or a workflow called
from Python) leaves nothing behind but its outputs. So the local executor records each run here
as it goes: the run (spec, status), each attempt with its log, and each task's outputs and
inputs by URI, so "which task produced this URI, and which tasks read it" is one indexed query.

The file is ``<cache_dir>/history.sqlite3``. ``FERRY_HISTORY=off`` stops recording;
``FERRY_HISTORY=/some/file.sqlite3`` puts the history there instead. It is in WAL mode with a
busy timeout, so a reader (the UI) never blocks a run, and two ``ferry run`` at once both write
(one waits for the other's short transaction). ``PRAGMA user_version`` is the schema's version.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import pathlib
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

from ferry.api import resource, scheduler, taskpod
from ferry.core import lifetime
from ferry.data import settings as settings_

FILE_NAME = "history.sqlite3"
ENV = "FERRY_HISTORY"
SCHEMA_VERSION = 3
BUSY_SECONDS = 30.0
"""How long a write waits for another process's transaction before giving up."""
LOG_LIMIT = 1024 * 1024
"""Bytes of an attempt's log kept: its end, where the error is."""
CUT_MARKER = "[… earlier output cut: the history keeps the last 1 MiB of each log …]\n"
ABANDONED = "the run was stopped: its ferry run process ended without finishing it (killed?)"
SCRATCH_PREFIX = "ferry-run-"
"""How the executor names its scratch folders: the only folders ``_settle`` removes."""
NAMESPACE = "local"
"""What local runs show as their namespace, next to the cluster's."""

SCHEMA = [
    """CREATE TABLE runs (
        id TEXT PRIMARY KEY,          -- the execution id: <workflow>-<8 hex>
        workflow TEXT NOT NULL,
        phase TEXT NOT NULL,
        progress TEXT,
        message TEXT,
        created TEXT NOT NULL,        -- as Kubernetes writes times: 2024-05-01T12:00:00Z
        started_at TEXT,
        finished_at TEXT,
        spec TEXT NOT NULL,           -- JSON, as the CRD has it (camelCase)
        status TEXT NOT NULL,         -- JSON, as the CRD has it
        store_prefix TEXT NOT NULL)""",
    "CREATE INDEX runs_created ON runs (created)",
    "CREATE INDEX runs_phase ON runs (phase, created)",
    """CREATE TABLE attempts (
        run TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        task TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        name TEXT NOT NULL,
        phase TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        message TEXT,
        reason TEXT,
        log TEXT,                     -- the end of the log, once the attempt ended
        log_path TEXT,                -- where the log is written while the attempt runs
        PRIMARY KEY (run, task, attempt))""",
    """CREATE TABLE outputs (
        run TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        task TEXT NOT NULL,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        uri TEXT,                     -- NULL for values carried in status
        size INTEGER,
        file_count INTEGER,
        manifest_digest TEXT,
        sha256 TEXT,
        PRIMARY KEY (run, task, name))""",
    "CREATE INDEX outputs_uri ON outputs (uri)",
    """CREATE TABLE inputs (
        run TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        task TEXT NOT NULL,
        name TEXT NOT NULL,
        uri TEXT,                     -- NULL for literal values
        PRIMARY KEY (run, task, name))""",
    "CREATE INDEX inputs_uri ON inputs (uri)",
]
MIGRATIONS = {
    2: ["""CREATE TABLE deleted (
        id TEXT PRIMARY KEY,          -- a run forgotten by ``delete``: ``ferry gc --local`` may take its folder
        store_prefix TEXT NOT NULL,
        deleted_at TEXT NOT NULL)"""],
    # The ``ferry run`` process (``lifetime.identity``) and its scratch folder: a run whose process
    # was killed is recorded stopped, and its folder removed, by the next reader (``_settle``).
    3: ["ALTER TABLE runs ADD COLUMN runner TEXT", "ALTER TABLE runs ADD COLUMN scratch TEXT"],
}
"""Per version, what brings a history of the version before it there (``SCHEMA`` is version 1)."""


class HistoryError(RuntimeError):
    """The history file cannot be used (written by a newer Ferry, or not a history at all)."""


def enabled() -> bool:
    """Whether runs are recorded: all but ``FERRY_HISTORY=off`` (or ``false``, ``0``, ``no``)."""
    return os.environ.get(ENV, "").strip().lower() not in ("off", "false", "0", "no")


def default_path(settings: settings_.Settings | None = None) -> pathlib.Path:
    """``FERRY_HISTORY`` when it names a file, else ``<cache_dir>/history.sqlite3`` of ``settings``
    (by default, the settings of the environment)."""
    chosen = os.environ.get(ENV, "").strip()
    if chosen and chosen.lower() not in ("on", "true", "1", "yes", "off", "false", "0", "no"):
        return pathlib.Path(chosen).expanduser()
    return (settings or settings_.Settings.from_env()).cache_dir / FILE_NAME


def capped(log: str) -> str:
    """``log`` cut to its last ``LOG_LIMIT`` bytes (marked as cut)."""
    data = log.encode("utf-8", errors="replace")
    if len(data) <= LOG_LIMIT:
        return log
    keep = LOG_LIMIT - len(CUT_MARKER.encode())
    return CUT_MARKER + data[-keep:].decode("utf-8", errors="ignore")


def tail(path: pathlib.Path) -> str:
    """The end of a log file as ``capped`` keeps it, without reading a huge file whole ("" if it is gone)."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size <= LOG_LIMIT:
                handle.seek(0)
                return handle.read().decode("utf-8", errors="replace")
            keep = LOG_LIMIT - len(CUT_MARKER.encode())
            handle.seek(size - keep)
            return CUT_MARKER + handle.read().decode("utf-8", errors="ignore")
    except FileNotFoundError:
        return ""


class History:
    """One history file. Safe to share between threads; each method is one short transaction."""

    def __init__(self, path: pathlib.Path | None = None):
        self.path = pathlib.Path(path) if path is not None else default_path()
        self._lock = threading.Lock()
        self._db = _connect(self.path)
        self._specs: dict[str, resource.WorkflowSpec] = {}
        self._written: dict[str, str] = {}
        """The status last written per run, to skip a scheduler step that changed nothing."""
        self._resolved: dict[str, tuple[set[str], set[str]]] = {}
        """Per run: tasks whose outputs, and tasks whose inputs, are recorded."""

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # Writing: the local executor.

    def open_run(self, run_id: str, workflow: str, spec: resource.WorkflowSpec, store_prefix: str,
                 scratch: pathlib.Path | None = None) -> None:
        """A new run, made by this process; ``scratch``: its folder, removed if the process is killed."""
        status = resource.WorkflowStatus()
        with self._write() as db:
            db.execute("INSERT INTO runs (id, workflow, phase, created, spec, status, store_prefix, runner, scratch) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (run_id, workflow, status.phase.value, _now(), json.dumps(spec.dump()),
                        json.dumps(status.dump()), store_prefix, lifetime.identity(),
                        str(scratch) if scratch else None))
        self._specs[run_id] = spec

    def update(self, run_id: str, status: resource.WorkflowStatus) -> None:
        """The run's status, and the outputs and inputs of tasks that have resolved since the last call."""
        text = json.dumps(status.dump())
        if self._written.get(run_id) == text:
            return
        spec = self._spec(run_id)
        with_outputs, with_inputs = self._resolved.setdefault(run_id, (set(), set()))
        outputs, inputs, produced, started = [], [], set(), set()
        for task in spec.tasks:
            state = status.tasks.get(task.name)
            if state is None:
                continue
            if state.phase == resource.Phase.SUCCEEDED and task.name not in with_outputs:
                produced.add(task.name)
                outputs += [(run_id, task.name, name, o.kind.value, o.uri, o.size, o.file_count, o.manifest_digest,
                             o.sha256) for name, o in state.outputs.items()]
            if state.attempts and task.name not in with_inputs:
                try:  # resolved once the task has started: its inputs were all published
                    stored, values = taskpod.resolve_inputs(spec, status, task)
                except taskpod.InputError:
                    continue
                started.add(task.name)
                inputs += [(run_id, task.name, name, o.uri) for name, o in stored.items()]
                inputs += [(run_id, task.name, name, None) for name in values]
        with self._write() as db:
            db.execute("UPDATE runs SET phase = ?, progress = ?, message = ?, started_at = ?, finished_at = ?, "
                       "status = ? WHERE id = ?", (status.phase.value, status.progress, status.message,
                                                   status.started_at, status.finished_at, text, run_id))
            db.executemany("INSERT OR REPLACE INTO outputs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", outputs)
            db.executemany("INSERT OR REPLACE INTO inputs VALUES (?, ?, ?, ?)", inputs)
        with_outputs.update(produced)
        with_inputs.update(started)
        self._written[run_id] = text

    def attempt_started(self, run_id: str, task: str, attempt: int, attempt_name: str, started_at: str | None, *,
                        log_path: pathlib.Path | None = None) -> None:
        """``log_path``: the file the attempt logs to, read by ``log`` while the attempt runs."""
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO attempts (run, task, attempt, name, phase, started_at, log_path) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)", (run_id, task, attempt, attempt_name,
                                                        resource.Phase.RUNNING.value, started_at,
                                                        str(log_path) if log_path else None))

    def attempt_finished(self, run_id: str, task: str, attempt: int, phase: resource.Phase | str,
                         finished_at: str | None, message: str | None, reason: resource.FailureReason | str | None,
                         log: str) -> None:
        with self._write() as db:
            db.execute("UPDATE attempts SET phase = ?, finished_at = ?, message = ?, reason = ?, log = ?, "
                       "log_path = NULL WHERE run = ? AND task = ? AND attempt = ?",
                       (_text(phase), finished_at, message, _text(reason), capped(log), run_id, task, attempt))

    # Reading: ``ferry get --local`` and the UI.

    def runs(self, *, phase: str | None = None, name: str | None = None, limit: int = 50,
             offset: int = 0) -> tuple[list[dict], int]:
        """A page of runs, newest first, and how many match in all. ``name``: a part of the run's name."""
        self._settle()
        where, parameters = [], []
        if phase:
            where.append("phase = ?")
            parameters.append(phase)
        if name:
            where.append("instr(id, ?) > 0")
            parameters.append(name)
        condition = f"WHERE {' AND '.join(where)}" if where else ""
        with self._read() as db:
            total = db.execute(f"SELECT count(*) FROM runs {condition}", parameters).fetchone()[0]
            rows = db.execute("SELECT id, phase, progress, message, created, started_at, finished_at FROM runs "
                              f"{condition} ORDER BY created DESC, rowid DESC LIMIT ? OFFSET ?",
                              [*parameters, limit, offset]).fetchall()
        return [{"name": r[0], "namespace": NAMESPACE, "phase": r[1], "progress": r[2], "message": r[3],
                 "created": r[4], "started_at": r[5], "finished_at": r[6]} for r in rows], total

    def workflow(self, run_id: str) -> dict | None:
        """The run as the cluster would show its Workflow object (``kubectl get fwf NAME -o json``)."""
        self._settle()
        with self._read() as db:
            row = db.execute("SELECT created, spec, status FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            return None
        return {"apiVersion": resource.API_VERSION, "kind": resource.KIND,
                "metadata": {"name": run_id, "namespace": NAMESPACE, "creationTimestamp": row[0]},
                "spec": json.loads(row[1]), "status": json.loads(row[2])}

    def attempts(self, run_id: str) -> list[dict]:
        """Every attempt of the run, in the order they started."""
        with self._read() as db:
            rows = db.execute("SELECT task, attempt, name, phase, started_at, finished_at, message, reason "
                              "FROM attempts WHERE run = ? ORDER BY rowid", (run_id,)).fetchall()
        keys = ("task", "attempt", "name", "phase", "started_at", "finished_at", "message", "reason")
        return [dict(zip(keys, row)) for row in rows]

    def log(self, run_id: str, task: str, attempt: int | None = None) -> str | None:
        """The log of attempt ``attempt`` of ``task`` (the latest by default): recorded once it ended,
        read from its file while it runs. None if there is no such attempt."""
        with self._read() as db:
            row = db.execute("SELECT log, log_path FROM attempts WHERE run = ? AND task = ? "
                             + ("AND attempt = ?" if attempt is not None else "ORDER BY attempt DESC LIMIT 1"),
                             (run_id, task, *([attempt] if attempt is not None else []))).fetchone()
        if row is None:
            return None
        log, log_path = row
        return log if log is not None or log_path is None else tail(pathlib.Path(log_path))

    def delete(self, run_id: str) -> bool:
        """Forget a run (its attempts, logs and lineage go with it); whether there was one. The data
        it stored stays (other runs and the cache may use it), and the history remembers that it
        deleted the run: that is what lets ``ferry gc --local`` take its folder."""
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO deleted SELECT id, store_prefix, ? FROM runs WHERE id = ?",
                       (_now(), run_id))
            deleted = db.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount
        self._specs.pop(run_id, None)
        return bool(deleted)

    def deleted(self) -> set[str]:
        """The ids of the runs ``delete`` forgot."""
        with self._read() as db:
            return {row[0] for row in db.execute("SELECT id FROM deleted")}

    def producer(self, uri: str) -> dict | None:
        """The task that produced ``uri``: the first run that recorded it (later ones reused it from the cache)."""
        with self._read() as db:
            row = db.execute("SELECT run, task, name FROM outputs WHERE uri = ? ORDER BY rowid LIMIT 1",
                             (uri,)).fetchone()
        return {"run": row[0], "task": row[1], "name": row[2]} if row else None

    def readers(self, uri: str) -> list[dict]:
        """The tasks that took ``uri`` as an input, in any run, in the order they started."""
        with self._read() as db:
            rows = db.execute("SELECT run, task, name FROM inputs WHERE uri = ? ORDER BY rowid", (uri,)).fetchall()
        return [{"run": r[0], "task": r[1], "name": r[2]} for r in rows]

    # Inside.

    def _settle(self) -> None:
        """Runs still ``Pending``/``Running`` whose ``ferry run`` process is over (killed outright: it
        recorded nothing) are recorded stopped, their running attempts failed with what they logged,
        and their scratch folders removed, as the run would have done had it been asked to stop."""
        with self._read() as db:
            rows = db.execute("SELECT id, runner, scratch, status FROM runs WHERE phase IN (?, ?) AND runner IS NOT NULL",
                              (resource.Phase.PENDING.value, resource.Phase.RUNNING.value)).fetchall()
        for run_id, runner, scratch, status in rows:
            if not lifetime.ended(runner):
                continue
            ended = _now()
            stopped = scheduler.ended_outside(resource.WorkflowStatus.model_validate(json.loads(status)),
                                              resource.Phase.STOPPED, ABANDONED, ended)
            with self._write() as db:
                running = db.execute("SELECT task, attempt, log_path FROM attempts WHERE run = ? AND phase = ?",
                                     (run_id, resource.Phase.RUNNING.value)).fetchall()
                db.executemany("UPDATE attempts SET phase = ?, finished_at = ?, message = ?, log = ?, log_path = NULL "
                               "WHERE run = ? AND task = ? AND attempt = ?",
                               [(resource.Phase.FAILED.value, ended, "the run stopped",
                                 capped(tail(pathlib.Path(log))) if log else None, run_id, task, attempt)
                                for task, attempt, log in running])
                db.execute("UPDATE runs SET phase = ?, message = ?, finished_at = ?, status = ?, scratch = NULL "
                           "WHERE id = ? AND phase IN (?, ?)",
                           (stopped.phase.value, stopped.message, ended, json.dumps(stopped.dump()), run_id,
                            resource.Phase.PENDING.value, resource.Phase.RUNNING.value))
            if scratch and pathlib.Path(scratch).name.startswith(SCRATCH_PREFIX):
                shutil.rmtree(scratch, ignore_errors=True)

    def _spec(self, run_id: str) -> resource.WorkflowSpec:
        if run_id not in self._specs:
            with self._read() as db:
                row = db.execute("SELECT spec FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise KeyError(f"no run {run_id} in the history {self.path}")
            self._specs[run_id] = resource.WorkflowSpec.model_validate_json(row[0])
        return self._specs[run_id]

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._db

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            with _transaction(self._db):
                yield self._db


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """A write transaction, locked from its start: one that starts as a read and then writes can be
    refused at once (SQLITE_BUSY) when another process wrote in between, busy timeout or not."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _write_ahead_log(db: sqlite3.Connection) -> None:
    """WAL mode, asked again while another process holds the lock: SQLite refuses a journal mode
    change at once (``database is locked``) without waiting the busy timeout, so several ``ferry
    run`` started together, or the UI reading, failed now and then as the file was first made."""
    deadline = time.monotonic() + BUSY_SECONDS
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def _connect(path: pathlib.Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Logs may hold what a task printed: the file (and SQLite's -wal and -shm, which copy its mode)
    # is the user's alone.
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    db = sqlite3.connect(path, timeout=BUSY_SECONDS, isolation_level=None, check_same_thread=False)
    try:
        _write_ahead_log(db)
        db.execute("PRAGMA synchronous = NORMAL")  # with WAL: safe from a crash of the process, no fsync per write
        db.execute("PRAGMA foreign_keys = ON")
        _migrate(db, path)
    except BaseException:
        db.close()
        raise
    return db


def _migrate(db: sqlite3.Connection, path: pathlib.Path) -> None:
    if _version(db, path) == SCHEMA_VERSION:
        return
    with _transaction(db):
        version = _version(db, path)  # again, under the lock: another process may have just made it
        for statement in (SCHEMA if version == 0 else []) + [s for v in sorted(MIGRATIONS) if v > version
                                                             for s in MIGRATIONS[v]]:
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _version(db: sqlite3.Connection, path: pathlib.Path) -> int:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise HistoryError(f"{path} was written by a newer Ferry (history schema {version}; this Ferry knows "
                           f"{SCHEMA_VERSION}): upgrade Ferry, or set {ENV} to another file")
    return version


def _now() -> str:
    return scheduler.timestamp(datetime.datetime.now(datetime.timezone.utc))


def _text(value: Any) -> str | None:
    return value.value if hasattr(value, "value") else value
