"""The Workflow CustomResourceDefinition, rendered from the pydantic models in ``ferry.api.resource``.

The models are the single source of truth; this module only translates them. Two steps:

- ``structural()`` turns pydantic's JSON schema (by alias, so camelCase) into a Kubernetes
  *structural* OpenAPI v3 schema: every ``$ref`` inlined, ``Optional[X]`` as plain ``X`` (omitted
  fields are fine, and the API server drops explicit nulls of non-nullable fields), ``Any`` as
  ``x-kubernetes-preserve-unknown-fields``, docstrings as descriptions, limits kept. Anything it
  cannot translate faithfully raises instead of being dropped.
- ``build_crd()`` adds what only Kubernetes knows: list types that make the API server refuse
  duplicate names, CEL rules that catch mistakes at admission, printer columns, names.

``python -m ferry_operator.crd`` prints the YAML checked in as ``crds/ferry.dev_workflows.yaml``;
``tests/operator/test_crd.py`` fails when the two drift apart.

About the CEL rules: the API server estimates each rule's worst-case cost from the schema's
``maxItems``/``maxLength`` and rejects the CRD when a rule exceeds 10^7 or all rules together
exceed 10^8. A rule that checks names against a list (``d in tasks.map(t, t.name)``) costs
tasks x references x tasks, far too much for 1,000 tasks; the cross-reference rules below first
build a map of names once (``transformMapEntry``) and bind it through a one-element list
(``[map].all(names, ...)``, since CRDs have no ``cel.bind``), so each lookup is O(1) and the whole
rule stays linear. The list limits in ``ferry.api.resource`` (256 inputs and dependencies and 64
outputs per task) are what keep the most expensive rule, an input's ``fromTask.output``, under
the per-rule limit; ``tests/operator/test_crd.py`` proves it against the API server.

``transformMapEntry`` arrived in Kubernetes 1.32, and the API server lets new rules use a CEL
function only from the release after the one that introduced it: this CRD needs Kubernetes 1.33.
"""

from __future__ import annotations

import copy
import re
import sys
from collections.abc import Mapping
from typing import Any

import pydantic
import yaml
from pydantic.alias_generators import to_camel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, models_json_schema
from pydantic_core import core_schema

from ferry.api import resource
from ferry.core import records

Schema = dict[str, Any]

CRD_NAME = f"{resource.PLURAL}.{resource.GROUP}"
PATH = f"crds/{resource.GROUP}_{resource.PLURAL}.yaml"
COMMAND = "python -m ferry_operator.crd"
HEADER = (f"# Generated from the models in runtime/ferry/api/resource.py by `{COMMAND}`; do not edit.\n"
          f"# Regenerate with: {COMMAND} > {PATH}\n")

# JSON schema keywords that mean the same in a structural schema and are copied as they are.
_KEPT = frozenset({
    "type", "description", "default", "enum", "format", "pattern", "multipleOf",
    "minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties",
})
# Keywords with no meaning for Kubernetes, dropped.
_DROPPED = frozenset({"title", "examples", "$defs", "$schema", "deprecated", "readOnly", "writeOnly"})
# Keywords handled by the conversion itself.
_HANDLED = frozenset({"$ref", "anyOf", "allOf", "properties", "required", "items", "additionalProperties",
                      "const", "exclusiveMinimum", "exclusiveMaximum", "uniqueItems"})
_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}


class SchemaError(ValueError):
    """A model uses a JSON schema construct that a structural schema cannot express."""


# --- pydantic JSON schema -> structural schema -------------------------------------------------

def structural(schema: Mapping[str, Any], overlays: Mapping[str, Mapping[str, Any]] | None = None) -> Schema:
    """Translate a pydantic JSON schema into a Kubernetes structural schema.

    ``overlays`` maps a ``$defs`` name (the model's class name) to extra schema merged into it
    after translation: ``properties`` recurse (and must exist), lists are appended, the rest is
    set. Every overlay must be used, so renaming a model cannot silently drop its rules.
    """
    overlays = dict(overlays or {})
    converter = _Converter(schema.get("$defs", {}), overlays)
    result = converter.convert(schema, "")
    unused = sorted(set(overlays) - converter.used)
    if unused:
        raise SchemaError(f"overlays for schemas that the models do not use: {', '.join(unused)}")
    return result


