"""What the anomaly score costs: the same model and images inspected with the score read from the
generate call (the default) and without it, interleaved round by round so load and noise hit both alike.
Prints ms/image at batch 1 and batched, the overhead in percent, and checks that the answers are the
same both ways (the score is read beside generation, never a second pass). On a busy machine the
end-to-end difference drowns in noise, so it also times the per-step recorder alone on logits of the
model's vocabulary size, against the time of one generation step.

    nice -n 10 python benchmarks/bench_scores.py [--model DIR] [--n 12] [--batch-size 8] [--rounds 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _timed(inspector, images: list, batch_size: int) -> tuple[float, list]:
    """(ms per image, findings) for `images` in batches of `batch_size`."""
    findings = []
    t = time.perf_counter()
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        findings += inspector.inspect_batch(chunk, ["part"] * len(chunk))
    return (time.perf_counter() - t) * 1000 / len(images), findings


def main() -> int:
    import numpy as np
    import torch

    from lriad_desktop.core.backends.engine import Inspector
    from lriad_desktop.core.paths import bundled_model_dir
    from training.synthetic_data.samples import generate_sample

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=bundled_model_dir())
    p.add_argument("--n", type=int, default=12, help="images per round and setting")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    images = [generate_sample(np.random.default_rng([91, i])).image for i in range(args.n)]
    inspector = Inspector(args.model, device="cpu").load()
    inspector.inspect_batch(images[:2], ["part"] * 2)  # warm-up
    ms: dict[tuple[bool, int], list[float]] = {}
    answers: dict[bool, list[str]] = {}
    scored = 0
    for r in range(args.rounds):
        for on in ((True, False) if r % 2 == 0 else (False, True)):  # alternate who goes first
            inspector.scores = on
            for bs in (1, args.batch_size):
                per_image, findings = _timed(inspector, images, bs)
                ms.setdefault((on, bs), []).append(per_image)
                if r == 0 and bs == 1:
                    answers[on] = [f.raw_text for f in findings]
                    tokens_per_image = [f.timings.get("new_tokens", 0.0) for f in findings]
                    scored += sum(1 for f in findings if on and f.anomaly_score is not None)
    result: dict = {"model": str(args.model), "threads": args.threads, "images": args.n, "rounds": args.rounds,
                    "same_answers_with_and_without_score": answers[True] == answers[False],
                    "findings_with_a_score": f"{scored}/{args.n}"}
    for bs in (1, args.batch_size):
        on, off = statistics.median(ms[(True, bs)]), statistics.median(ms[(False, bs)])
        result[f"ms_per_image_batch{bs}_with_score"] = round(on, 1)
        result[f"ms_per_image_batch{bs}_without"] = round(off, 1)
        result[f"overhead_batch{bs}_percent"] = round((on - off) / off * 100, 1)
    # the recorder alone, per generation step, on logits the size of this model's vocabulary
    from lriad_desktop.core.backends.generation_scores import StepRecorder

    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(args.model)
    vocab = getattr(getattr(config, "text_config", None), "vocab_size", None) or config.vocab_size
    def recorder_ms(size: int) -> float:
        logits = torch.randn(args.batch_size, size)
        ids = torch.zeros(args.batch_size, 1, dtype=torch.long)
        recorder = StepRecorder(list(range(8)), "cpu")
        t = time.perf_counter()
        for _ in range(200):
            recorder(ids, logits)
        return (time.perf_counter() - t) * 1000 / 200

    steps = max(tokens_per_image)  # a batch runs as many steps as its longest answer: the smallest step time
    step_ms = statistics.median(ms[(False, args.batch_size)]) * args.batch_size / max(steps, 1)
    own = recorder_ms(vocab)
    result["vocabulary"] = vocab
    result[f"recorder_ms_per_step_batch{args.batch_size}"] = round(own, 3)
    result[f"generation_ms_per_step_batch{args.batch_size}"] = round(step_ms, 1)
    result["recorder_share_of_a_step_percent"] = round(own / step_ms * 100, 2)
    result[f"recorder_ms_per_step_batch{args.batch_size}_qwen_vocabulary_151936"] = round(recorder_ms(151936), 2)
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>40}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
