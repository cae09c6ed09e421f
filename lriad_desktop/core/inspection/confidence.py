"""How sure the model is: the anomaly score from its own token probabilities, and the decision a threshold makes.

**The anomaly score.** `verdict_probability` reads the model's distribution at the token where its answer
writes the verdict word (`true` / `false` after `"anomaly":`; a thinking template's think block and any
text before `<answer>` are skipped). Tokenizers cut that place differently (Qwen: ` true`; the demo
model's own tokenizer: `true, "defects": [`), so the rule is stated on token *texts*, not ids:

    P(anomalous) = p_true / (p_true + p_false)

at that one generation step, where p_true is the summed probability of every token that continues the
answer with `true` (its text, after the same characters the chosen token has before the verdict word,
starts with `true` or is a beginning of it such as `tr`), and p_false likewise for `false`; case is
ignored and so is white space between the colon and the word. At greedy decoding the chosen token is the
most probable one, so the score is ≥ 0.5 exactly when the model answered `true`: at the default threshold
0.5 the decision and the model's own verdict agree.

Where the distribution is only partly known (a model server's top-k log-probabilities) and no listed token
says the other word, the other side gets the most it can have: the probability left over by the listed
tokens, and no more than the least likely listed one (the list is ranked). Without any alternatives this
is just the chosen token's own probability mapped to P(anomalous) (p or 1 − p).

**Per defect**, `defect_confidences` is exp(mean log-probability) of the tokens that write its label and its
box numbers: the geometric mean of their probabilities, in (0, 1].

**The decision** (`decided_verdict`): anomalous when the anomaly score ≥ the object's threshold (default
0.5), else normal; a finding without a score keeps the model's verdict. The finding itself always keeps the
model's own verdict; the decision is what the queue and the verdict badge show, and what Accept records.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Sequence

from lriad_desktop.core.inspection.finding import Finding, TokenLogprob, Verdict

DEFAULT_THRESHOLD = 0.5
DEFAULT_DOUBT_BAND = 0.15  # the queue's "needs review" band: |score − threshold| within this
NO_SCORE = "—"  # how a missing score is shown

SOURCE_VERDICT_TOKEN = "verdict_token"  # the in-process engine's own generate call
SOURCE_SERVER_LOGPROBS = "server_logprobs"  # a model server's reported log-probabilities

_VERDICT_WORDS = (("true", True), ("false", False))
_VERDICT_RE = re.compile(r"""["']?(?:anomaly|anomalous|defective|is_anomaly)["']?\s*[:=]\s*(true|false)\b""", re.I)
_ANSWER_OPEN = re.compile(r"<answer>", re.I)
_THINK_CLOSE = re.compile(r"</think>", re.I)
_LABEL_RE = re.compile(r"""["']label["']\s*:\s*["']([^"']*)["']""", re.I)
_BOX_RE = re.compile(r"""["']?(?:bbox_2d|bbox|box_2d|box)["']?\s*:\s*(\[[^\]\[]*\])""", re.I)
_MAY_SAY = re.compile(r"true|false|(?:^|[^a-z])(?:t|tr|tru|f|fa|fal|fals)$", re.I)


@dataclass(frozen=True)
class TokenScores:
    """What the token probabilities of one answer say: P(anomalous) at the verdict token (None when the
    answer has no `true`/`false` verdict), which word was written there, and one confidence per defect."""

    verdict_probability: float | None = None
    says_anomalous: bool | None = None
    defect_confidences: tuple[float | None, ...] = ()


def answer_start(text: str) -> int:
    """Where the answer begins: after the last `<answer>`, else after the last `</think>`, else 0."""
    for pattern in (_ANSWER_OPEN, _THINK_CLOSE):
        matches = list(pattern.finditer(text))
        if matches:
            return matches[-1].end()
    return 0


def verdict_span(text: str) -> tuple[int, bool] | None:
    """The character offset of the verdict word in the answer and whether it says anomalous; None if absent."""
    m = _VERDICT_RE.search(text, answer_start(text))
    if m is None:
        return None
    return m.start(1), m.group(1).lower() == "true"


def may_say_verdict(token_text: str) -> bool:
    """Whether a token's text could write (the start of) a verdict word: the tokens whose probabilities the
    engine keeps at every generation step."""
    return bool(_MAY_SAY.search(token_text))


def _says(token_text: str, head: str) -> bool | None:
    """True / False when this token, in place of the chosen one (whose text before the word is `head`),
    continues with `true` / `false`; None when it says something else."""
    if not token_text.startswith(head):
        return None
    rest = token_text[len(head):].lstrip().lower()
    if not rest:
        return None
    for word, value in _VERDICT_WORDS:
        if rest.startswith(word) or word.startswith(rest):
            return value
    return None


def token_starts(tokens: Sequence[TokenLogprob]) -> list[int]:
    """The character offset where each token's text begins in their concatenation."""
    starts, at = [], 0
    for t in tokens:
        starts.append(at)
        at += len(t.token)
    return starts


def _token_at(starts: Sequence[int], tokens: Sequence[TokenLogprob], offset: int) -> int:
    """The index of the token whose text holds character `offset`."""
    lo, hi = 0, len(starts) - 1
    while lo < hi:  # the last token starting at or before `offset`
        mid = (lo + hi + 1) // 2
        if starts[mid] <= offset:
            lo = mid
        else:
            hi = mid - 1
    while lo > 0 and not tokens[lo].token:  # empty pieces (special tokens) hold nothing
        lo -= 1
    return lo


def probability_at(choice: TokenLogprob, offset: int, says_anomalous: bool, ranked: bool) -> float | None:
    """P(anomalous) from one step's distribution: the chosen token (its verdict word starts at `offset` in
    its text) and the alternatives in `choice.top`. `ranked`: the alternatives are the k most likely tokens
    (a server's top-k), so an unlisted token is less likely than every listed one."""
    head = choice.token[:offset].rstrip()
    seen = {choice.token}
    entries = [(choice.token, choice.logprob)]
    for text, logprob in choice.top:
        if text not in seen:
            seen.add(text)
            entries.append((text, logprob))
    mass = {True: 0.0, False: 0.0}
    listed = 0.0
    for text, logprob in entries:
        p = math.exp(min(logprob, 0.0))
        listed += p
        side = _says(text, head)
        if side is not None:
            mass[side] += p
    if mass[says_anomalous] <= 0.0:
        return None  # the chosen token does not say its own word: nothing to read
    other = not says_anomalous
    if mass[other] <= 0.0:  # the other word is not among the listed tokens: the most it can have
        bound = max(0.0, 1.0 - listed)
        alternatives = [math.exp(min(lp, 0.0)) for text, lp in entries[1:]]
        if ranked and alternatives:
            bound = min(bound, min(alternatives))
        mass[other] = bound
    total = mass[True] + mass[False]
    return min(1.0, max(0.0, mass[True] / total)) if total > 0 else None


def verdict_token(tokens: Sequence[TokenLogprob]) -> tuple[int, int, bool] | None:
    """Where the verdict word is written: the token's index, the word's offset in that token's text, and
    whether it says anomalous; None when the answer has no `true`/`false` verdict."""
    span = verdict_span("".join(t.token for t in tokens))
    if span is None:
        return None
    starts = token_starts(tokens)
    k = _token_at(starts, tokens, span[0])
    return k, span[0] - starts[k], span[1]


def _mean_confidence(tokens: Sequence[TokenLogprob], starts: Sequence[int],
                     spans: Sequence[tuple[int, int]]) -> float | None:
    picked = {i for a, b in spans if b > a for i, t in enumerate(tokens)
              if t.token and starts[i] < b and starts[i] + len(t.token) > a}
    if not picked:
        return None
    return math.exp(sum(min(tokens[i].logprob, 0.0) for i in picked) / len(picked))


def _defect_spans(text: str, start: int) -> list[list[tuple[int, int]]]:
    """Per defect, in order: the character spans of its label value and of its box list."""
    labels = list(_LABEL_RE.finditer(text, start))
    boxes = list(_BOX_RE.finditer(text, start))
    out: list[list[tuple[int, int]]] = []
    for i, m in enumerate(labels):
        end = labels[i + 1].start() if i + 1 < len(labels) else len(text)
        spans = [m.span(1)]
        box = next((b for b in boxes if m.end() <= b.start() < end), None)
        if box is not None:
            spans.append(box.span(1))
        out.append(spans)
    if not labels:  # boxes without labels
        out = [[b.span(1)] for b in boxes]
    return out


def score_tokens(tokens: Sequence[TokenLogprob], ranked: bool) -> TokenScores:
    """The verdict probability and per-defect confidences of one answer from its tokens (in order, their
    texts concatenated = the answer as generated). `ranked` as in `probability_at`."""
    if not tokens:
        return TokenScores()
    text = "".join(t.token for t in tokens)
    starts = token_starts(tokens)
    found = verdict_token(tokens)
    probability = says = None
    if found is not None:
        k, offset, says = found
        probability = probability_at(tokens[k], offset, says, ranked)
    start = starts[found[0]] + found[1] if found is not None else answer_start(text)
    confidences = tuple(_mean_confidence(tokens, starts, spans) for spans in _defect_spans(text, start))
    return TokenScores(probability, says, confidences)


def decided_verdict(finding: Finding, threshold: float = DEFAULT_THRESHOLD) -> Verdict:
    """The verdict a threshold gives: anomalous when the anomaly score ≥ `threshold`; the model's own
    verdict when the finding has no score; unparsed stays unparsed."""
    if finding.verdict is Verdict.UNPARSED or finding.anomaly_score is None:
        return finding.verdict
    return Verdict.ANOMALOUS if finding.anomaly_score >= threshold else Verdict.NORMAL


def as_decided(finding: Finding, threshold: float = DEFAULT_THRESHOLD) -> Finding:
    """The finding as the threshold decides it (what the queue shows and Accept records): the decided
    verdict, without defects when that is normal. The same object when nothing changes."""
    verdict = decided_verdict(finding, threshold)
    if verdict is finding.verdict:
        return finding
    return replace(finding, verdict=verdict, defects=() if verdict is Verdict.NORMAL else finding.defects)


def doubt(finding: Finding | None, threshold: float = DEFAULT_THRESHOLD) -> float | None:
    """How far the score is from the threshold (0 = a coin toss at this threshold); None without a score."""
    if finding is None or finding.anomaly_score is None or finding.verdict is Verdict.UNPARSED:
        return None
    return abs(finding.anomaly_score - threshold)


def needs_review(finding: Finding | None, threshold: float = DEFAULT_THRESHOLD,
                 band: float = DEFAULT_DOUBT_BAND) -> bool:
    """Whether the score lies in the band around the threshold where the inspector should look."""
    d = doubt(finding, threshold)
    return d is not None and d <= band


def format_score(score: float | None) -> str:
    """A score for people: `0.83`, or "—" when there is none."""
    return NO_SCORE if score is None else f"{score:.2f}"


def check_threshold(value: float) -> float:
    """A threshold in [0, 1], or ValueError."""
    t = float(value)
    if not (0.0 <= t <= 1.0) or math.isnan(t):
        raise ValueError(f"a threshold is between 0 and 1, not {value}")
    return t
