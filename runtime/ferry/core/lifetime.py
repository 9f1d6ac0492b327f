"""Processes of a local run that live no longer than the ``ferry run`` that started them.

A task process runs in a session of its own (so that stopping it stops what it started), which
also means nothing ends it when ``ferry run`` ends unasked: a ``kill``, a ``timeout``, a cancelled
CI job. So ``ferry run`` treats SIGTERM as Ctrl-C (``stopped_by_sigterm``: the run stops its tasks,
removes its scratch folder and is recorded ``Stopped``), and each process it starts asks the kernel
to signal it when its parent dies (``die_with_parent``, Linux's ``PR_SET_PDEATHSIG``), which also
covers a SIGKILL. A task process so stopped stops its own process group (``end_group``).
A ``ferry run`` killed outright records nothing; the history keeps its ``identity`` so that the
next reader can tell the run is over (``ended``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from collections.abc import Iterator

PARENT_ENV = "FERRY_PARENT_PID"
"""The pid of the process that started this one, which this one must not outlive."""
_PR_SET_PDEATHSIG = 1


class Terminated(KeyboardInterrupt):
    """SIGTERM: the run stops as by Ctrl-C, the user's (or their tooling's) choice, not a failure."""


@contextlib.contextmanager
def stopped_by_sigterm() -> Iterator[None]:
    """Within: SIGTERM raises ``Terminated`` (once; another while the run cleans up is ignored)."""
    def stop(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated("SIGTERM")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def die_with_parent(parent: int, number: int = signal.SIGTERM) -> None:
    """Have the kernel send ``number`` to this process when ``parent`` (its parent) ends; if it has
    ended already, now. Linux only: elsewhere, nothing."""
    if sys.platform != "linux":
        return
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(number), 0, 0, 0)
    if os.getppid() != parent:  # it ended before we asked: we belong to init now
        os.kill(os.getpid(), number)


def die_with_parent_from_env() -> None:
    """``die_with_parent`` for a process whose starter named itself in ``PARENT_ENV``."""
    parent = os.environ.get(PARENT_ENV, "")
    if parent.isdigit():
        die_with_parent(int(parent))


def end_group() -> None:
    """SIGTERM to the rest of this process's group, when it leads a session of its own (a task
    process does; a command run from a shell does not): what a stopped task started ends with it,
    as a container's processes end with their pod."""
    if os.getsid(0) != os.getpid() or os.getpgrp() != os.getpid():
        return
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(os.getpid(), signal.SIGTERM)


def identity(pid: int | None = None) -> str:
    """``host pid start``: names this process (or ``pid``) apart from a later one given the same pid
    (``start`` is its start time in clock ticks since boot, from /proc; empty elsewhere)."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()} {pid} {_start_ticks(pid) or ''}".rstrip()


def ended(recorded: str) -> bool:
    """Whether the process ``identity`` named is over: on this host, no such pid, a zombie, or a pid
    now another process's. A process of another host is never taken as ended (it cannot be seen)."""
    host, _, rest = recorded.partition(" ")
    pid_text, _, start = rest.partition(" ")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    now = _start_ticks(int(pid_text))
    if now is None:
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # another user's process holds the pid now
            return bool(start)
        return False
    return now == "zombie" or (bool(start) and now != start)


def _start_ticks(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat (``"zombie"`` for one), or None where there is no such file."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return "zombie" if fields[0] == "Z" else fields[19]
