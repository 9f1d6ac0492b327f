"""Which task produced a stored output, and which tasks read it. Pure functions over a Workflow's JSON.

A reference travels by URI: a task's output is read by its dependents in the same workflow
(``fromTask``), and by tasks of any other workflow that name the URI as an input. A source keeps
the URIs of each workflow it sees, so "who read this" is one lookup, not a scan of every workflow.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, slots=True)
class Use:
    namespace: str
    workflow: str
    task: str
    name: str
    """The output's name (produced) or the input's (read)."""


def uses(workflow: dict) -> tuple[dict[str, Use], dict[str, list[Use]]]:
    """``(produced, read)``: URI → the task output it is, and URI → the task inputs that read it."""
    meta, spec, status = workflow.get("metadata") or {}, workflow.get("spec") or {}, workflow.get("status") or {}
    namespace, name = meta.get("namespace") or "", meta.get("name") or ""
    states = status.get("tasks") or {}
    produced = {}
    for task, state in states.items():
        for output, ref in (state.get("outputs") or {}).items():
            if ref.get("uri"):
                produced[ref["uri"]] = Use(namespace, name, task, output)
    given = {i["name"]: i.get("uri") for i in spec.get("inputs") or []}
    read: dict[str, list[Use]] = {}
    for task in spec.get("tasks") or []:
        for item in task.get("inputs") or []:
            source = item.get("fromTask")
            if source:
                uri = ((states.get(source.get("task")) or {}).get("outputs") or {}).get(source.get("output"), {}).get("uri")
            else:
                uri = item.get("uri") or given.get(item.get("fromInput"))
            if uri:
                read.setdefault(uri, []).append(Use(namespace, name, task["name"], item["name"]))
    return produced, read


class Index:
    """URI → producer and readers over every workflow a source has seen, kept by replacing one
    workflow's entries when it changes."""

    def __init__(self) -> None:
        self.producers: dict[str, Use] = {}
        self.readers: dict[str, set[Use]] = {}
        self._of: dict[tuple[str, str], tuple[list[str], list[tuple[str, Use]]]] = {}

    def put(self, workflow: dict) -> None:
        meta = workflow.get("metadata") or {}
        self.put_uses((meta.get("namespace") or "", meta.get("name") or ""), *uses(workflow))

    def put_uses(self, key: tuple[str, str], produced: dict[str, Use], read: dict[str, list[Use]]) -> None:
        """``uses(workflow)`` of the workflow ``key`` (namespace, name), replacing what it had."""
        self.remove(key)
        self.producers.update(produced)
        pairs = [(uri, use) for uri, found in read.items() for use in found]
        for uri, use in pairs:
            self.readers.setdefault(uri, set()).add(use)
        if produced or pairs:
            self._of[key] = (list(produced), pairs)

    def remove(self, key: tuple[str, str]) -> None:
        produced, pairs = self._of.pop(key, ((), ()))
        for uri in produced:
            if self.producers.get(uri) and (self.producers[uri].namespace, self.producers[uri].workflow) == key:
                del self.producers[uri]
        for uri, use in pairs:
            found = self.readers.get(uri)
            if found is not None:
                found.discard(use)
                if not found:
                    del self.readers[uri]
