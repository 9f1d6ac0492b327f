"""A real Kubernetes node for the suite: containerd, runc, CNI, kubelet, kube-scheduler, kube-proxy
and CoreDNS.

Everything runs in the suite's network namespace (``netns.py``) next to the control plane, so
pods reach the API server (through the ``kubernetes`` Service, by kube-proxy's rules) and MinIO at
the node's address, and nothing reaches beyond it. Images come from ``node_images.py``, built
here from the project's Dockerfile and Debian packages and imported into containerd: the names
users write (``busybox:1.36``, ``ferry:dev``) resolve locally with no pull.

These machines have cgroup v1 and root without CAP_SYS_RESOURCE, hence ``failCgroupV1: false``,
the cgroupfs driver and containerd's ``restrict_oom_score_adj``. The kubelet changes a few host
sysctls; they are saved before it starts and restored after. ``clean`` removes whatever a
killed run left (pods' processes, shims, mounts, ``kubepods`` cgroups, the namespace) and runs
before every start as well as after every stop. Only one real node runs on a machine at a time
(a lock), since the ``kubepods`` cgroups are the machine's.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pathlib
import shutil
import signal
import subprocess
import time
from collections.abc import Callable

import yaml

from tests.cluster import binaries, controlplane, netns, node_images
from tests.cluster.processes import Server

NODE_NAME = controlplane.NODE_NAME
HOST_SYSCTLS = ("vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops")
"""Host-wide settings the kubelet changes on start."""
CNI_PLUGINS = pathlib.Path("/usr/lib/cni")
CLUSTER_DOMAIN = "cluster.local"
REQUIRED_COMMANDS = ("containerd", "containerd-shim-runc-v2", "runc", "ctr", "buildah", "mmdebstrap", "ip", "iptables")


def missing_requirements() -> list[str]:
    """What this machine lacks to run the real node (empty when it can)."""
    missing = [command for command in REQUIRED_COMMANDS if shutil.which(command) is None]
    if not (CNI_PLUGINS / "bridge").exists():
        missing.append(f"{CNI_PLUGINS}/bridge (containernetworking-plugins)")
    if os.geteuid() != 0:
        missing.append("root")
    return missing


def run_dir() -> pathlib.Path:
    """Fixed, so that a killed run's leftovers are found and removed by the next one."""
    return binaries.cache_dir() / "node"


def _kill_pids(pids: set[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _processes_mentioning(text: str) -> set[int]:
    found = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if text.encode() in pathlib.Path(entry.path, "cmdline").read_bytes():
                    found.add(int(entry.name))
    return found


def _processes_in_namespace() -> set[int]:
    """Every process in the suite's network namespace but this one: servers of a killed run
    (etcd, the API server, MinIO...) live on there, detached, until killed."""
    try:
        namespace = os.stat(f"/run/netns/{netns.NAME}").st_ino
    except OSError:
        return set()
    found = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if os.stat(f"{entry.path}/ns/net").st_ino == namespace:
                    found.add(int(entry.name))
    return found


def _kubepods_cgroups() -> list[pathlib.Path]:
    """Every ``kubepods`` cgroup in every v1 hierarchy (and the unified one), deepest first."""
    found = []
    for hierarchy in pathlib.Path("/sys/fs/cgroup").iterdir():
        top = hierarchy / "kubepods"
        if top.is_dir() and not hierarchy.is_symlink():
            found += sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)) + [top]
    return found


def _mounts_under(root: str) -> list[str]:
    points = []
    for line in pathlib.Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == root or point.startswith(root + "/") or point.startswith("/run/netns/cni-"):
            points.append(point)
    return sorted(points, key=len, reverse=True)


