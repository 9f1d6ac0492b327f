"""Leader election over a Lease, so that of several operator replicas exactly one acts.

A replica waits (answering its liveness probe, so it is not restarted) until it holds the Lease,
then starts the operator. If it cannot renew the Lease in time it exits at once: the kubelet
restarts it as a follower and another replica takes over. Even during such a hand-over two
replicas cannot run a task twice: attempt pods have deterministic names and status writes are
guarded by resourceVersion; leadership only avoids the wasted work.
"""

from __future__ import annotations

import http.server
import logging
import os
import pathlib
import secrets
import socket
import threading
import urllib.parse

from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

log = logging.getLogger("ferry.operator")
NAMESPACE_FILE = pathlib.Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def own_namespace() -> str:
    """The pod's namespace (``POD_NAMESPACE`` or the ServiceAccount mount), for the Lease."""
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    if NAMESPACE_FILE.exists():
        return NAMESPACE_FILE.read_text().strip()
    raise SystemExit("--leader-elect needs the namespace for its Lease: set --leader-election-namespace "
                     "or POD_NAMESPACE")


class _Standby(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"standby: waiting to lead\n")

    def log_message(self, *args):
        pass


def wait_until_leader(namespace: str, name: str, liveness: str | None, lease_seconds: int = 15) -> None:
    """Block until this process holds the Lease ``namespace/name``; keep renewing it afterwards."""
    identity = f"{socket.gethostname()}-{secrets.token_hex(3)}"
    standby = None
    if liveness:
        url = urllib.parse.urlsplit(liveness)
        standby = http.server.ThreadingHTTPServer((url.hostname, url.port or 80), _Standby)
        threading.Thread(target=standby.serve_forever, daemon=True).start()
    elected = threading.Event()

    def lost() -> None:
        log.error("lost the leader Lease %s/%s; exiting so that another replica takes over", namespace, name)
        os._exit(1)

    config = electionconfig.Config(LeaseLock(name, namespace, identity), lease_duration=lease_seconds,
                                   renew_deadline=lease_seconds * 2 // 3, retry_period=2,
                                   onstarted_leading=elected.set, onstopped_leading=lost)
    threading.Thread(target=leaderelection.LeaderElection(config).run, name="leader-election", daemon=True).start()
    log.info("waiting to lead (Lease %s/%s, identity %s)", namespace, name, identity)
    elected.wait()
    log.info("leading as %s", identity)
    if standby:
        standby.shutdown()
        standby.server_close()
