"""What the CLI prints of other parties' text (names, messages, paths from tasks and manifests)."""

import pytest

from ferry.cli import terminal

HOSTILE = "\x1b]0;title\x07\x1b[2J"


@pytest.mark.parametrize("text, shown", [
    (HOSTILE, r"\x1b]0;title\x07\x1b[2J"),
    ("a\x7fb", r"a\x7fb"),
    ("c1\x9bJ", r"c1\x9bJ"),
    ("evil\u202etxt.exe", r"evil\u202etxt.exe"),
    ("isolate\u2066x\u2069", r"isolate\u2066x\u2069"),
    ("two\nlines\r", r"two\x0alines\x0d"),
    ("café ✔ données", "café ✔ données"),
])
def test_control_characters_are_shown_escaped_and_the_rest_as_is(text, shown):
    assert terminal.printable(text) == shown


def test_a_message_keeps_its_lines_and_tabs_but_no_other_control():
    assert terminal.printable("Traceback:\n\tline\x1b[2J", lines=True) == "Traceback:\n\tline\\x1b[2J"
