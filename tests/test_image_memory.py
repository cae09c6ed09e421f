"""An image's pixel count alone does not bound what loading it takes: a 16-bit 14000 x 14000 PNG of about
380 KB (zeros compress 1000 to 1) decodes to 392 MB and, through the 16-bit → 8-bit conversion, took
5.4 GB. Loading judges the memory from the header's size and mode and refuses with one message first."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lriad_desktop.core.inspection.images import ImageTooLarge, check_decoded_size, load_image

REPO = Path(__file__).resolve().parents[1]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_16bit_png(path: Path, width: int, height: int) -> Path:
    """A real, whole 16-bit greyscale PNG of zeros, compressed row by row (nothing large is held here)."""
    packer = zlib.compressobj(9)
    row = b"\0" * (1 + 2 * width)  # filter byte, then two bytes per pixel
    parts = [packer.compress(row) for _ in range(height)]
    parts.append(packer.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(parts))
                     + _chunk(b"IEND", b""))
    return path


def test_a_16_bit_14000_square_png_is_refused_before_decoding(tmp_path):
    png = write_16bit_png(tmp_path / "frame16.png", 14_000, 14_000)
    assert png.stat().st_size < 600_000
    # in a child process held to 1.5 GB of address space: decoding would need 392 MB for the pixels alone and
    # gigabytes for the conversion, so only a refusal from the header gets through with the message
    code = ("import resource, sys\n"
            "resource.setrlimit(resource.RLIMIT_AS, (1536 * 1024 ** 2, 1536 * 1024 ** 2))\n"
            "from lriad_desktop.core.inspection.images import ImageTooLarge, load_image\n"
            "try:\n    load_image(sys.argv[1])\nexcept ImageTooLarge as err:\n    print(err.reason)\n"
            # VmHWM is this program's own peak; ru_maxrss would carry the forking test runner's over exec
            "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')][0])\n")
    res = subprocess.run([sys.executable, "-c", code, str(png)], capture_output=True, text=True, cwd=REPO,
                         timeout=300, env={"PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1", "PATH": "/usr/bin"})
    assert res.returncode == 0, res.stderr[-2000:]
    reason, peak_kb = res.stdout.strip().splitlines()
    assert reason.startswith("image is 14000x14000 16-bit (196 MP); loading it would take about 4.7 GB")
    assert "save it smaller, or as 8-bit" in reason
    assert int(peak_kb) < 350 * 1024  # the 392 MB of pixels were never decoded


def test_a_16_bit_frame_of_a_real_camera_size_still_loads(tmp_path):
    frame = (np.arange(2448 * 2048, dtype=np.uint32) % 4096).astype(np.uint16).reshape(2048, 2448)  # 12-bit, 5 MP
    Image.fromarray(frame).save(tmp_path / "camera.png")
    loaded = load_image(tmp_path / "camera.png")
    assert loaded.size == (2448, 2048) and loaded.source_mode.startswith("I;16")


def test_the_budget_depends_on_the_mode():
    check_decoded_size("rgb.png", "RGB", (14_000, 14_000))  # 8-bit RGB of the same size fits (1.1 GB)
    with pytest.raises(ImageTooLarge, match="14000x14000 16-bit"):
        check_decoded_size("grey16.png", "I;16", (14_000, 14_000))
    with pytest.raises(ImageTooLarge, match="RGBA"):
        check_decoded_size("alpha.png", "RGBA", (14_000, 14_000))
