"""Parse model output in the grammar of `prompting` — tolerantly, never raising.

Handles text around the tags, a missing `<think>`, single quotes, trailing commas, Python
literals, truncated output, several boxes, swapped corners and float coordinates. Boxes stay
in the model's frame here; `coordinates` maps them to image pixels.

A model can write anything within its token budget, so the parser caps what it accepts
(the text's length, digits per number, bracket depth, boxes per answer): a number too long to
be a coordinate, Infinity or NaN is no box; a too deeply nested answer is read by the regular
expressions only; boxes past the cap are dropped.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass

log = logging.getLogger(__name__)

_THINK_RE = re.compile(r"<think>(.*?)(?:</think>|<answer>|$)", re.S | re.I)
_ANSWER_RE = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.S | re.I)
_STEP_RE = re.compile(r"(?:^|\s)(?:Step\s*\d+\s*[:.)-])", re.I)
_NUMBER = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
_BOX_RE = re.compile(
    r"(?:bbox_2d|bbox|box)['\"]?\s*[:=]\s*[\[(]\s*(" + _NUMBER + r")\s*,\s*(" + _NUMBER + r")\s*,\s*("
    + _NUMBER + r")\s*,\s*(" + _NUMBER + r")",
    re.I,
)
_LABEL_RE = re.compile(r"['\"]?label['\"]?\s*[:=]\s*['\"]([^'\"]{1,80})['\"]", re.I)
_ANOMALY_RE = re.compile(r"['\"]?anomaly['\"]?\s*[:=]\s*['\"]?(true|false|yes|no)", re.I)

BOX_KEYS = ("bbox_2d", "bbox", "box", "box_2d")
UNKNOWN_LABEL = "defect"

MAX_TEXT_CHARS = 100_000  # longer output is read from its first and last half of this
MAX_NUMBER_CHARS = 24  # a coordinate never needs more (digits, sign, point, exponent)
MAX_COORDINATE = 100_000.0  # beyond any model frame (pixels of the resized input, or 0-1000)
MAX_DEPTH = 32  # the grammar nests 4 deep
MAX_DEFECTS = 64
MAX_LABEL_CHARS = 80
MAX_STEPS = 64
INTERNAL_ERROR = "the parser failed on this output"  # never expected: tests look for it


@dataclass(frozen=True)
class ParsedDefect:
    """A defect as the model wrote it: label and box (model frame) or None."""

    label: str
    box: tuple[float, float, float, float] | None


@dataclass(frozen=True)
class ParsedOutput:
    """What could be read from one completion. `ok` is False when no verdict could be read."""

    ok: bool
    anomaly: bool | None
    defects: tuple[ParsedDefect, ...]
    steps: tuple[str, ...]
    think: str
    error: str = ""
    had_answer_tags: bool = False
    valid_json: bool = False


def split_steps(think: str, keep_preamble: bool = True) -> tuple[str, ...]:
    """The reasoning as numbered steps ("Step 1: ..."), or sentences/lines when not numbered.

    Text before "Step 1" is kept as a step of its own unless `keep_preamble` is False.
    """
    text = think.strip()
    if not text:
        return ()
    starts = [m.start() for m in _STEP_RE.finditer(text)]
    if starts:
        pieces = []
        bounds = starts + [len(text)]
        head = text[: starts[0]].strip()
        if head and keep_preamble:
            pieces.append(head)
        for a, b in zip(bounds, bounds[1:]):
            piece = re.sub(r"^\s*Step\s*\d+\s*[:.)-]\s*", "", text[a:b], flags=re.I).strip()
            if piece:
                pieces.append(piece)
        return tuple(pieces)
    lines = [ln.strip() for ln in re.split(r"\n+|(?<=[.!?])\s+(?=[A-Z])", text) if ln.strip()]
    return tuple(lines)


def _normalise_json(text: str) -> str:
    """Turn near-JSON (single quotes, Python literals, trailing commas) into JSON."""
    s = text.strip()
    s = re.sub(r"^```(?:json)?|```$", "", s).strip()
    if "'" in s and '"' not in s:
        s = s.replace("'", '"')
    elif "'" in s:
        s = re.sub(r"'([^'\"]*)'", r'"\1"', s)
    s = re.sub(r"\bTrue\b", "true", s)
    s = re.sub(r"\bFalse\b", "false", s)
    s = re.sub(r"\bNone\b", "null", s)
    s = re.sub(r",\s*([}\]])", r"\1", s)
    return s


def _close_truncated(s: str) -> str:
    """Close the brackets of a JSON text cut off mid-way, dropping the incomplete tail."""
    stack: list[str] = []
    in_str = False
    esc = False
    last_safe = 0
    for i, ch in enumerate(s):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]":
            if stack:
                stack.pop()
            last_safe = i + 1
        elif ch == ",":
            last_safe = i
    if not stack and not in_str:
        return s
    # Cut back to the last complete element, then close what is still open there.
    head = s[:last_safe] if last_safe else s
    stack = []
    in_str = False
    esc = False
    for ch in head:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and stack:
            stack.pop()
    head = re.sub(r",\s*$", "", head)
    return head + "".join(reversed(stack))


def _as_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value) if math.isfinite(value) else None
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("true", "yes", "anomalous", "defective", "defect", "abnormal", "1"):
            return True
        if v in ("false", "no", "normal", "good", "ok", "0"):
            return False
    return None


def _as_box(value: object) -> tuple[float, float, float, float] | None:
    if isinstance(value, dict):
        keys = ("x1", "y1", "x2", "y2")
        if all(k in value for k in keys):
            value = [value[k] for k in keys]
    if isinstance(value, (list, tuple)) and len(value) == 1 and isinstance(value[0], (list, tuple)):
        value = value[0]
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        return None
    try:
        a, b, c, d = (_coordinate(v) for v in value)
    except (TypeError, ValueError, OverflowError):
        return None
    return (min(a, c), min(b, d), max(a, c), max(b, d))


def _coordinate(value: object) -> float:
    """One box coordinate, or ValueError for what can't be one (a bool, a huge or non-finite number)."""
    if isinstance(value, bool) or isinstance(value, str) and len(value) > MAX_NUMBER_CHARS:
        raise ValueError("not a coordinate")
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number) or abs(number) > MAX_COORDINATE:
        raise ValueError("not a coordinate")
    return number


