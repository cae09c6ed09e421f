"""A file named like an image but holding PostScript never reaches Ghostscript: every image the app reads
is opened with an allow-list of raster decoders (PNG, JPEG, BMP, TIFF, WebP, GIF, PPM)."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
from PIL import EpsImagePlugin

from lriad_desktop.core.evaluation.datasets import read_dataset
from lriad_desktop.core.inspection.images import NotAnImage, RASTER_FORMATS, load_image, open_raster

ROOT = Path(__file__).resolve().parents[1]
POSTSCRIPT = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\nnewpath 0 0 moveto 64 64 lineto stroke\nshowpage\n"


@pytest.fixture
def ghostscript_spy(tmp_path, monkeypatch) -> Path:
    """A `gs` that records being run: Pillow's EPS plugin is pointed at it, as it would find a real one."""
    marker = tmp_path / "gs-was-run"
    gs = tmp_path / "bin" / "gs"
    gs.parent.mkdir()
    gs.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    gs.chmod(0o755)
    monkeypatch.setenv("PATH", f"{gs.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setattr(EpsImagePlugin, "gs_binary", str(gs))
    return marker


def test_postscript_named_png_is_refused_without_running_ghostscript(tmp_path, ghostscript_spy):
    hostile = tmp_path / "x.png"
    hostile.write_bytes(POSTSCRIPT)
    with pytest.raises(NotAnImage, match="not an image"):
        load_image(hostile)
    with pytest.raises(Exception):
        open_raster(hostile)
    assert not ghostscript_spy.exists()


def test_a_dataset_with_a_postscript_mask_never_runs_ghostscript(tmp_path, ghostscript_spy):
    from PIL import Image

    root = tmp_path / "part"
    (root / "test" / "crack").mkdir(parents=True)
    (root / "ground_truth" / "crack").mkdir(parents=True)
    Image.new("RGB", (32, 32), (90, 90, 90)).save(root / "test" / "crack" / "000.png")
    (root / "ground_truth" / "crack" / "000_mask.png").write_bytes(POSTSCRIPT)
    try:
        read_dataset(root)
    except Exception:  # refusing the set is fine; running gs is not
        pass
    assert not ghostscript_spy.exists()


def test_the_allow_list_holds_only_raster_formats():
    assert not {"EPS", "PDF", "PS", "SVG", "WMF", "EMF"} & set(RASTER_FORMATS)


def test_every_image_file_is_opened_through_the_allow_list():
    """A new `Image.open(...)` in the app or the training code would bypass the allow-list."""
    offenders = []
    for folder in ("lriad_desktop", "training"):
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "open"
                        and isinstance(node.func.value, ast.Name) and node.func.value.id == "Image"
                        and not any(k.arg == "formats" for k in node.keywords)):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
