"""``@ferry.task``: a typed Python function that runs as one task of a workflow.

A task checks its own interface when it is defined (every parameter and the return value must
be typed), and every call inside a workflow is checked against it while the workflow is compiled
(missing inputs, wrong literal types, mismatched upstream outputs). Outside a workflow, calling
a task runs it locally like a one-task workflow and returns its value.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import datetime
import importlib
import inspect
import os
import pathlib
import re
import sys
import types
import typing
from typing import Any, Callable

import pydantic
from pydantic.alias_generators import to_camel

from ferry.api import resource
from ferry.definitions import maps
from ferry.values import lists, typed as values

RETURN_NAMES = "o{}"
"""Outputs are named ``o0``, ``o1``... as in flytekit."""


class DefinitionError(TypeError):
    """A task or workflow that cannot be compiled; the message says what to change."""


def param_name(name: str) -> str:
    """``raw_data`` → ``raw-data``: a function's name as a task or workflow name (a DNS label, as it
    names pods), and an input's as a command-line option (``--raw-data``). Inputs and outputs keep
    their Python names in the Workflow."""
    return name.lower().replace("_", "-")


def module_reference(module: str) -> str:
    """How a task process imports ``module``: a script run as ``__main__`` is named by its file,
    which the process imports (its ``if __name__ == "__main__"`` guard holds)."""
    if module == "__main__":
        main = sys.modules["__main__"]
        module = re.sub(r"\.py$", "", getattr(main, "__file__", "__main__").rsplit("/", 1)[-1])
    return module


def _reference(fn: Callable, what: str) -> str:
    """``module:qualname`` by which a task process imports the function; a ``DefinitionError`` where
    no process could import it, said now rather than as a failed task (or a pattern error) later."""
    where = f"{what} {fn.__name__}"
    source = getattr(sys.modules.get(fn.__module__), "__file__", None)
    if fn.__module__ == "__main__" and (not source or source.startswith("<")):
        raise DefinitionError(f"{where} is defined in an interactive session (stdin, python -c, a notebook), which "
                              "task processes cannot import; put it in a module file (pipeline.py) and run it with "
                              "`ferry run file.py:workflow`")
    module = module_reference(fn.__module__)
    if not all(part.isidentifier() for part in module.split(".")) or (source and not source.endswith(".py")
                                                                       and fn.__module__ == "__main__"):
        file = source.replace("\\", "/").rsplit("/", 1)[-1] if source else module
        raise DefinitionError(f"{where} is in {file}, which task processes cannot import: {file} is not a Python "
                              f"module name; rename it (e.g. {re.sub(r'[^0-9A-Za-z_]', '_', module)}.py)")
    return f"{module}:{fn.__qualname__}"


def named_tuple(annotation: Any) -> type | None:
    """``annotation`` if it is a ``typing.NamedTuple``, whose fields name a task's outputs as they are
    written (``row_count``); a call in a workflow then gives one of its kind, holding the outputs."""
    is_named = isinstance(annotation, type) and issubclass(annotation, tuple) and hasattr(annotation, "_fields")
    return annotation if is_named else None


def interface(fn: Callable, what: str) -> tuple[dict[str, Any], dict[str, Any], inspect.Signature]:
    """Typed inputs and outputs of ``fn``; a missing annotation is a ``DefinitionError``."""
    signature = inspect.signature(fn)
    hints = typing.get_type_hints(fn)
    inputs = {}
    for name, parameter in signature.parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise DefinitionError(f"{what} {fn.__name__}: *args and **kwargs cannot be typed inputs; name each input")
        if name not in hints:
            raise DefinitionError(f"{what} {fn.__name__}: parameter {name!r} has no type annotation; "
                                  f"add one, e.g. `{name}: int` or `{name}: ferry.File`")
        inputs[name] = hints[name]
    if "return" not in hints:
        raise DefinitionError(f"{what} {fn.__name__}: annotate the return type (`-> None` if it returns nothing)")
    returned = hints["return"]
    if returned is None or returned is type(None):
        outputs = {}
    elif named_tuple(returned):
        fields = typing.get_type_hints(returned)
        outputs = {field: fields.get(field, Any) for field in returned._fields}
    elif typing.get_origin(returned) is tuple and ... not in typing.get_args(returned):
        outputs = {RETURN_NAMES.format(i): t for i, t in enumerate(typing.get_args(returned))}
    else:
        outputs = {RETURN_NAMES.format(0): returned}
    _check_names(fn, what, inputs, outputs)
    _check_types(fn, what, inputs, outputs, named_tuple(returned) is None and len(outputs) == 1)
    return inputs, outputs, signature


def _check_types(fn: Callable, what: str, inputs: dict[str, Any], outputs: dict[str, Any], single: bool) -> None:
    """Refuse, where ``fn`` is defined, a type whose values could not travel between tasks."""
    named = [(f"parameter {name!r}", t) for name, t in inputs.items()]
    named += [("the return type" if single else f"output {name!r}", t) for name, t in outputs.items()]
    for where, annotation in named:
        problem = values.unsupported(annotation)
        if problem:
            raise DefinitionError(f"{what} {fn.__name__}: {where} is {type_name(annotation)}: {problem}")


def _check_names(fn: Callable, what: str, inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
    """Refuse, where ``fn`` is defined, names that the Workflow would refuse (``resource.IOName``):
    not ASCII, too long, or two spelled alike in ``FERRY_INPUT_<NAME>`` (``X`` and ``x``)."""
    where = f"{what} {fn.__name__}"
    for kind, names in (("input", inputs), ("output", outputs)):
        for name in names:
            problem = resource.io_name_problem(name)
            if problem:
                raise DefinitionError(f"{where}: {kind} {name!r} {problem}")
    clash = (resource.io_name_clash(list(inputs), "inputs", "FERRY_INPUT_")
             or resource.io_name_clash(list(outputs), "outputs"))
    if clash:
        raise DefinitionError(f"{where}: {clash}")


@dataclasses.dataclass(frozen=True)
class Options:
    retries: int = 0
    retry_backoff_seconds: int = 5
    timeout: datetime.timedelta | int | None = None
    image: str | None = None
    requests: dict[str, str] | None = None
    limits: dict[str, str] | None = None
    secrets: tuple[str, ...] = ()
    cache: bool = False
    cache_version: str = ""
    pod: dict[str, Any] | None = None
    """Pod settings of the resource's task (``POD_SETTINGS``), by their Python or YAML names."""


