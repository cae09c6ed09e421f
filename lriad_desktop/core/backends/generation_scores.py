"""Token probabilities from the engine's own `generate` call, kept small: a logits processor that records,
at every step, the chosen token's log-probability and those of the few tokens that could write a verdict
word (`core.inspection.confidence.may_say_verdict`), never the whole vocabulary (152k floats per step on a real Qwen).

It runs last among the processors, so it sees the distribution greedy decoding picks from: the model's
logits after the generation config's own processors (none for the demo model; a repetition penalty on some
real checkpoints). This module imports torch; the engine imports it only when it inspects.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from transformers import LogitsProcessor

from lriad_desktop.core.inspection.confidence import TokenScores, may_say_verdict, score_tokens, verdict_token
from lriad_desktop.core.inspection.finding import TokenLogprob


def verdict_watch(tokenizer: Any) -> tuple[list[int], list[str]]:
    """The ids and texts of the vocabulary's tokens that could write (the start of) `true` or `false`."""
    vocab = tokenizer.get_vocab()
    rough = [i for s, i in vocab.items() if may_say_verdict(s)]  # byte-level pieces keep ASCII letters as they are
    texts = tokenizer.batch_decode([[i] for i in rough], skip_special_tokens=False) if rough else []
    kept = sorted((i, t) for i, t in zip(rough, texts) if may_say_verdict(t))
    return [i for i, _ in kept], [t for _, t in kept]


class StepRecorder(LogitsProcessor):
    """Records, per generation step and sequence, the best log-probability (greedy decoding's choice) and
    the log-probabilities of the watched tokens. Passes the scores on unchanged."""

    def __init__(self, watch_ids: Sequence[int], device: Any) -> None:
        self.watch = torch.tensor(list(watch_ids), dtype=torch.long, device=device)
        self._best: list[torch.Tensor] = []
        self._watched: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        logp = torch.log_softmax(scores.float(), dim=-1)
        self._best.append(logp.max(dim=-1).values)
        if self.watch.numel():
            self._watched.append(logp.index_select(-1, self.watch))
        return scores

    def collect(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(best logp [batch, steps], watched logp [batch, steps, watch] or None), on the CPU."""
        best = torch.stack(self._best, dim=1).cpu()
        watched = torch.stack(self._watched, dim=1).cpu() if self._watched else None
        return best, watched


def token_pieces(tokenizer: Any, ids: Sequence[int], text: str) -> list[str]:
    """Each generated token's text, so that they join to `text` (the decode of all of `ids`)."""
    pieces = tokenizer.batch_decode([[i] for i in ids], skip_special_tokens=True)
    if "".join(pieces) == text:
        return pieces
    out, before = [], ""  # a character split over two tokens: decode growing prefixes instead
    for n in range(1, len(ids) + 1):
        now = tokenizer.decode(list(ids[:n]), skip_special_tokens=True)
        out.append(now[len(before):] if now.startswith(before) else "")
        before = now
    return out


def scores_for_sequence(pieces: Sequence[str], row: int, best: torch.Tensor, watched: torch.Tensor | None,
                        watch_texts: Sequence[str]) -> TokenScores:
    """The token scores of sequence `row` of a recorded batch, given its generated tokens' texts (greedy: each
    chosen token is the step's most probable one)."""
    steps = best[row, :len(pieces)].tolist()
    tokens = [TokenLogprob(piece, lp) for piece, lp in zip(pieces, steps)]
    found = verdict_token(tokens)
    if found is not None and watched is not None:
        k = found[0]
        top = tuple((text, float(lp)) for text, lp in zip(watch_texts, watched[row, k].tolist()))
        tokens[k] = TokenLogprob(tokens[k].token, tokens[k].logprob, top)
    return score_tokens(tokens, ranked=False)
