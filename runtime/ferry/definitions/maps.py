"""What ``ferry.map`` decides, apart from the workflow graph it adds to (``tasks.Graph``): which
given values are collections of a parameter's type (what a map goes over), the map's options as
the Workflow's ``map``, and the types its gathered outputs have for the tasks downstream.

A ``File`` parameter maps over the files of a ``Directory`` or ``Asset`` (or a ``list[File]``,
which travels as a directory); a parameter of any other type ``T`` over a ``list[T]``.
"""

from __future__ import annotations

import dataclasses
import datetime
import typing
from typing import Any

import pydantic
from pydantic.alias_generators import to_snake

from ferry.api import resource
from ferry.values import lists, typed as values
from ferry.values.assets import Asset
from ferry.values.directories import Directory
from ferry.values.files import File


@dataclasses.dataclass(frozen=True)
class Options:
    """``ferry.map``'s options; ``retries``, ``timeout`` and ``cache`` replace the task's own for
    each item when given."""

    parallelism: int | None = None
    min_success_ratio: float = 1.0
    batch_size: int = 1
    retries: int | None = None
    timeout: datetime.timedelta | int | None = None
    cache: bool | None = None

    def problem(self) -> str | None:
        """What is wrong with the options, in their Python names, as the Workflow would refuse it."""
        try:
            resource.Map(over=resource.MapOver(value=[]), parallelism=self.parallelism,
                         min_success_ratio=self.min_success_ratio, batch_size=self.batch_size)
            if self.retries is not None:
                resource.RetryPolicy(limit=self.retries)
            if self.timeout is not None:
                resource.Task(name="check", function="module:function", timeout_seconds=seconds(self.timeout))
        except pydantic.ValidationError as error:
            problem = error.errors()[0]
            name = to_snake(str(problem["loc"][0]))
            return f"{_OPTION_NAMES.get(name, name)}: {problem['msg']}"
        return None

    def overrides(self) -> dict[str, Any]:
        """What replaces the task's ``Options`` for each item."""
        return {name: getattr(self, name) for name in ("retries", "timeout", "cache") if getattr(self, name) is not None}

    def spec(self, over: resource.MapOver) -> resource.Map:
        return resource.Map(over=over, parallelism=self.parallelism, min_success_ratio=self.min_success_ratio,
                            batch_size=self.batch_size)


_OPTION_NAMES = {"limit": "retries", "timeout_seconds": "timeout"}
"""The models' fields that check an option of another name."""


def seconds(timeout: datetime.timedelta | int) -> int:
    return int(timeout.total_seconds()) if isinstance(timeout, datetime.timedelta) else timeout


def gathered(annotation: Any) -> Any:
    """The type of a map's output whose items are ``annotation``: a list of the values, of the
    files, or (a directory's or asset's) of directories, each gathered under its index."""
    kind = values.kind_of(annotation)
    if kind == resource.Kind.VALUE:
        return list[annotation]
    return list[File] if kind == resource.Kind.FILE else list[Directory]


def element(annotation: Any) -> Any | None:
    """``T`` of a ``list[T]`` that travels as a JSON value, else None."""
    if typing.get_origin(annotation) is list and values.kind_of(annotation) == resource.Kind.VALUE:
        args = typing.get_args(annotation)
        return args[0] if args else Any
    return None


def holds_files(annotation: Any) -> bool:
    """Whether a value of ``annotation`` is a collection of files a ``File`` parameter maps over."""
    return (lists.item_type(annotation) is File
            or values.kind_of(annotation) in (resource.Kind.DIRECTORY, resource.Kind.ASSET)
            and lists.item_type(annotation) is None)


def files_over(value: Any) -> resource.MapOver | None:
    """The files of a literal given to a ``File`` parameter: a Directory or Asset (published first
    if local), or a list of Files (published as one directory); None for anything else."""
    if isinstance(value, (Directory, Asset)):
        return resource.MapOver(uri=value.to_blob().uri, kind=values.kind_of(type(value)))
    if isinstance(value, (list, tuple)) and all(isinstance(v, File) for v in value):
        return resource.MapOver(uri=values.to_blob(list[File], value).uri, kind=resource.Kind.DIRECTORY)
    return None


def how_to_map(inputs: dict[str, Any], mapped: list[str], type_name) -> str:
    """Why a call maps over ``mapped`` (none, or more than one) and what to pass instead."""
    if mapped:
        names = " and ".join(repr(name) for name in mapped)
        return (f"would map over {names} (each is given a collection of its type); a map goes over one argument: "
                f"map over one, and give the others single values")
    ways = []
    for name, annotation in inputs.items():
        kind = values.kind_of(annotation)
        if kind == resource.Kind.FILE:
            ways.append(f"{name!r} (File) a ferry.Directory or ferry.Asset, or a list[ferry.File]")
        elif kind == resource.Kind.VALUE:
            ways.append(f"{name!r} ({type_name(annotation)}) a list[{type_name(annotation)}]")
    return ("maps over none of its arguments: give one of them a collection of its type to map over"
            + (f" ({'; or '.join(ways)})" if ways else ": it has no File or value parameter a map could go over"))
