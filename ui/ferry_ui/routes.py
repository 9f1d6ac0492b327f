"""The UI's pages and streams, one function per route, each given the request and the ``UI`` it
reads from (``app.create`` wires them).

Thin: they ask a source (``ClusterSource``, ``LocalSource``) for workflows, pods and logs, and
``graph``, ``stored`` and ``summaries`` for what to show. Read-only: no route changes a workflow
or the store. What the store may show is ``confined``'s to say, and every stored URI a request or
a manifest names is checked against it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import urllib.parse
from typing import TYPE_CHECKING

import pydantic
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.templating import Jinja2Templates

from ferry.api import scheduler
from ferry.core import errors, uris
from ferry.data import store as store_
from ferry.values import drives
from ferry_ui import confined, graph, localruns, stored, summaries, units

if TYPE_CHECKING:
    from ferry_ui.app import Sources

LIVE_SECONDS = 0.5
"""How often a live page's stream looks for a change."""
HEARTBEAT_SECONDS = 15
RAW_POLICY = "sandbox; default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
"""A stored file opened on its own: no script, nothing loaded (the browser's image viewer styles itself)."""


@dataclasses.dataclass(frozen=True)
class UI:
    """What the routes read: the workflows' sources, the store (``confined`` to its raw data
    prefix) and the pages' templates."""

    sources: Sources
    store: confined.Store
    templates: Jinja2Templates


async def home(ui: UI, request: Request) -> Response:
    return RedirectResponse("/workflows")


async def healthz(ui: UI, request: Request) -> Response:
    return PlainTextResponse("ok")


def query_of(request: Request) -> summaries.Query:
    """The list's filter and page, from the query string; a number that is not one is a 400."""
    params = request.query_params
    return summaries.Query(namespace=params.get("namespace") or None, phase=params.get("phase") or None,
                           name=params.get("name") or None, offset=max(0, number(params, "offset", 0)),
                           limit=min(500, max(1, number(params, "limit", summaries.PAGE_SIZE))))


async def _read_workflow(ui: UI, request: Request) -> tuple[str, str, dict]:
    namespace, name = request.path_params["namespace"], request.path_params["name"]
    found = await run_in_threadpool(ui.sources.of(namespace).workflow, namespace, name)
    if found is None:
        raise HTTPException(404, f"no workflow {namespace}/{name}")
    return namespace, name, found


async def workflows(ui: UI, request: Request) -> Response:
    query = query_of(request)
    rows, total = await run_in_threadpool(ui.sources.page, query)
    template = "rows.html" if request.query_params.get("fragment") else "workflows.html"
    namespaces = ui.sources.namespaces()
    if query.namespace and query.namespace not in namespaces:  # none there yet: the filter stays
        namespaces.append(query.namespace)
    response = ui.templates.TemplateResponse(request, template, {
        "rows": rows, "total": total, "query": query, "namespaces": namespaces,
        "errors": [(s.name, s.error) for s in ui.sources.all() if s.error]})
    response.headers["X-Ferry-Namespaces"] = json.dumps(namespaces)  # a live list learns new ones
    return response


async def workflow(ui: UI, request: Request) -> Response:
    namespace, name, found = await _read_workflow(ui, request)
    return ui.templates.TemplateResponse(request, "workflow.html", {
        "line": summaries.summarize(found), "namespace": namespace, "name": name})


async def dag(ui: UI, request: Request) -> Response:
    _, _, found = await _read_workflow(ui, request)
    expand = frozenset(request.query_params.getlist("expand"))
    return JSONResponse({**graph.build(found, expand), "summary": line_json(summaries.summarize(found))})


async def task(ui: UI, request: Request) -> Response:
    namespace, name, found = await _read_workflow(ui, request)
    task_name = request.path_params["task"]
    spec = next((t for t in found.get("spec", {}).get("tasks", []) if t["name"] == task_name), None)
    if spec is None:
        raise HTTPException(404, f"no task {task_name} in {namespace}/{name}")
    state = found.get("status", {}).get("tasks", {}).get(task_name, {})
    shown = None
    if spec.get("map") is not None:  # its units, a page at a time
        params = request.query_params
        try:
            phase = units.phase_filter(params.get("phase"))
        except ValueError as error:
            raise HTTPException(400, str(error)) from None
        shown = await run_in_threadpool(units.page, name, spec, state, phase, number(params, "page", 0))
    attempts = [a for a in await run_in_threadpool(ui.sources.of(namespace).attempts, namespace, name)
                if a["task"] == task_name and (shown is None or a.get("role") in ("split", "gather"))]
    return ui.templates.TemplateResponse(request, "task.html", {
        "namespace": namespace, "name": name, "task": spec, "state": state, "attempts": attempts, "units": shown,
        "local": namespace == localruns.NAMESPACE})


def unit_of(params) -> tuple[str | None, int | None]:
    """The map's pod a log link names (``role``, and ``unit`` for an item's); a task's own without them."""
    role = params.get("role") or None
    unit = number(params, "unit", 0) if params.get("unit") else None
    if role is not None and role not in scheduler.Unit.ROLES:
        raise HTTPException(400, f"role: expected one of {', '.join(scheduler.Unit.ROLES)}, or none for a task's pod")
    if (role == "item") != (unit is not None) or (unit is not None and unit < 0):
        raise HTTPException(400, "unit: a unit's number (0 or more) with role=item, and only then")
    return role, unit


async def logs(ui: UI, request: Request) -> Response:
    namespace, name, task_name = (request.path_params[k] for k in ("namespace", "name", "task"))
    attempt = int(request.path_params["attempt"])
    container = request.query_params.get("container") or "main"
    follow = request.query_params.get("follow") == "1"
    role, unit = unit_of(request.query_params)
    chunks = ui.sources.of(namespace).log(namespace, name, task_name, attempt, container, follow, role, unit)
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


