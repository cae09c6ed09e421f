"""Text from outside (a server's label, a model's answer, a file name) made safe to print in a terminal.

A label can carry escape sequences (`\\x1b[2J` clears the screen, OSC 8 writes links, OSC 52 sets the
clipboard), carriage returns that overwrite a line, tabs that shift the table's columns, and Unicode bidi
controls that show a line's characters in another order than they are (Trojan Source). Each of those is
written as a visible escape instead (`\\x1b`, `\\u202e`), so a table line shows what is there and nothing
else.
"""

from __future__ import annotations

import re

# C0 controls (tab and newline included: they split cells and lines), DEL, C1 controls, and the bidi
# marks, embeddings, overrides and isolates
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: object) -> str:
    """`text` with every control character and bidi control written as a visible escape."""
    return _UNSAFE.sub(_escape, str(text))
