"""One inspection pipeline for every caller: read each image, inspect in batches, retry a failing batch one
image at a time, report progress, and give one result per request (a finding or an error for that image).

`lriad inspect`, `lriad evaluate`, the app's inspection service and training's before/after evaluation all
run through `inspect_requests` (or `inspect_chunk` for one batch), on any `InspectionBackend`: the local
transformers `Inspector` (`core.engine`) or a model server over the OpenAI chat API (`core.server`).

Where later work plugs in: an `InspectionRequest` is the unit a caller asks about, so per-image inputs
(golden-sample references, a tile of a larger image) become fields of it that `inspect_chunk` hands to the
backend; a finding's `logprobs` (from a server that reports them) are on the result for a confidence score.
"""

from __future__ import annotations

import logging
from collections.abc import Sized
from dataclasses import dataclass
from itertools import islice
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence, Union, runtime_checkable

from PIL import Image

from lriad_desktop.core.coordinates import ModelGeometry
from lriad_desktop.core.finding import Finding
from lriad_desktop.core.images import ImageLoadError, check_model_shape, load_image

log = logging.getLogger(__name__)


class BackendUnavailable(Exception):
    """The backend can't inspect anything (a model server that is down, refuses the key, serves no such
    model); the message says why, for the inspector."""


@dataclass(frozen=True)
class ImageError:
    """What a backend gives instead of a finding for one image it could not inspect (the batch went on)."""

    message: str


Answer = Union[Finding, ImageError]


@runtime_checkable
class InspectionBackend(Protocol):
    """Something that turns images into findings: a local model or a model server."""

    @property
    def model_version(self) -> str:
        """The name recorded with each finding (model + adapter, or the served model)."""

    @property
    def geometry(self) -> ModelGeometry:
        """How the model sees an image (box frame, resize rule)."""

    @property
    def device(self) -> str | None:
        """Where it runs, for the inspector ("cpu", "cuda", "lriad-tiny at gpu-server:8000"); None until loaded."""

    @property
    def load_seconds(self) -> float | None:
        """How long `load` took (None until loaded)."""

    @property
    def min_batch(self) -> int:
        """The smallest batch that keeps the backend busy (1 for a local model; a server: requests in flight)."""

    def load(self) -> "InspectionBackend":
        """Get ready (load weights, reach the server); idempotent; raises a clear error when it can't."""

    def inspect_batch(self, images: Sequence[Image.Image], object_names: Sequence[str | None] | None = None,
                      image_paths: Sequence[str] | None = None) -> Sequence[Answer]:
        """One answer per image, in order. Raising means the whole batch failed (the pipeline retries one by one)."""

    def close(self) -> None:
        """Release the model or the connections (a later `load` starts again)."""


@dataclass(frozen=True)
class InspectionRequest:
    """One image to inspect: where it is (or the image itself, e.g. a camera frame) and the object it shows.

    `tag` is the caller's own value carried to the result untouched (the truth of an evaluation item, a
    reviewed image).
    """

    path: str
    object_name: str | None = None
    image: Image.Image | None = None
    tag: Any = None


@dataclass(frozen=True)
class InspectionResult:
    """What inspecting one request gave: a finding, or an error message for the inspector."""

    request: InspectionRequest
    finding: Finding | None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.finding is not None


Progress = Callable[[int, "int | None"], None]
Checkpoint = Callable[[], None]


def _read(request: InspectionRequest, geometry: ModelGeometry) -> Image.Image | str:
    """The request's RGB image, or why it can't be inspected."""
    try:
        image = request.image if request.image is not None else load_image(request.path).image
        # shapes the model can't take (a 4000 x 10 line scan) fail here, alone, not in the batch
        check_model_shape(image.size, geometry)
    except ImageLoadError as err:
        return err.reason
    except OSError as err:
        return err.strerror or str(err)
    return image


def _answer_result(request: InspectionRequest, answer: Answer) -> InspectionResult:
    if isinstance(answer, ImageError):
        return InspectionResult(request, None, answer.message)
    return InspectionResult(request, answer)


def _call(backend: InspectionBackend, ready: Sequence[tuple[InspectionRequest, Image.Image]]) -> list[Answer]:
    answers = list(backend.inspect_batch([im for _, im in ready], [r.object_name for r, _ in ready],
                                         [r.path for r, _ in ready]))
    if len(answers) != len(ready):
        raise RuntimeError(f"the backend gave {len(answers)} answers for {len(ready)} images")
    return answers


def inspect_chunk(backend: InspectionBackend, requests: Sequence[InspectionRequest],
                  checkpoint: Checkpoint | None = None) -> list[InspectionResult]:
    """Inspect one batch: unreadable images become errors, the rest go to the backend in one call; if that
    call fails, each image is retried alone so only the culprit is marked. Results are in request order.

    `checkpoint` is called between model calls; it may raise to stop (cancel).
    """
    results: list[InspectionResult | None] = [None] * len(requests)
    ready: list[tuple[int, InspectionRequest, Image.Image]] = []
    for i, req in enumerate(requests):
        image = _read(req, backend.geometry)
        if isinstance(image, str):
            results[i] = InspectionResult(req, None, image)
        else:
            ready.append((i, req, image))
    if ready:
        try:
            answers = _call(backend, [(r, im) for _, r, im in ready])
            for (i, req, _), answer in zip(ready, answers):
                results[i] = _answer_result(req, answer)
        except Exception as err:  # out of memory, a tensor the processor refuses…: find the culprit
            if len(ready) == 1:
                log.exception("inspection failed for %s", ready[0][1].path)
                results[ready[0][0]] = InspectionResult(ready[0][1], None, f"inspection failed: {err}")
            else:
                log.warning("a batch of %d failed (%s); retrying one image at a time", len(ready), err)
                for i, req, image in ready:
                    if checkpoint is not None:
                        checkpoint()
                    try:
                        results[i] = _answer_result(req, _call(backend, [(req, image)])[0])
                    except Exception as one_err:
                        log.exception("inspection failed for %s", req.path)
                        results[i] = InspectionResult(req, None, f"inspection failed: {one_err}")
    return [r for r in results if r is not None]


def inspect_requests(backend: InspectionBackend, requests: Iterable[InspectionRequest], batch_size: int = 8,
                     on_progress: Progress | None = None, checkpoint: Checkpoint | None = None
                     ) -> Iterator[InspectionResult]:
    """Load the backend and inspect `requests` in batches, yielding one result per request, in order.

    The batch is at least `backend.min_batch` (a server gets enough requests to keep them all in flight).
    `on_progress(done, total)` follows each batch (total is None for an iterable of unknown length);
    `checkpoint()` runs before each model call and may raise to stop. Raises `BackendUnavailable` or the
    backend's load error when nothing can be inspected at all.
    """
    backend.load()
    total = len(requests) if isinstance(requests, Sized) else None
    size = max(1, batch_size, backend.min_batch)
    it = iter(requests)
    done = 0
    while True:
        chunk = list(islice(it, size))
        if not chunk:
            return
        if checkpoint is not None:
            checkpoint()
        results = inspect_chunk(backend, chunk, checkpoint)
        done += len(chunk)
        yield from results
        if on_progress is not None:
            on_progress(done, total)

