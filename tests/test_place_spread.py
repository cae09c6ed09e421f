"""Each cell read against its place on good parts (`core.anomaly_map.place_spread`): the figures, the leave-one-out
scores, and the shipped CNN's bank that uses them (a small defect now clears the decision point; saved and loaded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from lriad_desktop.core.anomaly_map.cnn_features import shared_cnn
from lriad_desktop.core.anomaly_map.patch_map import (MAP_MIDPOINT, AnomalyMapError, MemoryBank, aligns, build_bank,
                                                      map_images, reads_places)
from lriad_desktop.core.anomaly_map.place_spread import MIN_PLACE_IMAGES, PlaceSpread, leave_one_out_relative
from training.synthetic_data.samples import generate_line_sample


def _grids(n: int, seed: int = 0) -> list[np.ndarray]:
    """Good images' distance grids whose outer ring always varies a lot and whose middle is quiet."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        grid = 1.0 + 0.05 * rng.standard_normal((10, 10))
        grid[0, :] = grid[-1, :] = grid[:, 0] = grid[:, -1] = 3.0 + rng.standard_normal(10)[:, None].mean()
        grid[0, :] += rng.standard_normal(10)
        out.append(grid.astype(np.float32))
    return out


def test_too_few_images_or_grids_of_different_shapes_read_plain_distances():
    assert PlaceSpread.of(_grids(MIN_PLACE_IMAGES - 1)) is None
    assert PlaceSpread.of(_grids(MIN_PLACE_IMAGES - 1) + [np.ones((12, 10), np.float32)]) is None
    assert PlaceSpread.of(_grids(MIN_PLACE_IMAGES)) is not None


def test_a_place_that_always_varies_counts_less_than_a_quiet_one():
    places = PlaceSpread.of(_grids(16))
    test = np.full((10, 10), 1.0, np.float32)
    test[0, 5] = 4.0  # as hot as the top edge of a good part gets
    test[5, 5] = 2.0  # half as hot, in the quiet middle
    relative = places.relative(test)
    assert relative[5, 5] > 3 * relative[0, 5] and relative[5, 5] > 4
    assert int(np.argmax(relative)) == 5 * 10 + 5
    # a grid of another shape (the aspect kept) is read against the figures resized to it
    assert places.relative(np.ones((20, 10), np.float32)).shape == (20, 10)


def test_each_good_image_is_scored_against_the_others_only():
    grids = _grids(6)
    odd = grids[3].copy()
    odd[5, 5] = 3.0  # one good image with a hot middle: against the rest it stands out
    grids[3] = odd
    relative = leave_one_out_relative(grids)
    assert relative[3][5, 5] > 5 and max(float(r[5, 5]) for i, r in enumerate(relative) if i != 3) < 1
    # with itself among the figures it would hide: that is what the leave-one-out is for
    assert PlaceSpread.of(grids).relative(odd)[5, 5] < relative[3][5, 5] / 2  # 2.7 against 8.9


def _fabric(n: int, seed: int, square: bool = False) -> list[Image.Image]:
    images = []
    for i in range(n):
        image = generate_line_sample(np.random.default_rng([seed, i]), "fabric").image.convert("RGB")
        if square:  # one small pasted square, about 3 x 3 cells of the CNN's 40 x 40 grid
            image.paste((250, 30, 200), (image.width // 2, image.height // 4, image.width // 2 + 40,
                                         image.height // 4 + 40))
        images.append(image)
    return images


@pytest.fixture(scope="module")
def cnn():
    return shared_cnn()


def test_the_cnn_bank_reads_places_does_not_register_and_finds_a_small_square(cnn, tmp_path: Path):
    assert reads_places(cnn) and not aligns(cnn)
    goods = _fabric(8, 11)
    bank = build_bank(cnn, "woven fabric", goods)
    assert bank.places is not None and bank.places.shape == (40, 40) and bank.registration is None
    defective = map_images(cnn, bank, _fabric(2, 12, square=True))
    good = map_images(cnn, bank, _fabric(3, 13))
    # the plain tail mean gave this square 1.35, below the decision point (docs/anomaly-map.md)
    assert all(m.score > MAP_MIDPOINT and m.boxes for m in defective)
    assert all(m.score < MAP_MIDPOINT for m in good)
    box = defective[0].boxes[0]
    x1, y1, x2, y2 = box.x1, box.y1, box.x2, box.y2
    w, h = defective[0].image_size
    assert x1 <= w // 2 + 40 and x2 >= w // 2 and y1 <= h // 4 + 40 and y2 >= h // 4  # the box is on the square
    # saved and loaded, the places come back and the map is the same
    path = bank.to_file(tmp_path / "fabric.safetensors")
    again = MemoryBank.from_file(path)
    assert np.allclose(again.places.mean, bank.places.mean) and np.allclose(again.places.spread, bank.places.spread)
    assert map_images(cnn, again, _fabric(1, 12, square=True))[0].score == pytest.approx(defective[0].score, rel=1e-4)
    # too few good images for place figures: plain distances, still a usable bank
    assert build_bank(cnn, "woven fabric", goods[:MIN_PLACE_IMAGES - 1]).places is None


def test_a_bank_of_the_older_format_or_with_damaged_place_figures_is_refused_with_one_sentence(cnn, tmp_path: Path):
    bank = build_bank(cnn, "woven fabric", _fabric(4, 11))
    path = bank.to_file(tmp_path / "fabric.safetensors")
    with safe_open(str(path), framework="pt") as f:
        meta, tensors = dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}
    meta["format"] = "2"  # before places: its scores are in other units
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(AnomalyMapError, match=r"can't be read \(format '2', expected 3\): rebuild it"):
        MemoryBank.from_file(path)
    # a damaged file whose place figures would divide by zero: refused, never a map of infinities
    meta["format"] = "3"
    tensors["place_spread"] = tensors["place_spread"] * 0
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(AnomalyMapError, match="unsound place figures.*rebuild it"):
        MemoryBank.from_file(path)
