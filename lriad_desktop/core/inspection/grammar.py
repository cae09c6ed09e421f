"""The answer grammar, declared once: what a constrained model may write (DESIGN.md, "Output grammar").

    <think>PROSE</think><answer>{"anomaly": true, "defects": [{"label": "scratch", "bbox_2d": [x1, y1, x2, y2]}]}</answer>

- The think block is prose: at most `THINK_CHARS` characters and `THINK_TOKENS` tokens, none of `<>{}[]"`, so
  it can't open a tag or slide into box numbers. For a thinking chat template (Qwen3.5: the prompt already
  opened `<think>`), the template's own think block stays free text (no tag inside) up to `</think>`, and the
  constraint proper starts there.
- The answer is exactly the JSON `prompting.format_answer` writes (`json.dumps`' spacing): `anomaly` true or
  false, a normal part has no defects, an anomalous one up to `max_defects` (at most the parser's cap).
- `label`: one of the object's label vocabulary, or a new lower-case name, so a label the inspector taught
  stays sayable.
- `bbox_2d`: four integers inside the family's frame: 0–1000 for a normalised frame, the model input's width
  and height in pixels for Qwen2.5-VL.

This module is plain text and JSON (no xgrammar): the local engine compiles `structural_tag()`
(`core.backends.grammar_generation`), a model server gets `answer_ebnf()` or `answer_json_schema()` (`core.backends.server`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from lriad_desktop.core.inspection.coordinates import CoordinateFrame, ModelGeometry, model_input_size
from lriad_desktop.core.defect_kinds import DEFECT_LABELS
from lriad_desktop.core.inspection.parsing import MAX_DEFECTS

THINK_CHARS = 600  # the bundled model writes about 150; a real Qwen's step-by-step fits
THINK_TOKENS = 320  # and never more tokens than this, so the answer always fits the budget
FREE_THINK_TOKENS = 1024  # a thinking template's own (free) think block
GRAMMAR_MAX_DEFECTS = min(8, MAX_DEFECTS)  # boxes one answer may give (the parser keeps up to MAX_DEFECTS)
NEW_LABEL_CHARS = 32  # a new lower-case label: a letter, then up to 31 of [a-z0-9_ -]
NORM_MAX = 1000
_NO_DEFECTS = 'false, "defects": []'
_DEFECTS_OPEN = 'true, "defects": ['
PROSE_EXCLUDES = ("<", ">", "{", "}", "[", "]", '"')  # the think block's prose can't write these


@dataclass(frozen=True)
class AnswerGrammar:
    """The grammar of one answer: the labels it offers, the frame's bounds, and how the think block works.

    Frozen and hashable: a compiled grammar is cached under it (`core.backends.grammar_generation`)."""

    labels: tuple[str, ...] = DEFECT_LABELS
    x_max: int = NORM_MAX  # the largest x coordinate (inclusive)
    y_max: int = NORM_MAX
    max_defects: int = GRAMMAR_MAX_DEFECTS
    thinking_template: bool = False  # the prompt opened <think>: the think block is the template's, free
    think_tokens: int = THINK_TOKENS  # the think block's token cap (the engine: at most its max new tokens)

    def answer_ebnf(self) -> str:
        """The `<answer>…</answer>` part as EBNF (xgrammar's dialect, GBNF-like); `root` is the whole answer."""
        head = _lit('<answer>{"anomaly": ')
        defect = (_lit('{"label": "') + " label " + _lit('", "bbox_2d": [') + " x " + _lit(", ") + " y "
                  + _lit(", ") + " x " + _lit(", ") + " y " + _lit("]}"))
        more = f"({_lit(', ')} defect){{0,{self.max_defects - 1}}}" if self.max_defects > 1 else ""
        known = " | ".join(_lit(_json_inner(label)) for label in sorted(set(self.labels)) if label)
        new = f"[a-z] [a-z0-9_ \\-]{{0,{NEW_LABEL_CHARS - 1}}}"
        rules = [
            f"root ::= {head} verdict {_lit('}</answer>')}",
            f"verdict ::= {_lit(_NO_DEFECTS)} | {_lit(_DEFECTS_OPEN)} defects? {_lit(']')}",
            f"defects ::= defect {more}".rstrip(),
            f"defect ::= {defect}",
            f"label ::= {known + ' | ' if known else ''}new_label",
            f"new_label ::= {new}",
            f"x ::= {integer_range_ebnf(self.x_max)}",
            f"y ::= {integer_range_ebnf(self.y_max)}",
        ]
        return "\n".join(rules) + "\n"

    def structural_tag(self) -> dict:
        """The whole completion as an xgrammar structural tag: the think block, then `answer_ebnf()`."""
        if self.thinking_template:  # the template opened <think>: free text up to its close, then the answer
            think = {"type": "tag", "begin": "", "end": "</think>",
                     "content": {"type": "any_text", "excludes": ["<"], "max_tokens": self.think_tokens}}
        else:
            think = {"type": "tag", "begin": "<think>", "end": "</think>",
                     "content": {"type": "any_text", "excludes": list(PROSE_EXCLUDES), "max_chars": THINK_CHARS,
                                 "max_tokens": self.think_tokens}}
        answer = {"type": "grammar", "grammar": self.answer_ebnf()}
        return {"type": "structural_tag", "format": {"type": "sequence", "elements": [think, answer]}}

    def longest_answer_chars(self) -> int:
        """The most characters the answer part can take (each generated token writes at least one)."""
        label = max([len(_json_inner(lab)) for lab in self.labels] + [NEW_LABEL_CHARS])
        one = len('{"label": "", "bbox_2d": [, , , ]}') + label + 2 * len(str(self.x_max)) + 2 * len(str(self.y_max))
        return len('<answer>{"anomaly": true, "defects": []}</answer>') + self.max_defects * (one + 2)

    def token_budget(self) -> int:
        """New tokens that always suffice for a whole constrained completion (the engine gives at least these)."""
        think = self.think_tokens + (0 if self.thinking_template else len("<think>"))
        return think + len("</think>") + self.longest_answer_chars() + 1  # + the end token

    def answer_json_schema(self) -> dict:
        """The answer object as a JSON schema, for servers that take only a schema (Ollama, LM Studio)."""
        coordinate = {"type": "array", "minItems": 4, "maxItems": 4,
                      "prefixItems": [{"type": "integer", "minimum": 0, "maximum": m}
                                      for m in (self.x_max, self.y_max, self.x_max, self.y_max)],
                      "items": {"type": "integer", "minimum": 0, "maximum": max(self.x_max, self.y_max)}}
        defect = {"type": "object", "additionalProperties": False, "required": ["label", "bbox_2d"],
                  "properties": {"label": {"type": "string", "maxLength": max(NEW_LABEL_CHARS, 1)},
                                 "bbox_2d": coordinate}}
        return {"type": "object", "additionalProperties": False, "required": ["anomaly", "defects"],
                "properties": {"anomaly": {"type": "boolean"},
                               "defects": {"type": "array", "maxItems": self.max_defects, "items": defect}}}

    def full_ebnf(self) -> str:
        """The whole completion as one EBNF (think block by charset, then the answer): for servers that take an
        EBNF grammar (vLLM, SGLang). A server's reasoning parser may keep a thinking model's think block free."""
        prose = "[^<>{}\\[\\]\"]"
        body = self.answer_ebnf().replace("root ::=", "answer ::=", 1)
        return f"root ::= {_lit('<think>')} {prose}{{1,{THINK_CHARS}}} {_lit('</think>')} answer\n{body}"


def grammar_for(geometry: ModelGeometry, answer_size: tuple[int, int], labels: tuple[str, ...] = DEFECT_LABELS,
                thinking_template: bool = False, max_new_tokens: int | None = None) -> AnswerGrammar:
    """The grammar for one image: the frame's bounds for a model that answers in pixels of its input
    (`answer_size`: the image the boxes are on, as shown to the model), 0–1000 otherwise. `max_new_tokens`
    caps the think block (the answer after it always gets the tokens it needs: `token_budget`)."""
    cap = FREE_THINK_TOKENS if thinking_template else THINK_TOKENS
    think = max(1, min(cap, max_new_tokens)) if max_new_tokens is not None else cap
    if geometry.frame is CoordinateFrame.MODEL_PIXELS:
        width, height = model_input_size(answer_size, geometry)
        return AnswerGrammar(tuple(labels), width, height, thinking_template=thinking_template, think_tokens=think)
    return AnswerGrammar(tuple(labels), thinking_template=thinking_template, think_tokens=think)


def integer_range_ebnf(top: int) -> str:
    """An EBNF alternation matching the integers 0..`top` as written (no sign, no leading zeros)."""
    if top < 0:
        raise ValueError("a coordinate range starts at 0")
    digits = str(top)
    k = len(digits)
    alternatives = ['"0"']
    for length in range(1, k):  # every number with fewer digits than top
        alternatives.append("[1-9]" + ("[0-9]" * (length - 1)))
    for i, d in enumerate(digits):  # k digits: top's first i digits, then a smaller digit, then anything
        low = 1 if i == 0 else 0
        high = int(d) - 1
        if high >= low:
            alternatives.append((_lit(digits[:i]) + " " if i else "") + f"[{low}-{high}]" + "[0-9]" * (k - i - 1))
    if top > 0:
        alternatives.append(_lit(digits))
    return "(" + " | ".join(dict.fromkeys(alternatives)) + ")"


def _json_inner(label: str) -> str:
    """A label as it stands between the quotes of `json.dumps`."""
    return json.dumps(label)[1:-1]


def _lit(text: str) -> str:
    """An EBNF string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
