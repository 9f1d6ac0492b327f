"""Frozen records that check plainly right input themselves and leave the rest to pydantic.

``Settings`` and ``BlobRef`` are made in every process that moves data, and importing pydantic and
building a model costs more than restoring 100 small files (about 150 ms, a third of it pydantic's
plugin loader reading every installed package's metadata). So each is a ``Record``: its fields
check the usual input (the exact types, within the limits) in plain Python. Anything else, from
``"64"`` for an int to a bad value, goes through an equivalent pydantic model, built on first use,
which converts it as before or raises the same ``ValidationError`` (``tests/runtime/core/test_records.py``
holds the two paths to the same results and messages).

A record is declared once: its annotations are the model's types, and each field's check carries
the model's constraints (``integer(1, 50)`` is ``ge=1, le=50``), so the model is generated
(``model_of``) and cannot drift from the checks.
"""

from __future__ import annotations

import enum
import functools
import json
import pathlib
import re
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

NO = object()
"""What a field's check returns for input it leaves to the pydantic model."""

Check = Callable[[Any], Any]
_DIGITS = re.compile(r"[0-9]{1,18}")
_DECIMAL = re.compile(r"[0-9]{1,15}(?:\.[0-9]{1,15})?")
_BIG = 2 ** 63


def constrained(check: Check, after: Callable[[Any], Any] | None = None, **constraints: Any) -> Check:
    """``check`` (a function of its own: this sets its attributes), carrying what the model adds
    to the field's type: ``pydantic.Field``'s ``constraints``, and ``after``, a validator for what
    ``check`` leaves to the model (it raises ``ValueError`` or converts; what ``check`` takes, it keeps)."""
    check.constraints, check.after = constraints, after
    return check


def text(value: Any) -> Any:
    return value if type(value) is str else NO


def integer(low: int, high: int | None = None) -> Check:
    """An int in ``[low, high]``; a string of digits is read as pydantic reads it."""
    def check(value: Any) -> Any:
        if type(value) is str and _DIGITS.fullmatch(value):
            value = int(value)
        return value if type(value) is int and low <= value < _BIG and (high is None or value <= high) else NO
    return constrained(check, ge=low, **({} if high is None else {"le": high}))


def number(low: float, above: bool = False) -> Check:
    """A float at least ``low`` (above it, with ``above``); ints and decimal strings become floats."""
    def check(value: Any) -> Any:
        if type(value) is str and _DECIMAL.fullmatch(value) or type(value) is int and abs(value) < _BIG:
            value = float(value)
        return value if type(value) is float and (value > low if above else value >= low) else NO
    return constrained(check, **{"gt" if above else "ge": low})


def matching(pattern: str) -> Check:
    """Text ``pattern`` (anchored, as a model's ``pattern``) matches whole."""
    compiled = re.compile(pattern)
    return constrained(lambda value: value if type(value) is str and compiled.fullmatch(value) else NO,
                       pattern=pattern)


_BOOLEANS = {True: True, False: False, "true": True, "false": False, "1": True, "0": False}


def boolean(value: Any) -> Any:
    return _BOOLEANS.get(value, NO) if type(value) in (bool, str) else NO


def path(value: Any) -> Any:
    if type(value) is str and value:
        return pathlib.Path(value)
    return value if type(value) is type(pathlib.Path()) else NO


def choice(*options: str) -> Check:
    return lambda value: value if type(value) is str and value in options else NO


def optional(check: Check) -> Check:
    return constrained(lambda value: None if value is None else check(value), getattr(check, "after", None),
                       **getattr(check, "constraints", {}))


def absent(value: Any) -> Any:
    """Only None: a given value (a secret) goes to the model's own type."""
    return None if value is None else NO