POD_SETTINGS = ("node_selector", "tolerations", "affinity", "image_pull_secrets", "volumes", "volume_mounts",
                "scratch_size_limit", "security_context", "service_account_name")
"""What ``@ferry.task(pod={...})`` may set: where the pod runs, its volumes, user and account."""


def _pod_settings(fn: Callable, pod: dict[str, Any] | None) -> dict[str, Any]:
    """``pod`` by the resource's field names, checked as the Workflow will check it (so a mistake
    shows where the task is defined, not when it runs)."""
    if not pod:
        return {}
    names = {to_camel(name): name for name in POD_SETTINGS} | {name: name for name in POD_SETTINGS}
    unknown = [key for key in pod if key not in names]
    if unknown:
        raise DefinitionError(f"pod: {unknown[0]!r} is not a pod setting; use one of "
                              f"{', '.join(to_camel(n) for n in POD_SETTINGS)}")
    settings = {names[key]: value for key, value in pod.items()}
    try:
        resource.Task.model_validate({"name": "check", "function": "module:function",
                                      **{to_camel(name): value for name, value in settings.items()}})
    except pydantic.ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise DefinitionError(f"pod of task {fn.__name__}: {problems}") from None
    return settings


class Task:
    def __init__(self, fn: Callable, options: Options):
        self.fn = fn
        self.options = options
        self.name = param_name(fn.__name__)
        self.inputs, self.outputs, self.signature = interface(fn, "task")
        self.reference = _reference(fn, "task")
        self.pod = _pod_settings(fn, options.pod)
        self.returns = named_tuple(typing.get_type_hints(fn).get("return"))
        if "<locals>" in self.reference:
            raise DefinitionError(f"task {fn.__name__} is defined inside a function; define tasks at module level "
                                  "so that task processes can import them")
        self.__doc__, self.__name__, self.__wrapped__ = fn.__doc__, fn.__name__, fn

    def __repr__(self) -> str:
        return f"<ferry.task {self.reference}>"

    def __call__(self, *args, **kwargs):
        graph = compiling.get()
        if graph is not None:
            return graph.call(self, args, kwargs)
        from ferry.definitions import context

        running = context.running_task()
        if running is not None:
            raise DefinitionError(f"{_user_site()}: task {self.__name__} is called inside task {running}, where it "
                                  f"would start a separate run of its own; tasks are called from workflows. To reuse "
                                  f"its code here, call its plain function: {self.__name__}.fn(...)")

        return local_executor().run_task(self, self.signature.bind(*args, **kwargs).arguments)

    def map(self, *args, **kwargs):
        """``process.map(path=raw, n=3)``: ``ferry.map(process)(path=raw, n=3)``, with the defaults."""
        return Mapped(self, maps.Options())(*args, **kwargs)

    def resource(self, node: str, inputs: list[resource.TaskInput], mapping: maps.Options | None = None,
                 over: resource.MapOver | None = None) -> resource.Task:
        """This task as one node of a Workflow resource; with ``mapping``, a map over ``over``."""
        options = self.options if mapping is None else dataclasses.replace(self.options, **mapping.overrides())
        timeout = None if options.timeout is None else maps.seconds(options.timeout)
        resources = None
        if options.requests or options.limits:
            resources = resource.Resources(requests=options.requests, limits=options.limits)
        return resource.Task(
            name=node, image=options.image, inputs=inputs, **self.target(),
            outputs=[resource.TaskOutput(name=name, kind=values.kind_of(t)) for name, t in self.outputs.items()],
            retries=resource.RetryPolicy(limit=options.retries, backoff_seconds=options.retry_backoff_seconds),
            timeout_seconds=timeout, resources=resources, secrets=list(options.secrets),
            cache=resource.Cache(version=self.cache_version()) if options.cache else None,
            map=None if mapping is None else mapping.spec(over), **self.pod)

    def target(self) -> dict:
        """What the node runs: this function (plugins run themselves instead)."""
        return {"function": self.reference}

    def cache_version(self) -> str:
        """The given ``cache_version``, or a digest of the code the task runs (``ferry.definitions.sources``): its
        module and the project modules it imports, so editing a helper it calls is another entry."""
        if self.options.cache_version:
            return self.options.cache_version
        from ferry.definitions import sources

        path = pathlib.Path(sys.modules[self.fn.__module__].__file__)
        module = module_reference(self.fn.__module__)
        return "source-" + sources.digest(module, path, sources.code_root(self.reference))[:16]


