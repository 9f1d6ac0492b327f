"""Pure functions the test node uses to read a pod spec and to write pod status.

Pods are handled as plain JSON dicts (the API's own camelCase shape), so these functions can be
tested without a cluster and their output patched into the API as it is.
"""

from __future__ import annotations

import datetime
import re

from tests.cluster.images import Image


class ConfigError(Exception):
    """The container cannot be configured yet (a missing Secret, an unsupported field)."""


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: known names are replaced, ``$$`` escapes, others stay."""

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _VAR.sub(replace, text)


def field_value(pod: dict, path: str) -> str:
    """The value a ``fieldRef`` selects, for the fields the downward API supports."""
    meta, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": status.get("podIP") or "127.0.0.1",
        "status.hostIP": status.get("hostIP") or "127.0.0.1",
    }
    if path in simple:
        return simple[path] or ""
    match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if match:
        return (meta.get(match.group(1)) or {}).get(match.group(2), "")
    raise ConfigError(f"fieldRef {path!r} is not supported by the test node")


def container_env(pod: dict, container: dict, image: Image, base: dict[str, str], lookup) -> dict[str, str]:
    """The environment a container starts with, in the order the kubelet builds it.

    ``lookup(kind, name)`` returns the data of a Secret or ConfigMap (values decoded), or None.
    """
    env = {"PATH": image.path, "HOME": "/root", "HOSTNAME": pod["metadata"]["name"], **base}
    for source in container.get("envFrom") or []:
        kind = "secret" if "secretRef" in source else "configmap"
        ref = source.get("secretRef") or source.get("configMapRef")
        data = lookup(kind, ref["name"])
        if data is None:
            if ref.get("optional"):
                continue
            raise ConfigError(f'{kind} "{ref["name"]}" not found')
        env.update({source.get("prefix", "") + key: value for key, value in data.items()})
    for var in container.get("env") or []:
        if "valueFrom" not in var:
            env[var["name"]] = expand(var.get("value", ""), env)
            continue
        source = var["valueFrom"]
        if "fieldRef" in source:
            env[var["name"]] = field_value(pod, source["fieldRef"]["fieldPath"])
            continue
        kind, ref = ("secret", source.get("secretKeyRef")) if "secretKeyRef" in source else (
            "configmap", source.get("configMapKeyRef"))
        if ref is None:
            raise ConfigError(f"env {var['name']}: valueFrom {sorted(source)} is not supported by the test node")
        data = lookup(kind, ref["name"])
        if data is None or ref["key"] not in data:
            if ref.get("optional"):
                continue
            raise ConfigError(f'couldn\'t find key {ref["key"]} in {kind} {ref["name"]}')
        env[var["name"]] = data[ref["key"]]
    return env


def container_argv(container: dict, image: Image, env: dict[str, str]) -> list[str]:
    """``command`` replaces the image ENTRYPOINT and drops its CMD; ``args`` replaces CMD."""
    command = container.get("command")
    args = container.get("args")
    argv = list(command) if command else list(image.entrypoint)
    if args is not None:
        argv += args
    elif not command:
        argv += image.cmd
    return [expand(part, env) for part in argv]


def is_sidecar(container: dict) -> bool:
    """A native sidecar is an init container that keeps running (``restartPolicy: Always``)."""
    return container.get("restartPolicy") == "Always"


def waiting(container: dict, reason: str, message: str = "", restarts: int = 0) -> dict:
    state = {"reason": reason, **({"message": message} if message else {})}
    return _status(container, {"waiting": state}, restarts, ready=False, started=False)


def running(container: dict, started_at: str, restarts: int = 0, started: bool = True) -> dict:
    return _status(container, {"running": {"startedAt": started_at}}, restarts, ready=started, started=started)


def terminated(container: dict, exit_code: int, started_at: str, message: str = "", restarts: int = 0,
               reason: str | None = None) -> dict:
    state = {
        "exitCode": exit_code,
        "reason": reason or ("Completed" if exit_code == 0 else "Error"),
        "startedAt": started_at,
        "finishedAt": now(),
        **({"message": message} if message else {}),
    }
    return _status(container, {"terminated": state}, restarts, ready=False, started=False)


def _status(container: dict, state: dict, restarts: int, ready: bool, started: bool) -> dict:
    return {
        "name": container["name"],
        "image": container.get("image", ""),
        "imageID": "",
        "state": state,
        "ready": ready,
        "started": started,
        "restartCount": restarts,
    }


def exit_code_of(returncode: int) -> int:
    """Popen reports death by signal N as -N; containers report it as 128+N."""
    return 128 - returncode if returncode < 0 else returncode


def phase(restart_policy: str, main_statuses: list[dict]) -> str:
    """The pod phase once init containers are done, from its main containers' states."""
    states = [status["state"] for status in main_statuses]
    if any("running" in state or "waiting" in state for state in states):
        return "Running"
    codes = [state["terminated"]["exitCode"] for state in states]
    if all(code == 0 for code in codes):
        return "Succeeded"
    return "Failed" if restart_policy == "Never" else "Running"


def conditions(initialized: bool, ready: bool) -> list[dict]:
    stamp = now()

    def condition(kind: str, value: bool) -> dict:
        return {"type": kind, "status": "True" if value else "False", "lastTransitionTime": stamp}

    return [
        condition("PodReadyToStartContainers", True),
        condition("Initialized", initialized),
        condition("ContainersReady", ready),
        condition("Ready", ready),
        condition("PodScheduled", True),
    ]