async def events(ui: UI, request: Request) -> Response:
    """``change`` whenever the watched list (or one workflow, with ``?workflow=ns/name``) changed."""
    target = request.query_params.get("workflow")
    if target:
        namespace, _, name = target.partition("/")
        source = ui.sources.of(namespace)
        version = lambda: source.version_of(namespace, name)  # noqa: E731
    else:
        version = ui.sources.version

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


def readable(ui: UI, uri: str | None):
    """``uri``'s lineage, if the UI may read it: under one of its stores (``confined``). A
    workflow naming a URI does not make it readable: on a cluster, another tenant names it."""
    if not uri:
        raise HTTPException(400, "uri: missing; open an output from a workflow's page")
    if not ui.store.reads(uri):
        raise HTTPException(403, confined.REFUSED)
    return ui.sources.lineage(uri)


async def output(ui: UI, request: Request) -> Response:
    params = request.query_params
    uri, digest, kind = params.get("uri"), params.get("digest") or None, params.get("kind") or "file"
    path = params.get("path") or ""
    if not uri:
        raise HTTPException(400, "uri: missing; open an output from a workflow's page")
    # Outside the stores, the page still says what the workflows say of it, and reads nothing.
    producer, readers = await run_in_threadpool(ui.sources.lineage, uri)
    refused = not ui.store.reads(uri)
    context = {"uri": uri, "digest": digest, "kind": kind, "path": path, "producer": producer,
               "readers": readers, "size": params.get("size"), "files": params.get("files"),
               "sha256": params.get("sha256"), "level": None, "refused": refused,
               "error": f"Not shown: {confined.REFUSED_HERE}" if refused else None}
    try:
        if kind != "file" and not refused:
            context["level"] = await run_in_threadpool(stored.level, ui.store, uri, digest, path,
                                                       max(0, number(params, "page", 0)))
    except PermissionError:  # a symlink out of the store, say
        raise HTTPException(403, confined.REFUSED) from None
    except Exception as error:  # noqa: BLE001 - shown on the page: a missing store credential, say
        context["error"] = f"{type(error).__name__}: {error}"
    return ui.templates.TemplateResponse(request, "output.html", context)


def file_ref(ui: UI, request: Request):
    """The stored file a link names, and the name to give it; refused (403) unless both the link's
    URI and the object its manifest names are inside the store."""
    params = request.query_params
    uri, path = params.get("uri"), params.get("path") or None
    readable(ui, uri)
    size = number(params, "size", 0) if params.get("size") else None
    try:
        ref = stored.file_ref(ui.store, uri, params.get("digest") or None, path, params.get("sha256") or None, size)
    except pydantic.ValidationError as error:  # a hand-edited link
        raise HTTPException(400, f"not a stored file: {error.errors()[0]['msg']}") from None
    except (errors.PathEscapeError, PermissionError):  # a manifest naming an object outside the store
        raise HTTPException(403, confined.REFUSED) from None
    if not ui.store.reads(ref.uri):  # a manifest (a task wrote it) names it
        raise HTTPException(403, confined.REFUSED)
    return ref, params.get("name") or (path or uri).rstrip("/").rpartition("/")[2]


async def preview(ui: UI, request: Request) -> Response:
    try:
        ref, name = await run_in_threadpool(file_ref, ui, request)
        shown = await run_in_threadpool(stored.preview, ui.store, ref, name)
    except (LookupError, FileNotFoundError, NotADirectoryError) as error:
        raise HTTPException(404, str(error)) from None
    except PermissionError:
        raise HTTPException(403, confined.REFUSED) from None
    return ui.templates.TemplateResponse(request, "preview.html", {"preview": shown, "name": name,
                                                                   "raw": f"/raw?{request.url.query}"})


async def raw(ui: UI, request: Request) -> Response:
    try:
        ref, name = await run_in_threadpool(file_ref, ui, request)
        chunks = await run_in_threadpool(stored.read, ui.store, ref)  # opened here: a refusal is a 403
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


async def drive_list(ui: UI, request: Request) -> Response:
    found = await run_in_threadpool(drives.names, ui.store)
    return ui.templates.TemplateResponse(request, "drives.html", {"drives": found})


async def drive(ui: UI, request: Request) -> Response:
    name, prefix = request.path_params["name"], request.query_params.get("prefix") or ""

    def read():
        with store_.using(ui.store):
            return drives.Drive(f"{drives.PROTOCOL}{name}").copies(prefix)
    try:
        copies = await run_in_threadpool(read)
    except ValueError as error:  # not a drive's name
        raise HTTPException(404, str(error)) from None
    objects = uris.join(ui.store.raw_data_prefix, "drives", name, "objects")
    return ui.templates.TemplateResponse(request, "drive.html", {"name": name, "prefix": prefix, "copies": copies,
                                                                 "objects": objects})


def number(params, field: str, default: int) -> int:
    text = params.get(field) or ""
    try:
        return int(text or default)
    except ValueError:  # what was given, cut (5,000 digits is no whole number to ``int``)
        shown = repr(text) if len(text) <= 40 else f"{text[:40]!r}…"
        raise HTTPException(400, f"{field}: expected a whole number, got {shown}") from None


def query_string(query: summaries.Query, offset: int) -> str:
    """The list's query string at another ``offset`` (the pages' links)."""
    kept = {"namespace": query.namespace, "phase": query.phase, "name": query.name, "offset": max(0, offset)}
    return urllib.parse.urlencode({k: v for k, v in kept.items() if v})


def line_json(line: summaries.Summary) -> dict:
    return {"phase": line.phase, "progress": line.progress, "message": line.message, "duration": line.duration}