def task(fn: Callable | None = None, *, retries: int = 0, retry_backoff_seconds: int = 5,
         timeout: datetime.timedelta | int | None = None, image: str | None = None,
         requests: dict[str, str] | None = None, limits: dict[str, str] | None = None,
         secrets: typing.Sequence[str] = (), cache: bool = False, cache_version: str = "",
         pod: dict[str, Any] | None = None):
    """Make ``fn`` a task: ``@ferry.task`` or ``@ferry.task(retries=2, timeout=60, cache=True)``;
    ``pod={"nodeSelector": {...}, "volumes": [...], "volumeMounts": [...], "scratchSizeLimit": "10Gi"}``
    sets where and with what its pods run on a cluster (``POD_SETTINGS``)."""
    options = Options(retries, retry_backoff_seconds, timeout, image, requests, limits, tuple(secrets), cache,
                      cache_version, pod)
    if fn is None:
        return lambda f: Task(f, options)
    return Task(fn, options)


class Mapped:
    """A task mapped over one of its arguments (``ferry.map``): called in a workflow body with the
    task's arguments, it adds one map node and returns its gathered outputs."""

    def __init__(self, task: Task, options: maps.Options):
        self.task, self.options = task, options

    def __repr__(self) -> str:
        return f"<ferry.map {self.task.reference}>"

    def __call__(self, *args, **kwargs):
        graph = compiling.get()
        if graph is None:
            raise DefinitionError(f"{_user_site()}: ferry.map({self.task.__name__}) is called outside a workflow; "
                                  f"call it in the body of a @ferry.workflow and run that (`ferry run file.py:workflow`)")
        return graph.call(self.task, args, kwargs, self.options)


