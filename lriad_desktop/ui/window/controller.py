"""The thin controller between the widgets and core: queue, store, settings, inspection and review edits.

Widgets call these methods and listen to the signals; every store write happens here, at the
moment of the action, through `StoreWrites` (at once on the UI thread, or — when another program
holds the store — in the background with a status line, so the window never waits on a lock).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

from PySide6.QtCore import QObject, Signal

from lriad_desktop.core.store import review as rv
from lriad_desktop.core.inspection.confidence import DEFAULT_THRESHOLD
from lriad_desktop.core.defect_kinds import DEFECT_KINDS, display_name
from lriad_desktop.core.inspection.finding import Box, Defect, Verdict
from lriad_desktop.core.inspection.golden_default import references_per_image
from lriad_desktop.core.inspection.images import is_image_file, iter_image_files
from lriad_desktop.core.store.review import ImageStatus, ReviewHistory
from lriad_desktop.core.settings import Settings, SettingsError, save_settings
from lriad_desktop.core.paths import bundled_model_dir
from lriad_desktop.core.inspection.prompting import guess_object_name
from lriad_desktop.core.store.review_store import GoldenSample, ReviewStore, StoreError, object_name_in
from lriad_desktop.ui.maps.anomaly_maps import AnomalyMaps
from lriad_desktop.ui.maps.golden_samples import GoldenSamples
from lriad_desktop.ui.improve.model_version_actions import ModelVersionActions
from lriad_desktop.ui.review.inspection import InspectionOutcome, InspectionService, InspectorFactory
from lriad_desktop.ui.line.publisher import PublishingService
from lriad_desktop.ui.review.queue_model import QueueEntry, QueueModel, ThumbnailLoader
from lriad_desktop.ui.review.store_writes import StoreWrites
from lriad_desktop.ui.review.reinspection import Reinspection
from lriad_desktop.ui.tasks import TaskContext, TaskRunner
from lriad_desktop.ui.improve.training_process import TrainingService
from lriad_desktop.core.plurals import count

log = logging.getLogger(__name__)
SCAN_CHUNK = 256


def _scan(paths: Sequence[str], recursive: bool, ctx: TaskContext) -> tuple[int, int]:
    """Worker: walk files and folders lazily, sending found images in chunks; returns (found, skipped)."""
    chunk: list[str] = []
    found = skipped = 0
    last = time.monotonic()
    for p in iter_image_files(paths, recursive=recursive, skip_masks=True):  # a dataset's ground_truth/ isn't parts
        ctx.check()
        if not is_image_file(p):
            skipped += 1
            continue
        chunk.append(str(p.resolve()))
        found += 1
        if len(chunk) >= SCAN_CHUNK or time.monotonic() - last > 0.1:
            ctx.progress(chunk, coalesce=False)
            chunk, last = [], time.monotonic()
    if chunk:
        ctx.progress(chunk, coalesce=False)
    return found, skipped


class AppController(ModelVersionActions, QObject):
    """Owns the store, the settings, the task runner, the queue, inspection and the review history."""

    entryChanged = Signal(int)  # row
    scanFinished = Signal(int)  # images found
    imagesAdded = Signal(int, int)  # first new row, how many images a scan added to the queue
    imagesLanded = Signal(int, int)  # the same for images that landed in a watched folder (the current one stays)
    notice = Signal(str)  # a message for the inspector
    settingsChanged = Signal(object)  # Settings
    historyChanged = Signal()
    versionsChanged = Signal()  # a model version was activated or discarded

    def __init__(self, store: ReviewStore, settings: Settings, runner: TaskRunner | None = None,
                 inspector_factory: InspectorFactory | None = None, persist_settings: bool = True,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.persist_settings = persist_settings
        self.store = store
        self.settings = settings
        self.runner = runner or TaskRunner(self)
        self.writes = StoreWrites(store, self.runner, self)
        self.writes.notice.connect(self.notice)
        self.queue = QueueModel(ThumbnailLoader(self.runner), self)
        self.history = ReviewHistory(store, reviewer=self.reviewer_name)
        self.history.on_change.append(self._review_changed)
        self._object_names = store.object_names()
        self._thresholds = store.thresholds()
        self._rows_by_image: dict[int, int] = {}
        self.queue.layoutChanged.connect(self._rows_moved)
        self._scans = 0
        self.golden = GoldenSamples(store, self)
        self.maps = AnomalyMaps(store, self.runner, self)  # banks beside the store, on the chosen features
        self.maps.use_feature(settings.map_feature)
        self.inspection = InspectionService(self.runner, settings, self.object_name_for, inspector_factory,
                                            store.path, self, references_for=self.references_for,
                                            maps=(self.maps.stage, self.maps.good_paths))
        self.maps.attach(self.inspection)
        self.inspection.outcome.connect(self._on_outcome)
        self.inspection.dropped.connect(self._on_dropped)
        self.publishing = PublishingService(settings, self)  # findings over MQTT, when the settings say so
        self.publishing.notice.connect(self.notice)
        self.training = TrainingService(self)
        self.training.finished.connect(
            lambda outcome: self.reconcile_training("found when a training run ended") if outcome != "done" else None)
        self.reinspection = Reinspection(self)
        self.reinspection.finished.connect(lambda summary: self.notice.emit(summary.text()))

    def _rows_moved(self) -> None:  # the queue was sorted: image ids point at new rows
        self._rows_by_image = {e.image_id: row for row, e in enumerate(self.queue.entries()) if e.image_id is not None}

    # --- getting images in ------------------------------------------------------------
    def add_paths(self, paths: Sequence[str | Path], inspect: bool = False, remember: bool = True,
                  landed: bool = False) -> None:
        """Queue image files and (recursively, lazily) the images in folders; with `inspect` (a watched
        folder), the ones never inspected are inspected whatever the auto-inspect setting says; `remember`
        keeps them for the next start (the last queue reopens). `landed` (a watched folder's arrivals): they are
        marked new in the queue and announced by `imagesLanded`, never made the current image, so a key the
        inspector presses still goes to the image on screen."""
        items = [str(Path(p).expanduser()) for p in paths]
        if not items:
            return
        folders = [p for p in items if Path(p).is_dir()]
        s = self.settings
        for folder in reversed(folders):
            s = s.with_recent_folder(str(Path(folder).resolve()))
        if remember:
            s = s.with_queued(tuple(str(Path(p).resolve()) for p in items))
        if s != self.settings:
            self.update_settings(s)
        self._scans += 1
        recursive = self.settings.recursive_folders
        added: dict[str, int] = {"first": -1, "count": 0}
        self.runner.submit(lambda ctx: _scan(items, recursive, ctx),
                           lambda res, err: self._scan_done(items, res, err, added, landed), lane="io",
                           on_progress=lambda found: self._add_scanned(found, added, inspect, landed))

    @property
    def scanning(self) -> bool:
        return self._scans > 0

    def _add_scanned(self, paths: list[str], added: dict[str, int] | None = None, inspect: bool = False,
                     landed: bool = False) -> None:
        try:
            known = self.store.lookup_paths(paths)
        except StoreError as err:
            self.notice.emit(str(err))
            known = {}
        entries = []
        for p in paths:
            state = known.get(p)
            if state is None:
                entries.append(QueueEntry(p, threshold=self.threshold_for(p), landed=landed))
            else:
                entries.append(QueueEntry(p, state.image.id, state.finding, state.inspection_id, state.review,
                                          threshold=self.threshold_for(p), landed=landed))
        rows = self.queue.add_entries(entries)
        if added is not None and rows:
            added["first"] = rows[0] if added["first"] < 0 else added["first"]
            added["count"] += len(rows)
        for row in rows:
            e = self.queue.entry(row)
            if e.image_id is not None:
                self._rows_by_image[e.image_id] = row
        if self.settings.auto_inspect or inspect:
            self.inspect_rows([r for r in rows if self.queue.entry(r).finding is None])

    def _scan_done(self, items: list[str], result: tuple[int, int] | None, error: BaseException | None,
                   added: dict[str, int] | None = None, landed: bool = False) -> None:
        self._scans -= 1
        if error is not None:
            raise error
        found, skipped = result or (0, 0)
        added_n = added["count"] if added is not None else found
        if landed:  # the watch says what landed; the inspector stays on the image on screen
            if added is not None and added["count"]:
                self.imagesLanded.emit(added["first"], added["count"])
            self.scanFinished.emit(found)
            return
        if found == 0:
            self.notice.emit("No images found in " + ", ".join(Path(p).name or p for p in items))
        else:
            where = Path(items[0]).name if len(items) == 1 else f"{len(items)} files and folders"
            bits = [f"Added {count(added_n, 'image')} from {where}"]
            if found > added_n:
                bits.append(f"{found - added_n} already queued")
            if skipped:
                bits.append(f"{count(skipped, 'file')} skipped: not images")
            self.notice.emit(" · ".join(bits))
        if added is not None and added["count"]:
            self.imagesAdded.emit(added["first"], added["count"])
        self.scanFinished.emit(found)

    # --- object names (t = f(object)) --------------------------------------------------
    def object_name_for(self, path: str) -> str:
        """The object name for an image: remembered for it or its folder, else guessed from its path."""
        return object_name_in(self._object_names, path) or guess_object_name(path)

    def object_name_scope(self, path: str) -> str | None:
        """The image or folder whose remembered name applies to `path` (None: none remembered)."""
        p = Path(path)
        return next((str(s) for s in (p, *p.parents) if self._object_names.get(str(s))), None)

    def set_object_name(self, scope: str, name: str) -> None:
        """Remember `name` for a folder or image (written at once, or as soon as the store is free)."""
        def then(names: dict[str, str]) -> None:
            self._object_names = names
            self._apply_thresholds()

        def work(store: ReviewStore) -> dict[str, str]:
            store.set_object_name(scope, name)
            return store.object_names()

        self.writes.write(work, then, f"Object name of {Path(scope).name}")

    def threshold_for(self, path: str) -> float:
        """The decision threshold of the image's object (the store's, else the default 0.5)."""
        return self.object_threshold(self.object_name_for(path))

    def object_threshold(self, object_name: str) -> float:
        """An object's decision threshold (the store's, else the default 0.5)."""
        return self._thresholds.get(object_name, DEFAULT_THRESHOLD)

    def set_threshold(self, object_name: str, threshold: float | None) -> bool:
        """Save an object's threshold (None: back to the default) and re-decide its queued images."""
        try:
            self.store.set_threshold(object_name, threshold)
            self._thresholds = self.store.thresholds()
        except StoreError as err:
            self.notice.emit(str(err))
            return False
        self._apply_thresholds()
        return True

    def _apply_thresholds(self) -> None:
        for row, entry in enumerate(self.queue.entries()):
            t = self.threshold_for(entry.path)
            if t != entry.threshold:
                self.queue.update(row, threshold=t)
                self.entryChanged.emit(row)

    # --- inspection -------------------------------------------------------------------
    def inspect_rows(self, rows: Sequence[int], front: bool = False) -> None:
        """Queue these rows for inspection (front: before anything waiting)."""
        paths = [self.queue.entry(r).path for r in rows]
        queued = self.inspection.enqueue(paths, front=front)
        self.queue.set_busy([r for r in (self.queue.row_of(p) for p in queued) if r is not None], True)

    def inspect_all(self) -> int:
        """Queue every image not inspected yet (or that failed); returns how many."""
        rows = [r for r in range(self.queue.rowCount())
                if self.queue.entry(r).status in (ImageStatus.NOT_INSPECTED, ImageStatus.ERROR)]
        self.inspect_rows(rows)
        return len(rows)

    def reinspect(self, flagged_only: bool) -> int:
        """Inspect again, with the model in use, the images whose review disagrees with the model (or every
        inspected or reviewed image); when they are back, a notice says how many now agree with the review.
        Returns how many were queued."""
        rows = []
        for r in range(self.queue.rowCount()):
            entry = self.queue.entry(r)
            if entry.error:
                continue
            if flagged_only:
                wanted = entry.review is not None and entry.review.review.disagrees
            else:
                wanted = entry.finding is not None or entry.review is not None
            if wanted:
                rows.append(r)
        if not rows:
            return 0
        self.reinspection.start([self.queue.entry(r).path for r in rows], self.version_name(), flagged_only)
        self.inspect_rows(rows)
        return len(rows)

    def version_name(self) -> str:
        """The name of the model in use: its registered version ('lriad-tiny-v2') or its folder."""
        try:
            version = self.model_in_use()
        except StoreError:
            version = None
        if version is not None:
            return version.name
        return Path(self.settings.model_dir).name if self.settings.model_dir else bundled_model_dir().name

    def _on_outcome(self, out: InspectionOutcome) -> None:
        if out.finding is not None:
            self.publishing.publish(out.finding, out.path)
        for text in out.notices:
            self.notice.emit(text)
        row = self.queue.row_of(out.path)
        if row is None:
            return
        if out.finding is None:
            self.queue.update(row, error=out.error, busy=False)
            self.entryChanged.emit(row)
            self.reinspection.dropped([out.path])
            return
        image_id, inspection_id = out.image_id, out.inspection_id
        try:
            if image_id is None and not out.store_error:  # not recorded by the worker: record it here
                image_id = self.store.add_image(out.path, self.object_name_for(out.path), sha256=out.sha256).id
                inspection_id = self.store.record_inspection(image_id, out.finding).id
            current = self.store.current_review(image_id) if image_id is not None else None
        except StoreError as err:
            self.notice.emit(str(err))
            image_id, current = None, None
        if out.store_error:
            self.notice.emit(out.store_error)
        if image_id is None:
            self.queue.update(row, finding=out.finding, error="", busy=False)
        else:
            self._rows_by_image[image_id] = row
            self.queue.update(row, image_id=image_id, finding=out.finding, inspection_id=inspection_id, error="",
                              busy=False, review=current)
        self.entryChanged.emit(row)
        self.reinspection.back(self.queue.entry(row))

    def _on_dropped(self, paths: list[str]) -> None:
        self.queue.set_busy([r for r in (self.queue.row_of(p) for p in paths) if r is not None], False)
        self.reinspection.dropped(paths)

    # --- review -----------------------------------------------------------------------
    def accept(self, row: int) -> bool:
        """Agree with the model's finding for this image (written at once); False when there is none."""
        entry = self.queue.entry(row)
        review = rv.acceptance(entry.finding, entry.inspection_id)
        if review is None:
            self.notice.emit("Nothing to accept: inspect the image first" if entry.finding is None else
                             "The model's answer couldn't be read: set the verdict (V) or draw a box (B) to flag it")
            return False
        current = entry.review.review if entry.review else None
        if current is not None and current == review:
            return True
        return self._write(row, review, "Accept")

    def reviewer_name(self) -> str:
        """Who signs the reviews: the name the inspector gave, else the login name."""
        return self.settings.reviewer_name.strip() or rv.current_reviewer()

    def edit(self, row: int, change: Callable[[rv.Review], rv.Review], text: str) -> bool:
        """Apply one review edit (a function of the current review) and write it at once. The result is made
        against the finding on screen, and its kind (accept, verdict flag, label or box correction) decided
        against that finding."""
        entry = self.queue.entry(row)
        if entry.error:
            self.notice.emit(f"{entry.name} can't be read: {entry.error}")
            return False
        base = rv.starting_point(entry.finding, entry.review.review if entry.review else None, entry.inspection_id)
        try:
            new = rv.classified(replace(change(base), inspection_id=entry.inspection_id or base.inspection_id),
                                entry.finding)
        except (IndexError, ValueError) as err:
            self.notice.emit(f"{text}: {err}")
            return False
        if entry.review is not None and new == entry.review.review:
            return False
        return self._write(row, new, text)

    def _write(self, row: int, review: rv.Review, text: str) -> bool:
        """Write a review (the image added first if the store doesn't know it yet); it becomes the edit to undo."""
        entry = self.queue.entry(row)
        path, known, label = entry.path, entry.image_id, f"{text} ({entry.name})"
        name = None if known is not None else self.object_name_for(path)

        who = self.history.reviewer()  # the name the app signs reviews with

        def work(store: ReviewStore) -> tuple[int, rv.ReviewRecord]:
            image_id = known if known is not None else store.add_image(path, name).id
            return image_id, store.save_review(image_id, review, who)

        def then(written: tuple[int, rv.ReviewRecord]) -> None:
            image_id, record = written
            row_now = self.queue.row_of(path)
            if row_now is not None:
                self.queue.entry(row_now).image_id = image_id
                self._rows_by_image[image_id] = row_now
            self.history.record(image_id, review, label, record)

        return self.writes.write(work, then, label, key=path)

    def toggle_verdict(self, row: int) -> bool:
        """Flag: normal ↔ defective."""
        return self.edit(row, rv.with_verdict_toggled, "Flag verdict")

    def set_verdict(self, row: int, verdict: Verdict) -> bool:
        """Flag: the verdict is `verdict`."""
        return self.edit(row, lambda r: rv.with_verdict(r, verdict), "Flag verdict")

    def add_box(self, row: int, box: Box, label: str = "", replacing: int | None = None) -> bool:
        """A new defect at this box (image pixels), with no type until one is chosen (`label`); or, with
        `replacing`, that defect's box redrawn (it keeps its type)."""
        if replacing is not None:
            return self.edit(row, lambda r: rv.with_defect_box(r, replacing, box), "Redraw box")
        return self.edit(row, lambda r: rv.with_defect_added(r, Defect(label, box)), "Draw box")

    def set_box(self, row: int, index: int, box: Box) -> bool:
        """The defect at `index` is at `box` (moved or resized)."""
        return self.edit(row, lambda r: rv.with_defect_box(r, index, box), "Move box")

    def delete_defect(self, row: int, index: int) -> bool:
        """Flag: the defect at `index` removed."""
        return self.edit(row, lambda r: rv.with_defect_removed(r, index), "Delete box")

    def set_label(self, row: int, index: int, label: str) -> bool:
        """Flag: the defect at `index` has type `label`."""
        return self.edit(row, lambda r: rv.with_defect_label(r, index, label), "Change label")

    def set_note(self, row: int, note: str) -> bool:
        """A note for the image (written with the current judgement)."""
        return self.edit(row, lambda r: rv.with_note(r, note), "Note")

    def undo(self) -> int | None:
        """Undo the last review edit; returns the row of the image it changed."""
        return self._step(self.history.undo, "Nothing to undo", "Undone")

    def redo(self) -> int | None:
        """Redo the last undone edit; returns the row of the image it changed."""
        return self._step(self.history.redo, "Nothing to redo", "Redone")

    def _step(self, fn: Callable[[], rv.ReviewEdit | None], empty: str, done: str) -> int | None:
        if self.writes.waiting:
            n = self.writes.waiting
            self.notice.emit(f"Wait a moment: {count(n, 'change')} {'is' if n == 1 else 'are'} still waiting for the "
                             "review store")
            return None
        try:
            edit = fn()
        except StoreError as err:
            self.notice.emit(str(err))
            return None
        if edit is None:
            self.notice.emit(empty)
            return None
        self.notice.emit(f"{done}: {edit.text}")
        return self._rows_by_image.get(edit.image_id)

    def reload_reviews(self, paths: Sequence[str]) -> None:
        """Read the records and reviews of queued images again, after a background task wrote them."""
        for path, state in self.store.lookup_paths(paths).items():
            row = self.queue.row_of(path)
            if row is not None:
                self.queue.update(row, image_id=state.image.id, review=state.review)
                self._rows_by_image[state.image.id] = row
                self.entryChanged.emit(row)

    def _review_changed(self, image_id: int) -> None:
        row = self._rows_by_image.get(image_id)
        if row is not None:
            self.queue.update(row, review=self.store.current_review(image_id))
            self.entryChanged.emit(row)
        self.historyChanged.emit()

    # --- golden samples (references beside each image of an object) -------------------------
    def reference_count(self) -> int:
        """Golden samples beside each image: the setting, or (as the model says) what the model folder's
        lriad.json says the model takes (none unless it says so)."""
        s = self.settings
        folder = s.server_processor_dir if s.inference == "server" else str(s.model_dir or bundled_model_dir())
        return references_per_image(s.reference_count, folder)

    def references_for(self, path: str, object_name: str | None = None) -> tuple[str, ...]:
        """The golden samples an image is inspected beside: the first K of its object's (K: the setting)."""
        name = object_name or self.object_name_for(path)
        try:
            return self.golden.references_for(path, name, self.reference_count())
        except StoreError as err:
            self.notice.emit(str(err))
            return ()

    def toggle_golden(self, row: int) -> bool:
        """Make an image judged normal a golden sample of its object, or stop using it if it is one."""
        entry = self.queue.entry(row)
        name = self.object_name_for(entry.path)
        review = entry.review.review if entry.review else None
        try:
            sample = self.golden.sample_of(entry.image_id, name) if entry.image_id is not None else None
            if sample is not None:
                return self.remove_golden(sample)
            if review is None or review.verdict is not Verdict.NORMAL:
                self.notice.emit("Only an image judged normal can be a golden sample: accept a normal finding "
                                 "(Space) or flag it normal first")
                return False
            if entry.image_id is None:  # its review is still waiting for the store
                self.notice.emit(f"{entry.name} is still being saved: mark it again in a moment")
                return False
            self.golden.add(entry.image_id, name)
        except StoreError as err:
            self.notice.emit(str(err))
            return False
        n = len(self.golden.of(name))
        self.notice.emit(f"{entry.name} is a golden sample of “{name}” ({n} in all)")
        return True

    def remove_golden(self, sample: GoldenSample) -> bool:
        """Stop using a golden sample (the image and its review stay)."""
        try:
            self.golden.remove(sample)
        except StoreError as err:
            self.notice.emit(str(err))
            return False
        self.notice.emit(f"{Path(sample.path).name} is no longer a golden sample of “{sample.object_name}”")
        return True

    def known_labels(self) -> list[str]:
        """Defect types for the label picker, as the inspector reads them: the store's, most used first, then
        the known kinds' names (one entry per kind, however it was spelt)."""
        try:
            used = [display_name(label) for label in self.store.known_labels()]
        except StoreError:
            used = []
        return list(dict.fromkeys(used + [k.name for k in DEFECT_KINDS]))

    # --- settings and shutdown ----------------------------------------------------------
    def update_settings(self, settings: Settings) -> None:
        """Use and save new settings (not saved in a one-off run such as the screenshot mode)."""
        self.settings = settings
        if self.persist_settings:
            try:
                save_settings(settings)
            except SettingsError as err:
                self.notice.emit(str(err))
        self.inspection.configure(settings)
        self.publishing.configure(settings)
        self.maps.use_feature(settings.map_feature)
        self.settingsChanged.emit(settings)

    def shutdown(self) -> None:
        """Stop background work: waits for the writes under way and a training process to end, for a model
        call at most a moment (`runner.left_running` counts what it left) — the store is then up to date."""
        self.training.stop()
        self.inspection.cancel()
        self.runner.shutdown(wait=True)
        self.publishing.close()
