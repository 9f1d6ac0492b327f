"""Which requests the UI answers, and the headers every answer carries.

The UI has no login: it answers whoever reaches it, with its user's (or, in a cluster, its own)
credentials. A web page of any other site can reach it too, through the browser of someone who
has it open: by DNS rebinding (a name of the attacker's that resolves to 127.0.0.1, so the
browser sends ``Host: evil.example``) or by a cross-site request. So a request is answered only
when its Host is a name the UI is served as (loopback by any port, as ``kubectl port-forward``
picks one; the address it was bound to; ``--allow-host``), and a request that says where it comes
from (``Origin``) only from the UI's own pages. ``/healthz`` answers anyone: the kubelet's probes
name the pod's IP, and it says only "ok".
"""

from __future__ import annotations

from collections.abc import Iterable

LOOPBACK = frozenset({"localhost", "127.0.0.1", "[::1]"})
WILDCARDS = frozenset({"", "0.0.0.0", "::", "[::]"})
OPEN_PATHS = frozenset({"/healthz"})

POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
          "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
"""The pages' Content-Security-Policy: scripts only from the UI's own files (no inline script or
handler runs, whatever markup a name or a message smuggles in). Inline styles stay allowed:
Cytoscape adds a stylesheet of its own (without it the page logs a violation), and a style runs no script."""
HEADERS = ((b"content-security-policy", POLICY.encode()), (b"x-content-type-options", b"nosniff"),
           (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY"))
WRONG_HOST = ("ferry ui: this page was asked for by a host name the UI is not served as; open it as "
              "http://localhost:PORT/ (or 127.0.0.1, [::1]), or start ferry ui with --allow-host NAME\n")
WRONG_ORIGIN = "ferry ui: a request from another site's page is refused\n"


def host_name(host: str) -> str:
    """The name in a ``Host`` header, without its port: ``[::1]:8686`` → ``[::1]``."""
    host = host.strip().lower()
    name = host[:host.index("]") + 1] if host.startswith("[") and "]" in host else host.partition(":")[0]
    return name.rstrip(".")


def allowed(bound: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The host names to answer: loopback's, the address bound to (unless it is every address)
    and the ``extra`` names given with ``--allow-host``."""
    names = {f"[{n}]" if ":" in n and not n.startswith("[") else n for n in (bound, *extra)}
    return LOOPBACK | {host_name(n) for n in names if n not in WILDCARDS}


class Guard:
    """ASGI middleware: refuses a request by Host or Origin, and adds ``HEADERS`` to every response
    that does not set them itself (``/raw`` sets its own policy)."""

    def __init__(self, app, hosts: frozenset[str]) -> None:
        self.app, self.hosts = app, hosts

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {key: value.decode("latin-1") for key, value in scope["headers"]}
        host = headers.get(b"host", "")
        if scope["path"] not in OPEN_PATHS:
            if host_name(host) not in self.hosts:
                return await _plain(send, 421, WRONG_HOST)
            origin = headers.get(b"origin")
            if origin is not None and origin.lower().partition("://")[2] != host.lower():
                return await _plain(send, 403, WRONG_ORIGIN)

        async def with_headers(message) -> None:
            if message["type"] == "http.response.start":
                present = {key.lower() for key, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *((k, v) for k, v in HEADERS if k not in present)]
            await send(message)
        await self.app(scope, receive, with_headers)


async def _plain(send, status: int, text: str) -> None:
    body = text.encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()), *HEADERS]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
