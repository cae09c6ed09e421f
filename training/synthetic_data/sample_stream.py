"""The seeded stream of synthetic samples both stages of the bundled model's recipe train on: sample i
depends only on (seed, i), so a batch is the same whichever process draws it, and after a resume."""

from __future__ import annotations

import numpy as np

from training.synthetic_data.samples import Sample, generate_sample


def training_size(rng: np.random.Generator, lo: int, hi: int) -> tuple[int, int]:
    """A random (width, height) near the model's input size, aspect 0.6-1.6."""
    w = int(rng.integers(lo, hi + 1))
    h = int(np.clip(w * np.exp(rng.uniform(np.log(0.6), np.log(1.6))), lo * 0.75, hi))
    return w, h


def sample_at(seed: int, i: int, lo: int, hi: int, kinds: tuple[str, ...] | None = None,
              references: str | None = None) -> Sample:
    """Sample i of a seeded stream, rendered at a training size (kinds cycled when given); with
    `references="side_by_side"` it carries a golden sample, and the model sees both side by side
    (`training.synthetic_data.samples.model_view`)."""
    rng = np.random.default_rng([seed, i])
    kind = kinds[i % len(kinds)] if kinds else None
    return generate_sample(rng, kind=kind, size=training_size(rng, lo, hi), reference=references is not None)