def _defects_from_json(obj: object) -> list[ParsedDefect]:
    items = obj if isinstance(obj, list) else []
    out: list[ParsedDefect] = []
    for item in items:
        if not isinstance(item, dict):
            box = _as_box(item)
            if box is not None:
                out.append(ParsedDefect(UNKNOWN_LABEL, box))
            continue
        label = _label(item.get("label") or item.get("type") or item.get("category"))
        box = None
        for key in BOX_KEYS:
            if key in item:
                box = _as_box(item[key])
                break
        out.append(ParsedDefect(label, box))
    return out[:MAX_DEFECTS]


def _label(value: object) -> str:
    text = value.strip() if isinstance(value, str) else ""
    return " ".join(text[:MAX_LABEL_CHARS].split()) or UNKNOWN_LABEL


def _big_number(text: str) -> float | int:
    """json's number hook: a literal too long to be a coordinate becomes NaN (never a box) instead of
    an OverflowError or Python's int-digits ValueError."""
    if len(text) > MAX_NUMBER_CHARS:
        return math.nan
    return float(text) if any(c in text for c in ".eE") else int(text)


def _depth_over(text: str, limit: int) -> bool:
    """True when brackets outside strings nest deeper than `limit` (json would recurse that deep)."""
    depth = 0
    in_str = esc = False
    for ch in text:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "{[":
            depth += 1
            if depth > limit:
                return True
        elif ch in "}]":
            depth -= 1
    return False


