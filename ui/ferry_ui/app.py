"""The web application: pages rendered on the server (Jinja2), live by server-sent events.

``create`` wires the routes (``routes``, one function each) behind ``protect.Guard``, which
refuses other hosts and sites and adds the security headers to every answer. Read-only: no route
changes a workflow or the store.
"""

from __future__ import annotations

import functools
import pathlib
import socket
import urllib.parse

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from ferry.api import resource
from ferry.data import store as store_
from ferry_ui import confined, localruns, protect, routes, stored, summaries, units

HERE = pathlib.Path(__file__).parent


class Sources:
    """Local runs (namespace ``local``) and a cluster's workflows, as one list."""

    def __init__(self, local=None, cluster=None):
        self.local, self.cluster = local, cluster

    def of(self, namespace: str):
        source = self.local if namespace == localruns.NAMESPACE else self.cluster
        if source is None:
            raise HTTPException(404, f"no source of namespace {namespace!r}")
        return source

    def all(self):
        return [s for s in (self.cluster, self.local) if s is not None]

    def page(self, query: summaries.Query) -> tuple[list[summaries.Summary], int]:
        if query.namespace:
            return self.of(query.namespace).page(query)
        # Newest first over both: each gives its first offset + limit, merged and cut.
        wide = summaries.Query(None, query.phase, query.name, 0, query.offset + query.limit)
        rows, total = [], 0
        for source in self.all():
            found, count = source.page(wide)
            rows += found
            total += count
        rows.sort(key=lambda s: (s.created, s.namespace, s.name), reverse=True)
        return rows[query.offset:query.offset + query.limit], total

    def namespaces(self) -> list[str]:
        return [n for s in self.all() for n in s.namespaces()]

    def version(self) -> int:
        return sum(s.version for s in self.all())

    def lineage(self, uri: str):
        producer, readers = None, []
        for source in self.all():
            made, read = source.lineage(uri)
            producer = producer or made
            readers += read
        return producer, readers


def create(sources: Sources, store: store_.Store | None = None, bound: str = "127.0.0.1",
           allow_hosts: list[str] | tuple[str, ...] = (), stores: tuple[str, ...] = ()) -> Starlette:
    """The app, answering the hosts ``protect.allowed(bound, allow_hosts)`` and reading only what
    ``confined`` lets it read: under ``store``'s raw data prefix and the ``stores`` given."""
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters.update(size=summaries.human_size, quote=urllib.parse.quote, clock=summaries.clock)
    templates.env.globals.update(sources=sources, phases=[p.value for p in resource.Phase],
                                 ferry_query=routes.query_string, page_size=stored.LEVEL_PAGE,
                                 units_query=units.query)
    ui = routes.UI(sources, confined.Store((store or store_.Store()).settings, stores), templates)
    pages = [Route(path, functools.partial(endpoint, ui)) for path, endpoint in ROUTES]
    return Starlette(routes=[*pages, Mount("/static", StaticFiles(directory=HERE / "static"), name="static")],
                     middleware=[Middleware(protect.Guard, hosts=protect.allowed(bound, allow_hosts))])


ROUTES = (
    ("/", routes.home),
    ("/healthz", routes.healthz),
    ("/workflows", routes.workflows),
    ("/workflows/{namespace}/{name}", routes.workflow),
    ("/workflows/{namespace}/{name}/graph", routes.dag),
    ("/workflows/{namespace}/{name}/tasks/{task}", routes.task),
    ("/workflows/{namespace}/{name}/tasks/{task}/attempts/{attempt:int}/log", routes.logs),
    ("/events", routes.events),
    ("/output", routes.output),
    ("/preview", routes.preview),
    ("/raw", routes.raw),
    ("/drives", routes.drive_list),
    ("/drives/{name}", routes.drive),
)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, made before the URL is printed: a busy port raises OSError here."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host.strip("[]"), port), family=family)


def serve(sources: Sources, listening: socket.socket, store: store_.Store | None = None,
          allow_hosts: list[str] | tuple[str, ...] = (), stores: tuple[str, ...] = ()) -> None:
    import uvicorn

    host = listening.getsockname()[0]
    config = uvicorn.Config(create(sources, store, host, allow_hosts, stores), log_level="warning",
                            timeout_graceful_shutdown=1)  # live pages hold a stream open: on Ctrl-C, close them
    uvicorn.Server(config).run(sockets=[listening])
