"""Synthetic product images and defects: shapes, masks, boxes, determinism, writers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from training.synthetic_data.samples import (
    DEFECT_LABELS,
    PRODUCT_KINDS,
    Defect,
    Sample,
    as_side_by_side,
    defects_from_folder_of_good_images,
    generate_dataset,
    generate_sample,
    model_view,
    synthesize_defect,
    write_mvtec_layout,
)

SMALL = (176, 144)  # width, height: small and not square, to keep the tests fast


def _mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _union(boxes: list[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes),
            max(b[2] for b in boxes), max(b[3] for b in boxes))


def _gradient(w: int = 220, h: int = 180) -> Image.Image:
    ys, xs = np.mgrid[:h, :w]
    arr = np.stack([xs * 255 / w, ys * 255 / h, 128 + 60 * np.sin(xs / 9.0)], axis=2)
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))


def test_required_kinds_and_labels_exist():
    expected = {"fabric", "metal", "wood", "leather", "tile", "carpet",
                "washer", "bottle", "screw", "pcb", "capsule"}
    assert expected <= set(PRODUCT_KINDS)
    assert DEFECT_LABELS == ("scratch", "crack", "hole", "contamination", "missing_part",
                             "deformation", "color")
    for kind in PRODUCT_KINDS.values():
        assert kind.object_name and kind.surface


@pytest.mark.parametrize("kind", sorted(PRODUCT_KINDS))
def test_each_kind_renders_a_good_image(kind):
    sample = generate_sample(np.random.default_rng(7), kind, False, SMALL)
    assert isinstance(sample, Sample)
    assert sample.image.mode == "RGB" and sample.image.size == SMALL
    assert sample.mask.shape == (SMALL[1], SMALL[0]) and sample.mask.dtype == np.uint8
    assert not sample.mask.any() and not sample.anomalous and sample.defects == ()
    assert sample.kind == kind and sample.object_name == PRODUCT_KINDS[kind].object_name
    assert np.asarray(sample.image).std() > 2  # not a flat colour

    pixels, obj = PRODUCT_KINDS[kind].render(np.random.default_rng(1), *SMALL)
    assert pixels.shape == (SMALL[1], SMALL[0], 3) and pixels.dtype == np.uint8
    if PRODUCT_KINDS[kind].is_part:
        assert obj is not None and obj.shape == (SMALL[1], SMALL[0])
        assert 0.02 < obj.mean() <= 1.0
    else:
        assert obj is None


def test_renders_vary_in_size_and_look():
    samples = [generate_sample(np.random.default_rng(i), "washer", False) for i in range(6)]
    sizes = {s.image.size for s in samples}
    assert len(sizes) >= 4
    assert all(160 <= w <= 512 and 160 <= h <= 512 for w, h in sizes)
    assert any(w != h for w, h in sizes)
    means = [np.asarray(s.image).reshape(-1, 3).mean(0) for s in samples]
    assert np.ptp(np.array(means), axis=0).max() > 20  # colour / lighting jitter


@pytest.mark.parametrize("label", DEFECT_LABELS)
@pytest.mark.parametrize("kind", ["tile", "washer", "screw"])
def test_each_label_gives_a_mask_whose_box_is_the_defect_box(label, kind):
    for seed in range(3):
        sample = generate_sample(np.random.default_rng(seed), kind, label, SMALL)
        assert sample.anomalous and sample.mask.any()
        assert set(np.unique(sample.mask)) <= {0, 255}
        assert all(d.label == label for d in sample.defects)
        boxes = [d.box for d in sample.defects]
        assert _mask_box(sample.mask) == _union(boxes)
        for d in sample.defects:
            x1, y1, x2, y2 = d.box
            assert 0 <= x1 < x2 <= SMALL[0] and 0 <= y1 < y2 <= SMALL[1]
            assert x2 - x1 >= 4 and y2 - y1 >= 4
            assert d.severity in ("subtle", "obvious") and d.appearance


def test_single_defect_box_is_tight_and_pixels_change_only_inside_mask():
    for i, label in enumerate(DEFECT_LABELS):
        rng = np.random.default_rng(100 + i)
        pixels, obj = PRODUCT_KINDS["capsule"].render(rng, *SMALL)
        before = Image.fromarray(pixels)
        after, mask, defect = synthesize_defect(before, rng, label, obj)
        assert isinstance(defect, Defect) and defect.label == label
        assert defect.box == _mask_box(mask)
        changed = (np.asarray(after) != pixels).any(axis=2)
        assert changed.any()
        assert not (changed & (mask == 0)).any()
        assert not ((mask > 0) & ~obj).any()


def test_two_defects_happen_sometimes_and_do_not_overlap():
    twos = [s for s in generate_dataset(60, 11, kinds=["tile"], good_fraction=0.0, size=(160, 160))
            if len(s.defects) == 2]
    assert 1 <= len(twos) <= 20
    for s in twos:
        a, b = s.defects
        assert a.label == b.label
        assert not (a.box[0] < b.box[2] and b.box[0] < a.box[2] and a.box[1] < b.box[3] and b.box[1] < a.box[3])


def test_defect_sizes_vary():
    sides = []
    for s in generate_dataset(40, 5, kinds=["metal", "carpet"], good_fraction=0.0, size=(200, 200)):
        x1, y1, x2, y2 = s.defects[0].box
        sides.append(max(x2 - x1, y2 - y1) / 200)
    assert min(sides) < 0.12 and max(sides) > 0.3


def test_good_samples_have_empty_masks_and_defect_none_mixes():
    goods = list(generate_dataset(8, 2, good_fraction=1.0, size=SMALL))
    assert all(not s.anomalous and not s.mask.any() for s in goods)
    mixed = [generate_sample(np.random.default_rng(i), "tile", None, SMALL) for i in range(16)]
    assert 0 < sum(s.anomalous for s in mixed) < 16


def test_dataset_is_deterministic_for_a_seed():
    def dump(seed):
        return [(np.asarray(s.image).tobytes(), s.mask.tobytes(), s.kind, s.defects)
                for s in generate_dataset(6, seed, size=SMALL)]

    assert dump(3) == dump(3)
    assert dump(3) != dump(4)


def test_dataset_respects_kinds_labels_and_good_fraction():
    samples = list(generate_dataset(10, 9, kinds=["pcb", "wood"], labels=["hole"], good_fraction=0.0,
                                    size=SMALL))
    assert {s.kind for s in samples} <= {"pcb", "wood"}
    assert all(s.anomalous and s.defects[0].label == "hole" for s in samples)


def test_unknown_names_are_rejected():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        generate_sample(rng, "spaceship", False, SMALL)
    with pytest.raises(ValueError):
        generate_sample(rng, "tile", "dent", SMALL)
    with pytest.raises(ValueError):
        synthesize_defect(_gradient(), rng, "dent")


@pytest.mark.parametrize("label", DEFECT_LABELS)
def test_synthesize_defect_on_an_arbitrary_image(label):
    image = _gradient()
    rng = np.random.default_rng(21)
    out, mask, defect = synthesize_defect(image, rng, label)
    assert out.size == image.size and out.mode == "RGB"
    assert mask.shape == (180, 220) and mask.any()
    assert defect.box == _mask_box(mask)

    obj = np.zeros((180, 220), bool)
    obj[40:150, 120:200] = True  # the "part" is only this rectangle
    out, mask, defect = synthesize_defect(image, rng, label, obj)
    assert mask.any() and not ((mask > 0) & ~obj).any()
    assert defect.box == _mask_box(mask)
    changed = (np.asarray(out) != np.asarray(image)).any(axis=2)
    assert not (changed & ~obj).any()


def test_synthesize_defect_rejects_a_mismatched_or_empty_object_mask():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        synthesize_defect(_gradient(), rng, "hole", np.ones((10, 10), bool))
    with pytest.raises(ValueError):
        synthesize_defect(_gradient(), rng, "hole", np.zeros((180, 220), bool))


def test_write_mvtec_layout(tmp_path: Path):
    root = write_mvtec_layout(tmp_path / "synth", 2, seed=1, kinds=["tile", "washer"],
                              labels=["hole", "crack"], size=(160, 160))
    assert root == tmp_path / "synth"
    for kind in ("tile", "washer"):
        base = root / kind
        assert sorted(p.name for p in (base / "train" / "good").iterdir()) == ["000.png", "001.png"]
        assert sorted(p.name for p in (base / "test" / "good").iterdir()) == ["000.png", "001.png"]
        assert sorted(p.name for p in (base / "test").iterdir()) == ["crack", "good", "hole"]
        assert not (base / "ground_truth" / "good").exists()
        for label in ("hole", "crack"):
            for i in range(2):
                img = Image.open(base / "test" / label / f"{i:03d}.png")
                mask = Image.open(base / "ground_truth" / label / f"{i:03d}_mask.png")
                assert mask.mode == "L" and mask.size == img.size and img.mode == "RGB"
                values = np.unique(np.asarray(mask))
                assert set(values) <= {0, 255} and 255 in values


def test_defects_from_folder_of_good_images(tmp_path: Path):
    folder = tmp_path / "door_hinges"
    (folder / "batch2").mkdir(parents=True)
    _gradient(200, 170).save(folder / "a.png")
    _gradient(180, 190).convert("L").save(folder / "batch2" / "b.JPG")
    (folder / "notes.txt").write_text("not an image")
    samples = list(defects_from_folder_of_good_images(folder, 5, seed=3, labels=["scratch", "hole"]))
    assert len(samples) == 5
    sizes = set()
    for s in samples:
        assert s.kind == "user" and s.object_name == "door hinges"
        assert s.surface == "the usual surface of this part"
        assert s.anomalous and s.defects[0].label in ("scratch", "hole")
        assert s.image.mode == "RGB" and s.mask.shape == (s.image.size[1], s.image.size[0])
        assert _mask_box(s.mask) == _union([d.box for d in s.defects])
        sizes.add(s.image.size)
    assert sizes == {(200, 170), (180, 190)}
    again = list(defects_from_folder_of_good_images(folder, 5, seed=3, labels=["scratch", "hole"]))
    assert [s.defects for s in again] == [s.defects for s in samples]

    with pytest.raises(FileNotFoundError):
        list(defects_from_folder_of_good_images(tmp_path / "empty_dir_missing", 1, seed=0))


def test_one_vocabulary_of_defect_kinds_drives_synthesis_reasoning_and_rewards():
    from lriad_desktop.core.defect_kinds import DEFECT_KINDS, NEAR_KINDS, normalise_label
    from training.synthetic_data.reasoning import LABEL_WORDS, label_of_text
    from training.recipes.rewards import label_credit
    from training.synthetic_data.defects import RENDERERS

    names = {k.name for k in DEFECT_KINDS}
    assert tuple(RENDERERS) == DEFECT_LABELS == tuple(k.label for k in DEFECT_KINDS)  # every kind is painted
    for kind in DEFECT_KINDS:
        assert normalise_label(kind.label) == kind.name and set(kind.near) <= names
        assert all(normalise_label(word) == kind.name for word in kind.synonyms)
        assert LABEL_WORDS[kind.label] == kind.words and label_of_text(f"I see {kind.phrase} here.") == kind.label
        for other in kind.near:
            assert label_credit(kind.label, other) == label_credit(other, kind.label) == 0.5
    assert frozenset({"scratch", "crack"}) in NEAR_KINDS and label_credit("stain", "contamination") == 1.0


@pytest.mark.parametrize("kind", ["washer", "pcb", "fabric"])
def test_a_golden_sample_is_the_same_product_moved_and_leaves_the_sample_unchanged(kind):
    plain = generate_sample(np.random.default_rng([3, 1]), kind=kind, defect=True, size=(120, 90))
    paired = generate_sample(np.random.default_rng([3, 1]), kind=kind, defect=True, size=(120, 90), reference=True)
    assert plain.reference is None and paired.reference is not None
    assert np.array_equal(np.asarray(plain.image), np.asarray(paired.image)) and plain.defects == paired.defects
    ref, img = np.asarray(paired.reference, np.float32), np.asarray(paired.image, np.float32)
    assert paired.reference.size == paired.image.size and not np.array_equal(ref, img)
    other = np.asarray(generate_sample(np.random.default_rng([4, 1]), kind=kind, defect=False,
                                       size=(120, 90)).image, np.float32)
    # the same colours: the golden sample's mean colour is closer to the image's than another product's is
    assert np.abs(ref.mean((0, 1)) - img.mean((0, 1))).sum() < np.abs(other.mean((0, 1)) - img.mean((0, 1))).sum() + 5


def test_side_by_side_view_moves_boxes_and_mask_into_the_right_half():
    from lriad_desktop.core.inspection.side_by_side import HALF_SIZE

    sample = generate_sample(np.random.default_rng([5, 2]), kind="capsule", defect="hole", size=(112, 80),
                             reference=True)
    view = model_view(sample)
    hw, hh = HALF_SIZE
    assert view.image.size == (2 * hw, hh) and view.reference is None and view.mask.shape == (hh, 2 * hw)
    sx, sy = hw / 112, hh / 80
    for before, after in zip(sample.defects, view.defects):
        assert abs(after.box[0] - (before.box[0] * sx + hw)) <= 1 and abs(after.box[3] - before.box[3] * sy) <= 1
    assert not view.mask[:, :hw].any() and view.mask[:, hw:].any()
    ys, xs = np.nonzero(view.mask)
    box = view.defects[0].box
    assert box[0] <= xs.min() and xs.max() < box[2] + 1 and box[1] <= ys.min() and ys.max() < box[3] + 1
    assert model_view(generate_sample(np.random.default_rng(0))).reference is None
    with pytest.raises(ValueError):
        as_side_by_side(generate_sample(np.random.default_rng(0)))