def mapped(task: Task, *, parallelism: int | None = None, min_success_ratio: float = 1.0, batch_size: int = 1,
           retries: int | None = None, timeout: datetime.timedelta | int | None = None,
           cache: bool | None = None) -> Mapped:
    """``ferry.map(task, parallelism=20)``: ``task`` run once per item of the one argument given a
    collection of its parameter's type (a Directory's files for a File, a ``list[T]`` for a ``T``),
    at most ``parallelism`` at once, ``batch_size`` items per pod; the map succeeds when at least
    ``min_success_ratio`` of them do. ``retries``, ``timeout`` and ``cache`` replace the task's own
    for each item."""
    what = getattr(task, "__name__", type(task).__name__)
    if not isinstance(task, Task):
        if callable(getattr(task, "compile", None)):
            raise DefinitionError(f"{_user_site()}: ferry.map takes a task, and {getattr(task, 'name', what)} is a "
                                  f"workflow; a map over a workflow comes with sub-workflows (control flow): map "
                                  f"its tasks instead")
        raise DefinitionError(f"{_user_site()}: ferry.map takes a task (a function decorated with @ferry.task), "
                              f"not a {'function' if callable(task) else type(task).__name__} {what}")
    options = maps.Options(parallelism, min_success_ratio, batch_size, retries, timeout, cache)
    problem = options.problem()
    if problem:
        raise DefinitionError(f"{_user_site()}: ferry.map({task.__name__}): {problem}")
    return Mapped(task, options)


LOCAL_EXECUTOR = "ferry.execution.local"


def local_executor():
    """The local executor, which runs a task or workflow called outside a workflow (``run_task``,
    ``run_workflow``). It sits above the definitions and imports them, so it is looked up by name
    when first called, never imported here: the layers stay one-way and calling a task stays a
    plain call (docs/architecture.md)."""
    return importlib.import_module(LOCAL_EXECUTOR)


_FERRY = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _user_site() -> str:
    """``pipeline.py:12``: the line of the user's code that is running, the first frame outside Ferry."""
    frame = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_FERRY):
        frame = frame.f_back
    if frame is None:
        return "<unknown>"
    path = frame.f_code.co_filename
    with contextlib.suppress(ValueError):  # another drive
        relative = os.path.relpath(path)
        path = path if relative.startswith("..") else relative
    return f"{path}:{frame.f_lineno}"


_BRANCH = ("so `if`, `while`, `and`/`or`/`not` and bool() cannot test it in the workflow body; pass it to a task "
           "and decide there (branches on results come with ferry.when, not yet available)")
_MAP = ("so the workflow body cannot iterate, index, measure or search it; pass it whole to a task that loops "
        "over it, or map a task over it: ferry.map(task)(item=it) or task.map(item=it)")


class _Unknown:
    """What the workflow body holds in place of a value that exists only when the workflow runs: using
    it as if it were known (testing, iterating, formatting it) is a ``DefinitionError`` naming the
    user's line, where the value would otherwise silently pick a branch."""

    def _refuse(self, why: str) -> typing.NoReturn:
        raise DefinitionError(f"{_user_site()}: {self.described()} is not known until the workflow runs, {why}")

    def described(self) -> str:
        raise NotImplementedError

    def __bool__(self):
        self._refuse(_BRANCH)

    def __iter__(self):
        self._refuse(_MAP)

    def __len__(self):
        self._refuse(_MAP)

    def __getitem__(self, key):
        self._refuse(_MAP)

    def __contains__(self, item):
        self._refuse(_MAP)

    def __format__(self, spec):
        self._refuse("so it cannot be formatted into a string in the workflow body; pass it to a task that does")

    def __eq__(self, other):
        return Condition(self, "==", other)

    def __ne__(self, other):
        return Condition(self, "!=", other)

    def __lt__(self, other):
        return Condition(self, "<", other)

    def __le__(self, other):
        return Condition(self, "<=", other)

    def __gt__(self, other):
        return Condition(self, ">", other)

    def __ge__(self, other):
        return Condition(self, ">=", other)

    __hash__ = object.__hash__
    """By identity: dicts and sets of Promises never compare them (which would give a Condition)."""


