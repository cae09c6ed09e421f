"""Inspecting in the background: the model loads and runs on the task runner's "model" lane.

The service keeps a queue of image paths and sends them to the backend (the local model, or a
model server when the settings say so) in chunks of `batch_size`, one task per chunk, through
the one inspection pipeline (`core.backends.pipeline`), so pause and cancel take effect between chunks and
each chunk's findings reach the queue as soon as they exist. An image that can't be read or
inspected comes back as an error for that image; the batch goes on.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Callable, Sequence

from PySide6.QtCore import QObject, Signal

from lriad_desktop.core.backends.engine import Inspector, ModelFolderError
from lriad_desktop.core.inspection.finding import Finding
from lriad_desktop.core.anomaly_map.banks import finding_with_map
from lriad_desktop.core.anomaly_map.stage import ChunkMaps, MapStage
from lriad_desktop.core.paths import model_folder
from lriad_desktop.core.inspection.prompting import object_key
from lriad_desktop.core.backends.pipeline import BackendUnavailable, InspectionBackend, InspectionRequest, InspectionResult
from lriad_desktop.core.backends.pipeline import inspect_chunk as inspect_requests_chunk
from lriad_desktop.core.settings import Settings
from lriad_desktop.core.store.review_store import ReviewStore, StoreError, file_sha256
from lriad_desktop.ui.tasks import TaskContext, TaskRunner

log = logging.getLogger(__name__)

InspectorFactory = Callable[[Settings], InspectionBackend]
MODEL_KEYS = ("model_dir", "adapter_dir", "device", "max_new_tokens", "constrained_answers", "cpu_threads", "inference",
              "server_url", "server_model", "server_api_key", "server_in_flight", "server_timeout_s",
              "server_processor_dir", "server_family", "server_frame", "server_max_pixels", "tiles")
# What a user can cause when a model is loaded or a server reached: shown as the message alone.
LOAD_ERRORS = (ModelFolderError, BackendUnavailable, OSError)


class ModelState(str, Enum):
    NOT_LOADED = "not loaded"
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True)
class InspectionOutcome:
    """What inspecting one image gave: a finding, or an error message for the inspector."""

    path: str
    finding: Finding | None
    error: str = ""
    sha256: str | None = None
    image_id: int | None = None  # set once recorded in the store
    inspection_id: int | None = None
    store_error: str = ""
    notices: tuple[str, ...] = ()  # e.g. a golden sample that can't be read (the image was inspected without it)


def cpu_threads(setting: int) -> int:
    """Inference threads: the setting, or all cores but one so the window keeps a core to itself."""
    return setting if setting > 0 else max(1, (os.cpu_count() or 2) - 1)


def default_inspector(settings: Settings) -> InspectionBackend:
    """The backend the settings describe: a model server, or the local model folder (the bundled model when no
    folder is set).

    Runs in the model worker; for the local model it also sets torch's CPU thread count (oversubscribed cores
    stall the UI thread and, on a busy machine, slow inference many times over).
    """
    if settings.inference == "server":
        from lriad_desktop.core.backends.server import ServerBackend, ServerConfig

        return ServerBackend(ServerConfig.from_settings(settings))
    import torch

    torch.set_num_threads(cpu_threads(settings.cpu_threads))
    return Inspector(model_folder(settings.model_dir), settings.adapter_dir or None,
                     device=settings.device, max_new_tokens=settings.max_new_tokens,
                     grammar=settings.constrained_answers)


def in_tiles(backend: InspectionBackend, settings: Settings) -> InspectionBackend:
    """The backend, inspecting large images in tiles where the Tiles setting says (`core.backends.tiles`)."""
    from lriad_desktop.core.backends.tiles import TiledBackend, TilePolicy

    policy = TilePolicy.parse(settings.tiles)
    return TiledBackend(backend, policy, tile_batch=max(1, settings.batch_size)) if policy.enabled else backend


def _outcome(result: InspectionResult) -> InspectionOutcome:
    path = result.request.path
    if result.finding is None:
        return InspectionOutcome(path, None, result.error, notices=result.notices)
    try:
        sha256 = file_sha256(path)
    except OSError:  # gone since it was read: the finding stands, the store keys it by path
        sha256 = None
    return InspectionOutcome(path, result.finding, "", sha256, notices=result.notices)


ChunkItem = tuple[str, str, tuple[str, ...]]  # path, object name, golden samples to show beside it


def inspect_chunk(backend: InspectionBackend, items: Sequence[ChunkItem], ctx: TaskContext,
                  maps: ChunkMaps | None = None) -> list[InspectionOutcome]:
    """Worker side: one chunk through the pipeline (unreadable images and failed inspections are errors per
    image; a failing batch is retried one image at a time, checking for cancel between them). With `maps`,
    each prompt carries its image's region hint and each finding the map and the fused score; the maps'
    notices ride on the chunk's first outcome."""
    requests = [InspectionRequest(path, name, references=refs, hint=maps.hint(path) if maps else "")
                for path, name, refs in items]
    outcomes = [_outcome(r) for r in inspect_requests_chunk(backend, requests, checkpoint=ctx.check)]
    if maps is None:
        return outcomes
    done = []
    for o in outcomes:
        summary = maps.summaries.get(o.path)
        rule = maps.rules.get(o.path)
        done.append(replace(o, finding=finding_with_map(o.finding, summary, rule)) if o.finding and summary else o)
    if done and maps.notices:
        done[0] = replace(done[0], notices=done[0].notices + tuple(maps.notices))
    return done


