"""Task plugins: new task types with their own configuration and ``execute``, as in flytekit.

Subclass ``TaskPlugin``, name the type, give it a pydantic ``Config`` and an ``execute`` whose
annotations are the task's interface::

    class WaitForObject(TaskPlugin):
        task_type = "object-store-sensor"

        class Config(pydantic.BaseModel):
            poll_interval_seconds: float = 10

        def execute(self, path: str) -> str:
            ...

    sensor = WaitForObject("wait-for-input", config={"poll_interval_seconds": 1}, retries=3)

    @ferry.workflow
    def wf(path: str) -> str:
        return next_step(path=sensor(path=path))

An instance is used like a ``@ferry.task`` in workflows and runs in the Ferry runtime image, so
it works in Python workflows and in YAML (``plugin: {type: object-store-sensor, config: {...}}``).
The runtime finds a plugin class by its ``task_type``: those defined in modules it imports, and
those other packages declare under the ``ferry.definitions.plugins`` entry point group.
"""

from __future__ import annotations

import datetime
import importlib
import importlib.metadata
import time
from typing import Any, ClassVar

import pydantic

from ferry.api import resource
from ferry.definitions import tasks

ENTRY_POINTS = "ferry.definitions.plugins"
_registry: dict[str, type[TaskPlugin]] = {}


class TaskPlugin(tasks.Task):
    task_type: ClassVar[str]
    """How workflows name the plugin (a DNS label)."""

    class Config(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="forbid")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "task_type" in cls.__dict__:
            _registry[cls.task_type] = cls

    def __init__(self, name: str, config: Config | dict[str, Any] | None = None, *, retries: int = 0,
                 retry_backoff_seconds: int = 5, timeout: datetime.timedelta | int | None = None):
        try:
            self.config = config if isinstance(config, self.Config) else self.Config.model_validate(config or {})
        except pydantic.ValidationError as error:
            problems = "; ".join(f"config.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            raise tasks.DefinitionError(f"plugin {self.task_type} {name!r}: invalid {problems}") from None
        self.fn = self.execute
        self.options = tasks.Options(retries=retries, retry_backoff_seconds=retry_backoff_seconds, timeout=timeout)
        self.name = tasks.param_name(name)
        self.inputs, self.outputs, self.signature = tasks.interface(self.execute, f"plugin {self.task_type}")
        self.reference = f"plugin:{self.task_type}"
        self.pod, self.returns = {}, None  # a plugin's pod is Ferry's own; its outputs are positional
        self.__name__ = name

    def execute(self, **inputs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement execute()")

    def target(self) -> dict:
        module = type(self).__module__
        shipped = None if module.split(".")[0] == "ferry" else tasks.module_reference(module)
        return {"plugin": resource.PluginRef(type=self.task_type, config=self.config.model_dump(mode="json"),
                                             module=shipped)}


def get(task_type: str, module: str | None = None) -> type[TaskPlugin]:
    """The plugin class for ``task_type``: from ``module`` if given, else from installed plugin packages."""
    if module:
        importlib.import_module(module)
    if task_type not in _registry:
        for entry in importlib.metadata.entry_points(group=ENTRY_POINTS):
            if entry.name == task_type:
                entry.load()
    if task_type not in _registry:
        raise LookupError(f"no task plugin of type {task_type!r} (known: {sorted(_registry)}); install the package "
                          f"that provides it, declared under the {ENTRY_POINTS!r} entry point group")
    return _registry[task_type]


class ObjectStoreSensor(TaskPlugin):
    """Waits until an object exists in the raw data store (any URI the store reads), then returns its URI.

    It polls every ``poll_interval_seconds``; with ``timeout_seconds`` an attempt gives up and fails
    (and is retried if the task has retries), so a sensor never waits forever by accident.
    """

    task_type = "object-store-sensor"

    class Config(TaskPlugin.Config):
        poll_interval_seconds: float = pydantic.Field(10, gt=0)
        timeout_seconds: float | None = pydantic.Field(None, gt=0)

    def execute(self, path: str) -> str:
        from ferry.definitions.context import current_context

        context = current_context()
        deadline = None if self.config.timeout_seconds is None else time.monotonic() + self.config.timeout_seconds
        while not context.raw_data.exists(path):
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"{path} did not appear within {self.config.timeout_seconds:g}s")
            context.logging.info("waiting for %s", path)
            time.sleep(self.config.poll_interval_seconds)
        context.logging.info("%s exists", path)
        return path
