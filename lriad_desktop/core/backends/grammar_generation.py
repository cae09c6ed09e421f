"""Grammar-constrained generation for the local engine: `core.inspection.grammar`'s grammar compiled with xgrammar (the
engine vLLM and SGLang use) and applied in `generate` as a logits processor, one matcher per row of a batch.

Compiling takes milliseconds for this grammar, but the tokenizer's table takes longer (about a second on a real
Qwen's 152k tokens), so a `GrammarCompilers` object is kept per loaded model and caches each compiled grammar
under its `AnswerGrammar` (labels, frame bounds, template). The processor runs before the score recorder
(`core.backends.generation_scores`), so the verdict probability is read over the tokens the grammar allows there:
P(true) / (P(true) + P(false)) at the constrained choice.

This module imports torch, transformers and xgrammar; the engine imports it only when it inspects.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import torch
import xgrammar as xgr
from transformers import LogitsProcessor

from lriad_desktop.core.inspection.grammar import AnswerGrammar


class GrammarCompilers:
    """The compiled grammars of one model's tokenizer, compiled once each and cached."""

    def __init__(self, tokenizer: Any, vocab_size: int, stop_token_ids: Sequence[int]) -> None:
        self.info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size,
                                                       stop_token_ids=sorted(set(stop_token_ids)) or None)
        self._compiler = xgr.GrammarCompiler(self.info)
        self._compiled: dict[AnswerGrammar, Any] = {}

    def compiled(self, grammar: AnswerGrammar) -> Any:
        """The compiled grammar (from the cache after the first time)."""
        found = self._compiled.get(grammar)
        if found is None:
            found = self._compiler.compile_structural_tag(json.dumps(grammar.structural_tag()))
            self._compiled[grammar] = found
        return found

    def processor(self, grammars: Sequence[AnswerGrammar]) -> "ConstrainedBatch":
        """A fresh logits processor for one `generate` call, row i constrained to `grammars[i]`."""
        return ConstrainedBatch([self.compiled(g) for g in grammars], self.info.vocab_size)


class ConstrainedBatch(LogitsProcessor):
    """Masks, at every step and for every row, the tokens its grammar does not allow next (one matcher per row).

    A row whose matcher has finished (its grammar ended and took the end token) is left alone: generate pads it.
    A token the matcher refuses (never expected: the mask allowed only what it accepts) ends that row's
    constraint rather than the whole batch."""

    def __init__(self, compiled: Sequence[Any], vocab_size: int) -> None:
        self.matchers = [xgr.GrammarMatcher(c) for c in compiled]
        self.vocab_size = vocab_size
        self.bitmask = xgr.allocate_token_bitmask(len(self.matchers), vocab_size)
        self._batch = xgr.BatchGrammarMatcher(1)
        self._started = False
        self._broken = [False] * len(self.matchers)

    def _live(self, row: int) -> bool:
        return not self._broken[row] and not self.matchers[row].is_terminated()

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        rows = len(self.matchers)
        if input_ids.shape[0] != rows:
            raise RuntimeError(f"a grammar batch of {rows} rows got {input_ids.shape[0]}")
        if self._started:  # accept the token each live row chose at the last step
            last = input_ids[:, -1].tolist()
            live = [i for i in range(rows) if self._live(i)]
            accepted = xgr.BatchGrammarMatcher.batch_accept_token([self.matchers[i] for i in live],
                                                                  [int(last[i]) for i in live])
            for i, ok in zip(live, accepted):
                if not ok:
                    self._broken[i] = True
        self._started = True
        live = [i for i in range(rows) if self._live(i)]
        if not live:
            return scores
        self.bitmask.fill_(-1)  # all allowed: a finished row stays as the model has it
        self._batch.batch_fill_next_token_bitmask([self.matchers[i] for i in live], self.bitmask, live)
        on_cpu = scores.device.type == "cpu"
        masked = scores if on_cpu and scores.dtype == torch.float32 else scores.float()
        if not on_cpu and masked.device.type != "cuda":  # xgrammar masks on the CPU or CUDA only
            masked = masked.cpu()
        width = min(masked.shape[-1], self.vocab_size)
        bitmask = self.bitmask if masked.device.type == "cpu" else self.bitmask.to(masked.device, non_blocking=True)
        xgr.apply_token_bitmask_inplace(masked, bitmask, vocab_size=width)
        if masked.shape[-1] > self.vocab_size:  # padding rows of the embedding: never a word
            masked[live, self.vocab_size:] = float("-inf")
        return masked if masked is scores else masked.to(scores.device, scores.dtype)

    @property
    def broken_rows(self) -> list[int]:
        """Rows whose constraint stopped on a token it refused (for the log)."""
        return [i for i, b in enumerate(self._broken) if b]
