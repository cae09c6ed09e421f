"""Frames from a camera, a video file or a network stream (OpenCV `VideoCapture`), Qt-free.

cv2 is imported on first use so that importing core stays light. Opening a source can
block (an RTSP URL waits for its timeout), so callers open and read in a worker.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lriad_desktop.core.atomic_files import atomic_file
from lriad_desktop.core.paths import user_data_dir

URL_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")


class CaptureError(Exception):
    """A source that can't be opened or read; the message says why, for the inspector."""


@dataclass(frozen=True)
class CaptureSource:
    """Where frames come from: a camera index, a video file or a stream URL."""

    kind: str  # "device" | "file" | "url"
    value: str

    @property
    def device_index(self) -> int:
        return int(self.value)

    def describe(self) -> str:
        """The source in a few words."""
        return {"device": f"camera {self.value}", "file": Path(self.value).name}.get(self.kind, self.value)


def parse_source(text: str) -> CaptureSource:
    """A camera index ("0"), a stream URL ("rtsp://…") or a video file path; raises `CaptureError`."""
    spec = (text or "").strip()
    if not spec:
        raise CaptureError("Give a camera number (0, 1, …), a video file or a stream URL")
    if spec.isdigit():
        return CaptureSource("device", str(int(spec)))
    if spec.lower().startswith(URL_SCHEMES):
        return CaptureSource("url", spec)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise CaptureError(f"No such video file: {path}")
    return CaptureSource("file", str(path))


@dataclass(frozen=True)
class Frame:
    """One captured frame (RGB, H×W×3 uint8) and its sequence number."""

    rgb: np.ndarray
    index: int
    fps: float

    @property
    def size(self) -> tuple[int, int]:
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])

    def to_image(self) -> Image.Image:
        """The frame as a PIL image."""
        return Image.fromarray(self.rgb, "RGB")

    def preview(self, max_width: int, max_height: int) -> np.ndarray:
        """The frame shrunk to fit `max_width` × `max_height` (RGB, contiguous; never enlarged)."""
        import cv2

        h, w = self.rgb.shape[:2]
        scale = min(max_width / w, max_height / h, 1.0)
        if scale >= 1.0:
            return np.ascontiguousarray(self.rgb)
        size = (max(1, int(w * scale)), max(1, int(h * scale)))
        return cv2.resize(self.rgb, size, interpolation=cv2.INTER_AREA)


class FpsMeter:
    """Frames per second over a sliding window of recent ticks."""

    def __init__(self, window: int = 30) -> None:
        self._ticks: deque[float] = deque(maxlen=window)

    def tick(self, now: float | None = None) -> float:
        """Count one frame; returns the current rate."""
        self._ticks.append(time.perf_counter() if now is None else now)
        return self.fps

    @property
    def fps(self) -> float:
        if len(self._ticks) < 2:
            return 0.0
        span = self._ticks[-1] - self._ticks[0]
        return (len(self._ticks) - 1) / span if span > 0 else 0.0


class FrameGrabber:
    """Reads frames from one source. Video files loop and are paced at their own frame rate."""

    def __init__(self, source: CaptureSource, loop_files: bool = True) -> None:
        self.source = source
        self.loop_files = loop_files
        self._cap: Any = None
        self._count = 0
        self._meter = FpsMeter()
        self._next_due = 0.0
        self.nominal_fps = 0.0

    def open(self) -> "FrameGrabber":
        """Open the source (blocking; may take seconds for a stream); raises `CaptureError`."""
        import cv2

        src: Any = self.source.device_index if self.source.kind == "device" else self.source.value
        cap = cv2.VideoCapture(src)
        if not cap.isOpened():
            cap.release()
            raise CaptureError(self._cannot_open())
        self._cap = cap
        self.nominal_fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        return self

    def _cannot_open(self) -> str:
        if self.source.kind == "device":
            return (f"No camera at index {self.source.value}: check that it is connected and not used by "
                    "another program, or try another number")
        if self.source.kind == "file":
            return f"{Path(self.source.value).name} can't be opened as a video"
        return f"The stream {self.source.value} can't be opened (address, network or credentials)"

    @property
    def is_open(self) -> bool:
        return self._cap is not None

    def read(self) -> Frame:
        """The next frame; raises `CaptureError` when the source stops delivering."""
        import cv2

        if self._cap is None:
            self.open()
        if self.source.kind == "file" and self.nominal_fps > 0:
            delay = self._next_due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            self._next_due = max(self._next_due, time.perf_counter()) + 1.0 / self.nominal_fps
        ok, bgr = self._cap.read()
        if not ok and self.source.kind == "file" and self.loop_files and self._count > 0:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = self._cap.read()
        if not ok or bgr is None:
            raise CaptureError(f"{self.source.describe()} stopped sending frames")
        self._count += 1
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if bgr.ndim == 3 else cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
        return Frame(rgb, self._count, self._meter.tick())

    def close(self) -> None:
        """Release the source."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self) -> "FrameGrabber":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()


def captures_dir() -> Path:
    """Where snapshots and pasted images are kept (inside the user data folder)."""
    return user_data_dir() / "captures"


def save_snapshot(image: Image.Image | np.ndarray, folder: str | os.PathLike | None = None,
                  prefix: str = "capture") -> Path:
    """Save a frame as a PNG named by time (`capture-20250101-120000-123.png`) and return its path."""
    target = Path(folder) if folder is not None else captures_dir()
    target.mkdir(parents=True, exist_ok=True)
    pil = Image.fromarray(image, "RGB") if isinstance(image, np.ndarray) else image.convert("RGB")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")[:-3]
    path = target / f"{prefix}-{stamp}.png"
    n = 1
    while path.exists():
        path = target / f"{prefix}-{stamp}-{n}.png"
        n += 1
    with atomic_file(path, "wb") as fh:  # a full disk leaves no half PNG to be queued
        pil.save(fh, "PNG")
    return path
