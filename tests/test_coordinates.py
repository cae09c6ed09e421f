"""Coordinate frames: model pixels (Qwen2.5-VL) and 0-1000 (Qwen2-VL / Qwen3-VL), both ways."""

import json

import pytest

from lriad_desktop.core.inspection.coordinates import (CoordinateFrame, ModelGeometry, model_input_size, read_model_geometry,
                                            smart_resize, to_image_pixels, to_model_frame)
from lriad_desktop.core.inspection.finding import Box

ODD_SIZES = [(301, 217), (97, 1013), (4000, 3000), (57, 57), (1366, 769), (8000, 6000)]


@pytest.mark.parametrize("w,h", ODD_SIZES)
def test_smart_resize_matches_transformers(w, h):
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize as hf_smart_resize

    for factor, lo, hi in [(28, 56 * 56, 28 * 28 * 1280), (28, 3136, 12544), (32, 64 * 64, 32 * 32 * 768)]:
        assert smart_resize(h, w, factor, lo, hi) == hf_smart_resize(h, w, factor, lo, hi)


@pytest.mark.parametrize("frame", list(CoordinateFrame))
@pytest.mark.parametrize("w,h", ODD_SIZES)
def test_round_trip(frame, w, h):
    geo = ModelGeometry(frame=frame, max_pixels=112 * 112)
    box = Box(w * 0.13, h * 0.41, w * 0.77, h * 0.93)
    back = to_image_pixels(to_model_frame(box, (w, h), geo), (w, h), geo)
    for a, b in zip(back.as_list(None), box.as_list(None)):
        assert a == pytest.approx(b, abs=1e-6)


def test_model_pixel_frame_uses_resized_input():
    geo = ModelGeometry(frame=CoordinateFrame.MODEL_PIXELS, min_pixels=3136, max_pixels=12544)
    assert model_input_size((301, 217), geo) == (112, 84)
    # a box covering the whole model input covers the whole original image
    assert to_image_pixels((0, 0, 112, 84), (301, 217), geo).as_list() == [0, 0, 301, 217]
    # swapped corners are fixed, outside parts clipped
    assert to_image_pixels((112, 84, 56, -10), (301, 217), geo).as_list() == [150.5, 0.0, 301.0, 217.0]


def test_norm1000_frame():
    geo = ModelGeometry(frame=CoordinateFrame.NORM1000)
    assert to_image_pixels((500, 250, 1000, 1000), (97, 1013), geo).as_list(2) == [48.5, 253.25, 97.0, 1013.0]
    assert to_image_pixels((1001, 0, 1100, 10), (97, 1013), geo) is None


def test_read_geometry_defaults_and_sidecar(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"min_pixels": 3136, "max_pixels": 50176,
                                                                   "patch_size": 14, "merge_size": 2}))
    geo = read_model_geometry(tmp_path)
    assert geo.frame is CoordinateFrame.MODEL_PIXELS and geo.max_pixels == 50176
    (tmp_path / "lriad.json").write_text(json.dumps({"coordinate_frame": "norm1000"}))
    assert read_model_geometry(tmp_path).frame is CoordinateFrame.NORM1000
    (tmp_path / "lriad.json").unlink()
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen3_vl"}))
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"size": {"shortest_edge": 4096,
                                                                            "longest_edge": 65536}}))
    geo = read_model_geometry(tmp_path)
    assert geo.frame is CoordinateFrame.NORM1000 and geo.patch_size == 16 and geo.min_pixels == 4096


def test_geometry_of_saved_processor_matches_its_output(tiny_model_dir):
    """The frame we compute is the size the real processor feeds the model."""
    from PIL import Image
    from transformers import AutoProcessor

    proc = AutoProcessor.from_pretrained(tiny_model_dir)
    geo = read_model_geometry(tiny_model_dir)
    for w, h in [(301, 217), (97, 1013), (640, 480)]:
        out = proc.image_processor(images=[Image.new("RGB", (w, h))], return_tensors="pt")
        _, gh, gw = out["image_grid_thw"][0].tolist()
        assert model_input_size((w, h), geo) == (gw * geo.patch_size, gh * geo.patch_size)
