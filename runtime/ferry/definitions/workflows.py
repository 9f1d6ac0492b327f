"""``@ferry.workflow``: a typed Python function whose task calls build the DAG.

The function runs once, at compile time, with placeholders for its inputs; each task call adds
a node and returns placeholders for that task's outputs. The result is a ``Workflow`` resource
that ``kubectl create`` accepts (``ferry compile``) and that the local executor runs
(``ferry run`` or calling the workflow like a function).
"""

from __future__ import annotations

import typing
from typing import Any, Callable

import pydantic

from ferry.api import resource
from ferry.definitions import tasks
from ferry.values import typed as values


OPTIONS = ("failure_policy", "ttl_seconds_after_finished", "pod_retention", "artifact_cleanup")
"""What ``@ferry.workflow(...)`` may set of the Workflow's spec (``resource.WorkflowSpec`` says what each does)."""


class Workflow:
    def __init__(self, fn: Callable, options: dict[str, Any] | None = None):
        self.fn = fn
        self.options = _checked_options(fn, options or {})
        self.name = tasks.param_name(fn.__name__)
        self.inputs, self.outputs, self.signature = tasks.interface(fn, "workflow")
        self.returns = tasks.named_tuple(typing.get_type_hints(fn).get("return"))
        self.__doc__, self.__name__, self.__wrapped__ = fn.__doc__, fn.__name__, fn

    def __repr__(self) -> str:
        return f"<ferry.workflow {self.fn.__module__}:{self.fn.__qualname__}>"

    def compile(self, **inputs: Any) -> resource.WorkflowSpec:
        """The Workflow spec, with ``inputs`` overriding the function's defaults."""
        unknown = set(inputs) - set(self.inputs)
        if unknown:
            raise tasks.DefinitionError(f"workflow {self.__name__} has no input {sorted(unknown)[0]!r}; "
                                        f"its inputs are {sorted(self.inputs)}")
        graph = tasks.Graph()
        placeholders = {name: tasks.Promise(None, name, t) for name, t in self.inputs.items()}
        token = tasks.compiling.set(graph)
        try:
            result = self.fn(**placeholders)
        finally:
            tasks.compiling.reset(token)
        returned = result if isinstance(result, tuple) else (() if result is None else (result,))
        if len(returned) != len(self.outputs):
            raise tasks.DefinitionError(f"workflow {self.__name__} returns {len(returned)} values but its return "
                                        f"type declares {len(self.outputs)}")
        outputs = []
        for name, promise in zip(self.outputs, returned):
            if not isinstance(promise, tasks.Promise) or promise.task is None:
                raise tasks.DefinitionError(f"workflow {self.__name__}: output {name} must be the output of a task "
                                            f"called in the workflow, not {promise!r}")
            outputs.append(resource.WorkflowOutput(name=name, from_task=promise.source()["from_task"]))
        return resource.WorkflowSpec(inputs=[self._input(n, t, inputs) for n, t in self.inputs.items()],
                                     tasks=graph.tasks, outputs=outputs, **self.options)

    def _input(self, name: str, annotation: Any, given: dict[str, Any]) -> resource.WorkflowInput:
        default = self.signature.parameters[name].default
        if name in given:
            value = given[name]
        elif default is not self.signature.parameters[name].empty:
            value = default
        else:
            raise tasks.DefinitionError(f"workflow {self.__name__}: input {name!r} has no default; give it a "
                                        f"value (`--{tasks.param_name(name)} VALUE` on the command line)")
        kind = values.kind_of(annotation)
        try:
            if kind != resource.Kind.VALUE:
                return resource.WorkflowInput(name=name, kind=kind, uri=values.to_blob(annotation, value).uri)
            return resource.WorkflowInput(name=name, value=values.to_json(annotation, value))
        except ValueError as error:
            raise tasks.DefinitionError(f"workflow {self.__name__}: input {name!r}: {error}") from None

    def manifest(self, name: str | None = None, **inputs: Any) -> dict:
        """A ``Workflow`` object named ``name``, or else ``generateName: <workflow>-``: the API server
        adds five random characters on each ``kubectl create``, so creating it twice makes two runs
        (``kubectl apply`` needs a ``name``)."""
        metadata = {"name": name} if name else {"generateName": f"{self.name}-"}
        return {"apiVersion": resource.API_VERSION, "kind": resource.KIND, "metadata": metadata,
                "spec": self.compile(**inputs).model_dump(by_alias=True, exclude_defaults=True, mode="json")}

    def __call__(self, **inputs: Any):
        if tasks.compiling.get() is not None:
            raise tasks.DefinitionError(f"workflow {self.__name__} cannot be called inside another workflow; "
                                        "call its tasks instead")
        return tasks.local_executor().run_workflow(self, inputs).result()


def workflow(fn: Callable | None = None, /, **options: Any) -> Workflow | Callable[[Callable], Workflow]:
    """Make ``fn`` a workflow: its body calls tasks and returns their outputs. As
    ``@ferry.workflow(ttl_seconds_after_finished=86400, pod_retention="KeepFailed",
    artifact_cleanup="OnDeletion", failure_policy="Continue")`` it also sets those of its spec."""
    if fn is None:
        return lambda decorated: Workflow(decorated, options)
    return Workflow(fn, options)


def _checked_options(fn: Callable, options: dict[str, Any]) -> dict[str, Any]:
    """The options as the spec takes them, refused where the workflow is defined when wrong."""
    where = f"@ferry.workflow of {getattr(fn, '__name__', fn)!r}"
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise tasks.DefinitionError(f"{where}: no option {unknown[0]!r}; the options are {', '.join(OPTIONS)}")
    try:
        checked = resource.WorkflowSpec(tasks=[resource.Task(name="check", image="check")], **options)
    except pydantic.ValidationError as error:
        problem = error.errors()[0]
        raise tasks.DefinitionError(f"{where}: {problem['loc'][0]}: {problem['msg']}") from None
    return {name: getattr(checked, name) for name in options}
