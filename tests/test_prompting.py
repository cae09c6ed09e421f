"""The prompt's object name, t = f(object), when the inspector hasn't set one."""

import pytest

from lriad_desktop.core.inspection.prompting import DEFAULT_OBJECT, guess_object_name, user_prompt


@pytest.mark.parametrize("path, expected", [
    ("/data/mvtec_ad/bottle/test/broken_large/000.png", "bottle"),  # MVTec: above the split folder
    ("/data/mvtec_ad/metal_nut/train/good/001.png", "metal_nut"),
    ("/data/visa/candle/Data/Images/Anomaly/000.JPG", "candle"),  # VisA: sorting folders skipped
    ("/data/washer/scan_17.png", "washer"),  # a folder per product: its name
    ("/srv/line3/scan_17.png", DEFAULT_OBJECT),  # a line, a batch or a date is not what the image shows
    ("/data/washer/line3/0001.png", "washer"),
    ("/data/pcb/2026-11-30/img_001.png", "pcb"),
    ("/data/capsule/batch_07/a.png", "capsule"),
    ("/data/capsule/Lot-12/cam2/20261130_0815.png", "capsule"),
    ("/data/visa/pcb1/Data/Images/Normal/0000.JPG", "pcb1"),  # a product name with a digit stays
    ("/app/resources/samples/washer_scratch.jpg", "washer"),  # a generic folder: the file name's lead word
    ("/home/ann/Pictures/part123.jpg", "part"),
    ("/home/ann/.local/share/lriad-desktop/captures/2026-11-29_101010.png", DEFAULT_OBJECT),
    ("/x/good/IMG_0001.png", DEFAULT_OBJECT),
    ("/003.png", DEFAULT_OBJECT),
])
def test_object_name_is_guessed_from_where_the_image_lies(path, expected):
    assert guess_object_name(path) == expected


def test_guessed_name_reads_naturally_in_the_prompt():
    assert "image of a metal nut." in user_prompt(guess_object_name("/d/metal_nut/test/scratch/1.png"))


def test_the_name_does_not_depend_on_how_the_path_is_typed(tmp_path, monkeypatch):
    """`bad/good1.jpg` typed from its parent folder, by its absolute path, with `..` in it or through a link all
    name the same object (and so get the same prompt and verdict)."""
    part = tmp_path / "line7" / "washer" / "bad"
    part.mkdir(parents=True)
    (part / "good1.jpg").write_bytes(b"")
    (tmp_path / "link").symlink_to(tmp_path / "line7" / "washer")
    monkeypatch.chdir(part.parent)
    typed = ["bad/good1.jpg", "./bad/good1.jpg", str(part / "good1.jpg"), "../washer/bad/good1.jpg",
             str(tmp_path / "link" / "bad" / "good1.jpg")]
    names = {guess_object_name(p) for p in typed}
    assert names == {"washer"}
    monkeypatch.chdir(part)
    assert guess_object_name("good1.jpg") == "washer"
