"""A workflow's DAG as the page draws it: tasks with their phases, edges labelled with the data
they carry. Pure functions over the Workflow's JSON (spec and status, camelCase as stored).

Large fan-outs are drawn as one node: tasks that share a name stem (``shard-17`` → ``shard``)
and exactly the same upstream and downstream tasks collapse into a group showing how many are in
each phase, so a 1,000-task map is a handful of nodes to lay out, not a wall of them (Argo's UI
lays out every node and hangs at a few thousand: argo#2367). A group expands on request.

A graph that is still large once its fan-outs are collapsed (5,000 distinct tasks, say) is folded
further, one way after another until it is small enough to draw at once: families of tasks that
share a name stem (``c07-s001`` … ``c07-s099``), then chains (runs of tasks each the only
successor of the one before), then what is left by depth. The browser draws a few hundred nodes in
well under a second, but not 5,000: laying them out (dagre) takes ~10 s and drawing them alone
several seconds (``docs/benchmarks.md``). Every task is in at most one group, whatever folded it,
and a group's ``members`` name its tasks, so the page can find a task and expand its group.
"""

from __future__ import annotations

import collections
import hashlib
import re

from ferry_ui import summaries

COLLAPSE_AT = 8
"""A fan-out of this many tasks or more is drawn as one node; so is a family, when folding."""
FOLD_ABOVE = 200
"""A graph with more nodes than this, once its fan-outs are collapsed, is folded further."""
CHAIN_AT = 3
"""A chain of this many tasks or more is drawn as one node, when folding."""

_STEM = re.compile(r"^(.*?)[-_.]?\d+$")


def build(workflow: dict, expand: frozenset[str] = frozenset()) -> dict:
    """``{"nodes": [...], "edges": [...]}`` for the page; ``expand`` names groups to draw in full."""
    spec, status = workflow.get("spec") or {}, workflow.get("status") or {}
    states = status.get("tasks") or {}
    tasks = spec.get("tasks") or []
    upstream: dict[str, dict[str, list[dict]]] = {t["name"]: collections.defaultdict(list) for t in tasks}
    for task in tasks:
        over = (task.get("map") or {}).get("over") or {}
        for given in [*(task.get("inputs") or []), *([over] if over else [])]:
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
    folded = folds(upstream, downstream)
    group_of = {name: group for name, group in folded.items() if group not in expand}
    nodes: dict[str, dict] = {}
    for task in tasks:
        name, state = task["name"], states.get(task["name"], {})
        phase = state.get("phase") or "Pending"
        group = group_of.get(name)
        if group is None:
            nodes[name] = {"id": name, "label": name, "kind": "task", "phase": phase,
                           "attempts": state.get("attempts", 0), "message": state.get("message")}
            if task.get("map"):
                progress, share = map_progress(state.get("map") or {}, phase)
                nodes[name].update(kind="map", map=progress, pie=share)
                nodes[name]["label"] = f"{name}\n{nodes[name]['map']['label']}"
            if name in folded:  # its group is expanded: the page can fold it again
                nodes[name]["group"] = folded[name]
            continue
        node = nodes.setdefault(group, {"id": group, "kind": "group", "fold": group.partition(":")[0],
                                        "members": [], "phases": {}})
        node["members"].append(name)
        node["phases"][phase] = node["phases"].get(phase, 0) + 1
    for node in nodes.values():
        if node["kind"] == "group":
            node["label"] = _group_label(node["fold"], node["members"], node["id"])
            node["phase"] = _group_phase(node["phases"])
    edges: dict[tuple[str, str], dict] = {}
    for name, sources in upstream.items():
        target = group_of.get(name, name)
        for source, data in sources.items():
            if group_of.get(source, source) == target:  # inside a family or a chain
                continue
            edge = edges.setdefault((group_of.get(source, source), target), {"data": [], "tasks": 0})
            edge["tasks"] += 1
            if edge["tasks"] == 1 or group_of.get(name) is None and group_of.get(source) is None:
                edge["data"].extend(data)
    return {"nodes": list(nodes.values()),
            "edges": [{"id": f"{s}->{t}", "source": s, "target": t, "label": _label(e["data"]), "data": e["data"]}
                      for (s, t), e in edges.items()]}


def map_progress(state: dict, phase: str = "Running") -> tuple[dict, dict]:
    """A map drawn as one node, whatever its size: its counts of units by phase with a label
    (``1,532/100,000``; ``splitting`` before its items are known, ``gathering`` until its task,
    in ``phase``, is done), and each phase's share in percent (the node's pie)."""
    units = state.get("units")
    counts = {phase: state.get(phase) or 0 for phase in ("pending", "running", "succeeded", "failed")}
    stage = state.get("stage") or "Split"
    if units is None:
        label = "splitting"
    else:
        label = f"{counts['succeeded']:,}/{units:,}" + (f" · {counts['failed']:,} failed" if counts["failed"] else "")
        if stage == "Gather" and phase in ("Pending", "Running"):
            label += " · gathering"
    share = {phase: round(100 * count / units, 1) if units else 0 for phase, count in counts.items()}
    return {"units": units, "stage": stage, "label": label, **counts}, share


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