def clean() -> None:
    """Remove everything a run of this suite may have left, running or killed: every process in its
    namespace, then mounts, cgroups, the namespace itself and the host's sysctls."""
    root = str(run_dir())
    for cgroup in _kubepods_cgroups():  # the pods' processes first, then what runs them
        with contextlib.suppress(OSError):
            _kill_pids({int(pid) for pid in (cgroup / "cgroup.procs").read_text().split()})
    _kill_pids(_processes_mentioning(root) | _processes_in_namespace())
    time.sleep(0.2)
    for point in _mounts_under(root):
        if subprocess.run(["umount", point], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", point], capture_output=True)
    for point in pathlib.Path("/run/netns").glob("cni-*"):
        with contextlib.suppress(OSError):
            point.unlink()
    for cgroup in _kubepods_cgroups():
        for _ in range(20):
            try:
                cgroup.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.1)
    netns.delete()
    _restore_sysctls()
    shutil.rmtree(run_dir() / "run", ignore_errors=True)


def _saved_sysctls() -> pathlib.Path:
    return run_dir() / "host-sysctls.json"


def _save_sysctls() -> None:
    saved = _saved_sysctls()
    if not saved.exists():  # a killed run's file holds the values from before it
        values = {name: pathlib.Path("/proc/sys", name).read_text().strip() for name in HOST_SYSCTLS}
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps(values))


def _restore_sysctls() -> None:
    saved = _saved_sysctls()
    if saved.exists():
        for name, value in json.loads(saved.read_text()).items():
            with contextlib.suppress(OSError):
                pathlib.Path("/proc/sys", name).write_text(value)
        saved.unlink()


def containerd_config(work: pathlib.Path) -> str:
    return f"""version = 2
root = "{work / 'containerd' / 'root'}"
state = "{work / 'containerd' / 'state'}"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs",
                    "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "{work / 'containerd.sock'}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{node_images.PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  enable_cdi = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_PLUGINS}"
    conf_dir = "{work / 'cni'}"
"""


def cni_config(work: pathlib.Path) -> dict:
    return {
        "cniVersion": "0.4.0", "name": "ferry-pods",
        "plugins": [
            {"type": "bridge", "bridge": "ferry0", "isGateway": True, "ipMasq": False, "hairpinMode": True,
             "ipam": {"type": "host-local", "dataDir": str(work / "cni-ipam"), "ranges": [[{"subnet": netns.POD_CIDR}]],
                      "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubelet_config(work: pathlib.Path) -> dict:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        "cgroupDriver": "cgroupfs", "failCgroupV1": False, "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{work / 'containerd.sock'}",
        # Reached only from inside the suite's namespace, by the API server (logs, exec).
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "address": netns.NODE_ADDRESS, "readOnlyPort": 0, "healthzBindAddress": "127.0.0.1",
        "resolvConf": str(work / "resolv.conf"),
        "clusterDNS": [netns.NODE_ADDRESS], "clusterDomain": CLUSTER_DOMAIN,
        "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%",
                         "nodefs.inodesFree": "1%"},
        "syncFrequency": "10s", "nodeStatusUpdateFrequency": "4s", "serializeImagePulls": False,
        "maxPods": 250,
    }


def corefile(kubeconfig: pathlib.Path) -> str:
    """Cluster DNS on the node's address: Services and pods by name; nothing is forwarded (there is
    nowhere to forward to), so other names fail at once."""
    return f"""{CLUSTER_DOMAIN}:53 in-addr.arpa:53 {{
    bind {netns.NODE_ADDRESS}
    errors
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa {{
        kubeconfig {kubeconfig}
        pods insecure
    }}
}}
.:53 {{
    bind {netns.NODE_ADDRESS}
    errors
}}
"""


def kube_proxy_config(kubeconfig: pathlib.Path) -> dict:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)}, "mode": "iptables",
        "hostnameOverride": NODE_NAME, "clusterCIDR": netns.POD_CIDR,
        "bindAddress": netns.NODE_ADDRESS,
        "healthzBindAddress": "127.0.0.1:10256", "metricsBindAddress": "127.0.0.1:10249",
        # Zero: leave the machine-wide conntrack settings alone.
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        # Every Service connection is masqueraded, so a pod reaching a Service backed by a pod on
        # the same bridge gets its answers back through the node.
        "iptables": {"masqueradeAll": True},
    }