class _Converter:
    def __init__(self, defs: Mapping[str, Any], overlays: Mapping[str, Mapping[str, Any]]):
        self.defs = defs
        self.overlays = overlays
        self.used: set[str] = set()
        self.resolving: list[str] = []

    def convert(self, node: Mapping[str, Any], where: str, siblings: bool = False) -> Schema:
        """``siblings``: the keys next to a ``$ref`` or ``anyOf``, which describe no type of their own."""
        node = dict(node)
        if "$ref" in node:
            return {**self.resolve(node.pop("$ref"), where), **self.convert(node, where, siblings=True)}
        if "allOf" in node:  # older pydantic wraps a $ref that has siblings in a one-item allOf
            parts = node.pop("allOf")
            if len(parts) != 1:
                raise SchemaError(f"{where or '<root>'}: allOf with {len(parts)} schemas has no structural form")
            return {**self.convert(parts[0], where), **self.convert(node, where, siblings=True)}
        if "anyOf" in node:
            options = node.pop("anyOf")
            present = [option for option in options if option != {"type": "null"}]
            if len(present) != 1:
                raise SchemaError(f"{where or '<root>'}: a union of {len(present)} types has no structural form; "
                                  "use one type (Optional[X] is fine)")
            return {**self.convert(present[0], where), **self.convert(node, where, siblings=True)}

        unknown = set(node) - _KEPT - _DROPPED - _HANDLED
        unknown = {key for key in unknown if not key.startswith("x-kubernetes-")}
        if unknown:
            raise SchemaError(f"{where or '<root>'}: no structural form for {', '.join(sorted(unknown))}")

        out: Schema = {key: copy.deepcopy(value) for key, value in node.items()
                       if key in _KEPT or key.startswith("x-kubernetes-")}
        if "const" in node:
            out["enum"] = [node["const"]]
        if "enum" in out and "type" not in out:
            types = {_JSON_TYPES.get(type(value)) for value in out["enum"]}
            if len(types) != 1 or None in types:
                raise SchemaError(f"{where or '<root>'}: an enum mixing JSON types has no structural form")
            out["type"] = types.pop()
        for bound, inclusive in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            if bound in node:  # JSON schema 2020-12 gives the bound; OpenAPI v3.0 flags the inclusive one
                out[inclusive] = node[bound]
                out[bound] = True
        if "description" in out:
            out["description"] = describe(out["description"])
        if "default" in out and out["default"] in (None, [], {}):
            # An empty or null default means the same as an absent field; defaulting it would only
            # write empty lists into every task of every stored object.
            del out["default"]

        if "properties" in node:
            out["properties"] = {name: self.convert(sub, f"{where}.{name}") for name, sub in node["properties"].items()}
            if node.get("required"):
                out["required"] = list(node["required"])
        extra = node.get("additionalProperties")
        if isinstance(extra, Mapping) and extra:
            if "properties" in node:
                raise SchemaError(f"{where or '<root>'}: properties and additionalProperties cannot be combined")
            out["additionalProperties"] = self.convert(extra, f"{where}{{}}")
        elif extra is True or (isinstance(extra, Mapping) and not extra):  # dict[str, Any]
            out["x-kubernetes-preserve-unknown-fields"] = True
        # additionalProperties: false (extra="forbid") is the structural default: unknown fields
        # are pruned, or refused by strict field validation (kubectl's default).
        if "items" in node:
            out["items"] = self.convert(node["items"], f"{where}[]")
        elif node.get("type") == "array":
            raise SchemaError(f"{where or '<root>'}: an array needs one item schema (tuples have no structural form)")
        if node.get("uniqueItems"):
            if out["items"].get("type") not in ("string", "integer", "number", "boolean"):
                raise SchemaError(f"{where or '<root>'}: only sets of scalars can be unique")
            out["x-kubernetes-list-type"] = "set"

        if not siblings and "type" not in out and "enum" not in out \
                and not out.get("x-kubernetes-preserve-unknown-fields") and not out.get("x-kubernetes-int-or-string"):
            # Any: a literal of any JSON type, kept as it is.
            out["x-kubernetes-preserve-unknown-fields"] = True
        return out

    def resolve(self, ref: str, where: str) -> Schema:
        prefix = "#/$defs/"
        if not ref.startswith(prefix):
            raise SchemaError(f"{where or '<root>'}: cannot inline the reference {ref}")
        name = ref[len(prefix):]
        if name in self.resolving:
            raise SchemaError(f"{where or '<root>'}: {name} refers to itself; structural schemas cannot recurse")
        self.resolving.append(name)
        try:
            result = self.convert(self.defs[name], where)
        finally:
            self.resolving.pop()
        if name in self.overlays:
            self.used.add(name)
            _overlay(result, self.overlays[name], f"{where or '<root>'} ({name})")
        return result


