"""Start and stop the local servers of the test cluster, and find free loopback ports."""

from __future__ import annotations

import contextlib
import http.server
import os
import pathlib
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator


def interrupt_on_sigterm() -> None:
    """Make SIGTERM (``timeout``, ``kill``) raise KeyboardInterrupt, as Ctrl-C does, so that the
    ``finally`` blocks and fixtures that stop the control plane, the node and MinIO still run: by
    default Python dies at once and leaves all of them running. Call from the main thread."""
    def interrupt(signum: int, frame) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


def peak_rss_mib(pid: int) -> float:
    """A running process's peak resident memory (``VmHWM``), in MiB."""
    status = pathlib.Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024


def cpu_seconds(pid: int) -> float:
    """A running process's CPU time so far (user and system), in seconds."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def http_server(handler: Callable[..., http.server.BaseHTTPRequestHandler]) -> Iterator[http.server.HTTPServer]:
    """A threaded HTTP server on a free loopback port. At the end it stops and waits for the threads
    answering its connections (close a client's kept-alive ones first): a thread still blocked in one
    when Python exits is woken as the client's socket is finalized, and aborts the interpreter."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = False
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """One long-running process with its output in a log file, stopped by SIGTERM then SIGKILL."""

    def __init__(self, name: str, argv: list[str], log_dir: pathlib.Path, env: dict | None = None):
        self.name, self.argv, self.env = name, argv, env
        self.log_path = log_dir / f"{name}.log"
        self._start()

    def start(self) -> None:
        """Start the same command again after ``stop``."""
        self._start()

    def _start(self) -> None:
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.argv, stdout=self._log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True,
            stdin=subprocess.DEVNULL,
        )

    def restart(self) -> None:
        """Stop, then start the same command again (an outage, for fault tests)."""
        self.stop()
        self._start()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.process.returncode}) before {what}:\n{self.log_tail()}")
            with contextlib.suppress(Exception):
                if ready():
                    return
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not {what} after {timeout}s:\n{self.log_tail()}")

    def stop(self, grace: float = 10) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()