class Lock:
    """One real node per machine, whatever cache folder each run uses: the namespace and the
    ``kubepods`` cgroups are the machine's."""

    PATH = pathlib.Path("/run/ferry-test-node.lock")

    def __init__(self) -> None:
        run_dir().mkdir(parents=True, exist_ok=True)
        self._file = open(self.PATH, "w")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            raise RuntimeError(f"another test run uses the real node on this machine ({run_dir()}); "
                               f"wait for it to finish") from None

    def release(self) -> None:
        self._file.close()


def enter() -> Callable[[], None]:
    """Take the machine's real node (a lock), remove what a killed run left, and move this process
    into a fresh network namespace for good. Returns the cleanup to run at the very end."""
    lock = Lock()
    clean()
    netns.create()
    netns.enter()

    def cleanup() -> None:
        clean()
        lock.release()

    return cleanup


def start(kubeconfigs: dict[str, pathlib.Path], images: list[pathlib.Path], logs: pathlib.Path) -> list[Server]:
    """Start containerd (with the suite's images), the kubelet, kube-scheduler and kube-proxy.

    ``kubeconfigs`` has one per identity: ``kubelet``, ``kube-scheduler``, ``kube-proxy``, ``coredns``;
    ``images`` are the OCI archives containerd gets (``node_images.build_all``). The
    caller is already inside the suite's network namespace, with the API server listening on the
    node's address. Returns the servers in start order.
    """
    bins = binaries.build_node()
    work = run_dir() / "run"
    shutil.rmtree(work, ignore_errors=True)
    (work / "cni").mkdir(parents=True)
    (work / "cni" / "10-ferry.conflist").write_text(json.dumps(cni_config(work)))
    (work / "containerd.toml").write_text(containerd_config(work))
    (work / "resolv.conf").write_text(f"nameserver {netns.NODE_ADDRESS}\n")
    servers: list[Server] = []
    try:
        containerd = Server("containerd", ["containerd", "--config", str(work / "containerd.toml")], logs)
        servers.append(containerd)
        socket = str(work / "containerd.sock")
        containerd.wait_until(lambda: subprocess.run(["ctr", "-a", socket, "version"], capture_output=True)
                              .returncode == 0, 60, "serving")
        node_images.import_into(socket, images)

        _save_sysctls()
        (work / "kubelet.yaml").write_text(yaml.safe_dump(kubelet_config(work)))
        servers.append(Server("kubelet", [
            str(bins / "kubelet"), f"--config={work / 'kubelet.yaml'}", f"--kubeconfig={kubeconfigs['kubelet']}",
            f"--root-dir={work / 'kubelet'}", f"--cert-dir={work / 'kubelet-pki'}",
            f"--hostname-override={NODE_NAME}", f"--node-ip={netns.NODE_ADDRESS}", "--v=1",
        ], logs))
        scheduler = kubeconfigs["kube-scheduler"]
        servers.append(Server("kube-scheduler", [
            str(bins / "kube-scheduler"), f"--kubeconfig={scheduler}", f"--authentication-kubeconfig={scheduler}",
            f"--authorization-kubeconfig={scheduler}", "--leader-elect=false", "--bind-address=127.0.0.1",
            "--secure-port=10259",
        ], logs))
        (work / "kube-proxy.yaml").write_text(yaml.safe_dump(kube_proxy_config(kubeconfigs["kube-proxy"])))
        servers.append(Server("kube-proxy", [str(bins / "kube-proxy"), f"--config={work / 'kube-proxy.yaml'}"], logs))
        (work / "Corefile").write_text(corefile(kubeconfigs["coredns"]))
        servers.append(Server("coredns", [str(binaries.build_coredns()), "-conf", str(work / "Corefile")], logs))
        return servers
    except BaseException:
        for server in reversed(servers):
            server.stop()
        raise
