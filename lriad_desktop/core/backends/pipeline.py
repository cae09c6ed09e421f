"""One inspection pipeline for every caller: read each image, inspect in batches, retry a failing batch one
image at a time, report progress, and give one result per request (a finding or an error for that image).

`lriad inspect`, `lriad evaluate`, the app's inspection service and training's before/after evaluation all
run through `inspect_requests` (or `inspect_chunk` for one batch), on any `InspectionBackend`: the local
transformers `Inspector` (`core.backends.engine`) or a model server over the OpenAI chat API (`core.backends.server`).

Where later work plugs in: an `InspectionRequest` is the unit a caller asks about, so per-image inputs
(golden-sample references, a tile of a larger image) become fields of it that `inspect_chunk` hands to the
backend; a finding's `logprobs` (from a server that reports them) are on the result for a confidence score.

Golden samples: a request's `references` (paths, or images already in memory) are read here with the
query; one that can't be read (deleted, damaged) becomes a notice on the result and the image is inspected
without it. The backend is only given `references=` when some request in the call has any, so a backend
written before references existed still works for images without them.
"""

from __future__ import annotations

import logging
from collections.abc import Sized
from dataclasses import dataclass
from itertools import islice
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence, Union, runtime_checkable

from PIL import Image

from lriad_desktop.core.inspection.coordinates import ModelGeometry
from lriad_desktop.core.inspection.finding import Finding
from lriad_desktop.core.inspection.images import ImageLoadError, check_model_shape, load_image
from lriad_desktop.core.inspection.references import ReferenceImage

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
                      image_paths: Sequence[str] | None = None,
                      references: Sequence[Sequence[ReferenceImage]] | None = None,
                      hints: Sequence[str] | None = None) -> Sequence[Answer]:
        """One answer per image, in order (`references[i]`: golden samples shown with image i; `hints[i]`: the
        anomaly map's region hint sentence, "" for none). Raising means the whole batch failed (the pipeline
        retries one by one)."""

    def close(self) -> None:
        """Release the model or the connections (a later `load` starts again)."""


@dataclass(frozen=True)
class InspectionRequest:
    """One image to inspect: where it is (or the image itself, e.g. a camera frame) and the object it shows.

    `references`: golden samples of the same object to show beside it (paths, or `ReferenceImage`s already
    in memory). `tag` is the caller's own value carried to the result untouched (the truth of an evaluation
    item, a reviewed image). `hint`: the anomaly map's region hint sentence to close the prompt ("" none).
    """

    path: str
    object_name: str | None = None
    image: Image.Image | None = None
    tag: Any = None
    references: tuple[str | ReferenceImage, ...] = ()
    hint: str = ""


@dataclass(frozen=True)
class InspectionResult:
    """What inspecting one request gave: a finding, or an error message for the inspector."""

    request: InspectionRequest
    finding: Finding | None
    error: str = ""
    notices: tuple[str, ...] = ()  # what the inspector should know (a reference left out, and why)

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


_ReferenceCache = dict[str, "ReferenceImage | str"]


def _reference(ref: str | ReferenceImage, geometry: ModelGeometry, cache: _ReferenceCache) -> ReferenceImage | str:
    """A golden sample ready for the model, or why it can't be used (read once per chunk)."""
    if isinstance(ref, ReferenceImage):
        return ref
    if ref not in cache:
        image = _read(InspectionRequest(ref), geometry)
        cache[ref] = image if isinstance(image, str) else ReferenceImage(ref, image)
    return cache[ref]


def _read_references(request: InspectionRequest, geometry: ModelGeometry, cache: _ReferenceCache
                     ) -> tuple[tuple[ReferenceImage, ...], tuple[str, ...]]:
    """The request's usable golden samples and a notice for each one left out."""
    usable, notices = [], []
    for ref in request.references:
        got = _reference(ref, geometry, cache)
        if isinstance(got, str):
            notices.append(f"Golden sample {ref} can't be used ({got}): {request.path or 'the image'} was "
                           "inspected without it")
        else:
            usable.append(got)
    return tuple(usable), tuple(notices)


@dataclass(frozen=True)
class _Ready:
    index: int
    request: InspectionRequest
    image: Image.Image
    references: tuple[ReferenceImage, ...]
    notices: tuple[str, ...]


def _answer_result(item: _Ready, answer: Answer) -> InspectionResult:
    if isinstance(answer, ImageError):
        return InspectionResult(item.request, None, answer.message, item.notices)
    return InspectionResult(item.request, answer, notices=item.notices)


def _failed(item: _Ready, err: Exception) -> InspectionResult:
    return InspectionResult(item.request, None, f"inspection failed: {err}", item.notices)


def _call(backend: InspectionBackend, ready: Sequence[_Ready]) -> list[Answer]:
    extra: dict[str, Any] = {"references": [r.references for r in ready]} if any(r.references for r in ready) else {}
    if any(r.request.hint for r in ready):  # only then: a backend written before hints still works
        extra["hints"] = [r.request.hint for r in ready]
    answers = list(backend.inspect_batch([r.image for r in ready], [r.request.object_name for r in ready],
                                         [r.request.path for r in ready], **extra))
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
    ready: list[_Ready] = []
    cache: _ReferenceCache = {}
    for i, req in enumerate(requests):
        image = _read(req, backend.geometry)
        if isinstance(image, str):
            results[i] = InspectionResult(req, None, image)
        else:
            ready.append(_Ready(i, req, image, *_read_references(req, backend.geometry, cache)))
    if ready:
        try:
            answers = _call(backend, ready)
            for item, answer in zip(ready, answers):
                results[item.index] = _answer_result(item, answer)
        except Exception as err:  # out of memory, a tensor the processor refuses…: find the culprit
            if len(ready) == 1:
                log.exception("inspection failed for %s", ready[0].request.path)
                results[ready[0].index] = _failed(ready[0], err)
            else:
                log.warning("a batch of %d failed (%s); retrying one image at a time", len(ready), err)
                for item in ready:
                    if checkpoint is not None:
                        checkpoint()
                    try:
                        results[item.index] = _answer_result(item, _call(backend, [item])[0])
                    except Exception as one_err:
                        log.exception("inspection failed for %s", item.request.path)
                        results[item.index] = _failed(item, one_err)
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