@dataclasses.dataclass(frozen=True, eq=False)
class Promise(_Unknown):
    """A value that will exist when the workflow runs: an upstream output or a workflow input."""

    task: str | None
    """The producing node, or None for a workflow input."""
    name: str
    annotation: Any

    def source(self) -> dict:
        if self.task is None:
            return {"from_input": self.name}
        return {"from_task": resource.TaskOutputRef(task=self.task, output=self.name)}

    def described(self) -> str:
        return f"workflow input {self.name!r}" if self.task is None else f"output {self.name!r} of task {self.task}"


@dataclasses.dataclass(frozen=True, eq=False)
class Condition(_Unknown):
    """``mode == "publish"`` on a Promise: kept for the branches to come (``ferry.when``), never a bool."""

    left: Any
    op: str
    right: Any

    def described(self) -> str:
        def side(value):
            return value.described() if isinstance(value, _Unknown) else repr(value)

        return f"{side(self.left)} {self.op} {side(self.right)}"


compiling: contextvars.ContextVar[Graph | None] = contextvars.ContextVar("ferry_compiling", default=None)


class Graph:
    """The nodes a workflow function creates while it is compiled."""

    def __init__(self):
        self.tasks: list[resource.Task] = []

    def call(self, task: Task, args: tuple, kwargs: dict, mapping: maps.Options | None = None):
        """Add a node of ``task`` (with ``mapping``, a map) called with these arguments; its outputs."""
        node = self._node_name(task.name)
        try:
            bound = task.signature.bind(*args, **kwargs)
        except TypeError as error:
            raise DefinitionError(f"calling task {task.__name__}: {error}") from None
        bound.apply_defaults()
        outputs = task.outputs
        if mapping is None:
            inputs = [self._input(task, name, value) for name, value in bound.arguments.items()]
            self.tasks.append(task.resource(node, inputs))
        else:
            self.tasks.append(self._map(task, node, bound.arguments, mapping))
            outputs = {name: maps.gathered(t) for name, t in outputs.items()}
        promises = [Promise(node, name, t) for name, t in outputs.items()]
        if task.returns:
            return task.returns(*promises)
        if not promises:
            return None
        return promises[0] if len(promises) == 1 else tuple(promises)

    def _node_name(self, base: str) -> str:
        names = {t.name for t in self.tasks}
        node, n = base, 2
        while node in names:
            node, n = f"{base}-{n}", n + 1
        if len(node) > 40:
            raise DefinitionError(f"task name {node!r} is longer than 40 characters; use a shorter function name")
        return node

    def _map(self, task: Task, node: str, arguments: dict[str, Any], mapping: maps.Options) -> resource.Task:
        """The map node: the one argument given a collection of its type is the item, the others fixed."""
        over = {name: found for name, value in arguments.items()
                if (found := _over(task.inputs[name], value)) is not None}
        inputs = [resource.TaskInput(name=name, from_item=True, kind=values.kind_of(task.inputs[name])) if name in over
                  else self._input(task, name, value) for name, value in arguments.items()]
        if len(over) != 1:
            raise DefinitionError(f"{_user_site()}: ferry.map({task.__name__}) "
                                  f"{maps.how_to_map(task.inputs, list(over), type_name)}")
        return task.resource(node, inputs, mapping, *over.values())

    def _input(self, task: Task, name: str, value: Any) -> resource.TaskInput:
        expected = task.inputs[name]
        where = f"calling task {task.__name__}: input {name!r}"
        if isinstance(value, Promise):
            produced, wanted = values.kind_of(value.annotation), values.kind_of(expected)
            compatible = produced == wanted and (_fits(expected, value.annotation) if produced == resource.Kind.VALUE
                                                 else _same_list(expected, value.annotation))
            if not compatible:
                raise DefinitionError(f"{where} expects {type_name(expected)} but gets "
                                      f"{type_name(value.annotation)} from "
                                      f"{'task ' + value.task if value.task else 'workflow input'} {value.name!r}")
            return resource.TaskInput(name=name, **value.source())
        if values.kind_of(expected) != resource.Kind.VALUE:
            try:
                ref = values.to_blob(expected, value)
            except ValueError as error:
                raise DefinitionError(f"{where}: {error}") from None
            return resource.TaskInput(name=name, uri=ref.uri, kind=values.kind_of(expected))
        try:
            return resource.TaskInput(name=name, value=values.to_json(expected, value))
        except ValueError as error:
            raise DefinitionError(f"{where}: {error}") from None


