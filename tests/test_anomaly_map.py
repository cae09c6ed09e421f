"""The anomaly map on the bundled model's own vision tower, with good images from tiny folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lriad_desktop.core.anomaly_map.patch_map import (AnomalyMapError, BankIdentity, EmptyBank, MemoryBank, StaleBank,
                                            bank_from_features, build_bank, greedy_coreset, image_score, map_images,
                                            nearest_distances, regions)
from lriad_desktop.core.inspection.images import iter_image_files, load_image
from lriad_desktop.core.backends.vision_features import FeatureError, VisionTower, model_fingerprint
from training.synthetic_data.samples import generate_line_sample

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "resources" / "models" / "lriad-tiny"
SIDE = 224  # the bundled model's input: 8 x 8 image tokens of 28 px


@pytest.fixture(scope="module")
def tower() -> VisionTower:
    return VisionTower.load(BUNDLED)


def _good(i: int) -> Image.Image:
    """A good image of one line-like product (fabric, fixed variant), at the model's input size."""
    return generate_line_sample(np.random.default_rng([7, i]), "fabric").image.resize((SIDE, SIDE))


@pytest.fixture(scope="module")
def good_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("good")
    for i in range(6):
        _good(i).save(folder / f"{i:02d}.png")
    return folder


def _folder_images(folder: Path) -> list[Image.Image]:
    return [load_image(p).image for p in iter_image_files([folder])]


def _hottest_point(found) -> tuple[float, float]:
    """(x, y) in original-image pixels of the centre of the map's hottest cell."""
    row, col = found.hottest_cell
    rows, cols = found.cells.shape
    width, height = found.image_size
    return (col + 0.5) * width / cols, (row + 0.5) * height / rows


def test_a_pasted_defect_lights_its_cells_and_gets_a_box(tower, good_folder):
    bank = build_bank(tower, "woven fabric", _folder_images(good_folder))
    clean = _good(100)
    defective = clean.copy()
    defective.paste((250, 30, 200), (140, 56, 180, 96))  # a magenta blot over cells (row 2-3, col 5-6)
    clean_map, defect_map = map_images(tower, bank, [clean, defective])
    x, y = _hottest_point(defect_map)
    assert 140 <= x <= 180 and 56 <= y <= 96
    assert defect_map.score > clean_map.score + 3
    assert defect_map.heat.shape == (SIDE, SIDE)
    box = defect_map.boxes[0]
    assert box.x1 < 180 and box.x2 > 140 and box.y1 < 96 and box.y2 > 56
    far = defect_map.heat[:, :60].mean()
    assert defect_map.heat[56:96, 140:180].mean() > far + 3


def test_boxes_are_in_original_image_pixels(tower, good_folder):
    bank = build_bank(tower, "woven fabric", _folder_images(good_folder))
    big = _good(101).resize((SIDE * 3, SIDE * 2))
    big.paste((250, 30, 200), (420, 112, 540, 192))  # the blot, 3 x 2 larger like the image
    (found,) = map_images(tower, bank, [big])
    assert found.image_size == (SIDE * 3, SIDE * 2) and found.heat.shape == (SIDE * 2, SIDE * 3)
    x, y = _hottest_point(found)
    assert 420 <= x <= 540 and 112 <= y <= 192
    box = found.boxes[0]
    assert box.x1 < 540 and box.x2 > 420 and box.y1 < 192 and box.y2 > 112
    assert box.x2 <= SIDE * 3 and box.y2 <= SIDE * 2


