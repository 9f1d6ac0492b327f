"""The test node: plays the kubelet's part for test pods, running containers as local processes.

It registers a Node, keeps its Lease renewed, binds unscheduled pods whose nodeSelector it
matches (standing in for the scheduler), and runs the pods bound to it:

- init containers in order; native sidecars (init containers with ``restartPolicy: Always``)
  start in their place, keep running, and are stopped with SIGTERM after the main containers;
- main containers together, with the pod's restart policy and the kubelet's back-off;
- emptyDir, Secret, ConfigMap, downwardAPI, hostPath and projected volumes (including the
  ServiceAccount token, minted through TokenRequest) as per-pod directories bind-mounted at the
  container's mount paths inside a private mount namespace (``unshare -m``), so two pods never
  see each other's files;
- env (values, ``$(VAR)`` expansion, Secret/ConfigMap/field refs, envFrom), working directory,
  the termination message file, ``activeDeadlineSeconds`` and graceful deletion;
- real status through the API: container states, exit codes, reasons, restart counts, phase;
- container logs served like the kubelet's, so ``kubectl logs`` works.

What it does not emulate, by design: image pulls (see ``images.py``), network isolation (every
pod shares the host's loopback), resource limits, users and capabilities from securityContext,
probes (a running container counts as ready), and node affinity or taints beyond nodeSelector.
A pod it cannot run is never reported as succeeded: it stays ``Pending`` with a reason.

Run it with ``python -m tests.cluster.node --kubeconfig K --workdir D``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import http.server
import json
import logging
import os
import pathlib
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from tests.cluster import images, podspec

log = logging.getLogger("ferry-test-node")

NODE_NAME = "ferry-test-node"
NODE_LABELS = {"kubernetes.io/hostname": NODE_NAME, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}
BACKOFF_START, BACKOFF_MAX = 10.0, 300.0
MERGE_PATCH = "application/merge-patch+json"


def mount_namespaces_work() -> bool:
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True)
    return probe.returncode == 0


HOST_PATHS = tuple(sorted({sys.prefix, sys.base_prefix, str(pathlib.Path(__file__).resolve().parents[2])}))
"""What the images' programs run from on this machine: the Python and the installed Ferry (this
checkout, installed in editable mode). A pod volume over one of them (an emptyDir at ``/tmp``
while the tests run from a checkout under ``/tmp``) must not hide it."""
KEEP_STAGE = "/run/ferry-test-node-keep"


def _under(path: str, target: str) -> bool:
    return path == target or path.startswith(target.rstrip("/") + "/")


def mounting_launcher(mounts: list[tuple[str, str, bool]], workdir: str,
                      keep: tuple[str, ...] = HOST_PATHS) -> list[str]:
    """argv prefix that enters a private mount namespace, bind-mounts, cds and execs the command.

    The mount points are created on the host's filesystem (empty), but what is mounted on them is
    visible only inside this container's namespace.

    A target that is a parent of some source (a pod mounting an emptyDir at ``/tmp`` while this
    node keeps its pods' volumes under ``/tmp``) is mounted last, so that it does not hide the
    sources of the other mounts (a real kubelet keeps volumes outside the container's root);
    ``keep`` paths under a target are put back on top, so the programs stay reachable.
    """

    def covers_a_source(target: str) -> bool:
        return any(os.path.commonpath([target, source]) == target for source, _, _ in mounts)

    lines = ["set -e"]
    # Host paths a mount would hide are bound aside first and put back over the mounts at the end.
    kept = [path for path in keep if any(_under(path, target) for _, target, _ in mounts)]
    for i, path in enumerate(kept):
        lines.append(f"mkdir -p {KEEP_STAGE}/{i}; mount --bind {shlex.quote(path)} {KEEP_STAGE}/{i}")
    for source, target, read_only in sorted(mounts, key=lambda m: covers_a_source(m[1])):
        src, dst = shlex.quote(source), shlex.quote(target)
        if os.path.isdir(source):
            lines.append(f"mkdir -p {dst}")
        else:
            lines.append(f"mkdir -p $(dirname {dst}); [ -e {dst} ] || touch {dst}")
        lines.append(f"mount --bind {src} {dst}")
        if read_only:
            lines.append(f"mount -o remount,bind,ro {dst}")
    for i, path in enumerate(kept):
        lines.append(f"mkdir -p {shlex.quote(path)}; mount --bind {KEEP_STAGE}/{i} {shlex.quote(path)}")
    lines.append(f"mkdir -p {shlex.quote(workdir)}; cd {shlex.quote(workdir)}")
    lines.append('exec "$@"')
    return ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", "\n".join(lines), "container"]


class Container:
    """One run of one container: its process, and what is known about it."""

    def __init__(self, spec: dict, popen: subprocess.Popen | None, started_at: str, restarts: int,
                 launcher: tuple[str, ...] = (), env: dict | None = None):
        self.spec = spec
        self.popen = popen
        self.started_at = started_at
        self.restarts = restarts
        self.launcher = launcher
        """What puts a command inside this container (its mount namespace), for exec probes."""
        self.env = env


class PodRunner(threading.Thread):
    """Runs one pod from admission to deletion and reports its status."""

    def __init__(self, node: "Node", pod: dict):
        super().__init__(name=f"pod-{pod['metadata']['name']}", daemon=True)
        self.node = node
        self.pod = pod
        self.meta, self.spec = pod["metadata"], pod["spec"]
        self.dir = node.workdir / "pods" / self.meta["uid"]
        self.deleted = threading.Event()
        self.statuses: dict[str, dict] = {}
        self.running: dict[str, Container] = {}
        self.restart_at: dict[str, float] = {}
        self.restarts: dict[str, int] = {}
        self.volumes: dict[str, pathlib.Path] = {}
        self.initialized = False
        self.phase, self.reason, self.message = "Pending", None, None
        self.start_time = podspec.now()
        self.started = time.monotonic()

    # -- status --------------------------------------------------------------------------------

    def report(self) -> None:
        def ordered(containers):
            return [self.statuses.get(c["name"]) or podspec.waiting(c, "PodInitializing") for c in containers]

        mains = self.spec["containers"]
        ready = self.phase == "Running" and all(self.statuses.get(c["name"], {}).get("ready") for c in mains)
        status = {
            "phase": self.phase,
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": "127.0.0.1",
            "podIPs": [{"ip": "127.0.0.1"}],
            "startTime": self.start_time,
            "conditions": podspec.conditions(self.initialized, ready),
            "initContainerStatuses": ordered(self.spec.get("initContainers") or []),
            "containerStatuses": ordered(mains),
            "reason": self.reason,
            "message": self.message,
        }
        try:
            self.node.api.patch_namespaced_pod_status(
                self.meta["name"], self.meta["namespace"], {"status": status}, _content_type=MERGE_PATCH)
        except ApiException as error:
            if error.status != 404:
                log.warning("status of %s: %s", self.meta["name"], error.reason)

    def set_waiting_all(self, reason: str, message: str) -> None:
        for c in [*(self.spec.get("initContainers") or []), *self.spec["containers"]]:
            self.statuses[c["name"]] = podspec.waiting(c, reason, message)
        self.report()

    # -- main flow -----------------------------------------------------------------------------

    def run(self) -> None:
        try:
            if self.prepare() and self.run_init_containers():
                self.run_main_containers()
        except Exception as error:  # never leave a pod looking healthy after a node bug
            log.exception("pod %s", self.meta["name"])
            self.phase, self.reason, self.message = "Failed", "TestNodeError", f"test node error: {error}"
            self.report()
        finally:
            self.stop_everything()
            if self.deleted.is_set():
                self.node.finalize_deletion(self.pod)
                shutil.rmtree(self.dir, ignore_errors=True)

    def prepare(self) -> bool:
        """Check images and set up volumes; wait (Pending) while that cannot be done."""
        unknown = sorted({c["image"] for c in self.all_containers() if images.resolve(c["image"]) is None})
        if unknown:
            self.set_waiting_all("ErrImagePull", f"image {unknown[0]!r} is not in the test node's image table "
                                                 "(tests/cluster/images.py)")
            self.deleted.wait()
            return False
        self.set_waiting_all("ContainerCreating", "")
        while not self.deleted.is_set():
            try:
                self.volumes = {v["name"]: self.make_volume(v) for v in self.spec.get("volumes") or []}
                return True
            except podspec.ConfigError as error:
                self.set_waiting_all("ContainerCreating", f"MountVolume.SetUp failed: {error}")
                self.deleted.wait(2)
        return False

    def run_init_containers(self) -> bool:
        for c in self.spec.get("initContainers") or []:
            if podspec.is_sidecar(c):
                self.start_container(c)
                if not self.await_startup(c["name"]):
                    return self.fail_pod(f"sidecar {c['name']} did not pass its startup probe")
                continue
            policy = "Never" if self.spec.get("restartPolicy") == "Never" else "OnFailure"
            codes = self.supervise([c], policy)
            if codes is None:
                return False
            if codes[c["name"]] != 0:
                self.phase = "Failed"
                self.report()
                return False
        self.initialized = True
        return True

    def run_main_containers(self) -> None:
        self.phase = "Running"
        policy = self.spec.get("restartPolicy", "Always")
        if self.supervise(self.spec["containers"], policy) is None:
            return
        self.stop_sidecars()
        self.phase = podspec.phase(policy, [self.statuses[c["name"]] for c in self.spec["containers"]])
        self.report()

    def supervise(self, containers: list[dict], policy: str) -> dict[str, int] | None:
        """Run ``containers`` until each is finished for good under ``policy``; keep sidecars alive.

        Returns their last exit codes, or None if the pod was deleted or ran out of time.
        """
        for c in containers:
            self.start_container(c)
        names = {c["name"] for c in containers}
        while True:
            changed = False
            for name, run in list(self.running.items()):
                if run.popen.poll() is None:
                    continue
                changed = True
                self.exited(run)
                code = podspec.exit_code_of(run.popen.returncode)
                sidecar = name not in names
                if sidecar or policy == "Always" or (policy == "OnFailure" and code != 0):
                    self.schedule_restart(run.spec)
            for name, due in list(self.restart_at.items()):
                if time.monotonic() >= due:
                    del self.restart_at[name]
                    self.start_container(self.container(name))
                    changed = True
            if changed:
                self.report()
            if not any(n in self.running or n in self.restart_at for n in names):
                return {n: self.statuses[n]["state"]["terminated"]["exitCode"] for n in names}
            if self.deadline_exceeded():
                return None
            if self.deleted.wait(0.1):
                return None

    def deadline_exceeded(self) -> bool:
        limit = self.spec.get("activeDeadlineSeconds")
        if limit is None or time.monotonic() - self.started < limit:
            return False
        self.stop_everything()
        self.phase, self.reason = "Failed", "DeadlineExceeded"
        self.message = f"Pod was active on the node longer than the specified deadline ({limit}s)"
        self.report()
        return True

    # -- containers ----------------------------------------------------------------------------

    def all_containers(self) -> list[dict]:
        return [*(self.spec.get("initContainers") or []), *self.spec["containers"]]

    def container(self, name: str) -> dict:
        return next(c for c in self.all_containers() if c["name"] == name)

    def schedule_restart(self, c: dict) -> None:
        count = self.restarts.get(c["name"], 0) + 1
        self.restarts[c["name"]] = count
        delay = min(BACKOFF_START * 2 ** (count - 1), BACKOFF_MAX)
        self.restart_at[c["name"]] = time.monotonic() + delay
        last = self.statuses[c["name"]]["state"]
        self.statuses[c["name"]] = podspec.waiting(c, "CrashLoopBackOff", f"back-off {delay:.0f}s restarting "
                                                   f"failed container={c['name']}", count) | {"lastState": last}

    def start_container(self, c: dict) -> None:
        name, restarts = c["name"], self.restarts.get(c["name"], 0)
        image = images.resolve(c["image"])
        try:
            env = podspec.container_env(self.pod, c, image, self.node.service_env(), self.node.lookup(self.meta))
            mounts = self.mounts(c)
        except podspec.ConfigError as error:
            self.statuses[name] = podspec.waiting(c, "CreateContainerConfigError", str(error), restarts)
            self.restart_at[name] = time.monotonic() + 2
            return
        argv = podspec.container_argv(c, image, env)
        started_at = podspec.now()
        if not argv or not shutil.which(argv[0], path=env["PATH"]):
            what = argv[0] if argv else "<no command>"
            self.statuses[name] = podspec.terminated(
                c, 128, started_at, f'exec: "{what}": executable file not found in $PATH', restarts, "StartError")
            self.running[name] = Container(c, _Exited(128), started_at, restarts)
            return
        logs = self.dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / f"{name}.log", "ab") as out:
            if mounts and not self.node.can_mount:
                raise RuntimeError("volume mounts need a private mount namespace (unshare -m), which is not "
                                   "available to this user: run the test node as root")
            launcher = mounting_launcher(mounts, c.get("workingDir") or "/") if mounts else []
            popen = subprocess.Popen([*launcher, *argv], env=env, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     cwd=None if mounts else (c.get("workingDir") or "/"))
        self.running[name] = Container(c, popen, started_at, restarts, tuple(launcher), env)
        self.statuses[name] = podspec.running(c, started_at, restarts, started="startupProbe" not in c)
        self.report()

    def await_startup(self, name: str) -> bool:
        """Run the container's exec startupProbe until it passes, as the kubelet does before it
        starts the next container; False if the container or the pod ends first."""
        run = self.running.get(name)
        probe = (run.spec.get("startupProbe") if run else None) or {}
        if run is None or not probe:
            return run is not None
        if "exec" not in probe:
            raise RuntimeError(f"container {name}: only exec startup probes are supported by the test node")
        if self.deleted.wait(probe.get("initialDelaySeconds", 0)):
            return False
        failures = 0
        while run.popen.poll() is None and failures < probe.get("failureThreshold", 3):
            command = [*run.launcher, *probe["exec"]["command"]]
            try:
                passed = subprocess.run(command, env=run.env, capture_output=True,
                                        timeout=probe.get("timeoutSeconds", 1)).returncode == 0
            except subprocess.TimeoutExpired:
                passed = False
            if passed:
                self.statuses[name]["started"] = True
                self.report()
                return True
            failures += 1
            if self.deleted.wait(probe.get("periodSeconds", 10)):
                return False
        return False

    def fail_pod(self, message: str) -> bool:
        self.phase, self.reason, self.message = "Failed", "StartupProbeFailed", message
        self.report()
        return False

    def exited(self, run: Container) -> None:
        """Record a finished container: exit code, reason and termination message."""
        del self.running[run.spec["name"]]
        code = podspec.exit_code_of(run.popen.returncode)
        message = self.termination_message(run.spec, code)
        previous = self.statuses.get(run.spec["name"], {})
        if "terminated" in previous.get("state", {}):  # StartError, already recorded
            return
        self.statuses[run.spec["name"]] = podspec.terminated(run.spec, code, run.started_at, message, run.restarts)

    def termination_message(self, c: dict, code: int) -> str:
        path = self.dir / "termination" / c["name"]
        message = path.read_text(errors="replace")[:4096] if path.exists() else ""
        if not message and code != 0 and c.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            log_file = self.dir / "logs" / f"{c['name']}.log"
            if log_file.exists():
                message = "\n".join(log_file.read_text(errors="replace").splitlines()[-80:])[-2048:]
        return message

    def mounts(self, c: dict) -> list[tuple[str, str, bool]]:
        mounts = []
        for mount in c.get("volumeMounts") or []:
            if mount["name"] not in self.volumes:
                raise podspec.ConfigError(f"volume {mount['name']!r} is not defined in the pod")
            source = self.volumes[mount["name"]]
            if mount.get("subPath"):
                source = source / mount["subPath"]
                source.mkdir(parents=True, exist_ok=True) if not source.exists() else None
            mounts.append((str(source), mount["mountPath"], bool(mount.get("readOnly"))))
        message_file = self.dir / "termination" / c["name"]
        message_file.parent.mkdir(parents=True, exist_ok=True)
        message_file.write_text("")
        mounts.append((str(message_file), c.get("terminationMessagePath") or "/dev/termination-log", False))
        return mounts

    def stop_sidecars(self) -> None:
        sidecars = [c for c in self.spec.get("initContainers") or [] if podspec.is_sidecar(c)]
        for c in reversed(sidecars):
            self.restart_at.pop(c["name"], None)
            if c["name"] in self.running:
                self.kill([self.running[c["name"]]])

    def stop_everything(self) -> None:
        self.restart_at.clear()
        sidecars = {c["name"] for c in self.spec.get("initContainers") or [] if podspec.is_sidecar(c)}
        self.kill([run for name, run in self.running.items() if name not in sidecars])
        self.stop_sidecars()

    def kill(self, runs: list[Container]) -> None:
        grace = self.meta.get("deletionGracePeriodSeconds")
        grace = self.spec.get("terminationGracePeriodSeconds", 30) if grace is None else grace
        for run in runs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(run.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for run in runs:
            try:
                run.popen.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(run.popen.pid, signal.SIGKILL)
                run.popen.wait()
            self.exited(run)
        if runs:
            self.report()

    # -- volumes -------------------------------------------------------------------------------

    def make_volume(self, volume: dict) -> pathlib.Path:
        path = self.dir / "volumes" / volume["name"]
        if "hostPath" in volume:
            return pathlib.Path(volume["hostPath"]["path"])
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        if "emptyDir" in volume:
            return path
        if "projected" in volume:
            mode = volume["projected"].get("defaultMode", 0o644)
            for source in volume["projected"]["sources"]:
                self.write_files(path, self.projected_files(source), mode)
            return path
        files = self.projected_files(volume)
        if files is None:
            raise podspec.ConfigError(f"volume {volume['name']}: type {sorted(set(volume) - {'name'})} is not "
                                      "supported by the test node")
        kind = next(k for k in ("secret", "configMap", "downwardAPI") if k in volume)
        self.write_files(path, files, volume[kind].get("defaultMode", 0o644))
        return path

    def projected_files(self, source: dict) -> dict[str, tuple[bytes, int | None]] | None:
        """Files (relative path → content, mode) of a secret/configMap/downwardAPI/token source."""
        if "serviceAccountToken" in source:
            spec = source["serviceAccountToken"]
            token = self.node.mint_token(self.pod, spec.get("audience"), spec.get("expirationSeconds", 3600))
            return {spec["path"]: (token.encode(), None)}
        if "downwardAPI" in source:
            return {item["path"]: (podspec.field_value(self.pod, item["fieldRef"]["fieldPath"]).encode(),
                                   item.get("mode")) for item in source["downwardAPI"]["items"]}
        for key, kind, name_field in (("secret", "secret", "secretName"), ("configMap", "configmap", "name")):
            if key in source:
                ref = source[key]
                name = ref.get(name_field) or ref.get("name")
                data = self.node.lookup(self.meta)(kind, name)
                if data is None:
                    if ref.get("optional"):
                        return {}
                    raise podspec.ConfigError(f'{kind} "{name}" not found')
                items = ref.get("items") or [{"key": k, "path": k} for k in data]
                return {item["path"]: (data[item["key"]].encode(), item.get("mode")) for item in items}
        return None

    @staticmethod
    def write_files(root: pathlib.Path, files: dict[str, tuple[bytes, int | None]], default_mode: int) -> None:
        for relative, (content, mode) in files.items():
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            target.chmod(default_mode if mode is None else mode)


class _Exited:
    """Stands in for the process of a container that could not start."""

    def __init__(self, code: int):
        self.returncode = code
        self.pid = -1

    def poll(self) -> int:
        return self.returncode

    def wait(self, timeout=None) -> int:
        return self.returncode


class Node:
    def __init__(self, api: client.CoreV1Api, workdir: pathlib.Path, server: str, log_port: int):
        self.api = api
        self.workdir = workdir
        self.server = urllib.parse.urlsplit(server)
        self.log_port = log_port
        self.runners: dict[str, PodRunner] = {}
        self.can_mount = mount_namespaces_work()
        if not self.can_mount:
            log.warning("no mount namespaces: pods with volumes will not start")

    def service_env(self) -> dict[str, str]:
        host, port = self.server.hostname, str(self.server.port or 443)
        return {
            "KUBERNETES_SERVICE_HOST": host,
            "KUBERNETES_SERVICE_PORT": port,
            "KUBERNETES_SERVICE_PORT_HTTPS": port,
            "KUBERNETES_PORT": f"tcp://{host}:{port}",
        }

    def lookup(self, meta: dict):
        def read(kind: str, name: str) -> dict[str, str] | None:
            try:
                if kind == "secret":
                    secret = self.api.read_namespaced_secret(name, meta["namespace"])
                    return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
                config_map = self.api.read_namespaced_config_map(name, meta["namespace"])
                return dict(config_map.data or {})
            except ApiException as error:
                if error.status == 404:
                    return None
                raise

        return read

    def mint_token(self, pod: dict, audience: str | None, seconds: int) -> str:
        request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(
            audiences=[audience] if audience else [],
            expiration_seconds=seconds,
            bound_object_ref=client.V1BoundObjectReference(
                kind="Pod", api_version="v1", name=pod["metadata"]["name"], uid=pod["metadata"]["uid"])))
        result = self.api.create_namespaced_service_account_token(
            pod["spec"].get("serviceAccountName") or "default", pod["metadata"]["namespace"], request)
        return result.status.token

    # -- registration --------------------------------------------------------------------------

    def register(self) -> None:
        with contextlib.suppress(ApiException):
            self.api.delete_node(NODE_NAME)
        self.api.create_node(client.V1Node(metadata=client.V1ObjectMeta(name=NODE_NAME, labels=NODE_LABELS)))
        self.heartbeat()

    def heartbeat(self) -> None:
        stamp = podspec.now()
        capacity = {"cpu": str(os.cpu_count()), "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"}
        status = {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "ferry test node is posting ready status",
                            "lastHeartbeatTime": stamp, "lastTransitionTime": stamp}],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": NODE_NAME}],
            "capacity": capacity,
            "allocatable": capacity,
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.log_port}},
            "nodeInfo": {"kubeletVersion": "ferry-test-node", "kubeProxyVersion": "", "operatingSystem": "linux",
                         "architecture": "amd64", "containerRuntimeVersion": "local-process://1",
                         "osImage": "", "kernelVersion": os.uname().release, "machineID": "", "systemUUID": "",
                         "bootID": ""},
        }
        self.api.patch_node_status(NODE_NAME, {"status": status}, _content_type=MERGE_PATCH)
        leases = client.CoordinationV1Api(self.api.api_client)
        # A MicroTime: the client writes datetimes with isoformat(), which drops a zero fraction.
        renewed = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=1)
        try:
            lease = leases.read_namespaced_lease(NODE_NAME, "kube-node-lease")
        except ApiException as error:
            if error.status != 404:
                raise
            leases.create_namespaced_lease("kube-node-lease", client.V1Lease(
                metadata=client.V1ObjectMeta(name=NODE_NAME), spec=client.V1LeaseSpec(
                    holder_identity=NODE_NAME, lease_duration_seconds=40, renew_time=renewed)))
            return
        lease.spec.renew_time = renewed
        leases.replace_namespaced_lease(NODE_NAME, "kube-node-lease", lease)

    def heartbeat_forever(self) -> None:
        while True:
            time.sleep(10)
            try:
                self.heartbeat()
            except Exception:
                log.exception("heartbeat")

    # -- pods ----------------------------------------------------------------------------------

    def watch_forever(self) -> None:
        while True:
            try:
                stream = watch.Watch().stream(self.api.list_pod_for_all_namespaces, timeout_seconds=300)
                for event in stream:
                    self.handle(event["type"], event["raw_object"])
            except Exception:
                log.exception("pod watch")
                time.sleep(1)

    def handle(self, kind: str, pod: dict) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        if not spec.get("nodeName"):
            if kind != "DELETED":
                self.maybe_bind(pod)
            return
        if spec["nodeName"] != NODE_NAME:
            return
        runner = self.runners.get(meta["uid"])
        if kind == "DELETED" or meta.get("deletionTimestamp"):
            if runner and runner.is_alive():
                runner.pod = pod
                runner.meta = meta
                runner.deleted.set()
            elif kind != "DELETED":
                self.finalize_deletion(pod)
            return
        if runner is None and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
            runner = self.runners[meta["uid"]] = PodRunner(self, pod)
            runner.start()

    def maybe_bind(self, pod: dict) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        if meta.get("deletionTimestamp") or spec.get("schedulerName", "default-scheduler") != "default-scheduler":
            return
        if any(NODE_LABELS.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
            return
        binding = client.V1Binding(metadata=client.V1ObjectMeta(name=meta["name"]),
                                   target=client.V1ObjectReference(kind="Node", api_version="v1", name=NODE_NAME))
        try:
            self.api.create_namespaced_pod_binding(meta["name"], meta["namespace"], binding, _preload_content=False)
        except ApiException as error:
            if error.status not in (404, 409):
                log.warning("binding %s: %s", meta["name"], error.reason)

    def finalize_deletion(self, pod: dict) -> None:
        """What the kubelet does last: remove the pod object once its containers are gone."""
        meta = pod["metadata"]
        options = client.V1DeleteOptions(grace_period_seconds=0, preconditions=client.V1Preconditions(uid=meta["uid"]))
        try:
            self.api.delete_namespaced_pod(meta["name"], meta["namespace"], body=options)
        except ApiException as error:
            if error.status not in (404, 409):
                log.warning("deleting %s: %s", meta["name"], error.reason)

    def log_file(self, namespace: str, name: str, container: str) -> pathlib.Path | None:
        for runner in list(self.runners.values()):
            if runner.meta["namespace"] == namespace and runner.meta["name"] == name:
                return runner.dir / "logs" / f"{container}.log"
        return None


def serve_logs(node: Node, port: int, cert: str, key: str) -> None:
    """The kubelet's ``/containerLogs/{namespace}/{pod}/{container}``, so ``kubectl logs`` works."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            parts = url.path.strip("/").split("/")
            path = node.log_file(*parts[1:4]) if len(parts) == 4 and parts[0] == "containerLogs" else None
            if path is None or not path.exists():
                self.send_error(404, "container not found")
                return
            query = urllib.parse.parse_qs(url.query)
            lines = path.read_bytes().splitlines(keepends=True)
            if "tailLines" in query:
                lines = lines[-int(query["tailLines"][0]):] if int(query["tailLines"][0]) else []
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"".join(lines))

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--workdir", required=True, type=pathlib.Path)
    parser.add_argument("--log-port", type=int, required=True)
    parser.add_argument("--tls-cert", required=True)
    parser.add_argument("--tls-key", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(threadName)s %(message)s")
    api_client = config.new_client_from_config(args.kubeconfig)
    node = Node(client.CoreV1Api(api_client), args.workdir, api_client.configuration.host, args.log_port)
    node.register()
    threading.Thread(target=node.heartbeat_forever, name="heartbeat", daemon=True).start()
    threading.Thread(target=serve_logs, args=(node, args.log_port, args.tls_cert, args.tls_key),
                     name="logs", daemon=True).start()
    print(json.dumps({"node": NODE_NAME, "ready": True}), flush=True)
    node.watch_forever()


if __name__ == "__main__":
    main()
