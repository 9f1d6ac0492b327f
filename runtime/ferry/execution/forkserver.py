"""Task processes for the local executor, forked from a warm interpreter.

Starting Python and importing Ferry's runtime (pydantic and its models) costs about 200 ms, more
than a small task's own work. So the local executor starts one *fork server* per run: a process
that imports the runtime once and, for each task, forks a child that becomes that task's process
(its own session, working directory, environment and log) and runs ``ferry pod run-function``,
exactly as a fresh ``python -m ferry pod run-function`` would. The user's code is imported by
the child, never by the server, so every task still starts from a clean module state.

The server is single-threaded (forking a threaded process is unsafe). It speaks JSON lines on
its stdin and stdout: a request ``{"id", "env", "cwd", "log"}`` is answered ``{"id", "pid"}``, and
each child's end is reported as ``{"pid", "exit"}`` (the exit code, negative for a signal, as
``subprocess`` gives it).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading

from ferry.core import lifetime


class Child:
    """A forked task process, with the part of ``subprocess.Popen``'s interface the executor uses."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None
        self._ended = threading.Event()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired(f"task process {self.pid}", timeout)
        return self.returncode

    def _end(self, code: int) -> None:
        self.returncode = code
        self._ended.set()


class ForkServer:
    """The executor's side: start the server, ask it for task processes, learn when they end."""

    def __init__(self):
        self._process = subprocess.Popen([sys.executable, "-P", "-m", "ferry.execution.forkserver"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, start_new_session=True,
                                         env={**os.environ, lifetime.PARENT_ENV: str(os.getpid())})
        self._lock = threading.Lock()
        self._ids = 0
        self._started: dict[int, threading.Event] = {}
        self._spawned: dict[int, Child] = {}
        """By request id, until ``spawn`` takes it."""
        self._children: dict[int, Child] = {}
        """By pid, until it ends."""
        self.ended = threading.Event()
        """Set whenever a child ends (the executor clears it before it looks)."""
        self._reader = threading.Thread(target=self._read, name="ferry-forkserver", daemon=True)
        self._reader.start()

    def spawn(self, env: dict[str, str], cwd: str, log: str) -> Child:
        with self._lock:
            self._ids += 1
            request, started = self._ids, threading.Event()
            self._started[request] = started
        line = json.dumps({"id": request, "env": env, "cwd": cwd, "log": log}) + "\n"
        try:
            self._process.stdin.write(line.encode())
            self._process.stdin.flush()
        except BrokenPipeError:
            pass  # the server is gone: said below
        else:
            started.wait(30)
        with self._lock:
            child = self._spawned.pop(request, None)
        if child is None:
            raise RuntimeError("the local executor's fork server did not start a task process; "
                               "set FERRY_LOCAL_FORK=false to start each task with a fresh interpreter")
        return child

    def _read(self) -> None:
        for line in self._process.stdout:
            message = json.loads(line)
            with self._lock:
                if "id" in message:  # always before that child's end, on this one stream
                    child = self._children[message["pid"]] = self._spawned[message["id"]] = Child(message["pid"])
                    self._started.pop(message["id"]).set()
                    continue
                child = self._children.pop(message["pid"], None)
            if child is not None:
                child._end(message["exit"])
            self.ended.set()
        with self._lock:  # the server is gone: nothing more starts, and no end will be reported
            for started in self._started.values():
                started.set()
            orphans, self._children = list(self._children.values()), {}
        for child in orphans:  # so end them, rather than wait for news that cannot come
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            child._end(-signal.SIGKILL)
        self.ended.set()

    def close(self) -> None:
        self._process.stdin.close()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def _send(message: dict) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(1, data):]


def _reap() -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send({"pid": pid, "exit": os.waitstatus_to_exitcode(status)})


def _become_task(request: dict, wakeup: tuple[int, int], server: int) -> None:
    """In the child: become the task's process, as ``python -P -m ferry pod run-function`` would be,
    one that ends with the server (which ends with the executor)."""
    import tempfile

    from ferry.pod import runner

    lifetime.die_with_parent(server)
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for fd in wakeup:
        os.close(fd)
    os.setsid()
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.path[:0] = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.argv = ["ferry", "pod", "run-function"]
    tempfile.tempdir = None  # read TMPDIR from the task's environment
    code = runner.run_function()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def serve() -> None:
    """The server's loop (``python -P -m ferry.execution.forkserver``)."""
    from ferry.pod import runner  # noqa: F401 - the warm imports every task shares

    lifetime.die_with_parent_from_env()
    server = os.getpid()
    wakeup = os.pipe()
    os.set_blocking(wakeup[1], False)
    signal.set_wakeup_fd(wakeup[1])
    signal.signal(signal.SIGCHLD, lambda *_: None)
    pending = b""
    while True:
        ready, _, _ = select.select([0, wakeup[0]], [], [])
        if wakeup[0] in ready:
            os.read(wakeup[0], 4096)
        _reap()
        if 0 not in ready:
            continue
        data = os.read(0, 1 << 20)
        if not data:
            return  # the executor is gone; its tasks are in their own sessions, which it stops
        pending += data
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            request = json.loads(line)
            pid = os.fork()
            if pid == 0:
                try:
                    _become_task(request, wakeup, server)
                finally:
                    os._exit(70)
            _send({"id": request["id"], "pid": pid})


if __name__ == "__main__":
    serve()