def test_leave_one_out_normalisation(tower, good_folder):
    images = _folder_images(good_folder)
    bank = build_bank(tower, "woven fabric", images)
    aligned = [bank.registration.align(im)[0] for im in images] if bank.registration is not None else images
    cells = tower.features(aligned, bank.identity.feature)  # as the bank saw them: registered, its feature
    assert len(bank.good_scores) == len(images)
    for i, score in enumerate(bank.good_scores):  # each good image against the others only
        others = torch.cat([c.values for j, c in enumerate(cells) if j != i])
        assert score == pytest.approx(image_score(nearest_distances(cells[i].values, others), bank.top_k), rel=1e-5)
        assert score > 0  # scored against itself it would be 0, and every threshold too low
    assert np.mean([bank.normalise(s) for s in bank.good_scores]) == pytest.approx(0, abs=1e-6)
    (fresh,) = map_images(tower, bank, [_good(102)])
    assert abs(fresh.score) < 3  # a new good image lands among the good ones
    assert bank.box_threshold == max(bank.good_scores)


def test_zero_or_one_good_image_is_a_clear_error(tower):
    with pytest.raises(EmptyBank, match="needs at least two good images.*has no good images"):
        build_bank(tower, "capsule", [])
    with pytest.raises(EmptyBank, match="only one good image"):
        build_bank(tower, "capsule", [_good(0)])


def test_a_bank_from_another_model_is_refused(tower, good_folder, tiny_model_dir):
    bank = build_bank(tower, "woven fabric", _folder_images(good_folder))
    other = VisionTower.load(tiny_model_dir)
    with pytest.raises(StaleBank, match="rebuild it"):
        map_images(other, bank, [_good(1)])
    assert bank.identity.feature == tower.default_feature == "block:0+1@448"  # the middle blocks of 4, 448 px
    with pytest.raises(StaleBank, match="feature"):
        bank.check(BankIdentity.of(tower, "merged"))


def test_new_weights_in_the_same_folder_invalidate_the_bank(tmp_path, good_folder):
    folder = shutil.copytree(BUNDLED, tmp_path / "lriad-tiny")
    tower = VisionTower.load(folder)
    bank = build_bank(tower, "woven fabric", _folder_images(good_folder))
    saved = bank.to_file(tmp_path / "banks" / "fabric.bank")
    from transformers import AutoModelForImageTextToText

    full = AutoModelForImageTextToText.from_pretrained(folder, local_files_only=True)
    with torch.no_grad():  # a retrained model saved over the old one, same folder and name
        full.model.visual.blocks[0].mlp.up_proj.weight.add_(0.01)
    full.save_pretrained(folder)
    assert model_fingerprint(folder) != bank.identity.fingerprint
    retrained = VisionTower.load(folder)
    with pytest.raises(StaleBank):
        MemoryBank.from_file(saved, BankIdentity.of(retrained))


def test_save_and_load_keep_the_bank(tower, good_folder, tmp_path):
    bank = build_bank(tower, "woven fabric", _folder_images(good_folder), top_k=3, reach=0.25)
    path = bank.to_file(tmp_path / "fabric.bank")
    loaded = MemoryBank.from_file(path, BankIdentity.of(tower))
    assert torch.equal(loaded.features, bank.features) and torch.equal(loaded.positions, bank.positions)
    assert loaded.reach == 0.25
    assert loaded.good_scores == pytest.approx(bank.good_scores)
    assert (loaded.object_name, loaded.identity, loaded.n_images, loaded.top_k) == ("woven fabric", bank.identity, 6, 3)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(AnomalyMapError, match="rebuild it"):
        MemoryBank.from_file(path)
    with pytest.raises(AnomalyMapError, match="can't be read"):
        MemoryBank.from_file(tmp_path / "missing.bank")


