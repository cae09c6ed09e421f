"""The line-like synthetic mode: one product variant per kind, placed again and again in a fixture."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from training.synthetic_data.samples import PRODUCT_KINDS, generate_line_sample, generate_sample, main, write_mvtec_layout
from training.synthetic_data.parts import LINE_JITTER


def _object_mask(kind: str, seed: list[int]) -> np.ndarray:
    """The part's outline in the image `generate_line_sample(default_rng(seed), kind)` draws."""
    spec = PRODUCT_KINDS[kind]
    variant_rng = np.random.default_rng([0x11E, list(PRODUCT_KINDS).index(kind), 0])
    from training.synthetic_data.samples import _random_size

    width, height = _random_size(variant_rng)
    _pixels, mask = spec.render_line(variant_rng.bit_generator.state, np.random.default_rng(seed), width, height)
    return mask


@pytest.mark.parametrize("kind", ["washer", "pcb", "capsule"])
def test_one_variant_per_kind_with_fixture_jitter(kind):
    samples = [generate_line_sample(np.random.default_rng([3, i]), kind) for i in range(4)]
    assert len({s.image.size for s in samples}) == 1  # fixed size
    pixels = [np.asarray(s.image, np.float32) for s in samples]
    assert all(not np.array_equal(pixels[0], p) for p in pixels[1:])  # not the same picture
    masks = [_object_mask(kind, [3, i]) for i in range(4)]
    for m in masks[1:]:  # the part moves only a few pixels: its outline overlaps almost fully
        assert (masks[0] & m).sum() / (masks[0] | m).sum() > 0.8
    colours = [p[m].mean(axis=0) for p, m in zip(pixels, masks)]
    assert np.abs(np.array(colours) - colours[0]).max() < 20  # same colour, mild lighting
    mixed = [np.asarray(generate_sample(np.random.default_rng([3, i]), kind, False).image) for i in range(4)]
    assert len({m.shape for m in mixed}) > 1  # the mixed generator gives every image its own size


def test_another_variant_is_another_product():
    a = generate_line_sample(np.random.default_rng(1), "bottle", variant=0)
    b = generate_line_sample(np.random.default_rng(1), "bottle", variant=1)
    assert a.image.size != b.image.size or not np.array_equal(np.asarray(a.image), np.asarray(b.image))


def test_line_defects_land_on_the_part():
    for i in range(6):
        s = generate_line_sample(np.random.default_rng([5, i]), "screw", "hole")
        assert s.anomalous and s.mask.any()
        assert (s.mask.astype(bool) & _object_mask("screw", [5, i])).sum() > 0  # on the screw, not the backdrop
    assert LINE_JITTER[0] <= 3 and LINE_JITTER[1] <= 0.02


def test_the_mvtec_writer_and_command_line_take_the_line_mode(tmp_path, capsys):
    root = write_mvtec_layout(tmp_path / "line", 2, seed=11, kinds=["tile"], labels=["crack"], line_variant=0)
    sizes = {Image.open(p).size for p in (root / "tile").rglob("*.png") if "ground_truth" not in p.parts}
    assert len(sizes) == 1 and len(list((root / "tile" / "test" / "crack").glob("*.png"))) == 2
    assert main([str(tmp_path / "cli"), "--per-kind", "1", "--seed", "12", "--line-variant", "2"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert {p.name for p in (tmp_path / "cli").iterdir()} == set(PRODUCT_KINDS)
    with pytest.raises(ValueError, match="unknown product kind"):
        generate_line_sample(np.random.default_rng(0), "teapot")
