"""The container runtime that runs container tasks on this machine (podman or docker), and what it
is asked to do.

The local executor plays a container task's pod with it (``ferry.execution.localpod``): the image runs as the
pod's main container would, with its command, arguments and environment, the fetched inputs
mounted read-only at ``/ferry/inputs`` and an empty ``/ferry/outputs`` to write. Choices made here,
and why:

- Which runtime: ``FERRY_CONTAINER_RUNTIME`` (``podman``, ``docker``, or a program's path) if set;
  otherwise the first of podman and docker whose ``info`` answers (a docker CLI without a running
  daemon does not count). A working answer is kept for the process.
- No network (``--network none``): a task's contract is its inputs and outputs, and locally its
  container would otherwise share this machine's network, services on localhost included.
  ``FERRY_CONTAINER_NETWORK`` names another network (``host``, ``bridge``, ``slirp4netns``...),
  or ``default`` for the runtime's own.
- Which user: the outputs are published (and the attempt's folder removed) by whoever runs Ferry,
  so the container writes as them. As root, the image's own user, as in a pod (root reads
  anything). Under a rootless runtime the container's root is this user, so ``--user 0:0``. With a
  daemon running as root (docker) and Ferry not, this user's ids, else the outputs are root's. A
  task's own ``securityContext.runAsUser`` always wins, as in a pod. (``--userns=keep-id`` would do
  for rootless podman too, but runs the task as a user most images do not expect.)
- The folders are relabelled for SELinux (``:Z``): they are the attempt's own, and on Fedora and
  RHEL a container cannot read an unlabelled host folder. Without SELinux the option is ignored.

Everything here is pure but for ``probe`` and ``detect``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence

from ferry.api import resource, taskpod

RUNTIME_ENV = "FERRY_CONTAINER_RUNTIME"
NETWORK_ENV = "FERRY_CONTAINER_NETWORK"
CANDIDATES = ("podman", "docker")
PROBE_TIMEOUT = 20
"""Seconds ``info`` may take (podman's first one sets up its storage; a stuck daemon never answers)."""
MAX_NAME = 100
"""Longest container name made; a longer one is cut and made unique by a digest."""
LOG_TAIL = 800
"""Characters of a failed container's log in its attempt's message (as for a task process)."""


@dataclasses.dataclass(frozen=True)
class Runtime:
    name: str
    """As asked for: ``podman``, ``docker`` or ``FERRY_CONTAINER_RUNTIME``'s value."""
    path: str
    """The program run."""
    flavor: str
    """Its command line's dialect: ``podman`` or ``docker``."""
    rootless: bool = False
    """The container's root is the user running it (rootless podman or docker)."""


@dataclasses.dataclass(frozen=True)
class Probe:
    """What asking one runtime found."""

    name: str
    path: str | None
    """None: no such program."""
    error: str | None = None
    """Why it does not work; None: it answered."""
    rootless: bool = False


class Unavailable(Exception):
    """No container runtime works here; the message says what was tried and what to do."""


def flavor(program: str) -> str:
    """``podman`` for podman and podman-remote, ``docker`` for docker and its look-alikes (nerdctl)."""
    return "podman" if os.path.basename(program).startswith("podman") else "docker"


def info_command(path: str, dialect: str) -> list[str]:
    """``info``, printing only whether the runtime is rootless."""
    fmt = "{{.Host.Security.Rootless}}" if dialect == "podman" else "{{json .SecurityOptions}}"
    return [path, "info", "--format", fmt]


def parse_rootless(dialect: str, stdout: str) -> bool:
    if dialect == "podman":
        return stdout.strip() == "true"
    try:
        options = json.loads(stdout) or []
    except ValueError:
        return False
    return any("name=rootless" in str(option) for option in options)


def choose(probes: Sequence[Probe]) -> Runtime | None:
    """The first runtime that answered."""
    for probe_ in probes:
        if probe_.path and probe_.error is None:
            return Runtime(probe_.name, probe_.path, flavor(probe_.path), probe_.rootless)
    return None


def unavailable(probes: Sequence[Probe], overridden: bool) -> str:
    """Why no runtime works, naming each one tried, and what to do."""
    tried = "; ".join(f"{RUNTIME_ENV}={p.name}: {p.error}" if overridden else f"{p.name}: {p.error}" for p in probes)
    advice = (f"Set {RUNTIME_ENV} to podman, docker or the path of either, or unset it to look for both."
              if overridden else
              f"Install podman or docker (and start docker's daemon), or set {RUNTIME_ENV} to the one to use.")
    return f"no container runtime found ({tried}). {advice}"


def probe(name: str) -> Probe:
    """Ask runtime ``name`` (a program on PATH or a path) whether it can run containers."""
    path = shutil.which(name)
    if path is None:
        return Probe(name, None, "no such program" if os.sep in name else "not installed")
    shown = f"`{os.path.basename(name)} info`"
    try:
        answer = subprocess.run(info_command(path, flavor(path)), capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        return Probe(name, path, f"{shown} did not answer in {PROBE_TIMEOUT}s")
    except OSError as error:
        return Probe(name, path, f"{shown} could not start: {error.strerror or error}")
    if answer.returncode != 0:
        said = [line.strip() for line in (answer.stderr or answer.stdout).splitlines() if line.strip()]
        return Probe(name, path, f"{shown} failed: {said[-1][:300] if said else f'exit code {answer.returncode}'}")
    return Probe(name, path, rootless=parse_rootless(flavor(path), answer.stdout))


def detect(environ: Mapping[str, str] = os.environ) -> Runtime:
    """The runtime to use here (see the module's docstring); raises ``Unavailable`` saying why none."""
    return _detect(environ.get(RUNTIME_ENV) or None, environ.get("PATH", os.defpath))


@functools.cache  # a failure raises, so only a working runtime is kept
def _detect(override: str | None, path_variable: str) -> Runtime:
    del path_variable  # part of the key: which programs ``shutil.which`` finds
    probes = [probe(override)] if override else [probe(name) for name in CANDIDATES]
    chosen = choose(probes)
    if chosen is None:
        raise Unavailable(unavailable(probes, overridden=bool(override)))
    return chosen


def network(environ: Mapping[str, str] = os.environ) -> str:
    return environ.get(NETWORK_ENV) or "none"


def container_name(plan: taskpod.PodPlan) -> str:
    """``ferry-<run id>-<task>-<attempt>``: unique per local run and attempt, so ``stop`` finds it."""
    name = f"ferry-{plan.execution_id}-{plan.task}-{plan.attempt}"
    if len(name) <= MAX_NAME:
        return name
    suffix = f"-{hashlib.sha256(name.encode()).hexdigest()[:8]}-{plan.attempt}"
    return name[:MAX_NAME - len(suffix)].rstrip("-") + suffix


def user_args(runtime: Runtime, security: resource.SecurityContext | None,
              host_ids: tuple[int, int] | None) -> list[str]:
    """``--user`` so that whoever runs Ferry can read and remove what the container writes (see the
    module's docstring)."""
    if security and security.run_as_user is not None:
        group = f":{security.run_as_group}" if security.run_as_group is not None else ""
        return ["--user", f"{security.run_as_user}{group}"]
    if host_ids is None or (host_ids[0] == 0 and not runtime.rootless):
        return []
    return ["--user", "0:0" if runtime.rootless else f"{host_ids[0]}:{host_ids[1]}"]


def security_args(security: resource.SecurityContext | None) -> list[str]:
    """The task's ``securityContext`` but its user: read-only root, no privilege escalation, capabilities."""
    if security is None:
        return []
    capabilities = security.capabilities or resource.Capabilities()
    return [*(["--read-only"] if security.read_only_root_filesystem else []),
            *(["--security-opt=no-new-privileges"] if security.allow_privilege_escalation is False else []),
            *(f"--cap-drop={name}" for name in capabilities.drop or []),
            *(f"--cap-add={name}" for name in capabilities.add or [])]


def run_command(runtime: Runtime, task: resource.Task, plan: taskpod.PodPlan, *, name: str, inputs: str, outputs: str,
                network: str = "none", host_ids: tuple[int, int] | None = None) -> list[str]:
    """``podman run`` (or docker's) of the task's image as its pod's main container: removed when it
    ends, ``inputs`` read-only at ``/ferry/inputs``, ``outputs`` at ``/ferry/outputs``, the pod's
    environment, and ``command``/``args`` meaning what they mean in a pod (a command alone drops the
    image's arguments too)."""
    argv = [runtime.path, "run", "--rm", "--name", name, *(["--network", network] if network != "default" else []),
            "--volume", f"{inputs}:{taskpod.INPUTS_DIR}:ro,Z", "--volume", f"{outputs}:{taskpod.OUTPUTS_DIR}:Z",
            *user_args(runtime, task.security_context, host_ids), *security_args(task.security_context)]
    for variable, value in taskpod.container_env(plan, task.env):
        argv += ["--env", f"{variable}={value}"]
    command = task.command or []
    if command:
        argv += ["--entrypoint", command[0]]
    return [*argv, task.image, *command[1:], *(task.args or [])]


def stop_command(runtime: Runtime, name: str, grace_seconds: int) -> list[str]:
    """SIGTERM, then SIGKILL after ``grace_seconds``."""
    return [runtime.path, "stop", "-t", str(grace_seconds), name]


def remove_command(runtime: Runtime, name: str) -> list[str]:
    """Gone even if ``run`` was stopped before its own ``--rm`` could act; quiet if it is gone already (podman)."""
    return [runtime.path, "rm", "--force", *(["--ignore"] if runtime.flavor == "podman" else []), name]


EXIT_MEANINGS = {126: "its command cannot be run", 127: "its command was not found"}
"""What podman and docker mean by these exit codes (125: the runtime itself failed)."""


def exit_message(runtime_name: str, code: int, log: str) -> str:
    """``main container exited with code 3: <the log's end>``, as a pod's failure reads, with what
    the runtimes mean by their own codes."""
    meaning = f"{runtime_name} could not run it" if code == 125 else EXIT_MEANINGS.get(code)
    if meaning is None and code > 128:
        try:
            meaning = f"killed by {signal.Signals(code - 128).name}"
        except ValueError:
            pass
        if code == 128 + signal.SIGKILL:
            meaning += "; out of memory?"
    text = f"main container exited with code {code}" + (f" ({meaning})" if meaning else "")
    tail = log.strip()[-LOG_TAIL:]
    return f"{text}: {tail}" if tail else f"{text} and wrote nothing"
