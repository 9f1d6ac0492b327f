"""A workflow's DAG as the page draws it: tasks with their phases, edges labelled with the data
they carry. Pure functions over the Workflow's JSON (spec and status, camelCase as stored).

Large fan-outs are drawn as one node: tasks that share a name stem (``shard-17`` → ``shard``)
and exactly the same upstream and downstream tasks collapse into a group showing how many are in
each phase, so a 1,000-task map is a handful of nodes to lay out, not a wall of them (Argo's UI
lays out every node and hangs at a few thousand: argo#2367). A group expands on request.
"""

from __future__ import annotations

import collections
import hashlib
import re

from ferry_ui import summaries

COLLAPSE_AT = 8
"""A fan-out of this many tasks or more is drawn as one node."""

_STEM = re.compile(r"^(.*?)[-_.]?\d+$")


def build(workflow: dict, expand: frozenset[str] = frozenset()) -> dict:
    """``{"nodes": [...], "edges": [...]}`` for the page; ``expand`` names groups to draw in full."""
    spec, status = workflow.get("spec") or {}, workflow.get("status") or {}
    states = status.get("tasks") or {}
    tasks = spec.get("tasks") or []
    upstream: dict[str, dict[str, list[dict]]] = {t["name"]: collections.defaultdict(list) for t in tasks}
    for task in tasks:
        for given in task.get("inputs") or []:
            source = given.get("fromTask")
            if source and source.get("task") in upstream:
                carried = (states.get(source["task"], {}).get("outputs") or {}).get(source["output"]) or {}
                upstream[task["name"]][source["task"]].append(_data(source["output"], given.get("kind"), carried))
        for before in task.get("dependsOn") or []:
            if before in upstream:
                upstream[task["name"]].setdefault(before, [])
    downstream: dict[str, set[str]] = collections.defaultdict(set)
    for name, sources in upstream.items():
        for source in sources:
            downstream[source].add(name)
    group_of = _groups(upstream, downstream, expand)
    nodes: dict[str, dict] = {}
    for task in tasks:
        name, state = task["name"], states.get(task["name"], {})
        phase = state.get("phase") or "Pending"
        group = group_of.get(name)
        if group is None:
            nodes[name] = {"id": name, "label": name, "kind": "task", "phase": phase,
                           "attempts": state.get("attempts", 0), "message": state.get("message")}
            continue
        node = nodes.setdefault(group, {"id": group, "kind": "group", "members": [], "phases": {}})
        node["members"].append(name)
        node["phases"][phase] = node["phases"].get(phase, 0) + 1
    for node in nodes.values():
        if node["kind"] == "group":
            node["label"] = f"{_stem(node['members'][0])}-* ×{len(node['members'])}"
            node["phase"] = _group_phase(node["phases"])
    edges: dict[tuple[str, str], dict] = {}
    for name, sources in upstream.items():
        target = group_of.get(name, name)
        for source, data in sources.items():
            edge = edges.setdefault((group_of.get(source, source), target), {"data": [], "tasks": 0})
            edge["tasks"] += 1
            if edge["tasks"] == 1 or group_of.get(name) is None and group_of.get(source) is None:
                edge["data"].extend(data)
    return {"nodes": list(nodes.values()),
            "edges": [{"id": f"{s}->{t}", "source": s, "target": t, "label": _label(e["data"]), "data": e["data"]}
                      for (s, t), e in edges.items()]}


def _data(output: str, kind: str | None, carried: dict) -> dict:
    return {"name": output, "kind": carried.get("kind") or kind or "value", "size": carried.get("size"),
            "files": carried.get("fileCount"), "uri": carried.get("uri")}


def _label(data: list[dict]) -> str:
    """``reports · directory · 1.2 KiB · 3 files``, one line per output carried."""
    lines = []
    for item in data[:3]:
        parts = [item["name"], item["kind"]]
        if item["size"] is not None:
            parts.append(summaries.human_size(item["size"]))
        if item["files"] and item["kind"] != "file":
            parts.append(f"{item['files']} files")
        lines.append(" · ".join(parts))
    if len(data) > 3:
        lines.append(f"+{len(data) - 3} more")
    return "\n".join(lines)


def _stem(name: str) -> str:
    match = _STEM.match(name)
    return match.group(1) if match and match.group(1) else name


def _groups(upstream: dict[str, dict], downstream: dict[str, set[str]], expand: frozenset[str]) -> dict[str, str]:
    """Task → its group's id, for tasks in fan-outs big enough to collapse."""
    families: dict[tuple, list[str]] = collections.defaultdict(list)
    for name in upstream:
        families[(_stem(name), frozenset(upstream[name]), frozenset(downstream.get(name, ())))].append(name)
    grouped = {}
    for (stem, before, after), members in families.items():
        if len(members) < COLLAPSE_AT:
            continue
        key = "\0".join(sorted(before)) + "\1" + "\0".join(sorted(after))
        group = f"group:{stem}:{hashlib.sha256(key.encode()).hexdigest()[:8]}"
        if group not in expand:
            grouped.update(dict.fromkeys(members, group))
    return grouped


def _group_phase(phases: dict[str, int]) -> str:
    """The phase a group is drawn in: failed if any failed, running if any runs, done if all are."""
    for phase in ("Failed", "Running", "Pending"):
        if phases.get(phase):
            return phase
    return "Succeeded" if set(phases) <= {"Succeeded", "Skipped"} else next(iter(phases))
