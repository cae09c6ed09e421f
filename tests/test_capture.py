"""Capture without Qt: sources, frames from a generated video file, fps, snapshots, clear errors."""

import numpy as np
import pytest
from PIL import Image

from lriad_desktop.core.line.capture import CaptureError, FpsMeter, FrameGrabber, parse_source, save_snapshot


def write_video(path, frames=6, size=(96, 64), fps=30.0):
    """An MJPG .avi with a moving bright square (works headless)."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    for i in range(frames):
        frame = np.full((size[1], size[0], 3), 40, np.uint8)
        frame[10:30, 5 + i * 5:25 + i * 5] = (0, 0, 255)  # BGR red
        writer.write(frame)
    writer.release()
    return path


def test_parse_source(tmp_path):
    assert parse_source(" 0 ").kind == "device" and parse_source("2").device_index == 2
    assert parse_source("rtsp://cam.local/stream").kind == "url"
    assert parse_source("http://10.0.0.2:8080/video").kind == "url"
    video = write_video(tmp_path / "v.avi")
    assert parse_source(str(video)).kind == "file"
    with pytest.raises(CaptureError, match="No such video file"):
        parse_source(str(tmp_path / "missing.avi"))
    with pytest.raises(CaptureError):
        parse_source("  ")


def test_frames_from_a_video_file_loop(tmp_path):
    video = write_video(tmp_path / "v.avi", frames=3)
    with FrameGrabber(parse_source(str(video))) as grabber:
        assert grabber.nominal_fps == pytest.approx(30.0)
        frames = [grabber.read() for _ in range(5)]  # 3 frames, then it loops
    assert [f.index for f in frames] == [1, 2, 3, 4, 5]
    first = frames[0]
    assert first.size == (96, 64) and first.rgb.dtype == np.uint8
    r, g, b = first.rgb[20, 15]
    assert r > 150 and g < 100 and b < 100  # converted to RGB
    assert frames[-1].fps > 0


def test_no_camera_and_bad_files_are_messages(tmp_path):
    with pytest.raises(CaptureError, match="No camera at index 97"):
        FrameGrabber(parse_source("97")).open()
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"not a video")
    with pytest.raises(CaptureError, match="can't be opened as a video"):
        FrameGrabber(parse_source(str(junk))).open()


def test_fps_meter_and_snapshot(tmp_path):
    meter = FpsMeter()
    for t in range(11):
        meter.tick(t * 0.1)
    assert meter.fps == pytest.approx(10.0)
    frame = np.zeros((20, 30, 3), np.uint8)
    frame[..., 1] = 200
    a = save_snapshot(frame, tmp_path)
    b = save_snapshot(frame, tmp_path)
    assert a != b and a.suffix == ".png"
    assert Image.open(a).size == (30, 20) and Image.open(a).getpixel((0, 0)) == (0, 200, 0)
