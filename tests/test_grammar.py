"""The answer grammar (`core.inspection.grammar`) compiled by xgrammar, and constrained inspection with a random-init model
whose free output is garbage: every answer parses, with boxes inside the image."""

from __future__ import annotations

import json

import pytest
import xgrammar as xgr
from PIL import Image

from lriad_desktop.core.inspection.coordinates import ModelGeometry, CoordinateFrame, model_input_size
from lriad_desktop.core.backends.engine import Inspector
from lriad_desktop.core.inspection.finding import Verdict
from lriad_desktop.core.inspection.grammar import (GRAMMAR_MAX_DEFECTS, THINK_CHARS, AnswerGrammar, grammar_for,
                                        integer_range_ebnf)
from lriad_desktop.core.inspection.parsing import MAX_DEFECTS, parse_completion
from lriad_desktop.core.inspection.prompting import format_completion


@pytest.fixture(scope="module")
def byte_compiler():
    """A compiler over a vocabulary of single printable characters (+ an end token): strings, not a model."""
    vocab = [chr(c) for c in range(32, 127)] + ["\n", "</s>"]
    info = xgr.TokenizerInfo(vocab, stop_token_ids=[len(vocab) - 1])
    return xgr.GrammarCompiler(info)


def _accepts(compiler, grammar: AnswerGrammar, text: str) -> bool:
    matcher = xgr.GrammarMatcher(compiler.compile_structural_tag(json.dumps(grammar.structural_tag())))
    return matcher.accept_string(text) and matcher.is_completed()


def _number_accepts(compiler, top: int, text: str) -> bool:
    matcher = xgr.GrammarMatcher(compiler.compile_grammar(f"root ::= {integer_range_ebnf(top)}"))
    return matcher.accept_string(text) and matcher.is_completed()


@pytest.mark.parametrize("top", [0, 7, 10, 56, 100, 812, 1000])
def test_integer_range_takes_exactly_0_to_top(byte_compiler, top):
    for n in range(0, top + 25):
        assert _number_accepts(byte_compiler, top, str(n)) is (n <= top), n
    assert not _number_accepts(byte_compiler, top, "01") and not _number_accepts(byte_compiler, top, "-1")


def test_the_training_format_is_what_the_grammar_takes(byte_compiler):
    grammar = AnswerGrammar(x_max=640, y_max=480)
    good = format_completion(["The part looks even.", "Nothing differs."], False)
    bad = format_completion(["A dark line at the top."], True, [("scratch", [10, 20, 640, 480]),
                                                                ("burr on edge", [0, 0, 5, 5])])
    assert _accepts(byte_compiler, grammar, good) and _accepts(byte_compiler, grammar, bad)
    assert not _accepts(byte_compiler, grammar, bad.replace("640, 480", "641, 480"))  # outside the frame
    assert not _accepts(byte_compiler, grammar, bad.replace("scratch", "Scratch"))  # a label is lower case
    assert not _accepts(byte_compiler, grammar, bad.replace("A dark line", 'A "dark" line'))  # prose only
    assert not _accepts(byte_compiler, grammar, good.replace("even.", "even. [0, 0, 1, 1]"))  # no boxes in prose
    too_long = "<think>" + "a" * (THINK_CHARS + 1) + "</think>" + good.split("</think>")[1]
    assert not _accepts(byte_compiler, grammar, too_long)


def test_box_cap_and_taught_labels(byte_compiler):
    assert GRAMMAR_MAX_DEFECTS <= MAX_DEFECTS
    grammar = AnswerGrammar(labels=("Weld Spatter",), max_defects=2)
    two = format_completion(["x"], True, [("Weld Spatter", [1, 2, 3, 4]), ("hole", [1, 2, 3, 4])])
    three = format_completion(["x"], True, [("hole", [1, 2, 3, 4])] * 3)
    assert _accepts(byte_compiler, grammar, two)  # a taught label is sayable as written
    assert not _accepts(byte_compiler, grammar, three)


def test_a_thinking_template_keeps_its_think_block_free(byte_compiler):
    grammar = AnswerGrammar(thinking_template=True)
    answer = '<answer>{"anomaly": false, "defects": []}</answer>'
    assert _accepts(byte_compiler, grammar, 'Free "text" with {braces} [1, 2]\n</think>' + answer)
    assert not _accepts(byte_compiler, grammar, "free</think>" + answer.replace("false", "maybe"))


def test_every_answer_fits_the_token_budget():
    """Each token writes at least one character, so the budget the engine gives always closes the answer."""
    for grammar in (AnswerGrammar(), AnswerGrammar(x_max=3000, y_max=3000), AnswerGrammar(thinking_template=True)):
        longest_answer = format_completion([], True, [("x" * 32, [grammar.x_max] * 4)] * grammar.max_defects)
        answer = longest_answer[longest_answer.index("<answer>"):]
        assert len(answer) <= grammar.longest_answer_chars() < grammar.token_budget()


def test_the_frame_bounds_follow_the_family():
    pixels = ModelGeometry(frame=CoordinateFrame.MODEL_PIXELS)
    assert (grammar_for(pixels, (1366, 769)).x_max, grammar_for(pixels, (1366, 769)).y_max) == model_input_size(
        (1366, 769), pixels)
    norm = grammar_for(ModelGeometry(frame=CoordinateFrame.NORM1000), (1366, 769))
    assert (norm.x_max, norm.y_max) == (1000, 1000)


def test_json_schema_and_ebnf_for_servers_are_well_formed(byte_compiler):
    grammar = AnswerGrammar(x_max=500, y_max=300)
    schema = grammar.answer_json_schema()
    compiled = byte_compiler.compile_json_schema(json.dumps(schema), any_whitespace=False)
    matcher = xgr.GrammarMatcher(compiled)
    assert matcher.accept_string('{"anomaly": true, "defects": [{"label": "hole", "bbox_2d": [1, 2, 500, 300]}]}')
    full = byte_compiler.compile_grammar(grammar.full_ebnf())
    matcher = xgr.GrammarMatcher(full)
    text = format_completion(["ok"], True, [("hole", [1, 2, 500, 300])])
    assert matcher.accept_string(text) and matcher.is_completed()


def test_garbage_model_gives_readable_answers_with_boxes_inside(tiny_model_dir):
    """The random-init tiny model writes nonsense freely; held to the grammar every answer parses, scored,
    with each box inside its own image (two sizes in one batch: the pixel frame differs per row)."""
    images = [Image.new("RGB", (301, 217), (90, 90, 90)), Image.new("RGB", (97, 400), (200, 10, 10)),
              Image.new("RGB", (640, 480), (10, 200, 10))]
    free = Inspector(tiny_model_dir, device="cpu", max_new_tokens=64, grammar=False).inspect_batch(images)
    assert any(f.verdict is Verdict.UNPARSED for f in free)  # what the grammar is for (this test can fail)
    held = Inspector(tiny_model_dir, device="cpu", max_new_tokens=64).inspect_batch(images)
    for image, finding in zip(images, held):
        assert finding.verdict is not Verdict.UNPARSED, finding.raw_text
        assert parse_completion(finding.raw_text).valid_json
        assert finding.anomaly_score is not None and 0.0 <= finding.anomaly_score <= 1.0
        for defect in finding.defects:
            box = defect.box  # None only for a box without area ([931, 111, 111, 111])
            assert box is None or 0 <= box.x1 <= box.x2 <= image.width and 0 <= box.y1 <= box.y2 <= image.height
