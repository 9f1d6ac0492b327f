"""Other parties' text made safe to print on a terminal.

Names, messages and paths the CLI prints come from tasks, manifests, stores and other tenants. A
terminal obeys the control characters in them: ``\\x1b]0;title\\x07\\x1b[2J`` retitles the window and
clears the screen, ``\\x1b[1A`` rewrites an earlier line, U+202E shows ``evil\\u202etxt.exe`` as
``evilexe.txt``. So every such text goes through ``printable``, which shows those characters as
escapes and everything else (accents, ✔) as it is.
"""

from __future__ import annotations

import re

_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
"""The marks and overrides that reorder what follows them (the Unicode bidi controls)."""
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029{_BIDI}]")
"""C0, DEL, C1, the bidi controls, and the line and paragraph separators."""
_UNSAFE_BUT_LINES = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029{_BIDI}]")


def _escape(found: re.Match) -> str:
    code = ord(found[0])
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, lines: bool = False) -> str:
    """``text`` with its control characters escaped (``\\x1b``, ``\\u202e``); ``lines``: a message
    whose newlines and tabs are its layout (a traceback), kept."""
    return (_UNSAFE_BUT_LINES if lines else _UNSAFE).sub(_escape, str(text))
