"""Running on a cluster from the SDK: package the code, create the Workflow, follow it.

The SDK talks to the cluster through ``kubectl`` (it honours ``KUBECONFIG`` and contexts as users
expect), so ``pip install ferry`` needs no Kubernetes client. The source code travels through the
raw data store as a content-addressed archive, so a code change needs no new image.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import pathlib
import secrets
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable

from ferry import resource, scheduler, store as store_

SKIP = {".git", ".venv", "venv", "__pycache__", ".pytest_cache", ".mypy_cache", "node_modules", ".tox",
        ".hypothesis", ".ruff_cache"}
MAX_ARCHIVE = 50 * 1024 * 1024


class KubectlError(RuntimeError):
    pass


def kubectl(*args: str, input: str | None = None, context: str | None = None) -> str:
    binary = shutil.which("kubectl")
    if binary is None:
        raise KubectlError("kubectl is not on PATH; install it to run workflows on a cluster")
    command = [binary, *(["--context", context] if context else []), *args]
    result = subprocess.run(command, input=input, capture_output=True, text=True)
    if result.returncode != 0:
        raise KubectlError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def package(root: pathlib.Path) -> bytes:
    """A reproducible .tar.gz of the Python sources under ``root`` (same files → same bytes)."""
    buffer = io.BytesIO()
    # gzip stamps its header with the time unless told otherwise: mtime=0 keeps the bytes reproducible.
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=6, mtime=0) as compressed, \
            tarfile.open(fileobj=compressed, mode="w") as archive:
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            if SKIP & set(relative.parts) or not path.is_file() or path.suffix in (".pyc", ".pyo"):
                continue
            with open(path, "rb") as handle:  # a linked file is stored as what it links to
                info = archive.gettarinfo(arcname=relative.as_posix(), fileobj=handle)
                info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
                archive.addfile(info, handle)
    data = buffer.getvalue()
    if len(data) > MAX_ARCHIVE:
        raise ValueError(f"the code under {root} packs to {len(data) >> 20} MiB (limit {MAX_ARCHIVE >> 20} MiB); "
                         "move data files out of the code directory")
    return data


def upload_code(root: pathlib.Path, store: store_.Store) -> str:
    """Upload the code archive once per content; returns its URI."""
    data = package(root)
    uri = f"{store.raw_data_prefix.rstrip('/')}/code/{hashlib.sha256(data).hexdigest()}.tar.gz"
    if not store.exists(uri):
        store.backend(uri).write_bytes(uri, data)
    return uri


def create(manifest: dict, namespace: str | None, context: str | None = None) -> str:
    """Create the Workflow (a fresh name per run, from its ``name`` or ``generateName``); returns its name."""
    manifest = {**manifest, "metadata": {**manifest["metadata"]}}
    base = manifest["metadata"].pop("name", None) or manifest["metadata"].pop("generateName").rstrip("-")
    manifest["metadata"].pop("generateName", None)
    manifest["metadata"]["name"] = f"{base}-{secrets.token_hex(3)}"
    args = ["create", "-o", "name", "-f", "-", *(["-n", namespace] if namespace else [])]
    kubectl(*args, input=json.dumps(manifest), context=context)
    return manifest["metadata"]["name"]


def get(name: str, namespace: str | None, context: str | None = None) -> dict:
    args = ["get", f"{resource.PLURAL}.{resource.GROUP}", name, "-o", "json", *(["-n", namespace] if namespace else [])]
    return json.loads(kubectl(*args, context=context))


def follow(name: str, namespace: str | None, report: Callable[[str, str, str], None], context: str | None = None,
           poll_seconds: float = 1.0) -> resource.WorkflowStatus:
    """Report each task's transitions until the workflow finishes; returns its final status."""
    seen: dict[str, tuple] = {}
    while True:
        status = resource.WorkflowStatus.model_validate(get(name, namespace, context).get("status") or {})
        for task, state in status.tasks.items():
            key = (state.phase, state.attempts)
            if seen.get(task) != key:
                seen[task] = key
                report(*_event(task, state))
        if status.phase in (resource.Phase.SUCCEEDED, resource.Phase.FAILED):
            return status
        time.sleep(poll_seconds)


def _event(task: str, state: resource.TaskStatus) -> tuple[str, str, str]:
    phase = state.phase
    if phase == resource.Phase.RUNNING:
        return "Normal", "TaskStarted", f"task {task} attempt {state.attempts}: pod {state.pod_name}"
    if phase == resource.Phase.SUCCEEDED:
        return "Normal", "TaskSucceeded", f"task {task} succeeded (attempt {state.attempts})"
    if phase == resource.Phase.FAILED:
        return "Warning", "TaskFailed", f"task {task}: {state.message}"
    if phase == resource.Phase.PENDING and state.attempts:
        return "Warning", "TaskRetrying", f"task {task}: {state.message}"
    return "Normal", phase.value, f"task {task}: {phase.value.lower()}"


def logs(name: str, namespace: str | None, task: str, context: str | None = None, attempt: int | None = None) -> str:
    """The task's container's log, of its latest attempt or of ``attempt`` (while its pod exists)."""
    state = resource.WorkflowStatus.model_validate(get(name, namespace, context).get("status") or {}).tasks.get(task)
    if state is None or not state.pod_name:
        raise KubectlError(f"task {task!r} of workflow {name} has not started")
    pod = state.pod_name
    if attempt is not None:
        if not 1 <= attempt <= state.attempts:
            raise KubectlError(f"task {task!r} of workflow {name} has no attempt {attempt} "
                               f"(attempts so far: {state.attempts})")
        pod = scheduler.pod_name(name, task, attempt)
    return kubectl("logs", pod, "-c", "main", *(["-n", namespace] if namespace else []), context=context)

