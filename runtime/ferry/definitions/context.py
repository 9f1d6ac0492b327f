"""``ferry.current_context()``: what a running task knows about itself, as in flytekit.

Inside a task (on a cluster or run locally) it gives the task's fresh working directory (also its
current directory, and where its stored inputs are downloaded: ``downloads``, removed when the
task ends), the execution id, workflow and task names, the attempt number, a logger,
secrets, a checkpoint that survives retries, and the raw data store. Outside a task it gives a
local default, so code that uses it can be tried in a plain Python session.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import logging
import os
import pathlib
import re
import shutil
import tempfile
from collections.abc import Iterator

from ferry.api import taskpod
from ferry.core import uris
from ferry.data import store as store_

SECRETS_ENV_PREFIX = "FERRY_SECRET_"
SECRETS_DIR_ENV = "FERRY_SECRETS_DIR"
DOWNLOADS = ".ferry-downloads"
"""The folder of a task's working directory where its stored values are downloaded."""


class Secrets:
    """Secrets by group and key: in a pod, the Kubernetes Secret ``group`` mounted at
    ``/ferry/secrets/<group>/<key>``; locally, ``FERRY_SECRET_<GROUP>_<KEY>`` or
    ``$FERRY_SECRETS_DIR/<group>/<key>``."""

    def __init__(self, directory: str | os.PathLike | None = None, environ=os.environ):
        self._directories = [pathlib.Path(d) for d in (directory, environ.get(SECRETS_DIR_ENV)) if d]
        self._environ = environ

    @staticmethod
    def env_name(group: str, key: str) -> str:
        return SECRETS_ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", f"{group}_{key}").upper()

    def get(self, group: str, key: str) -> str:
        if self.env_name(group, key) in self._environ:
            return self._environ[self.env_name(group, key)]
        for directory in self._directories:
            path = directory / group / key
            if path.is_file():
                return path.read_text()
        places = [self.env_name(group, key), *(str(d / group / key) for d in self._directories)]
        raise KeyError(f"secret {group}/{key} not found (looked in {', '.join(places)}); on a cluster, list "
                       f"{group!r} in the task's secrets=[...] and create the Kubernetes Secret {group!r}")


class Checkpoint:
    """Task state that outlives an attempt: the next attempt of the same task finds what this one saved."""

    def __init__(self, store: store_.Store, uri: str):
        self._store, self._uri = store, uri.rstrip("/")
        self._bytes_uri, self._tree_uri = f"{self._uri}/checkpoint.bin", f"{self._uri}/tree"

    def prev_exists(self) -> bool:
        return self._store.exists(self._bytes_uri) or bool(self._store.list(self._tree_uri))

    def read(self) -> bytes | None:
        if not self._store.exists(self._bytes_uri):
            return None
        with self._store.open(self._bytes_uri) as stream:
            return stream.read()

    def write(self, data: bytes) -> None:
        self._store.backend(self._bytes_uri).write_bytes(self._bytes_uri, data)

    def save(self, path: str | os.PathLike) -> None:
        """Save a directory (only what changed is sent again)."""
        self._store.upload_directory(path, self._tree_uri)

    def restore(self, path: str | os.PathLike | None = None) -> pathlib.Path | None:
        """Download what was saved into ``path`` (default: a fresh directory); None if nothing was."""
        if not self._store.list(self._tree_uri):
            return None
        return self._store.download_directory(self._tree_uri, path or tempfile.mkdtemp(prefix="ferry-checkpoint-"))


@dataclasses.dataclass
class ExecutionContext:
    working_directory: pathlib.Path
    execution_id: str
    workflow: str
    task_name: str
    attempt: int
    logging: logging.Logger
    secrets: Secrets
    checkpoint: Checkpoint
    raw_data: store_.Store
    """The raw data store, as flytekit's ``file_access``."""
    downloads: pathlib.Path | None = None
    """Where ``File``/``Directory`` values are downloaded while the task runs (``<working directory>/
    .ferry-downloads``; ``ferry.asset()`` and directories published from the working directory leave
    it out); removed when the task ends. None outside tasks: the settings' ``local_dir``."""

    @property
    def file_access(self) -> store_.Store:
        return self.raw_data


_current: contextvars.ContextVar[ExecutionContext | None] = contextvars.ContextVar("ferry_context", default=None)
_running: str | None = None
"""The task whose function this process runs (in every thread it starts, unlike ``_current``)."""


def for_plan(plan: taskpod.PodPlan, store: store_.Store, working_directory: pathlib.Path) -> ExecutionContext:
    return ExecutionContext(
        working_directory=working_directory, execution_id=plan.execution_id, workflow=plan.workflow,
        task_name=plan.task, attempt=plan.attempt, logging=logging.getLogger(f"ferry.task.{plan.task}"),
        secrets=Secrets(taskpod.SECRETS_DIR), checkpoint=Checkpoint(store, plan.checkpoint_prefix), raw_data=store,
        downloads=working_directory / DOWNLOADS)


@contextlib.contextmanager
def using(context: ExecutionContext) -> Iterator[ExecutionContext]:
    """Make ``context`` the running task's for the block; its store downloads into its ``downloads``,
    which is removed at the end (after the task's outputs were published, inside the block)."""
    global _running
    token, running = _current.set(context), _running
    _running = context.task_name
    before = context.raw_data.downloads
    if context.downloads is not None:
        context.raw_data.downloads = context.downloads
    try:
        yield context
    finally:
        _current.reset(token)
        _running = running
        if context.downloads is not None:
            context.raw_data.downloads = before
            shutil.rmtree(context.downloads, ignore_errors=True)


def running_task() -> str | None:
    """The name of the task running in this process, or None outside tasks."""
    return _running


def current_context() -> ExecutionContext:
    """The running task's context, or a local one outside tasks."""
    context = _current.get()
    if context is None:
        store = store_.current()
        workdir = pathlib.Path(tempfile.mkdtemp(prefix="ferry-local-"))
        context = ExecutionContext(
            working_directory=workdir, execution_id="local", workflow="local", task_name="local", attempt=1,
            logging=logging.getLogger("ferry.task"), secrets=Secrets(),
            checkpoint=Checkpoint(store, uris.join(store.raw_data_prefix, "local/checkpoint")), raw_data=store)
        _current.set(context)
    return context
