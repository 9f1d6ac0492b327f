"""A map's units as its task page lists them: one page of at most ``PAGE`` units, the failed first,
then the running, then the rest in order, or the units of one phase. Pure functions over the
task's spec and status (camelCase JSON, as stored).

A map's status keeps its units in one packed record (``ferry.api.items``), whatever its size: a
page is cut from it with scans in C (``bytes.count``/``find``, a binary search to the page's
first unit), never a Python loop over 100,000 units, so the page costs about what its 100 rows do.
Everything here comes from a workflow's status, which another tenant may have written: a
damaged one is said in one line, never a traceback.
"""

from __future__ import annotations

import dataclasses
import urllib.parse

import pydantic

from ferry.api import items, resource, scheduler

PAGE = 100
FIRST = (resource.Phase.FAILED, resource.Phase.RUNNING)
"""Listed first, in this order; then every other unit in order."""
LOG_ATTEMPTS = 3
"""A unit's latest attempts given a log button (earlier pods are rarely kept)."""


@dataclasses.dataclass(frozen=True)
class Unit:
    index: int
    items: str
    """The items it runs: ``17``, or ``15–19`` with a ``batchSize`` of 5."""
    phase: str
    attempts: int
    pod: str | None
    """The pod of its latest attempt, once it has one."""
    logs: tuple[int, ...]
    """The attempts to offer logs of, latest first."""


@dataclasses.dataclass(frozen=True)
class Page:
    stage: str
    items: int | None
    units: int | None
    batch: int
    counts: dict[str, int]
    """Units by phase, from the record (the filter's choices)."""
    rows: list[Unit]
    number: int
    pages: int
    matching: int
    phase: str | None
    failures: list[dict]
    """The first failures, with their messages and the items they ran (``span``)."""
    error: str | None = None


def phase_filter(text: str | None) -> resource.Phase | None:
    """The ``phase`` a page shows, from the query; ValueError for one a unit never has."""
    if not text:
        return None
    for phase in items.PHASES:
        if phase.value == text:
            return phase
    raise ValueError(f"phase: expected one of {', '.join(p.value for p in items.PHASES)}, or none for all")


def page(workflow: str, task: dict, state: dict, phase: resource.Phase | None, number: int) -> Page:
    """Page ``number`` (from 0; past the last, the last) of the map ``task``'s units."""
    batch = _batch(task)
    empty = Page(stage="Split", items=None, units=None, batch=batch, counts={}, rows=[], number=0, pages=0,
                 matching=0, phase=phase.value if phase else None, failures=[])
    try:
        progress = resource.MapStatus.model_validate(state.get("map") or {})
        if progress.units is not None and not 0 <= progress.units <= resource.MAX_MAP_UNITS:
            raise ValueError(f"{progress.units} units, more than a map has ({resource.MAX_MAP_UNITS:,})")
        record = None if progress.units is None else items.Record.decode(progress.record, progress.units)
    except (pydantic.ValidationError, ValueError, TypeError) as error:
        first = error.errors()[0]["msg"] if isinstance(error, pydantic.ValidationError) else str(error)
        return dataclasses.replace(empty, error=f"This map's status is damaged, so its units are not listed: {first}")
    failures = [{"unit": f.unit, "span": _span(f.unit, batch, progress.items), "attempt": f.attempt,
                 "reason": f.reason.value if f.reason else None, "message": f.message} for f in progress.failures]
    shown = dataclasses.replace(empty, stage=progress.stage, items=progress.items, units=progress.units,
                                failures=failures)
    if record is None:
        return shown
    counts = {p.value: record.count(p) for p in items.PHASES}
    matching = counts[phase.value] if phase else len(record)
    pages = max(1, -(-matching // PAGE))
    number = min(max(0, number), pages - 1)
    chosen = _chosen(record, phase, number * PAGE)
    rows = [_row(workflow, task["name"], record, unit, batch, progress.items) for unit in chosen]
    return dataclasses.replace(shown, counts=counts, rows=rows, number=number, pages=pages, matching=matching)


def query(phase: str | None, number: int) -> str:
    """The task page's query string for page ``number`` of ``phase``'s units (``?`` alone for the first of all)."""
    return "?" + urllib.parse.urlencode({key: value for key, value in (("phase", phase), ("page", number)) if value})


def _batch(task: dict) -> int:
    batch = (task.get("map") or {}).get("batchSize")
    return batch if isinstance(batch, int) and batch >= 1 else 1


def _span(unit: int, batch: int, count: int | None) -> str:
    """``17``, or ``15–19`` for a batch."""
    last = unit * batch + batch - 1 if count is None else min(count, (unit + 1) * batch) - 1
    return str(unit * batch) if last <= unit * batch else f"{unit * batch}–{last}"


def _chosen(record: items.Record, phase: resource.Phase | None, offset: int) -> list[int]:
    """The units at ``offset`` .. ``offset + PAGE`` of the order the page lists them in."""
    if phase is not None:
        return _occurrences(record.phases, items.CODE[phase], offset, PAGE)
    ranks = bytearray(range(256))  # a unit's rank in the order: FIRST's phases, then all others
    for phase_code in range(len(items.PHASES)):
        ranks[phase_code] = len(FIRST)
    for rank, first in enumerate(FIRST):
        ranks[items.CODE[first]] = rank
    ranked = record.phases.translate(ranks)
    chosen: list[int] = []
    for rank in range(len(FIRST) + 1):
        count = ranked.count(rank)
        if offset < count:
            chosen += _occurrences(ranked, rank, offset, PAGE - len(chosen))
            if len(chosen) == PAGE:
                break
        offset = max(0, offset - count)
    return chosen


def _occurrences(data: bytes | bytearray, code: int, skip: int, limit: int) -> list[int]:
    """Where ``code`` is in ``data``, from its ``skip``-th occurrence on, at most ``limit`` of them:
    the first found by a binary search on counts (each a scan in C), the others by ``find``."""
    low, high = 0, len(data)  # the smallest end whose prefix holds more than ``skip`` of them
    while low < high:
        middle = (low + high) // 2
        if data.count(code, 0, middle + 1) > skip:
            high = middle
        else:
            low = middle + 1
    found, at = [], data.find(code, low)
    while at != -1 and len(found) < limit:
        found.append(at)
        at = data.find(code, at + 1)
    return found


def _row(workflow: str, task: str, record: items.Record, unit: int, batch: int, count: int | None) -> Unit:
    attempts = record.attempt(unit)
    return Unit(index=unit, items=_span(unit, batch, count), phase=record.phase(unit).value, attempts=attempts,
                pod=scheduler.unit_name(workflow, task, "item", attempts, unit) if attempts else None,
                logs=tuple(range(attempts, max(0, attempts - LOG_ATTEMPTS), -1)))