def _over(expected: Any, value: Any) -> resource.MapOver | None:
    """What a map goes over when ``value`` is given to a parameter of type ``expected``: a collection
    of that type (the files of a Directory or Asset for a File, a ``list[T]`` for a ``T``), else None."""
    wanted = values.kind_of(expected)
    if isinstance(value, Promise):
        given = value.annotation
        if wanted == resource.Kind.FILE and maps.holds_files(given):
            return resource.MapOver(**value.source(), kind=values.kind_of(given))
        item = maps.element(given)
        if wanted == resource.Kind.VALUE and item is not None and not _fits(expected, given) and _fits(expected, item):
            return resource.MapOver(**value.source(), kind=resource.Kind.VALUE)
        return None
    if wanted == resource.Kind.FILE:
        return maps.files_over(value)
    if (wanted == resource.Kind.VALUE and isinstance(value, (list, tuple)) and not _checks(expected, value)
            and all(_checks(expected, item) for item in value)):
        return resource.MapOver(value=[values.to_json(expected, item) for item in value], kind=resource.Kind.VALUE)
    return None


def _checks(annotation: Any, value: Any) -> bool:
    try:
        values.check(annotation, value)
    except ValueError:
        return False
    return True


def _fits(expected: Any, given: Any) -> bool:
    """Whether a value of type ``given`` (a JSON value) may be passed where ``expected`` is taken."""
    return Any in (expected, given) or _same_type(expected, given)


def _same_list(expected: Any, given: Any) -> bool:
    """Whether a blob of type ``given`` may be passed where ``expected`` (of the same kind) is
    taken: a ``list[File]`` is not a ``list[Directory]``; either is a ``Directory``, which is either."""
    wanted, produced = lists.item_type(expected), lists.item_type(given)
    return wanted is None or produced is None or wanted is produced


def _same_type(a: Any, b: Any) -> bool:
    """Whether every value of ``b`` (what is given) is one of ``a`` (what is expected): a subclass,
    or a ``Literal`` whose values all are (``Literal["fast", "slow"]`` passes to a ``str``)."""
    if a == b or (inspect.isclass(a) and inspect.isclass(b) and issubclass(b, a)):
        return True
    if typing.get_origin(b) is not typing.Literal:
        return False
    given = typing.get_args(b)
    if typing.get_origin(a) is typing.Literal:
        return all(any(v == w and type(v) is type(w) for w in typing.get_args(a)) for v in given)
    return inspect.isclass(a) and all(isinstance(v, a) and not (isinstance(v, bool) and a is not bool) for v in given)


def type_name(annotation: Any) -> str:
    """``list[File]``, ``Literal['fast', 'slow']``, ``Optional[int]``: a type as a user writes it."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return f"Literal[{', '.join(map(repr, args))}]"
    if origin in (typing.Union, types.UnionType):
        if len(args) == 2 and type(None) in args:
            return f"Optional[{type_name(next(a for a in args if a is not type(None)))}]"
        return " | ".join(map(type_name, args))
    if origin is not None and args:
        name = getattr(origin, "__name__", None) or str(origin).replace("typing.", "")
        return f"{name}[{', '.join('...' if a is ... else type_name(a) for a in args)}]"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