def record_outcomes(store_path: Path, outcomes: list[InspectionOutcome], names: dict[str, str]
                    ) -> list[InspectionOutcome]:
    """Worker side: write the findings to the store on the worker's own connection (the UI thread never waits
    on the disk for them); a store that can't be written leaves the outcome unrecorded, with the reason."""
    done = []
    try:
        store = ReviewStore.open(store_path, durable=False)  # an inspection can be redone; a review can't
    except StoreError as err:
        return [replace(o, store_error=str(err)) for o in outcomes]
    with store:
        for o in outcomes:
            if o.finding is None:
                done.append(o)
                continue
            try:
                image = store.add_image(o.path, names.get(o.path), sha256=o.sha256)
                insp = store.record_inspection(image.id, o.finding)
                done.append(replace(o, image_id=image.id, inspection_id=insp.id))
            except StoreError as err:
                done.append(replace(o, store_error=str(err)))
    return done


class InspectionService(QObject):
    """Loads the model and inspects queued paths, a chunk at a time, never on the UI thread."""

    stateChanged = Signal()
    outcome = Signal(object)  # InspectionOutcome
    dropped = Signal(list)  # paths taken off the queue without a result (cancel, no model)
    progress = Signal(int, int)  # done, total of the current batch
    batchFinished = Signal()

    def __init__(self, runner: TaskRunner, settings: Settings, object_name_for: Callable[[str], str],
                 factory: InspectorFactory | None = None, store_path: Path | None = None,
                 parent: QObject | None = None,
                 references_for: Callable[[str, str], tuple[str, ...]] | None = None,
                 maps: tuple[MapStage, Callable[[str], list[str]]] | None = None) -> None:
        super().__init__(parent)
        self._maps = maps  # the anomaly map stage and, per object name, its good images' paths
        self._runner = runner
        self._store_path = store_path
        self._settings = settings
        self._object_name_for = object_name_for
        self._references_for = references_for or (lambda _path, _name: ())
        self._factory = factory or default_inspector
        self._inspector: InspectionBackend | None = None
        self.state = ModelState.NOT_LOADED
        self.state_text = ""
        self._pending: deque[str] = deque()
        self._queued: set[str] = set()
        self._running = False
        self._paused = False
        self._done = 0
        self._total = 0
        self._load_generation = 0

    # --- model ------------------------------------------------------------------------
    @property
    def inspector(self) -> InspectionBackend | None:
        return self._inspector if self.state is ModelState.READY else None

    def configure(self, settings: Settings) -> None:
        """Use new settings; a changed model, adapter, device or token limit reloads the model.

        A model in use (loaded or loading) is swapped at once in the background: the very next
        chunk waits for the new one; a load still under way for the old settings is dropped.
        """
        reload = any(getattr(settings, k) != getattr(self._settings, k) for k in MODEL_KEYS)
        self._settings = settings
        if reload and self.state is not ModelState.NOT_LOADED:
            in_use = self.state in (ModelState.READY, ModelState.LOADING)
            self._release(self._inspector)
            self._inspector = None
            self._load_generation += 1
            self._set_state(ModelState.NOT_LOADED, "")
            if in_use or self._pending:
                self.load()

    def load(self) -> None:
        """Load the model in the background (no-op while loading or loaded)."""
        if self.state in (ModelState.LOADING, ModelState.READY):
            return
        self._load_generation += 1
        generation = self._load_generation
        settings, factory = self._settings, self._factory
        self._set_state(ModelState.LOADING, "loading…")
        self._runner.submit(lambda ctx: in_tiles(factory(settings), settings).load(),
                            lambda result, error: self._loaded(generation, result, error), lane="model")

    def _release(self, backend: InspectionBackend | None) -> None:
        """Close a backend no longer used, on the model lane (after a chunk still running on it)."""
        if backend is not None:
            self._runner.submit(lambda ctx: backend.close(), lambda _r, _e: None, lane="model")

    def _loaded(self, generation: int, inspector: InspectionBackend | None, error: BaseException | None) -> None:
        if generation != self._load_generation:
            self._release(inspector)
            return  # settings changed while loading: a newer load is on its way
        if error is not None:
            self._inspector = None
            message = str(error) if isinstance(error, LOAD_ERRORS) else f"{type(error).__name__}: {error}"
            if not isinstance(error, LOAD_ERRORS):
                log.error("model load failed", exc_info=error)
            self._set_state(ModelState.FAILED, message)
            self._drop_all()
            return
        self._inspector = inspector
        secs = f" in {inspector.load_seconds:.1f} s" if inspector.load_seconds is not None else ""
        self._set_state(ModelState.READY, f"ready on {inspector.device}{secs}")
        self._next_chunk()

    def _set_state(self, state: ModelState, text: str) -> None:
        self.state, self.state_text = state, text
        self.stateChanged.emit()

    @property
    def model_version(self) -> str:
        return self._inspector.model_version if self._inspector is not None else ""

    # --- queue ------------------------------------------------------------------------
    def enqueue(self, paths: Sequence[str], front: bool = False) -> list[str]:
        """Queue paths for inspection (front: next in line); returns those newly queued."""
        new = [p for p in paths if p not in self._queued]
        if not self.busy:
            self._done = self._total = 0
        if front:
            for p in paths:  # an image asked for now goes first, even if it was already waiting
                if p in self._queued and p in self._pending:
                    self._pending.remove(p)
                    self._pending.appendleft(p)
            self._pending.extendleft(reversed(new))
        else:
            self._pending.extend(new)
        self._queued.update(new)
        self._total += len(new)
        if new:
            self.progress.emit(self._done, self._total)
        if self.state is ModelState.READY:
            self._next_chunk()
        elif self._pending:
            self.load()
        return new

    def _next_chunk(self) -> None:
        if self._running or self._paused or not self._pending or self._inspector is None:
            if not self._running and not self._pending and self._total:
                self._finish_batch()
            return
        size = max(1, self._settings.batch_size)
        chunk = [self._pending.popleft() for _ in range(min(size, len(self._pending)))]
        names = {p: self._object_name_for(p) for p in chunk}
        items = [(p, names[p], self._references_for(p, names[p])) for p in chunk]
        inspector, store_path = self._inspector, self._store_path
        stage, good = self._map_inputs(items)
        hints = self._settings.region_hint

        def work(ctx: TaskContext) -> list[InspectionOutcome]:
            maps = stage.run(inspector, [(p, n) for p, n, _ in items], good, hints, ctx.check) if stage else None
            outcomes = inspect_chunk(inspector, items, ctx, maps)
            return record_outcomes(store_path, outcomes, names) if store_path is not None else outcomes

        self._running = True
        self._runner.submit(work, self._chunk_done, lane="model")

    def _map_inputs(self, items: Sequence[ChunkItem]) -> tuple[MapStage | None, dict[str, list[str]]]:
        """The map stage and each object's good images (read here, on the UI thread's store), or no stage when
        the map is off."""
        if self._maps is None or not self._settings.anomaly_map:
            return None, {}
        stage, good_for = self._maps
        good: dict[str, list[str]] = {}
        for _path, name, _refs in items:
            key = object_key(name)
            if key not in good:
                good[key] = good_for(name)
        return stage, good

    def _chunk_done(self, outcomes: list[InspectionOutcome] | None, error: BaseException | None) -> None:
        self._running = False
        if error is not None and outcomes is None:
            raise error  # inspect_chunk catches what an image can cause; anything else is a bug
        for out in outcomes or []:
            self._queued.discard(out.path)
            self._done += 1
            self.outcome.emit(out)
        self.progress.emit(self._done, self._total)
        self._next_chunk()

    def pause(self) -> None:
        """Start no new chunk until `resume`."""
        self._paused = True

    def resume(self) -> None:
        """Go on with the waiting images."""
        self._paused = False
        self._next_chunk()

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def busy(self) -> bool:
        """True while images wait or a chunk runs."""
        return self._running or bool(self._pending)

    def cancel(self) -> None:
        """Forget the images still waiting (the chunk under way finishes and is kept)."""
        self._paused = False
        self._drop_all()

    def _drop_all(self) -> None:
        dropped = list(self._pending)
        self._pending.clear()
        self._queued.difference_update(dropped)
        self._total -= len(dropped)
        if dropped:
            self.dropped.emit(dropped)
        if not self._running:
            self._finish_batch()

    def _finish_batch(self) -> None:
        self._total = self._done = 0
        self.batchFinished.emit()
