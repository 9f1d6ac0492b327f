"""The web application: pages rendered on the server (Jinja2), live by server-sent events.

Handlers are thin: they ask a source (``ClusterSource``, ``LocalSource``) for workflows, pods and
logs, and ``graph``, ``stored`` and ``summaries`` for what to show. Read-only: no route changes a
workflow or the store.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import socket
import urllib.parse

import pydantic
from starlette.applications import Starlette
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from ferry.api import resource
from ferry.core import errors, uris
from ferry.data import store as store_
from ferry.values import drives
from ferry_ui import confined, graph, localruns, protect, stored, summaries

HERE = pathlib.Path(__file__).parent
LIVE_SECONDS = 0.5
"""How often a live page's stream looks for a change."""
HEARTBEAT_SECONDS = 15
RAW_POLICY = "sandbox; default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
"""A stored file opened on its own: no script, nothing loaded (the browser's image viewer styles itself)."""


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
           allow_hosts: list[str] | tuple[str, ...] = ()) -> Starlette:
    """The app, answering the hosts ``protect.allowed(bound, allow_hosts)`` and reading only what
    ``confined`` lets it read of ``store``."""
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters.update(size=summaries.human_size, quote=urllib.parse.quote, clock=summaries.clock)
    templates.env.globals.update(sources=sources, phases=[p.value for p in resource.Phase], ferry_query=_query_string,
                                 page_size=stored.LEVEL_PAGE)
    store = confined.Store((store or store_.Store()).settings)

    def query_of(request: Request) -> summaries.Query:
        params = request.query_params
        return summaries.Query(namespace=params.get("namespace") or None, phase=params.get("phase") or None,
                               name=params.get("name") or None, offset=max(0, _number(params, "offset", 0)),
                               limit=min(500, max(1, _number(params, "limit", summaries.PAGE_SIZE))))

    async def read_workflow(request: Request) -> tuple[str, str, dict]:
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        found = await run_in_threadpool(sources.of(namespace).workflow, namespace, name)
        if found is None:
            raise HTTPException(404, f"no workflow {namespace}/{name}")
        return namespace, name, found

    async def workflows(request: Request) -> Response:
        query = query_of(request)
        rows, total = await run_in_threadpool(sources.page, query)
        template = "rows.html" if request.query_params.get("fragment") else "workflows.html"
        namespaces = sources.namespaces()
        if query.namespace and query.namespace not in namespaces:  # none there yet: the filter stays
            namespaces.append(query.namespace)
        response = templates.TemplateResponse(request, template, {
            "rows": rows, "total": total, "query": query, "namespaces": namespaces,
            "errors": [(s.name, s.error) for s in sources.all() if s.error]})
        response.headers["X-Ferry-Namespaces"] = json.dumps(namespaces)  # a live list learns new ones
        return response

    async def workflow(request: Request) -> Response:
        namespace, name, found = await read_workflow(request)
        return templates.TemplateResponse(request, "workflow.html", {
            "line": summaries.summarize(found), "namespace": namespace, "name": name})

    async def dag(request: Request) -> Response:
        _, _, found = await read_workflow(request)
        expand = frozenset(request.query_params.getlist("expand"))
        return JSONResponse({**graph.build(found, expand), "summary": _line_json(summaries.summarize(found))})

    async def task(request: Request) -> Response:
        namespace, name, found = await read_workflow(request)
        task_name = request.path_params["task"]
        spec = next((t for t in found.get("spec", {}).get("tasks", []) if t["name"] == task_name), None)
        if spec is None:
            raise HTTPException(404, f"no task {task_name} in {namespace}/{name}")
        state = found.get("status", {}).get("tasks", {}).get(task_name, {})
        attempts = [a for a in await run_in_threadpool(sources.of(namespace).attempts, namespace, name)
                    if a["task"] == task_name]
        return templates.TemplateResponse(request, "task.html", {
            "namespace": namespace, "name": name, "task": spec, "state": state, "attempts": attempts})

    async def logs(request: Request) -> Response:
        namespace, name, task_name = (request.path_params[k] for k in ("namespace", "name", "task"))
        attempt = int(request.path_params["attempt"])
        container = request.query_params.get("container") or "main"
        follow = request.query_params.get("follow") == "1"
        chunks = sources.of(namespace).log(namespace, name, task_name, attempt, container, follow)
        try:
            first = await run_in_threadpool(next, chunks, b"")
        except LookupError as error:
            raise HTTPException(404, str(error)) from None
        except Exception as error:  # noqa: BLE001 - the API server's refusal, shown as text
            return Response(f"(no log: {getattr(error, 'reason', None) or error})\n", 200, media_type="text/plain")

        async def rest():
            yield first
            async for chunk in iterate_in_threadpool(chunks):
                yield chunk
        return StreamingResponse(rest(), media_type="text/plain; charset=utf-8",
                                 headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})

    async def events(request: Request) -> Response:
        """``change`` whenever the watched list (or one workflow, with ``?workflow=ns/name``) changed."""
        target = request.query_params.get("workflow")
        if target:
            namespace, _, name = target.partition("/")
            source = sources.of(namespace)
            version = lambda: source.version_of(namespace, name)  # noqa: E731
        else:
            version = sources.version

        async def stream():
            shown, quiet = version(), 0.0
            yield "retry: 2000\n\n"
            while not await request.is_disconnected():
                await asyncio.sleep(LIVE_SECONDS)
                now = version()
                if now != shown:
                    shown, quiet = now, 0.0
                    yield f"event: change\ndata: {now}\n\n"
                else:
                    quiet += LIVE_SECONDS
                    if quiet >= HEARTBEAT_SECONDS:
                        quiet = 0.0
                        yield ": still here\n\n"
        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    def readable(uri: str | None):
        """``uri``'s lineage, if the UI may read it: under the raw data prefix (``confined``). A
        workflow naming a URI does not make it readable: on a cluster, another tenant names it."""
        if not uri:
            raise HTTPException(400, "uri: missing; open an output from a workflow's page")
        if not confined.inside(store.raw_data_prefix, uri):
            raise HTTPException(403, confined.REFUSED)
        return sources.lineage(uri)

    async def output(request: Request) -> Response:
        params = request.query_params
        uri, digest, kind = params.get("uri"), params.get("digest") or None, params.get("kind") or "file"
        path = params.get("path") or ""
        producer, readers = await run_in_threadpool(readable, uri)
        context = {"uri": uri, "digest": digest, "kind": kind, "path": path, "producer": producer,
                   "readers": readers, "size": params.get("size"), "files": params.get("files"),
                   "sha256": params.get("sha256"), "level": None, "error": None}
        try:
            if kind != "file":
                context["level"] = await run_in_threadpool(stored.level, store, uri, digest, path,
                                                           max(0, _number(params, "page", 0)))
        except PermissionError:  # a symlink out of the store, say
            raise HTTPException(403, confined.REFUSED) from None
        except Exception as error:  # noqa: BLE001 - shown on the page: a missing store credential, say
            context["error"] = f"{type(error).__name__}: {error}"
        return templates.TemplateResponse(request, "output.html", context)

    def _ref(request: Request):
        params = request.query_params
        uri, path = params.get("uri"), params.get("path") or None
        readable(uri)
        size = _number(params, "size", 0) if params.get("size") else None
        try:
            ref = stored.file_ref(store, uri, params.get("digest") or None, path, params.get("sha256") or None, size)
        except pydantic.ValidationError as error:  # a hand-edited link
            raise HTTPException(400, f"not a stored file: {error.errors()[0]['msg']}") from None
        except (errors.PathEscapeError, PermissionError):  # a manifest naming an object outside the store
            raise HTTPException(403, confined.REFUSED) from None
        if not confined.inside(store.raw_data_prefix, ref.uri):  # a manifest (a task wrote it) names it
            raise HTTPException(403, confined.REFUSED)
        return ref, params.get("name") or (path or uri).rstrip("/").rpartition("/")[2]

    async def preview(request: Request) -> Response:
        try:
            ref, name = await run_in_threadpool(_ref, request)
            shown = await run_in_threadpool(stored.preview, store, ref, name)
        except (LookupError, FileNotFoundError, NotADirectoryError) as error:
            raise HTTPException(404, str(error)) from None
        except PermissionError:
            raise HTTPException(403, confined.REFUSED) from None
        return templates.TemplateResponse(request, "preview.html", {"preview": shown, "name": name,
                                                                    "raw": f"/raw?{request.url.query}"})

    async def raw(request: Request) -> Response:
        try:
            ref, name = await run_in_threadpool(_ref, request)
            chunks = await run_in_threadpool(stored.read, store, ref)  # opened here: a refusal is a 403
        except (LookupError, FileNotFoundError, NotADirectoryError) as error:
            raise HTTPException(404, str(error)) from None
        except PermissionError:
            raise HTTPException(403, confined.REFUSED) from None
        media_type, inline = stored.served_as(name)
        disposition = "inline" if inline and not request.query_params.get("download") else "attachment"
        headers = {"Content-Disposition": f"{disposition}; filename*=UTF-8''{urllib.parse.quote(name)}",
                   "Content-Security-Policy": RAW_POLICY}
        if ref.size is not None:
            headers["Content-Length"] = str(ref.size)
        return StreamingResponse(iterate_in_threadpool(chunks), media_type=media_type, headers=headers)

    async def drive_list(request: Request) -> Response:
        found = await run_in_threadpool(drives.names, store)
        return templates.TemplateResponse(request, "drives.html", {"drives": found})

    async def drive(request: Request) -> Response:
        name, prefix = request.path_params["name"], request.query_params.get("prefix") or ""

        def read():
            with store_.using(store):
                return drives.Drive(f"{drives.PROTOCOL}{name}").copies(prefix)
        try:
            copies = await run_in_threadpool(read)
        except ValueError as error:  # not a drive's name
            raise HTTPException(404, str(error)) from None
        objects = uris.join(store.raw_data_prefix, "drives", name, "objects")
        return templates.TemplateResponse(request, "drive.html", {"name": name, "prefix": prefix, "copies": copies,
                                                                  "objects": objects})

    routes = [
        Route("/", lambda request: RedirectResponse("/workflows")),
        Route("/healthz", lambda request: PlainTextResponse("ok")),
        Route("/workflows", workflows),
        Route("/workflows/{namespace}/{name}", workflow),
        Route("/workflows/{namespace}/{name}/graph", dag),
        Route("/workflows/{namespace}/{name}/tasks/{task}", task),
        Route("/workflows/{namespace}/{name}/tasks/{task}/attempts/{attempt:int}/log", logs),
        Route("/events", events),
        Route("/output", output),
        Route("/preview", preview),
        Route("/raw", raw),
        Route("/drives", drive_list),
        Route("/drives/{name}", drive),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(protect.Guard, hosts=protect.allowed(bound, allow_hosts))])


def _number(params, field: str, default: int) -> int:
    try:
        return int(params.get(field) or default)
    except ValueError:
        raise HTTPException(400, f"{field}: expected a whole number, got {params.get(field)!r}") from None


def _query_string(query: summaries.Query, offset: int) -> str:
    kept = {"namespace": query.namespace, "phase": query.phase, "name": query.name, "offset": max(0, offset)}
    return urllib.parse.urlencode({k: v for k, v in kept.items() if v})


def _line_json(line: summaries.Summary) -> dict:
    return {"phase": line.phase, "progress": line.progress, "message": line.message, "duration": line.duration}


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, made before the URL is printed: a busy port raises OSError here."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host.strip("[]"), port), family=family)


def serve(sources: Sources, listening: socket.socket, store: store_.Store | None = None,
          allow_hosts: list[str] | tuple[str, ...] = ()) -> None:
    import uvicorn

    host = listening.getsockname()[0]
    config = uvicorn.Config(create(sources, store, host, allow_hosts), log_level="warning",
                            timeout_graceful_shutdown=1)  # live pages hold a stream open: on Ctrl-C, close them
    uvicorn.Server(config).run(sockets=[listening])
