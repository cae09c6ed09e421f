"""The anomaly maps the app keeps: each object's bank (`core.anomaly_map.banks`, files beside the store), its status
for the strip beside the golden samples, and *Rebuild* in the background (the task runner's model lane, where
the model lives, with progress). Inspection maps each image through `stage` (`core.anomaly_map.stage`)."""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal

from lriad_desktop.core.anomaly_map.patch_map import AnomalyMapError, BankIdentity
from lriad_desktop.core.atomic_files import FileWriteError
from lriad_desktop.core.anomaly_map.banks import BankStatus, GoodPaths, MapBanks, choose_good_images
from lriad_desktop.core.anomaly_map.features import map_source
from lriad_desktop.core.anomaly_map.stage import MapStage
from lriad_desktop.core.inspection.prompting import object_phrase
from lriad_desktop.core.store.review_store import ReviewStore, StoreError
from lriad_desktop.core.backends.vision_features import FeatureError
from lriad_desktop.ui.tasks import TaskCancelled, TaskContext, TaskRunner

log = logging.getLogger(__name__)


class AnomalyMaps(QObject):
    """Banks per object for the model in use; `changed(object_name)` after a build, `progress(object, done,
    total)` while one runs, `notice(text)` for the inspector."""

    changed = Signal(str)
    progress = Signal(str, int, int)
    notice = Signal(str)

    def __init__(self, store: ReviewStore, runner: TaskRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self._runner = runner
        self.banks = MapBanks.beside(store.path)
        self.stage = MapStage(self.banks, store.path)
        self.identity: BankIdentity | None = None  # the model in use's, once it is loaded
        self.note = ""  # why the model in use can't give a map (a server without a local copy)
        self.building: str | None = None
        self._inspection = None
        self._pending: str | None = None
        self._build_task = None  # the running build's TaskHandle, for `cancel_build`

    def attach(self, inspection) -> None:
        """Follow the inspection service's model: the identity banks are kept under, and Rebuild's model."""
        self._inspection = inspection
        inspection.stateChanged.connect(self._model_changed)

    def use_feature(self, choice: str) -> None:
        """Compare on `choice` (`core.anomaly_map.features`: "cnn" or "tower") from now on; banks of the other are built
        again when next used."""
        if choice != self.stage.feature:
            self.stage.feature = choice
            if self._inspection is not None:
                self._model_changed()

    def good_paths(self, object_name: str) -> GoodPaths:
        """The good images a bank of the object is built from (golden samples first), read from the store."""
        try:
            good = self._store.good_images(object_name)
        except StoreError as err:
            log.warning("good images of %s: %s", object_name, err)
            return GoodPaths([], 0)
        return choose_good_images([g.path for g in good], sum(g.golden for g in good))

    def status(self, object_name: str) -> BankStatus:
        """The object's bank for the model in use against its good images now."""
        return self.banks.status(object_name, self.identity, self.good_paths(object_name), self.note)

    def _model_changed(self) -> None:
        backend = self._inspection.inspector if self._inspection is not None else None  # None unless ready
        if backend is None:
            if self.identity is not None or self.note:
                self.identity, self.note = None, ""
                self.changed.emit("")
            return

        def identify(ctx: TaskContext) -> BankIdentity:
            return BankIdentity.of(map_source(backend, self.stage.feature))

        self._runner.submit(identify, self._identified, lane="model")

    def _identified(self, identity: BankIdentity | None, error: BaseException | None) -> None:
        if isinstance(error, FeatureError):
            self.identity, self.note = None, str(error)
        elif error is not None:
            if not isinstance(error, TaskCancelled):
                log.warning("the model's vision tower: %s", error)
            return
        else:
            self.identity, self.note = identity, ""
        self.changed.emit("")
        if self._pending is not None:
            name, self._pending = self._pending, None
            self.rebuild(name)

    def rebuild(self, object_name: str) -> bool:
        """Build the object's bank again from its good images, in the background; False when it can't start."""
        if self.building is not None:
            self.notice.emit(f"The anomaly map of the {object_phrase(self.building)} is being built: a moment")
            return False
        backend = self._inspection.inspector if self._inspection is not None else None
        if backend is None:
            self._pending = object_name
            if self._inspection is not None:
                self._inspection.load()
            self.notice.emit("The model is loading: the anomaly map is rebuilt once it is ready")
            return False
        if self.note:
            self.notice.emit(f"Anomaly map off: {self.note}")
            return False
        paths = self.good_paths(object_name)
        self.building = object_name
        self.progress.emit(object_name, 0, len(paths))

        def work(ctx: TaskContext):
            return self.banks.build(map_source(backend, self.stage.feature), object_name, paths,
                                    progress=lambda done, total: ctx.progress((done, total)), check=ctx.check)

        self._build_task = self._runner.submit(work, lambda bank, err: self._built(object_name, bank, err),
                                               lane="model",
                                               on_progress=lambda value: self.progress.emit(object_name, *value))
        return True

    @property
    def waiting_for_model(self) -> str | None:
        """The object whose bank is built once the model has loaded (None: none waits)."""
        return self._pending

    def cancel_build(self) -> bool:
        """Stop the bank being built (the saved bank, if any, stays as it was), or the build waiting for the
        model to load; False when none is under way."""
        if self._pending is not None:
            self._pending = None
            return True
        if self.building is None or self._build_task is None:
            return False
        self._build_task.cancel()
        return True

    def _built(self, object_name: str, bank, error: BaseException | None) -> None:
        self.building, self._build_task = None, None
        obj = object_phrase(object_name)
        if isinstance(error, (AnomalyMapError, FeatureError, FileWriteError)):
            self.notice.emit(str(error))
        elif isinstance(error, TaskCancelled):
            pass
        elif error is not None:
            raise error
        else:
            self.identity = bank.identity
            self.notice.emit(f"Anomaly map of the {obj} rebuilt from {bank.n_images} good images in "
                             f"{bank.build_seconds:.1f} s: inspect again (I) to see it")
        self.changed.emit(object_name)
