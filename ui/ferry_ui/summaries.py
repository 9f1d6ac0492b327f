"""One line per workflow, and the list page's query over them. Pure functions.

The list page never sends or keeps whole workflows (Argo's list sends every workflow's full
status: argo#976): a source keeps one small ``Summary`` per workflow, and a page is filtered,
sorted and cut on the server.
"""

from __future__ import annotations

import dataclasses
import datetime

PAGE_SIZE = 50


@dataclasses.dataclass(frozen=True, slots=True)
class Summary:
    namespace: str
    name: str
    phase: str
    progress: str | None
    message: str | None
    created: str
    started_at: str | None
    finished_at: str | None

    @property
    def duration(self) -> str:
        """``1m05s``: from start to finish, or to now while running."""
        if not self.started_at:
            return ""
        end = parse_time(self.finished_at) if self.finished_at else datetime.datetime.now(datetime.timezone.utc)
        return human_seconds((end - parse_time(self.started_at)).total_seconds())


@dataclasses.dataclass(frozen=True)
class Query:
    namespace: str | None = None
    phase: str | None = None
    name: str | None = None
    """A part of the name, any case."""
    offset: int = 0
    limit: int = PAGE_SIZE


def summarize(workflow: dict) -> Summary:
    """A Workflow object as the API server (or the local history) gives it → its line."""
    meta, status = workflow.get("metadata") or {}, workflow.get("status") or {}
    return Summary(namespace=meta.get("namespace") or "", name=meta.get("name") or "",
                   phase=status.get("phase") or "Pending", progress=status.get("progress"),
                   message=status.get("message"), created=meta.get("creationTimestamp") or "",
                   started_at=status.get("startedAt"), finished_at=status.get("finishedAt"))


def select(summaries: list[Summary], query: Query) -> tuple[list[Summary], int]:
    """The page the query asks for, newest first, and how many match in all."""
    part = (query.name or "").lower()
    matching = [s for s in summaries
                if (not query.namespace or s.namespace == query.namespace)
                and (not query.phase or s.phase == query.phase)
                and (not part or part in s.name.lower())]
    matching.sort(key=lambda s: (s.created, s.namespace, s.name), reverse=True)
    return matching[query.offset:query.offset + query.limit], len(matching)


def parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def clock(text: str | None) -> str:
    """``12:04:05`` of a Kubernetes time (in UTC, as the API gives it); empty for none."""
    return parse_time(text).strftime("%H:%M:%S") if text else ""


def human_seconds(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"


def human_size(size: float | None) -> str:
    if size is None:
        return ""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""
