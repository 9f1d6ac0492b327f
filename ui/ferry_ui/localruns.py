"""Local runs (``ferry run`` on this machine), read from their history (``ferry.execution.history``).

They appear as workflows of the namespace ``local``. A change is noticed by SQLite's
``data_version``, which moves when another connection (a running ``ferry run``) commits: no
polling of the tables themselves.
"""

from __future__ import annotations

import pathlib
import sqlite3
import threading
from collections.abc import Iterator

from ferry.execution import history
from ferry_ui import lineage, summaries

NAMESPACE = "local"


class LocalSource:
    name = "this machine"

    def __init__(self, path: pathlib.Path | None = None):
        self.history = history.History(path)
        self.error: str | None = None
        self._seen: int | None = None
        self._version = 0
        self._watcher: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def page(self, query: summaries.Query) -> tuple[list[summaries.Summary], int]:
        rows, total = self.history.runs(phase=query.phase, name=query.name, limit=query.limit, offset=query.offset)
        return [summaries.Summary(namespace=NAMESPACE, name=r["name"], phase=r["phase"], progress=r["progress"],
                                  message=r["message"], created=r["created"], started_at=r["started_at"],
                                  finished_at=r["finished_at"]) for r in rows], total

    def namespaces(self) -> list[str]:
        return [NAMESPACE]

    def workflow(self, namespace: str, name: str) -> dict | None:
        return self.history.workflow(name)

    def attempts(self, namespace: str, name: str) -> list[dict]:
        return [{**a, "exit_code": None,
                 "containers": [{"name": "main", "state": "terminated" if a.get("finished_at") else "running"}]}
                for a in self.history.attempts(name)]

    def log(self, namespace: str, name: str, task: str, attempt: int, container: str, follow: bool,
            role: str | None = None, unit: int | None = None) -> Iterator[bytes]:
        if role is not None:
            raise LookupError(f"a local run keeps no log of a map's pods (task {task}): its page lists the "
                              "messages of its first failures")
        text = self.history.log(name, task, attempt)
        if text is None:
            raise LookupError(f"no log of task {task} attempt {attempt} was recorded")
        yield text.encode()

    def lineage(self, uri: str) -> tuple[lineage.Use | None, list[lineage.Use]]:
        producer = self.history.producer(uri)
        readers = self.history.readers(uri)
        made = lineage.Use(NAMESPACE, producer["run"], producer["task"], producer["name"]) if producer else None
        return made, [lineage.Use(NAMESPACE, r["run"], r["task"], r["name"]) for r in readers]

    @property
    def version(self) -> int:
        """Grows when a run recorded something since the last look."""
        with self._lock:
            try:
                if self._watcher is None:
                    self._watcher = sqlite3.connect(f"file:{self.history.path}?mode=ro", uri=True,
                                                    check_same_thread=False)
                seen = self._watcher.execute("PRAGMA data_version").fetchone()[0]
            except sqlite3.Error:  # no history yet
                self._watcher = None
                return self._version
            if seen != self._seen:
                self._seen = seen
                self._version += 1
            return self._version

    def version_of(self, namespace: str, name: str) -> int:
        return self.version
