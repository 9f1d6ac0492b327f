"""The workflow's graph: checking it, and deciding which tasks can run. Pure functions only."""

from __future__ import annotations

import re

from ferry.api import resource
from ferry.api.resource import Phase

FINISHED = (Phase.SUCCEEDED, Phase.FAILED, Phase.SKIPPED)


def dependencies(task: resource.Task) -> set[str]:
    """Tasks that must succeed before ``task``: those it reads outputs from (a map's ``over`` too),
    and ``depends_on``."""
    over = task.map.over.from_task if task.map else None
    return ({i.from_task.task for i in task.inputs if i.from_task} | set(task.depends_on)
            | ({over.task} if over else set()))


MAPPABLE = (resource.Kind.VALUE, resource.Kind.DIRECTORY, resource.Kind.ASSET)
"""What a map can go over: a list (a value), or the files of a directory or asset."""


def problems(spec: resource.WorkflowSpec) -> list[str]:
    """Everything wrong with the graph, each naming the field and the fix. Empty when it can run."""
    tasks = {t.name: t for t in spec.tasks}
    inputs = {i.name: i for i in spec.inputs}
    found = []
    for task in spec.tasks:
        where = f"spec.tasks[{task.name}]"
        if not (task.image or task.function or task.plugin):
            found.append(f"{where}: set image (a container image), function (module:function) or plugin")
        if task.function and task.plugin:
            found.append(f"{where}: a task runs a function or a plugin, not both: remove one")
        if (task.function or task.plugin) and task.command:
            found.append(f"{where}: a function or plugin task runs the Ferry runtime, not command: remove command")
        for dep in task.depends_on:
            if dep not in tasks:
                found.append(f"{where}.dependsOn: no task named {dep!r}; use one of {sorted(tasks)}")
        for i in task.inputs:
            if i.from_item and task.map:
                found += _item_problems(f"{where}.inputs[{i.name}]", i)
            elif i.from_item:
                found.append(f"{where}.inputs[{i.name}].fromItem: only a map task's input takes an item: add map "
                             "(map.over names what it maps over) to the task, or remove fromItem")
            else:
                found += _source_problems(f"{where}.inputs[{i.name}]", i, i.kind, tasks, inputs, spec)
        if task.map:
            found += _map_problems(where, task, tasks, inputs, spec)
        found += _clash_problems(where, task, spec)
    for i in spec.inputs:
        if i.from_task or i.from_input:
            found.append(f"spec.inputs[{i.name}]: a workflow input takes value or uri, not fromTask/fromInput")
    for out in spec.outputs:
        found += _reference_problems(f"spec.outputs[{out.name}].fromTask", out.from_task, None, tasks, spec)
    cycle = find_cycle(spec)
    if cycle:
        found.append(f"spec.tasks: the tasks form a cycle ({' -> '.join(cycle)}); remove one of these dependencies")
    return found


def _item_problems(where: str, item: resource.TaskInput) -> list[str]:
    given = [name for name, value in (("value", item.value), ("uri", item.uri), ("fromTask", item.from_task),
                                      ("fromInput", item.from_input)) if value is not None]
    if given:
        return [f"{where}: an input with fromItem: true receives the item; remove {', '.join(given)}"]
    return []


def _map_problems(where: str, task: resource.Task, tasks, inputs, spec) -> list[str]:
    """A map takes its item in exactly one input, goes over a list, a directory or an asset, and
    batches items only where one process runs them (a Python task)."""
    found = []
    taking = [i.name for i in task.inputs if i.from_item]
    if len(taking) != 1:
        found.append(f"{where}.inputs: a map task takes its item in exactly one input with fromItem: true "
                     f"(got {', '.join(taking) or 'none'}); " + ("mark the input that receives the item"
                                                                 if not taking else "keep one"))
    over = task.map.over
    here = f"{where}.map.over"
    problems = _source_problems(here, over, over.kind, tasks, inputs, spec)
    found += problems
    if not problems:
        kind = _kind_of(over, tasks, inputs, spec)
        if over.kind and over.kind != kind:
            found.append(f"{here}: kind is {over.kind.value} but value is a literal: remove kind, or name the "
                         f"{over.kind.value} with uri, fromTask or fromInput")
        elif kind not in MAPPABLE:
            found.append(f"{here}: a map goes over a list (a value), a directory or an asset, not a {kind.value}: "
                         "name one of those")
        literal = over.value if over.value is not None else (
            inputs[over.from_input].value if over.from_input else None)
        if literal is not None and not isinstance(literal, list):
            named = "value" if over.value is not None else f"fromInput (workflow input {over.from_input!r})"
            found.append(f"{here}.{'value' if over.value is not None else 'fromInput'}: a map goes over a list; "
                         f"{named} is a {type(literal).__name__}: give a JSON array")
        if kind in (resource.Kind.DIRECTORY, resource.Kind.ASSET):
            for i in task.inputs:
                if i.from_item and i.kind not in (None, resource.Kind.FILE):
                    found.append(f"{where}.inputs[{i.name}]: each item of a {kind.value} is a file, not a "
                                 f"{i.kind.value}: set kind: file or leave it out")
    if task.map.batch_size > 1 and not (task.function or task.plugin):
        found.append(f"{where}.map.batchSize: a container task runs one item per pod; remove batchSize (or make "
                     "it a Python task: function or plugin)")
    return found


