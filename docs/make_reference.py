"""Write the SDK's reference (``docs/reference.md``) from the docstrings of ``ferry``'s public names.

    .venv/bin/python docs/make_reference.py > docs/reference.md

``tests/test_reference.py`` fails when the checked-in page differs from what this prints, so the
reference changes with the docstrings it is made from.
"""

from __future__ import annotations

import inspect
import re
import sys

import ferry

GROUPS = {
    "Tasks and workflows": ["task", "workflow", "map", "current_context", "ExecutionContext", "DefinitionError"],
    "Values tasks pass": ["File", "Directory", "Asset", "asset", "AssetEntry", "Drive", "BlobRef", "Kind",
                          "from_blob", "to_blob"],
    "Stores": ["Store", "Settings", "current_store", "use_store", "Manifest", "Progress"],
    "Plugins": ["TaskPlugin", "ObjectStoreSensor"],
    "Errors": ["IntegrityError", "IncompleteOutputError", "PathEscapeError", "ReadOnlyStoreError"],
}


def _annotation(annotation) -> str:
    """As written in the source (annotations are strings there: ``from __future__ import annotations``)."""
    return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)


def _signature(thing) -> str:
    if hasattr(thing, "model_rebuild"):  # a pydantic model built on first use: its signature comes with it
        thing.model_rebuild()
    try:
        signature = inspect.signature(thing)
    except (TypeError, ValueError):
        return ""
    parts, marked, last_positional = [], False, None
    for parameter in signature.parameters.values():
        if parameter.kind == parameter.KEYWORD_ONLY and not marked:
            parts.append("*")
        marked = marked or parameter.kind in (parameter.KEYWORD_ONLY, parameter.VAR_POSITIONAL)
        text = {parameter.VAR_POSITIONAL: "*", parameter.VAR_KEYWORD: "**"}.get(parameter.kind, "") + parameter.name
        if parameter.annotation is not parameter.empty:
            text += f": {_annotation(parameter.annotation)}"
        if parameter.default is not parameter.empty:
            text += f" = {re.sub(r' at 0x[0-9a-f]+', '', repr(parameter.default))}"
        parts.append(text)
        if parameter.kind == parameter.POSITIONAL_ONLY:
            last_positional = len(parts)
    if last_positional is not None:
        parts.insert(last_positional, "/")
    returned = signature.return_annotation
    arrow = f" -> {_annotation(returned)}" if returned is not signature.empty and returned != "None" else ""
    return f"({', '.join(parts)}){arrow}"


def _doc(thing) -> str:
    doc = inspect.getdoc(thing) or ""
    if inspect.isclass(thing) and doc.startswith(f"{thing.__name__}("):  # a dataclass's generated one
        return ""
    return re.sub(r"``([^`]+)``", r"`\1`", doc)


def _members(cls) -> list[tuple[str, object]]:
    """The class's own public methods and properties, in the order they are written."""
    found = []
    for name, member in vars(cls).items():
        if name.startswith("_") or not (inspect.isfunction(member) or isinstance(member, (property, classmethod,
                                                                                        staticmethod))):
            continue
        found.append((name, member))
    return found


def render() -> str:
    listed = [name for names in GROUPS.values() for name in names]
    missing = sorted(set(ferry._EXPORTS) - set(listed))
    if missing:
        raise SystemExit(f"docs/make_reference.py: add {', '.join(missing)} to GROUPS")
    out = ["# The SDK's reference\n",
           "Every public name of `import ferry`, from its docstring (made by `docs/make_reference.py`;",
           "do not edit by hand). Guides: the README, `docs/fan-out.md`, `docs/data-plane.md`.\n"]
    for group, names in GROUPS.items():
        out.append(f"## {group}\n")
        for name in names:
            thing = getattr(ferry, name)
            kind = "class" if inspect.isclass(thing) else "function" if callable(thing) else "value"
            out.append(f"### `ferry.{name}{_signature(thing) if kind == 'function' else ''}`\n")
            if kind == "class" and _signature(thing):
                out.append(f"`ferry.{name}{_signature(thing)}`\n")
            if _doc(thing):
                out.append(_doc(thing) + "\n")
            if kind == "class" and not issubclass(thing, BaseException):
                for member_name, member in _members(thing):
                    target = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
                    call = "" if isinstance(member, property) else _signature(target).replace("(self, ", "(").replace(
                        "(self)", "()").replace("(cls, ", "(").replace("(cls)", "()")
                    doc = _doc(target).split("\n\n")[0]
                    out.append(f"- `{member_name}{call}`" + (f": {' '.join(doc.split())}" if doc else ""))
                out.append("")
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