def folds(upstream: dict[str, dict], downstream: dict[str, set[str]]) -> dict[str, str]:
    """Task → the id of the group it is drawn in (``group:``, ``family:``, ``chain:``, ``depth:``).

    Fan-outs always collapse; each further fold applies only while the graph has more than
    ``FOLD_ABOVE`` nodes. Decided from the spec alone, so ids stay the same as the workflow runs
    and as groups are expanded (an expanded group's tasks are drawn one by one, not refolded)."""
    group_of = _fan_outs(upstream, downstream)
    for fold in (_families, _chains, _depths):
        if len(set(group_of.values())) + len(upstream) - len(group_of) <= FOLD_ABOVE:
            break
        group_of = fold(upstream, downstream, group_of)
    return group_of


def _fan_outs(upstream: dict[str, dict], downstream: dict[str, set[str]]) -> dict[str, str]:
    """Task → its group's id, for tasks in fan-outs big enough to collapse."""
    families: dict[tuple, list[str]] = collections.defaultdict(list)
    for name in upstream:
        families[(_stem(name), frozenset(upstream[name]), frozenset(downstream.get(name, ())))].append(name)
    grouped = {}
    for (stem, before, after), members in families.items():
        if len(members) < COLLAPSE_AT:
            continue
        key = "\0".join(sorted(before)) + "\1" + "\0".join(sorted(after))
        grouped.update(dict.fromkeys(members, f"group:{stem}:{hashlib.sha256(key.encode()).hexdigest()[:8]}"))
    return grouped


def _families(upstream: dict[str, dict], downstream: dict[str, set[str]], group_of: dict[str, str]) -> dict[str, str]:
    """Also tasks outside fan-outs that share a name stem, whatever their neighbours."""
    families: dict[str, list[str]] = collections.defaultdict(list)
    for name in upstream:
        if name not in group_of:
            families[_stem(name)].append(name)
    folded = dict(group_of)
    for stem, members in families.items():
        if len(members) >= COLLAPSE_AT:
            folded.update(dict.fromkeys(members, f"family:{stem}"))
    return folded


def _chains(upstream: dict[str, dict], downstream: dict[str, set[str]], group_of: dict[str, str]) -> dict[str, str]:
    """Also runs of ungrouped tasks where each is the only successor of the one before, and
    that one's only predecessor (``a → b → c``, nothing else in or out between)."""
    following = {}
    for name in upstream:
        after = downstream.get(name, ())
        if name not in group_of and len(after) == 1:
            (successor,) = after
            if successor not in group_of and len(upstream[successor]) == 1:
                following[name] = successor
    inner = set(following.values())
    folded = dict(group_of)
    for first in upstream:
        if first in following and first not in inner:
            run = [first]
            while run[-1] in following:
                run.append(following[run[-1]])
            if len(run) >= CHAIN_AT:
                folded.update(dict.fromkeys(run, f"chain:{first}"))
    return folded


def _depths(upstream: dict[str, dict], downstream: dict[str, set[str]], group_of: dict[str, str]) -> dict[str, str]:
    """Also the ungrouped tasks left, one group per depth (the longest path from a first task)."""
    waiting = {name: len(sources) for name, sources in upstream.items()}
    depth = dict.fromkeys(upstream, 0)
    ready = [name for name, count in waiting.items() if not count]
    while ready:
        name = ready.pop()
        for after in downstream.get(name, ()):
            depth[after] = max(depth[after], depth[name] + 1)
            waiting[after] -= 1
            if not waiting[after]:
                ready.append(after)
    levels: dict[int, list[str]] = collections.defaultdict(list)
    for name in upstream:
        if name not in group_of:
            levels[depth[name]].append(name)
    folded = dict(group_of)
    for level, members in levels.items():
        if len(members) > 1:
            folded.update(dict.fromkeys(members, f"depth:{level}"))
    return folded


def _group_label(fold: str, members: list[str], group: str) -> str:
    if fold == "chain":
        return f"{members[0]} → {members[-1]} ({len(members)})"
    if fold == "depth":
        return f"depth {group.partition(':')[2]}: {len(members)} tasks"
    return f"{re.sub(r'[0-9]+$', '*', members[0])} ×{len(members)}"


def _group_phase(phases: dict[str, int]) -> str:
    """The phase a group is drawn in: failed if any failed, running if any runs, done if all are."""
    for phase in ("Failed", "Running", "Pending"):
        if phases.get(phase):
            return phase
    return "Succeeded" if set(phases) <= {"Succeeded", "Skipped"} else next(iter(phases))