def _kind_of(source: resource.InputSource, tasks, inputs, spec) -> resource.Kind | None:
    """What ``source`` holds, once its one source is known to exist."""
    if source.from_task:
        return spec.output_kind(source.from_task.task, source.from_task.output)
    if source.from_input:
        return inputs[source.from_input].kind
    if source.uri:
        return source.kind or (resource.Kind.DIRECTORY if source.uri.endswith("/") else resource.Kind.FILE)
    return resource.Kind.VALUE


def _clash_problems(where: str, task: resource.Task, spec) -> list[str]:
    """A name that a map's pods use (``<map>-split-1``, ``<map>-17-1``) would share them with this
    task's (``<task>-1``)."""
    found = []
    for other in spec.tasks:
        if other.map and other is not task and re.fullmatch(rf"{re.escape(other.name)}-(split|gather|[0-9]+)",
                                                            task.name):
            found.append(f"{where}: the name {task.name!r} is taken by the pods of map task {other.name!r} "
                         f"({other.name}-split, {other.name}-gather, {other.name}-<unit>): rename it")
    return found


def _source_problems(where, source: resource.InputSource, kind, tasks, inputs, spec) -> list[str]:
    given = [name for name, value in (("value", source.value), ("uri", source.uri), ("fromTask", source.from_task),
                                      ("fromInput", source.from_input)) if value is not None]
    if len(given) != 1:
        return [f"{where}: set exactly one of value, uri, fromTask, fromInput (got {', '.join(given) or 'none'})"]
    if source.from_task:
        return _reference_problems(f"{where}.fromTask", source.from_task, kind, tasks, spec)
    if source.from_input and source.from_input not in inputs:
        return [f"{where}.fromInput: the workflow has no input {source.from_input!r}; declare it in spec.inputs"]
    if source.from_input and kind and inputs[source.from_input].kind != kind:
        return [f"{where}: expects a {kind.value} but workflow input {source.from_input!r} is a "
                f"{inputs[source.from_input].kind.value}"]
    return []


def _reference_problems(where, ref: resource.TaskOutputRef, kind, tasks, spec) -> list[str]:
    if ref.task not in tasks:
        return [f"{where}: no task named {ref.task!r}; use one of {sorted(tasks)}"]
    outputs = {o.name: o for o in tasks[ref.task].outputs}
    if ref.output not in outputs:
        return [f"{where}: task {ref.task!r} has no output {ref.output!r}; declare it in its outputs "
                f"(it has {sorted(outputs) or 'none'})"]
    produced = spec.output_kind(ref.task, ref.output)  # a map's gathered
    if kind and produced != kind:
        return [f"{where}: expects a {kind.value} but {ref.task}.{ref.output} is a {produced.value}"]
    return []


def find_cycle(spec: resource.WorkflowSpec) -> list[str] | None:
    """One cycle as a path of task names (first name repeated last), or None."""
    graph = {t.name: sorted(dependencies(t)) for t in spec.tasks}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for dep in graph.get(name, ()):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            if dep in graph and dep not in state:
                found = visit(dep)
                if found:
                    return found
        path.pop()
        state[name] = 2
        return None

    for name in graph:
        if name not in state:
            found = visit(name)
            if found:
                return list(reversed(found))
    return None


def ready(spec: resource.WorkflowSpec, tasks: dict[str, resource.TaskStatus]) -> list[str]:
    """Pending tasks whose dependencies have all succeeded, in spec order."""
    def phase(name: str) -> Phase:
        return tasks.get(name, resource.TaskStatus()).phase

    return [t.name for t in spec.tasks
            if phase(t.name) == Phase.PENDING and all(phase(d) == Phase.SUCCEEDED for d in dependencies(t))]


def unreachable(spec: resource.WorkflowSpec, tasks: dict[str, resource.TaskStatus]) -> list[str]:
    """Pending tasks that can never run because a task they need failed or was skipped."""
    blocked: set[str] = {name for name, s in tasks.items() if s.phase in (Phase.FAILED, Phase.SKIPPED)}
    changed = True
    while changed:
        changed = False
        for t in spec.tasks:
            if t.name not in blocked and dependencies(t) & blocked:
                blocked.add(t.name)
                changed = True
    return [t.name for t in spec.tasks
            if t.name in blocked and tasks.get(t.name, resource.TaskStatus()).phase == Phase.PENDING]