def _overlay(target: Schema, patch: Mapping[str, Any], where: str) -> None:
    for key, value in patch.items():
        if key == "properties":
            for name, sub in value.items():
                if name not in target.get("properties", {}):
                    raise SchemaError(f"{where}: overlay for a property the model does not have: {name}")
                _overlay(target["properties"][name], sub, f"{where}.{name}")
        elif key in ("items", "additionalProperties"):
            if not isinstance(target.get(key), dict):
                raise SchemaError(f"{where}: overlay for {key}, which the model's schema does not have")
            _overlay(target[key], value, f"{where}[]" if key == "items" else f"{where}{{}}")
        elif isinstance(value, list) and isinstance(target.get(key), list):
            target[key] = [*target[key], *copy.deepcopy(value)]
        else:
            target[key] = copy.deepcopy(value)


def describe(docstring: str) -> str:
    """A docstring as a CRD description: paragraphs on one line, ``code`` as `code`, and Python's
    snake_case field names as the camelCase the manifest uses."""
    text = re.sub(r"(?<!\n)\n(?!\n)", " ", docstring.strip())

    def code(match: re.Match) -> str:
        word = match.group(1)
        return f"`{to_camel(word) if re.fullmatch(r'[a-z][a-z0-9]*(_[a-z0-9]+)+', word) else word}`"

    return re.sub(r"``(.+?)``", code, text)


# --- what only Kubernetes knows --------------------------------------------------------------

def _rule(rule: str, message: str, *, message_expression: str | None = None, field_path: str | None = None) -> Schema:
    result = {"rule": " ".join(rule.split()), "message": message}
    if message_expression:
        result["messageExpression"] = " ".join(message_expression.split())
    if field_path:
        result["fieldPath"] = field_path
    return result


