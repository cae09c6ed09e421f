"""The one inspection pipeline on a real (random-init) model: order, per-image errors, progress, retrying a
failing batch one image at a time, and the `InspectionBackend` protocol both backends satisfy."""

from PIL import Image

from lriad_desktop.core.backends.engine import Inspector
from lriad_desktop.core.inspection.finding import Verdict
from lriad_desktop.core.backends.pipeline import (InspectionBackend, InspectionRequest, inspect_chunk, inspect_requests)
from lriad_desktop.core.backends.server import ServerBackend, ServerConfig


def _images(tmp_path, n):
    paths = []
    for i in range(n):
        p = tmp_path / f"part_{i}.png"
        Image.new("RGB", (64 + 8 * i, 56), (40 * i % 255, 90, 120)).save(p)
        paths.append(p)
    return paths


def test_both_backends_speak_the_protocol(tiny_model_dir):
    assert isinstance(Inspector(tiny_model_dir), InspectionBackend)
    assert isinstance(ServerBackend(ServerConfig("http://127.0.0.1:9/v1")), InspectionBackend)


def test_results_keep_request_order_with_errors_in_place_and_progress(tmp_path, inspector):
    paths = _images(tmp_path, 4)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG no")
    line_scan = Image.new("RGB", (4000, 10))  # an aspect ratio the processor refuses
    requests = [InspectionRequest(str(paths[0]), "washer"), InspectionRequest(str(tmp_path / "broken.png")),
                InspectionRequest(str(paths[1]), tag="keep me"), InspectionRequest("camera-frame", image=line_scan),
                InspectionRequest(str(paths[2])), InspectionRequest(str(tmp_path / "missing.png")),
                InspectionRequest(str(paths[3]))]
    progress = []
    results = list(inspect_requests(inspector, requests, batch_size=3, on_progress=lambda d, t: progress.append((d, t))))
    assert [r.request for r in results] == requests
    assert [r.ok for r in results] == [True, False, True, False, True, False, True]
    assert "truncated or corrupt" in results[1].error or "not an image" in results[1].error
    assert "aspect ratio" in results[3].error and results[5].error == "file not found"
    assert results[2].request.tag == "keep me"
    assert results[0].finding.object_name == "washer" and results[0].finding.image_path == str(paths[0])
    assert progress == [(3, 7), (6, 7), (7, 7)]
    # an iterable of unknown length streams through too
    streamed = list(inspect_requests(inspector, (r for r in requests[:2]), batch_size=1,
                                     on_progress=lambda d, t: progress.append((d, t))))
    assert len(streamed) == 2 and progress[-1] == (2, None)


class BatchesRunOutOfMemory:
    """The real model, on a device that has memory for one image at a time: any batch of more fails as a
    GPU short of memory would (the pipeline must then find that each image alone is fine)."""

    def __init__(self, inner: Inspector) -> None:
        self.inner, self.calls = inner, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def inspect_batch(self, images, object_names=None, image_paths=None):
        self.calls.append(len(images))
        if len(images) > 1:
            raise MemoryError("not enough memory for a batch of %d" % len(images))
        return self.inner.inspect_batch(images, object_names, image_paths)


def test_a_failing_batch_is_retried_one_image_at_a_time(tmp_path, inspector):
    paths = _images(tmp_path, 3)
    backend = BatchesRunOutOfMemory(inspector)
    checks = []
    results = inspect_chunk(backend, [InspectionRequest(str(p)) for p in paths], checkpoint=lambda: checks.append(1))
    assert backend.calls == [3, 1, 1, 1] and len(checks) == 3
    assert all(r.ok and r.finding.verdict in tuple(Verdict) for r in results)
    assert [r.finding.image_path for r in results] == [str(p) for p in paths]


def test_a_failing_single_image_is_an_error_not_an_exception(tmp_path, inspector):
    class NoMemoryAtAll(BatchesRunOutOfMemory):
        def inspect_batch(self, images, object_names=None, image_paths=None):
            raise MemoryError("out of memory")

    paths = _images(tmp_path, 2)
    results = inspect_chunk(NoMemoryAtAll(inspector), [InspectionRequest(str(p)) for p in paths])
    assert [r.error for r in results] == ["inspection failed: out of memory"] * 2
