"""Image loading: every odd format becomes RGB; every bad file becomes one typed, clear error."""

import io

import numpy as np
import pytest
from PIL import Image

from lriad_desktop.core.images import (ImageNotFound, ImageTooLarge, NotAnImage, TruncatedImage, iter_image_files,
                                       load_image)


def _png(path, im):
    im.save(path)
    return path


def test_modes_become_rgb(tmp_path):
    arr16 = (np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 20).astype(np.uint16)
    cases = {
        "gray.png": Image.new("L", (30, 20), 128),
        "gray16.png": Image.fromarray(arr16),
        "rgba.png": Image.new("RGBA", (30, 20), (255, 0, 0, 0)),
        "palette.png": Image.new("P", (30, 20), 3),
        "bilevel.png": Image.new("1", (30, 20), 1),
        "cmyk.jpg": Image.new("CMYK", (30, 20), (0, 255, 255, 0)),
    }
    for name, im in cases.items():
        loaded = load_image(_png(tmp_path / name, im))
        assert loaded.image.mode == "RGB", name
        assert loaded.size == im.size
    # fully transparent pixels are composited on white
    assert load_image(tmp_path / "rgba.png").image.getpixel((0, 0)) == (255, 255, 255)
    # 16-bit data keeps its contrast instead of saturating
    g16 = np.asarray(load_image(tmp_path / "gray16.png").image)[..., 0]
    assert g16.min() < 10 and g16.max() > 200
    # CMYK cyan-free red stays red
    r, g, b = load_image(tmp_path / "cmyk.jpg").image.getpixel((5, 5))
    assert r > 200 and g < 60 and b < 60


def test_exif_orientation_applied(tmp_path):
    im = Image.new("RGB", (40, 20), (0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    im.save(tmp_path / "rot.jpg", exif=exif)
    assert load_image(tmp_path / "rot.jpg").size == (20, 40)


def test_bad_files_are_typed_errors(tmp_path):
    (tmp_path / "text.png").write_text("not an image at all")
    with pytest.raises(NotAnImage, match="not an image"):
        load_image(tmp_path / "text.png")
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(buf, "PNG")
    (tmp_path / "cut.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(TruncatedImage, match="truncated or corrupt"):
        load_image(tmp_path / "cut.png")
    with pytest.raises(ImageNotFound):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageNotFound):
        load_image(tmp_path)
    Image.new("L", (400, 300)).save(tmp_path / "big.png")
    with pytest.raises(ImageTooLarge, match="limit"):
        load_image(tmp_path / "big.png", max_pixels=100_000)


def test_unicode_paths_and_folder_walk(tmp_path):
    folder = tmp_path / "Prüfteile 检查"
    (folder / "sub").mkdir(parents=True)
    Image.new("RGB", (10, 10)).save(folder / "b.png")
    Image.new("RGB", (10, 10)).save(folder / "sub" / "a.JPG")
    (folder / "notes.txt").write_text("x")
    (folder / ".hidden.png").write_text("x")
    found = list(iter_image_files([folder]))
    assert [p.name for p in found] == ["b.png", "a.JPG"]
    assert load_image(found[0]).size == (10, 10)
    assert [p.name for p in iter_image_files([folder], recursive=False)] == ["b.png"]