def _keyed_by_name() -> Schema:
    """A list of named objects: the API server refuses two items with one name, and server-side
    apply merges items by name."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}


_SET = {"x-kubernetes-list-type": "set"}

# CEL building blocks, spelled out into each rule: CRD rules have no functions or variables.
_TASK_NAMES = "self.tasks.transformMapEntry(i, t, {t.name: true})"
"""Task name -> true."""
_TASK_OUTPUTS = ("self.tasks.transformMapEntry(i, t, {t.name: has(t.outputs) ? "
                 "t.outputs.transformMapEntry(j, o, {o.name: true}) : {}})")
"""Task name -> (output name -> true)."""
_HAS_VALUE = "('value' in dyn(self))"
"""Whether an input has ``value``. CEL cannot see a field without a type (``value`` is any JSON), so
``has(self.value)`` does not compile; seen as a map, ``self`` still holds it. The cluster tests
check this against the API server."""
_INPUT_NAMES = "(has(self.inputs) ? self.inputs.transformMapEntry(i, x, {x.name: true}) : {})"
"""Workflow input name -> true."""


def _sources_given(*more: str) -> str:
    """CEL: how many of an input's sources (``value``, ``uri``, ``fromTask``, ``fromInput``, and
    ``more``) are set."""
    return " + ".join([f"({given} ? 1 : 0)" for given in (_HAS_VALUE, "has(self.uri)", "has(self.fromTask)",
                                                            "has(self.fromInput)")] + list(more))


def _on_create(rule: Schema) -> Schema:
    """``rule`` checked when the Workflow is created, and not at its updates: for rules on what
    ``_transition_rules`` keeps as created. The API server evaluates every rule of the object at
    every write, the operator's status writes too, and each field a rule reads costs it a copy of
    that object's schema: a status write of a 250-task workflow spent ~130 ms of CPU on these
    (``benchmarks/status_write_cost.py``), for answers that cannot change. (An item of a list
    keyed by name has an ``oldSelf`` when the old list held its name.)"""
    return {**rule, "rule": f"!oldSelf.hasValue() ? ({rule['rule']}) : true", "optionalOldSelf": True}


def _bind(name: str, value: str, expression: str) -> str:
    """``expression`` with ``name`` bound to ``value``, computed once (CRDs have no ``cel.bind``)."""
    return f"[{value}].all({name}, {expression})"


def _first(name: str, value: str, messages: str) -> str:
    """The first non-empty string of the list ``messages``, with ``name`` bound to ``value``."""
    return f"[{value}].map({name}, {messages}.filter(m, m != ''))[0][0]"


# What makes a task's references bad, with ``t`` the task, ``d`` a dependsOn entry and ``i`` an input.
_BAD_DEPENDENCY = "!(d in names) || d == t.name"
_BAD_FROM_TASK = "has(i.fromTask) && (!(i.fromTask.task in names) || i.fromTask.task == t.name)"
_BAD_FROM_OUTPUT = "has(i.fromTask) && i.fromTask.task in outs && !(i.fromTask.output in outs[i.fromTask.task])"
"""(A missing task is the previous rule's to report.)"""
_BAD_FROM_INPUT = "has(i.fromInput) && !(i.fromInput in names)"
_BAD_OUTPUT = "!(o.fromTask.task in outs) || !(o.fromTask.output in outs[o.fromTask.task])"


def _spec_rules() -> list[Schema]:
    """References between tasks, inputs and outputs: each rule asks that no reference is bad, and
    its message expression names the first task (or output) that has a bad one."""
    def task_rule(name: str, value: str, bad_task: str, message: str, message_for_task: str) -> Schema:
        return _rule(_bind(name, value, f"!self.tasks.exists(t, {bad_task})"), message,
                     message_expression=_first(name, value, f"self.tasks.map(t, {bad_task} ? 'task ' + t.name + "
                                                            f"': {message_for_task}' : '')"),
                     field_path=".tasks")

    return [
        task_rule("names", _TASK_NAMES, f"has(t.dependsOn) && t.dependsOn.exists(d, {_BAD_DEPENDENCY})",
                  "tasks[].dependsOn must list other tasks of this workflow, by name",
                  "dependsOn must list other tasks of this workflow, by name"),
        task_rule("names", _TASK_NAMES, f"has(t.inputs) && t.inputs.exists(i, {_BAD_FROM_TASK})",
                  "tasks[].inputs[].fromTask.task must name another task of this workflow",
                  "inputs[].fromTask.task must name another task of this workflow"),
        task_rule("outs", _TASK_OUTPUTS, f"has(t.inputs) && t.inputs.exists(i, {_BAD_FROM_OUTPUT})",
                  "tasks[].inputs[].fromTask.output must name one of that task's outputs (its outputs[].name)",
                  "inputs[].fromTask.output must name one of that task\\'s outputs (its outputs[].name)"),
        task_rule("names", _INPUT_NAMES, f"has(t.inputs) && t.inputs.exists(i, {_BAD_FROM_INPUT})",
                  "tasks[].inputs[].fromInput must name one of the workflow's inputs (spec.inputs[].name)",
                  "inputs[].fromInput must name one of the workflow\\'s inputs (spec.inputs[].name)"),
        _rule("!has(self.outputs) || " + _bind("outs", _TASK_OUTPUTS, f"!self.outputs.exists(o, {_BAD_OUTPUT})"),
              "outputs[].fromTask must name a task of this workflow and one of that task's outputs",
              message_expression=_first("outs", _TASK_OUTPUTS, (
                  f"self.outputs.map(o, {_BAD_OUTPUT} ? 'output ' + o.name + ' takes fromTask ' + o.fromTask.task + "
                  "'/' + o.fromTask.output + ', which is not an output of a task of this workflow' : '')")),
              field_path=".outputs"),
    ]


def _spelled(name: str) -> str:
    """CEL for ``resource.env_name``: the name as environment variables spell it."""
    return f"{name}.replace('-', '_').upperAscii()"


def _names_apart(field: str, message: str) -> Schema:
    """No two items of the list ``field`` (named objects) spelled alike by ``resource.env_name``.
    Comparing pairs would cost too much for the API server's budget (64 outputs of 1,000 tasks), and
    Kubernetes 1.34's CEL has no ``distinct`` or ``sort``: the spellings become a map's keys, and a
    key that comes twice stops the rule with an error that the API server reports after ``message``
    (``...: insert failed: key 'FLAG' already exists``)."""
    return _rule(f"!has(self.{field}) || "
                 f"self.{field}.transformMapEntry(i, x, {{{_spelled('x.name')}: true}}).size() == self.{field}.size()",
                 message)


_ALIKE = ("must differ in more than case or - against _, which environment variables and disks that ignore case "
          "cannot tell apart; rename one")


def overlays() -> dict[str, Schema]:
    """Kubernetes-only additions to the models' schemas, by model."""
    return {
        resource.WorkflowSpec.__name__: {
            "properties": {"tasks": _keyed_by_name(), "inputs": _keyed_by_name(), "outputs": _keyed_by_name()},
            "x-kubernetes-validations": [
                *map(_on_create, _spec_rules()), *_transition_rules(),
                *(_on_create(_names_apart(field, f"workflow {field} {_ALIKE}")) for field in ("inputs", "outputs")),
            ],
        },
        resource.Task.__name__: {
            "properties": {"inputs": _keyed_by_name(), "outputs": _keyed_by_name(), "env": _keyed_by_name(),
                           "dependsOn": _SET, "secrets": _SET},
            "x-kubernetes-validations": [*map(_on_create, [
                _rule("has(self.image) || has(self.function) || has(self.plugin)",
                      "set image (the container image to run), function (module:function of a Python task) "
                      "or plugin (a task plugin type and config)",
                      message_expression="'task ' + self.name + ': set image (the container image to run), "
                      "function (module:function of a Python task) or plugin (a task plugin type and config)'"),
                _rule("!(has(self.function) && has(self.plugin))",
                      "a task runs a function or a plugin, not both: remove one",
                      message_expression="'task ' + self.name + ': a task runs a function or a plugin, not both: "
                      "remove one'"),
                _rule("!(has(self.function) || has(self.plugin)) || !has(self.command)",
                      "a function or plugin task runs the Ferry runtime, not command: remove command",
                      message_expression="'task ' + self.name + ': a function or plugin task runs the Ferry "
                      "runtime, not command: remove command'"),
                # A task's inputs are checked apart by the operator, which fails the workflow naming
                # both: for 256 inputs of 1,000 tasks, even one upperAscii() per name is over budget.
                _names_apart("outputs", f"outputs of a task {_ALIKE}"),
            ])],
        },
        resource.TaskInput.__name__: {
            "x-kubernetes-validations": [_on_create(
                _rule(f"{_sources_given('(has(self.fromItem) && self.fromItem ? 1 : 0)')} == 1",
                      "set exactly one of value, uri, fromTask, fromInput or fromItem",
                      message_expression="'input ' + self.name + ': set exactly one of value, uri, fromTask, "
                      "fromInput or fromItem'"))],
        },
        resource.MapOver.__name__: {
            "x-kubernetes-validations": [_on_create(
                _rule(f"{_sources_given()} == 1",
                      "map.over: set exactly one of value (a list), uri (a directory), fromTask or fromInput"))],
        },
        resource.WorkflowInput.__name__: {
            "x-kubernetes-validations": [*map(_on_create, [
                _rule("!has(self.fromTask) && !has(self.fromInput)",
                      "a workflow input takes value or uri; fromTask and fromInput are for task inputs",
                      message_expression="'input ' + self.name + ': a workflow input takes value or uri; "
                      "fromTask and fromInput are for task inputs'"),
                _rule(f"{_HAS_VALUE} != has(self.uri)",
                      "set exactly one of value or uri",
                      message_expression="'input ' + self.name + ': set exactly one of value or uri'"),
            ])],
        },
        resource.Resources.__name__: {
            "properties": {
                field: {"additionalProperties": {"x-kubernetes-validations": [
                    _on_create(_rule("isQuantity(self)", f"{field} values are quantities like 500m, 2 or 1Gi")),
                ]}}
                for field in ("requests", "limits")
            },
        },
    }


IMMUTABLE_SPEC = (
    "spec is immutable once created, but for stop and rerun (a running workflow cannot change under its "
    "tasks): to run something else, create a Workflow with another name (ferry compile --name), or delete "
    "this one and apply it again")
MUTABLE_SPEC = ("stop", "rerun")
"""What ``ferry stop`` and ``ferry retry`` change on a Workflow; the rest of its spec never changes."""


def _transition_rules() -> list[Schema]:
    """The spec stays as created, but for ``MUTABLE_SPEC``; ``rerun`` only goes up."""
    fields = [to_camel(name) for name in resource.WorkflowSpec.model_fields if name not in MUTABLE_SPEC]
    same = " && ".join(f"(has(self.{f}) ? has(oldSelf.{f}) && self.{f} == oldSelf.{f} : !has(oldSelf.{f}))"
                       for f in fields)
    return [_rule(same, IMMUTABLE_SPEC),
            _rule("!has(oldSelf.rerun) || has(self.rerun) && self.rerun >= oldSelf.rerun",
                  "spec.rerun only goes up: raise it by one to run the unfinished tasks again (ferry retry)")]

WORKFLOW_DESCRIPTION = (
    "A Ferry workflow: tasks that run as pods, one per attempt, passing files, directories, assets "
    "and values to each other through the object store. The operator fills in status.")


def attribute_docstrings(model: type[pydantic.BaseModel]) -> dict[str, str]:
    """Each field's docstring, the nearest class that declares it first: a subclass may redocument."""
    docs: dict[str, str] = {}
    for cls in model.__mro__[:model.__mro__.index(pydantic.BaseModel)]:  # the models', not pydantic's own
        for name, doc in records.docstrings(cls).items():
            docs.setdefault(name, doc)
    return {name: doc for name, doc in docs.items() if name in model.model_fields}


class DescribedJsonSchema(GenerateJsonSchema):
    """pydantic's JSON schema, with field docstrings as descriptions and factories' defaults. Here, not
    in the models' config (``use_attribute_docstrings``): the runtime would parse ``ferry.api.resource``'s
    source at every import, 15-20 ms of each task pod's start."""

    def get_default_value(self, schema: core_schema.WithDefaultSchema) -> Any:
        """A ``default_factory``'s value too (a model's default is one, so it is not built at import)."""
        factory = schema.get("default_factory")
        if factory is not None and not schema.get("default_factory_takes_data"):
            return factory()
        return super().get_default_value(schema)

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        json_schema = super().model_schema(schema)
        model = schema["cls"]
        properties = json_schema.get("properties", {})
        for name, doc in attribute_docstrings(model).items():
            field = model.model_fields[name]
            prop = properties.get(field.alias or name)
            if prop is not None and field.description is None:
                prop["description"] = doc
        return json_schema


def json_schema(model: type[pydantic.BaseModel]) -> Schema:
    """One model's JSON schema by alias, described (``DescribedJsonSchema``)."""
    return model.model_json_schema(by_alias=True, schema_generator=DescribedJsonSchema)


def schema() -> Schema:
    """The Workflow's structural schema: spec and status from their models, plus the Kubernetes extras."""
    _, top = models_json_schema([(resource.WorkflowSpec, "validation"), (resource.WorkflowStatus, "validation")],
                                by_alias=True, schema_generator=DescribedJsonSchema)
    return structural({
        "type": "object",
        "description": WORKFLOW_DESCRIPTION,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "The API version: " + resource.API_VERSION + "."},
            "kind": {"type": "string", "description": "The kind: " + resource.KIND + "."},
            "metadata": {"type": "object"},
            "spec": {"$ref": "#/$defs/WorkflowSpec", "description": "What to run; fixed once created."},
            "status": {"$ref": "#/$defs/WorkflowStatus",
                       "description": "How it went, written by the operator through the status subresource."},
        },
        "$defs": top["$defs"],
    }, overlays())


def build_crd() -> Schema:
    """The CustomResourceDefinition of ``Workflow``, as a plain dict."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME},
        "spec": {
            "group": resource.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": resource.KIND,
                "listKind": f"{resource.KIND}List",
                "plural": resource.PLURAL,
                "singular": resource.KIND.lower(),
                "shortNames": [resource.SHORT_NAME],
                "categories": ["ferry"],
            },
            "versions": [{
                "name": resource.VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                    {"name": "Progress", "type": "string", "jsonPath": ".status.progress",
                     "description": "Succeeded tasks out of all."},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    {"name": "Message", "type": "string", "jsonPath": ".status.message"},
                ],
                "selectableFields": [{"jsonPath": ".status.phase"}],
                "schema": {"openAPIV3Schema": schema()},
            }],
        },
    }


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True  # a repeated schema is written out again, never as a YAML alias


def render() -> str:
    """The checked-in file's text: the header, then the CRD as YAML."""
    return HEADER + yaml.dump(build_crd(), Dumper=_Dumper, sort_keys=False, width=110, allow_unicode=True)


if __name__ == "__main__":
    sys.stdout.write(render())
