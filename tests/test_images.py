"""Image loading: every odd format becomes RGB; every bad file becomes one typed, clear error."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from lriad_desktop.core.inspection.coordinates import ModelGeometry
from lriad_desktop.core.inspection.images import (MAX_IMAGE_PIXELS, ImageLoadError, ImageNotFound, ImageTooLarge, NotAnImage,
                                       TruncatedImage, UnsupportedShape, check_model_shape, iter_image_files,
                                       load_for_model, load_image)


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


def _declared_png(path, width, height):
    """A PNG whose header declares `width` x `height` but holds one pixel's data (cheap to test limits with)."""
    buf = io.BytesIO()
    Image.new("1", (1, 1)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    ihdr = bytearray(data[16:29])
    ihdr[0:8] = struct.pack(">II", width, height)
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(ihdr)) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))
    return path


def test_the_pixel_limit_is_the_apps_not_pillows(tmp_path):
    """MAX_IMAGE_PIXELS (200 MP) is the limit: an image between Pillow's 89.5 MP and it is not refused for its
    size, and above it every size gets the same message."""
    assert MAX_IMAGE_PIXELS == 200_000_000
    # 100 MP and 180 MP: past Pillow's own warning (89.5 MP) and error (179 MP) limits, within the app's
    for side in (10_000, 13_500):
        with pytest.raises(TruncatedImage):  # read as far as its data goes: the size was accepted
            load_image(_declared_png(tmp_path / f"{side}.png", side, side))
    for width, height, mp in ((15_000, 15_000, 225), (30_000, 30_000, 900), (2**31 - 1, 2**31 - 1, None)):
        with pytest.raises(ImageTooLarge, match="the limit is 200 MP") as err:
            load_image(_declared_png(tmp_path / f"{width}.png", width, height))
        if mp is not None:
            assert f"{mp} MP" in err.value.reason
    # a lower limit for one call still works
    with pytest.raises(ImageTooLarge, match=r"700x700 \(0.5 MP\); the limit is 0.4 MP"):
        load_image(_declared_png(tmp_path / "small.png", 700, 700), max_pixels=400_000)


def test_empty_file_says_so(tmp_path):
    (tmp_path / "zero.png").write_bytes(b"")
    with pytest.raises(NotAnImage, match="empty"):
        load_image(tmp_path / "zero.png")


def test_more_odd_modes_and_animations(tmp_path):
    frames = [Image.new("P", (40, 30), i) for i in (5, 9, 12)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    Image.new("RGBA", (40, 30), (0, 0, 0, 0)).save(tmp_path / "anim.webp", save_all=True,
                                                    append_images=[Image.new("RGBA", (40, 30), (255, 0, 0, 255))])
    Image.new("RGB", (40, 30)).save(tmp_path / "pages.tif", save_all=True, append_images=[Image.new("RGB", (400, 300))])
    Image.new("LA", (40, 30), (10, 0)).save(tmp_path / "la.png")
    Image.new("P", (40, 30), 0).save(tmp_path / "ptrans.png", transparency=0)
    Image.new("I;16", (40, 30), 3000).save(tmp_path / "i16.tif")
    Image.new("F", (40, 30), 3.5).save(tmp_path / "float.tif")
    Image.new("I", (40, 30), 70_000).save(tmp_path / "i32.tif")
    Image.new("CMYK", (40, 30)).save(tmp_path / "cmyk.tif")
    for name in ("anim.gif", "anim.webp", "pages.tif", "la.png", "ptrans.png", "i16.tif", "float.tif", "i32.tif",
                 "cmyk.tif"):
        loaded = load_image(tmp_path / name)
        assert loaded.image.mode == "RGB" and loaded.size == (40, 30), name  # the first frame or page
    assert load_image(tmp_path / "la.png").image.getpixel((0, 0)) == (255, 255, 255)  # transparent: on white
    assert load_image(tmp_path / "ptrans.png").image.getpixel((0, 0)) == (255, 255, 255)


def test_shapes_the_model_cannot_take_are_refused_with_one_line(tmp_path):
    geometry = ModelGeometry(patch_size=14, merge_size=2)
    for size in ((4000, 10), (10, 4000), (4000, 19), (5001, 25)):
        with pytest.raises(UnsupportedShape, match="200:1") as err:
            check_model_shape(size, geometry, "in/linescan.png")
        assert str(err.value).startswith("in/linescan.png: image is ") and "\n" not in str(err.value)
    for size in ((27, 27), (8, 8), (1, 1), (27, 500)):
        with pytest.raises(UnsupportedShape, match="at least 28 pixels"):
            check_model_shape(size, geometry)
    for size in ((28, 28), (4000, 28), (5600, 28), (8000, 6000)):
        check_model_shape(size, geometry)  # these the processor takes
    Image.new("RGB", (4000, 10)).save(tmp_path / "linescan.png")
    with pytest.raises(UnsupportedShape):
        load_for_model(tmp_path / "linescan.png", geometry)
    assert issubclass(UnsupportedShape, ImageLoadError)  # every caller's per-image error handling applies
    Image.new("RGB", (64, 48)).save(tmp_path / "ok.png")
    assert load_for_model(tmp_path / "ok.png", geometry).size == (64, 48)


def test_shape_check_agrees_with_the_image_processor():
    """Every shape the check lets through, the Qwen-VL processor resizes; every one it refuses (all at least one
    token wide here, so for their aspect), the processor refuses too."""
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    geometry = ModelGeometry()
    for w, h in ((28, 5600), (5600, 28), (28, 5601), (5601, 28), (30, 6001), (29, 5800), (28, 28), (100, 7000)):
        try:
            check_model_shape((w, h), geometry)
        except UnsupportedShape:
            with pytest.raises(ValueError):
                smart_resize(h, w, geometry.factor, geometry.min_pixels, geometry.max_pixels)
        else:
            smart_resize(h, w, geometry.factor, geometry.min_pixels, geometry.max_pixels)


def test_opening_a_dataset_never_queues_its_masks(tmp_path):
    from lriad_desktop.core.inspection.images import is_mask_folder

    root = tmp_path / "bottle"
    for folder in ("train/good", "test/good", "test/broken", "ground_truth/broken"):
        (root / folder).mkdir(parents=True)
    for folder, name in (("train/good", "000.png"), ("test/good", "001.png"), ("test/broken", "002.png"),
                         ("ground_truth/broken", "002_mask.png")):
        Image.new("RGB", (8, 8)).save(root / folder / name)
    visa = tmp_path / "candle" / "Data"
    for folder in ("Images/Anomaly", "Masks/Anomaly"):
        (visa / folder).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(visa / folder / "003.png")
    found = [p.relative_to(tmp_path).as_posix() for p in iter_image_files([tmp_path])]
    assert found == ["bottle/test/broken/002.png", "bottle/test/good/001.png", "bottle/train/good/000.png",
                     "candle/Data/Images/Anomaly/003.png"]
    assert is_mask_folder(root / "ground_truth") and not is_mask_folder(root / "test")
    masks = tmp_path / "masks-of-my-own" / "Masks"  # a folder of the user's called Masks, no Images beside it
    masks.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(masks / "004.png")
    assert not is_mask_folder(masks) and masks / "004.png" in list(iter_image_files([tmp_path]))
    mask_file = root / "ground_truth" / "broken" / "002_mask.png"  # asked for by name or by its folder: given
    assert list(iter_image_files([mask_file])) == [mask_file]
    assert list(iter_image_files([root / "ground_truth"])) == [mask_file]
