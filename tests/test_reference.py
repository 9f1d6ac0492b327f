"""The SDK's reference page is made from the public names' docstrings, and kept so."""

from __future__ import annotations

import importlib.util
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location("make_reference", REPO / "docs" / "make_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_checked_in_reference_is_what_the_docstrings_say():
    assert (REPO / "docs" / "reference.md").read_text() == _generator().render(), (
        "docs/reference.md differs from the docstrings: .venv/bin/python docs/make_reference.py > docs/reference.md")


def test_every_public_name_is_in_the_reference_with_its_docstring():
    import ferry

    page = (REPO / "docs" / "reference.md").read_text()
    for name in ferry._EXPORTS:
        assert f"### `ferry.{name}" in page, name
    assert "`task` run once per item" in page, "ferry.map's docstring"