def _plain(value: Any) -> Any:
    """``value`` as pydantic's json mode writes it, for the simple types (else ``NO``)."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    if type(value) is type(pathlib.Path()):
        return str(value)
    if isinstance(value, enum.Enum) and type(value.value) is str:
        return value.value
    return NO


class Factory:
    """A default made anew for each record (pydantic's ``default_factory``)."""

    def __init__(self, make: Callable[[], Any]):
        self.make = make


class field:  # noqa: N801 - written as a field's value, as dataclasses.field
    """A record's field, declared in its class body: ``concurrency: int = records.field(integer(1, 1024), 32)``."""

    def __init__(self, check: Check, default: Any = NO):
        self.check, self.default = check, default


class Record:
    """A frozen record; subclasses declare each field once, ``name: type = field(check, default)``
    (the default is ``NO`` when required), which ``FIELDS`` collects in order."""

    FIELDS: ClassVar[dict[str, tuple[Check, Any]]] = {}

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        declared = {name: value for name, value in vars(cls).items() if isinstance(value, field)}
        if declared:
            cls.FIELDS = {name: (value.check, value.default) for name, value in declared.items()}
            for name in declared:
                delattr(cls, name)  # each record holds its own values

    def __init__(self, **values: Any):
        checked = self._check(values)
        if checked is None:
            model = self._model()(**values)  # converts what the checks leave to it, or raises as before
            checked = {name: getattr(model, name) for name in self.FIELDS}
        object.__setattr__(self, "__dict__", checked)

    def _check(self, values: Mapping[str, Any]) -> dict[str, Any] | None:
        """All fields, if ``values`` are plainly right (else None): ``_finish`` may change them."""
        if not values.keys() <= self.FIELDS.keys():
            return None
        checked = {}
        for name, (check, default) in self.FIELDS.items():
            if name in values:
                value = check(values[name])
                if value is NO:
                    return None
            elif default is NO:  # required
                return None
            else:
                value = default.make() if isinstance(default, Factory) else default
            checked[name] = value
        return self._finish(checked)

    def _finish(self, fields: dict[str, Any]) -> dict[str, Any] | None:
        """``_validate`` on fields that passed; what it refuses is left to the model, which says why."""
        try:
            return self._validate(fields)
        except ValueError:
            return None

    @classmethod
    def _validate(cls, fields: dict[str, Any]) -> dict[str, Any]:
        """Checks across fields, on both paths (the model's after-validator): changed fields, or ValueError."""
        return fields

    @classmethod
    def _pydantic(cls) -> type:
        """The equivalent pydantic model (named as this class, so its errors read the same)."""
        return model_of(cls)

    @classmethod
    def _model(cls) -> type:
        return _models(cls)

    @classmethod
    def model_validate(cls, value: Any):
        if isinstance(value, cls):
            return value
        if isinstance(value, dict) and all(type(key) is str for key in value):
            return cls(**value)
        return cls._of(cls._model().model_validate(value))

    @classmethod
    def model_validate_json(cls, data: str | bytes | bytearray):
        """From JSON text; plain ASCII JSON objects are read here, anything else by pydantic."""
        if data.isascii():
            try:
                values = json.loads(data, object_pairs_hook=_unique, parse_constant=_refuse)
            except ValueError:
                values = None
            if isinstance(values, dict) and all(type(value) is not str or value.isascii() for value in values.values()):
                record = object.__new__(cls)
                checked = record._check(values)
                if checked is not None:
                    object.__setattr__(record, "__dict__", checked)
                    return record
        return cls._of(cls._model().model_validate_json(data))

    @classmethod
    def _of(cls, model: Any):
        return _unpickle(cls, {name: getattr(model, name) for name in cls.FIELDS})

    def model_dump(self, *, mode: str = "python", exclude: set[str] | None = None,
                   exclude_none: bool = False) -> dict[str, Any]:
        """The fields as a dict, as pydantic's ``model_dump`` gives them: in ``json`` mode enums and
        paths become strings (other types go through the model)."""
        values = {name: value for name, value in self.__dict__.items()
                  if not (exclude and name in exclude) and not (exclude_none and value is None)}
        if mode == "python":
            return values
        if mode == "json":
            plain = {name: _plain(value) for name, value in values.items()}
            if NO not in plain.values():
                return plain
        return self.as_model().model_dump(mode=mode, exclude=exclude, exclude_none=exclude_none)

    def as_model(self) -> Any:
        """The equivalent pydantic model (not checked again)."""
        return self._model().model_construct(**self.__dict__)

    def model_copy(self, *, update: Mapping[str, Any] | None = None):
        """A copy with ``update``'s fields replaced, unchecked (as pydantic's ``model_copy``)."""
        unknown = set(update or ()) - self.FIELDS.keys()
        if unknown:
            raise ValueError(f"{type(self).__name__} has no field {sorted(unknown)[0]!r}")
        record = object.__new__(type(self))
        object.__setattr__(record, "__dict__", {**self.__dict__, **(update or {})})
        return record

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen; make a changed copy with model_copy(update=...)")

    __delattr__ = __setattr__

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.__dict__ == self.__dict__

    def __hash__(self) -> int:
        return hash((type(self), *self.__dict__.values()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{name}={value!r}' for name, value in self.__dict__.items())})"

    def __reduce__(self):
        return _unpickle, (type(self), self.__dict__)


def _unpickle(cls: type[Record], fields: dict[str, Any]) -> Record:
    record = object.__new__(cls)
    object.__setattr__(record, "__dict__", dict(fields))
    return record


@functools.cache
def _models(cls: type[Record]) -> type:
    return cls._pydantic()


def model_of(cls: type[Record]) -> type:
    """The pydantic model of a record: its ``fields``, and ``_validate``."""
    import pydantic

    validators = {}
    if cls._validate.__func__ is not Record._validate.__func__:
        def validate(model):
            for name, value in cls._validate(dict(model)).items():
                object.__setattr__(model, name, value)
            return model
        validators["_validate"] = pydantic.model_validator(mode="after")(validate)
    return pydantic.create_model(cls.__name__, __config__=pydantic.ConfigDict(frozen=True, extra="forbid"),
                                 __validators__=validators, **fields(cls))


def fields(cls: type[Record], partial: bool = False) -> dict[str, tuple[Any, Any]]:
    """A record's ``FIELDS`` as pydantic fields (``create_model``'s keyword arguments): its
    annotations (evaluated with ``pydantic`` in scope, so a field may be a ``pydantic.SecretStr``),
    defaults, constraints, and docstrings as the JSON schema's descriptions (read from the source
    only when a schema is made). ``partial``: each field may be absent (None), with the constraints
    a schema states but not the checks only Python makes (``after``), for a model that holds a
    record's values among others (a status's ``Output``)."""
    import pydantic

    hints = typing.get_type_hints(cls, localns={"pydantic": pydantic})
    made = {}
    for name, (check, default) in cls.FIELDS.items():
        kind = hints[name]
        if getattr(check, "after", None) and not partial:
            kind = typing.Annotated[kind, pydantic.AfterValidator(check.after)]
        if partial:
            kind, default = typing.Optional[kind], None
        given = {} if default is NO else ({"default_factory": default.make} if isinstance(default, Factory)
                                          else {"default": default})
        made[name] = (kind, pydantic.Field(**given, **getattr(check, "constraints", {}),
                                           json_schema_extra=functools.partial(_describe, cls, name)))
    return made


def _describe(cls: type, name: str, schema: dict[str, Any]) -> None:
    doc = docstrings(cls).get(name)
    if doc and "description" not in schema:
        schema["description"] = doc


@functools.cache
def docstrings(cls: type) -> Mapping[str, str]:
    """The string right under each annotated attribute in ``cls``'s own body, as a field's docstring
    (from its source: not at import, where parsing it would cost a pod's start)."""
    import ast
    import inspect
    import textwrap

    try:
        body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body
    except (OSError, TypeError):  # defined where there is no source (an interactive session)
        return {}
    return {
        statement.target.id: inspect.cleandoc(after.value.value)
        for statement, after in zip(body, body[1:])
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)
        and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)
    }


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    values = dict(pairs)
    if len(values) != len(pairs):
        raise ValueError("a key twice: pydantic decides")
    return values


def _refuse(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")
