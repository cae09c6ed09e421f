"""Registration onto a bank's reference (`core.anomaly_map.registration`): a part moved in its fixture is put back, and the
map it gives is drawn where the part really is."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from lriad_desktop.core.anomaly_map.patch_map import BankIdentity, MemoryBank, build_bank, map_images
from lriad_desktop.core.anomaly_map.registration import Registration, align_mask, unwarp
from lriad_desktop.core.backends.vision_features import VisionTower
from training.synthetic_data.samples import PRODUCT_KINDS, generate_line_sample

BUNDLED = Path(__file__).resolve().parents[1] / "resources" / "models" / "lriad-tiny"


def _capsule(i: int) -> Image.Image:
    return generate_line_sample(np.random.default_rng([11, i]), "capsule").image


def _moved(image: Image.Image, degrees: float, dx: float, dy: float) -> Image.Image:
    w, h = image.size
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    m[:, 2] += (dx, dy)
    return Image.fromarray(cv2.warpAffine(np.asarray(image), m, (w, h), borderMode=cv2.BORDER_REPLICATE))


def test_a_moved_part_is_put_back_onto_the_reference():
    reference = _capsule(0)
    reg = Registration.from_image(reference)
    moved = _moved(reference, 4.0, 14, -9)
    aligned, warp = reg.align(moved)
    assert warp is not None and aligned.size == moved.size
    inner = (slice(40, -40), slice(40, -40))
    before = np.abs(np.asarray(moved, float) - np.asarray(reference, float))[inner].mean()
    after = np.abs(np.asarray(aligned, float) - np.asarray(reference, float))[inner].mean()
    assert after < 0.4 * before
    # a spot on the aligned frame goes back to where the part was moved to, and a mask comes the other way
    heat = np.zeros(moved.size[::-1], np.float32)
    heat[200:210, 150:160] = 1.0
    back = unwarp(heat, warp)
    ys, xs = np.nonzero(back > 0.5)
    y, x = ys.mean(), xs.mean()
    w, h = moved.size
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 4.0, 1.0)
    m[:, 2] += (14, -9)
    ex, ey = m @ np.array([155.0, 205.0, 1.0])
    assert abs(x - ex) <= 6 and abs(y - ey) <= 6  # the fit runs on a 160 px copy; a wrong direction is ~40 px off
    mask = (back > 0.5).astype(np.uint8) * 255
    assert align_mask(mask, warp)[200:210, 150:160].mean() > 100


def test_a_fit_that_moves_too_far_or_fails_leaves_the_image_as_it_is():
    reg = Registration.from_image(_capsule(0))
    flat = Image.new("RGB", (300, 200), (40, 40, 40))
    image, warp = reg.align(flat)
    assert warp is None and image is flat
    assert reg.align(_moved(_capsule(0), 40.0, 0, 0))[1] is None  # 40 degrees: not a fixture's jitter


def test_a_false_fit_on_a_woven_texture_is_dropped():
    # ECC locks this good fabric image onto a repeat of the weave (5 degrees, 21 px): the warp matches the
    # reference worse than the image as it is, and its replicated border lit the map (score 13 against ~1)
    kind = list(PRODUCT_KINDS).index("fabric")
    reference = generate_line_sample(np.random.default_rng([918_273, kind, 0]), "fabric").image
    good = generate_line_sample(np.random.default_rng([918_274, kind, 2]), "fabric").image
    assert Registration.from_image(reference).fit(good) is None
    assert Registration.from_image(_capsule(0)).fit(_moved(_capsule(0), 3.0, 8, 5)) is not None  # a real move


@pytest.fixture(scope="module")
def tower() -> VisionTower:
    return VisionTower.load(BUNDLED)


def test_an_aligned_bank_finds_a_defect_on_a_moved_part_in_original_pixels(tower, tmp_path):
    good = [_capsule(i) for i in range(6)]
    bank = build_bank(tower, "capsule", good)
    assert bank.registration is not None
    defective = _moved(_capsule(50), 3.0, 10, 6)
    blot = (210, 200, 236, 226)  # a dark blot on the capsule, in the moved image's pixels
    defective.paste((15, 15, 15), blot)
    clean = _moved(_capsule(51), -2.0, -8, 5)
    clean_map, defect_map = map_images(tower, bank, [clean, defective])
    assert defect_map.warp is not None and defect_map.heat.shape == defective.size[::-1]
    y, x = np.unravel_index(int(np.argmax(defect_map.heat)), defect_map.heat.shape)
    assert blot[0] - 14 <= x <= blot[2] + 14 and blot[1] - 14 <= y <= blot[3] + 14
    assert defect_map.score > clean_map.score + 3
    saved = MemoryBank.from_file(bank.to_file(tmp_path / "capsule.bank"), BankIdentity.of(tower))
    assert saved.registration is not None and np.array_equal(saved.registration.reference, bank.registration.reference)
    assert map_images(tower, saved, [defective])[0].score == pytest.approx(defect_map.score, rel=1e-4)
