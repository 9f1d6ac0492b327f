"""The one place the sha256 patterns are written."""

from __future__ import annotations

import pathlib

import pytest

from ferry.core import digests


@pytest.mark.parametrize("value, sha256", [("a" * 64, True), ("sha256:" + "0" * 64, False), ("A" * 64, False),
                                           ("a" * 63, False), ("a" * 64 + "\n", False), (None, False),
                                           (["a" * 64], False)])
def test_a_sha256_is_64_lowercase_hex_digits_and_nothing_else(value, sha256):
    assert digests.is_sha256(value) is sha256


def test_the_sha256_pattern_is_written_once():
    """Every model and check takes it from ``ferry.core.digests``, so they cannot drift apart."""
    checkout = pathlib.Path(digests.__file__).parents[3]
    sources = [path for package in ("runtime", "operator", "ui") for path in (checkout / package).rglob("*.py")]
    assert len(sources) > 50
    assert [path for path in sources if "{64}" in path.read_text() and path.name != "digests.py"] == []