def test_block_features_are_unpermuted_patches(tower):
    """The merger over the last block's per-patch features, regrouped, gives the merged tokens exactly:
    so the window order of Qwen2.5-VL is undone and each patch sits in its own cell."""
    images = [_good(3).resize((196, 224)), _good(4).resize((280, 168))]  # grids 8x7 and 6x10 tokens
    merged = tower.features(images, "merged")
    patches = tower.features(images, f"block:{tower.depth - 1}")
    for m, p in zip(merged, patches):
        assert (p.rows, p.cols) == (2 * m.rows, 2 * m.cols)
        grouped = p.values.reshape(m.rows, 2, m.cols, 2, -1).permute(0, 2, 1, 3, 4).reshape(p.rows * p.cols, -1)
        with torch.inference_mode():
            assert torch.allclose(tower.visual.merger(grouped), m.values, atol=1e-5)
    with pytest.raises(FeatureError, match="outside"):
        tower.features(images, "block:99")
    with pytest.raises(FeatureError, match="unknown feature"):
        tower.features(images, "pixels")


def test_greedy_coreset_covers_the_features():
    gen = torch.Generator().manual_seed(0)
    clusters = torch.cat([torch.randn(200, 16, generator=gen) * 0.01 + 5 * i for i in range(4)])
    chosen = greedy_coreset(clusters, 4)
    assert sorted(int(i) // 200 for i in chosen) == [0, 1, 2, 3]  # one per cluster, not four from one
    assert len(greedy_coreset(clusters, 10_000)) == 800


def test_a_large_bank_is_thinned_and_still_finds_the_defect(tower, good_folder):
    cells = tower.features(_folder_images(good_folder))
    bank = bank_from_features("woven fabric", BankIdentity.of(tower), cells, max_bank=100)
    assert bank.size == 100 and bank.n_images == 6
    defective = _good(105)
    defective.paste((250, 30, 200), (28, 140, 68, 180))
    (found,) = map_images(tower, bank, [defective])
    x, y = _hottest_point(found)
    assert 28 <= x <= 68 and 140 <= y <= 180


def test_regions_are_connected_components():
    heat = np.zeros((50, 80), np.float32)
    heat[5:10, 5:15] = 2.0
    heat[30:45, 60:75] = 3.0
    heat[20, 40] = 5.0  # one pixel: below the minimum area
    boxes = regions(heat, 1.0)
    assert [(b.x1, b.y1, b.x2, b.y2) for b in boxes] == [(60, 30, 75, 45), (5, 5, 15, 10)]
    assert regions(heat, 10.0) == ()


def _two_halves(i: int, swap_cell: bool = False) -> Image.Image:
    """A fixture shot: red left half, blue right half, fresh noise; `swap_cell` paints red into the blue half."""
    pixels = np.zeros((SIDE, SIDE, 3), np.float32)
    pixels[:, :112] = (200, 40, 40)
    pixels[:, 112:] = (40, 40, 200)
    if swap_cell:
        pixels[84:140, 140:196] = (200, 40, 40)  # right material, wrong place: a part fitted in the wrong slot
    pixels += np.random.default_rng([9, i]).uniform(-12, 12, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def test_a_reach_finds_the_right_material_in_the_wrong_place(tower):
    """Per-patch features of an early block are local; compared only near their own place (a part in a
    fixture), red in the blue half stands out. Compared anywhere, it matches the red half."""
    feature = "block:1"
    cells = tower.features([_two_halves(i) for i in range(6)], feature)
    identity = BankIdentity.of(tower, feature)
    anywhere = bank_from_features("fixture", identity, cells)
    near = bank_from_features("fixture", identity, cells, reach=0.15)
    query = [_two_halves(50), _two_halves(51, swap_cell=True)]
    (ok_any, bad_any), (ok_near, bad_near) = map_images(tower, anywhere, query), map_images(tower, near, query)
    assert bad_near.score > ok_near.score + 10
    row, col = bad_near.hottest_cell  # a 16 x 16 grid of 14 px patches
    assert 84 // 14 <= row <= 139 // 14 and 140 // 14 <= col <= 195 // 14
    assert bad_near.score - ok_near.score > 5 * (bad_any.score - ok_any.score)
    box = bad_near.boxes[0]
    assert box.x1 < 196 and box.x2 > 140 and box.y1 < 140 and box.y2 > 84
