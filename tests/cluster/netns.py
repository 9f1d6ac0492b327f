"""The suite's own network namespace, where the real node, its pods, the servers and the tests meet.

The node's address lives on a veth pair inside the namespace, which has no link to the outside:
pods reach the API server and MinIO at that address and no packet can leave. The test process
enters the namespace (``enter``) once the builds that need the package registries are done, so
every server it starts afterwards, and every connection it makes, stays inside.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess

NAME = "ferry-test"
NODE_ADDRESS = "10.233.0.1"
"""The node's InternalIP; the API server and MinIO listen on it."""
POD_CIDR = "10.244.0.0/24"
SERVICE_CIDR = "10.0.0.0/24"
"""ClusterIPs; routed to the node's own interface, where kube-proxy's rules take them."""
_CLONE_NEWNET = 0x40000000


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def exists() -> bool:
    return os.path.exists(f"/run/netns/{NAME}")


def create() -> None:
    """A fresh namespace with loopback up and the node's address on a veth pair."""
    delete()
    _ip("netns", "add", NAME)
    for command in (["link", "set", "lo", "up"],
                    ["link", "add", "ferry-node", "type", "veth", "peer", "name", "ferry-peer"],
                    ["addr", "add", f"{NODE_ADDRESS}/24", "dev", "ferry-node"],
                    ["link", "set", "ferry-node", "up"],
                    ["link", "set", "ferry-peer", "up"],
                    ["route", "add", SERVICE_CIDR, "dev", "ferry-node"]):
        _ip("-n", NAME, *command)


def enter() -> None:
    """Move this thread (and every process and thread it starts from now on) into the namespace."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{NAME}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {NAME}")
    finally:
        os.close(fd)


def inside() -> bool:
    """Whether this process is in the suite's namespace."""
    with contextlib.suppress(OSError):
        return os.stat("/proc/self/ns/net").st_ino == os.stat(f"/run/netns/{NAME}").st_ino
    return False


def host_address() -> str:
    """Where servers started by the suite listen and are reached: the node's address inside the
    namespace, loopback outside it."""
    return NODE_ADDRESS if inside() else "127.0.0.1"


def delete() -> None:
    if exists():
        _ip("netns", "delete", NAME, check=False)
