"""A server's label reaches the terminal in `lriad inspect`'s table: escape sequences (clear the screen, set the
clipboard), carriage returns, tabs and bidi overrides in it are printed as visible escapes, so the line shows
what the server said and the columns stay where they are (a scripted server on loopback, the real command)."""

from __future__ import annotations

import json

from PIL import Image

from lriad_desktop.cli.terminal_text import terminal_safe
from scripted_server import ScriptedServer

HOSTILE_LABEL = "scr\x1b[2J\x1b]52;c;ZXZpbA==\x07atch\r\tok\u202egnp.exe\u2066x\x9b"


def test_a_servers_label_is_escaped_in_the_inspect_table(tmp_path, capsys):
    from lriad_desktop.cli.commands import main

    Image.new("RGB", (64, 48), (90, 90, 90)).save(tmp_path / "part.png")
    answer = ('<think>Step 1: a mark.</think><answer>{"anomaly": true, "defects": [{"label": '
              + json.dumps(HOSTILE_LABEL) + ', "bbox_2d": [1, 2, 30, 20]}]}</answer>')
    with ScriptedServer("ok", model="evil\x1b[31m-model", answer=answer) as server:
        rc = main(["inspect", str(tmp_path / "part.png"), "--server", server.url])
    out = capsys.readouterr().out
    assert rc == 0 and out.count("\n") == 1
    line = out.rstrip("\n")
    for raw in ("\x1b", "\x07", "\r", "\u202e", "\u2066", "\x9b"):
        assert raw not in line
    # (the parser folds whitespace, the carriage return and the tab too, into one space)
    assert "scr\\x1b[2J\\x1b]52;c;ZXZpbA==\\x07atch ok\\u202egnp.exe\\u2066x\\x9b" in line
    assert line.count("\t") == 4  # path, verdict, defects, score, time: the columns stay put


def test_the_rule_itself():
    assert terminal_safe("crack") == "crack" and terminal_safe("rayure é ✓") == "rayure é ✓"
    assert terminal_safe("a\nb\x00\u200f") == "a\\x0ab\\x00\\u200f"