def _loads(text: str) -> object:
    """`json.loads` within the caps; None when the text is no JSON (or too deep to read safely)."""
    if _depth_over(text, MAX_DEPTH):
        return None
    try:
        return json.loads(text, parse_int=_big_number, parse_float=_big_number, parse_constant=lambda _: math.nan)
    except (ValueError, RecursionError, OverflowError):
        return None


def _parse_answer_json(text: str) -> tuple[dict | None, bool]:
    """The answer object and whether it was valid JSON as written."""
    start = text.find("{")
    if start < 0:
        return None, False
    candidate = text[start:]
    end = candidate.rfind("}")
    exact = candidate[: end + 1] if end >= 0 else candidate
    obj = _loads(exact)
    if isinstance(obj, dict):
        return obj, True
    for attempt in (_normalise_json(exact), _close_truncated(_normalise_json(candidate))):
        obj = _loads(attempt)
        if isinstance(obj, dict):
            return obj, False
    return None, False


def _regex_fallback(text: str) -> tuple[bool | None, list[ParsedDefect]]:
    m = _ANOMALY_RE.search(text)
    anomaly = _as_bool(m.group(1)) if m else None
    labels = [_label(m.group(1)) for _, m in zip(range(MAX_DEFECTS), _LABEL_RE.finditer(text))]
    boxes = [_as_box(m.groups()) for _, m in zip(range(MAX_DEFECTS), _BOX_RE.finditer(text))]
    defects = [ParsedDefect(labels[i] if i < len(labels) else UNKNOWN_LABEL, box) for i, box in enumerate(boxes)]
    if not boxes:
        defects = [ParsedDefect(lab, None) for lab in labels]
    return anomaly, defects


def parse_completion(text: str) -> ParsedOutput:
    """Read verdict, defects (model frame) and reasoning steps from one completion. Never raises."""
    raw = text if isinstance(text, str) else ""
    if len(raw) > MAX_TEXT_CHARS:  # the reasoning is at the start, the answer at the end
        half = MAX_TEXT_CHARS // 2
        raw = raw[:half] + "\n...\n" + raw[-half:]
    try:
        return _parse(raw)
    except Exception as err:  # a case the caps missed: an unparsed finding, not a crashed batch
        log.error("parsing a completion failed: %s: %s", type(err).__name__, err)
        log.debug("parsing a completion failed", exc_info=True)
        return ParsedOutput(False, None, (), (), "", INTERNAL_ERROR)


def _parse(raw: str) -> ParsedOutput:
    think_m = _THINK_RE.search(raw)
    answer_m = _ANSWER_RE.search(raw)
    if think_m:
        think = think_m.group(1)
    elif answer_m:
        think = raw[: answer_m.start()]
    else:
        think = raw.split("{", 1)[0] if "{" in raw else raw
    think = re.sub(r"</?think>", "", think, flags=re.I).strip()
    steps = split_steps(think, keep_preamble=bool(think_m))[:MAX_STEPS]
    answer_text = answer_m.group(1) if answer_m else raw[think_m.end():] if think_m else raw
    obj, valid = _parse_answer_json(answer_text)
    anomaly: bool | None = None
    defects: list[ParsedDefect] = []
    if obj is not None:
        for key in ("anomaly", "anomalous", "defective", "is_anomaly"):
            if key in obj:
                anomaly = _as_bool(obj[key])
                break
        defects = _defects_from_json(obj.get("defects", obj.get("anomalies", [])))
    if obj is None or (anomaly is None and not defects):
        fb_anomaly, fb_defects = _regex_fallback(answer_text)
        anomaly = anomaly if anomaly is not None else fb_anomaly
        defects = defects or fb_defects
    if anomaly is None and defects:
        anomaly = True
    if anomaly is None:
        reason = "no answer found in the model output" if not raw.strip() or obj is None else "answer has no verdict"
        return ParsedOutput(False, None, (), steps, think, reason, bool(answer_m), valid)
    if anomaly is False:
        defects = []
    return ParsedOutput(True, anomaly, tuple(defects), steps, think, "", bool(answer_m), valid)
