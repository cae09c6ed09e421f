"""Feature strings of the anomaly map's tower features: several blocks, a larger input, local aggregation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lriad_desktop.core.backends.vision_features import FeatureError, FeatureSpec, VisionTower, parse_feature
from training.synthetic_data.samples import generate_line_sample

BUNDLED = Path(__file__).resolve().parents[1] / "resources" / "models" / "lriad-tiny"


@pytest.fixture(scope="module")
def tower() -> VisionTower:
    return VisionTower.load(BUNDLED)


def test_feature_strings_parse_and_print_back():
    assert parse_feature("merged") == FeatureSpec(None)
    assert parse_feature("block:1") == FeatureSpec((1,))
    spec = parse_feature("block:0+1@448~3")
    assert spec == FeatureSpec((0, 1), 448, 3) and str(spec) == "block:0+1@448~3"
    for text in ("merged@336", "block:2~5", "block:0+2+3"):
        assert str(parse_feature(text)) == text
    for bad in ("pixels", "block:", "block:1@", "block:1~2", "block:1@9999", "block:a"):
        with pytest.raises(FeatureError, match="feature"):
            parse_feature(bad)


def test_a_larger_input_gives_finer_cells_covering_the_same_image(tower):
    image = generate_line_sample(np.random.default_rng([3, 1]), "bottle").image  # 338 x 417
    (small,) = tower.features([image], "block:1")
    (large,) = tower.features([image], "block:1@448")
    assert small.input_size == (small.cols * 14, small.rows * 14) and max(small.input_size) <= 230
    assert large.rows >= 1.8 * small.rows and large.cols >= 1.8 * small.cols
    assert large.input_size == (large.cols * 14, large.rows * 14) and large.image_size == image.size
    assert abs(large.rows / large.cols - small.rows / small.cols) < 0.15  # the aspect is kept
    # the same image at another size lands on about the same grid: bank and query images agree
    (resized,) = tower.features([image.resize((image.width // 2, image.height // 2))], "block:1@448")
    assert abs(resized.rows - large.rows) <= 1 and abs(resized.cols - large.cols) <= 1


def test_blocks_concatenate_and_aggregation_is_a_neighbourhood_mean(tower):
    image = generate_line_sample(np.random.default_rng([3, 2]), "pcb").image
    (b0,), (b1,) = tower.features([image], "block:0"), tower.features([image], "block:1")
    (both,) = tower.features([image], "block:0+1")
    assert both.values.shape[1] == b0.values.shape[1] + b1.values.shape[1]
    assert torch.allclose(both.values, torch.cat([b0.values, b1.values], dim=1), atol=1e-5)
    (agg,) = tower.features([image], "block:1~3")
    grid = b1.values.reshape(b1.rows, b1.cols, -1)
    r, c = b1.rows // 2, b1.cols // 2
    assert torch.allclose(agg.values.reshape(b1.rows, b1.cols, -1)[r, c], grid[r - 1:r + 2, c - 1:c + 2].mean((0, 1)),
                          atol=1e-5)
    corner = grid[:2, :2].mean((0, 1))  # at the edge: the mean of the cells that exist
    assert torch.allclose(agg.values.reshape(b1.rows, b1.cols, -1)[0, 0], corner, atol=1e-5)
