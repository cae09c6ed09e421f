"""*Teach a Product* (Model menu): a cold start in two minutes, with no training.

The inspector names the product and gives its good images — a folder (a dataset's `ground_truth/` masks are
left out) or the images selected in the queue. The dialog records them in the background as good images of
the product (`core.anomaly_map.teaching`: a normal review each, golden samples only when the model's folder says it takes
references), then builds the product's anomaly-map bank (`AnomalyMaps.rebuild`, whatever feature the app's
maps use) with progress; Cancel stops either step. Once built, *Inspect a Folder…* queues a folder of parts
under the product's name and inspects them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QButtonGroup, QCompleter, QDialog, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QProgressBar, QPushButton, QRadioButton, QVBoxLayout, QWidget)

from lriad_desktop.core.anomaly_map.banks import MIN_FUSED_BANK
from lriad_desktop.core.paths import model_folder
from lriad_desktop.core.inspection.prompting import object_key, object_phrase
from lriad_desktop.core.store.review_store import ReviewStore, StoreError
from lriad_desktop.core.anomaly_map.teaching import (Taught, TeachError, check_product_name, good_images_in,
                                         model_takes_references, references_wanted, teach_good_images)
from lriad_desktop.ui.tasks import TaskCancelled, TaskContext, TaskHandle

if TYPE_CHECKING:  # passed in by the window; importing it at run time would point back up at the window
    from lriad_desktop.ui.window.controller import AppController

INTRO = ("Name the product and give the app a folder of its <b>good</b> images (twenty or more is a good start). "
         "They become the product's good images, and its anomaly map is built from them: no training. "
         "Then inspect: the map marks what is unlike them.")


class TeachProductDialog(QDialog):
    """Name, good images, progress; `taught` once the images are recorded, `built` once the map is."""

    def __init__(self, controller: AppController, selected: Sequence[str] = (), suggested_name: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Teach a Product")
        self.setMinimumWidth(560)
        self.controller = controller
        self.selected = [str(p) for p in selected]
        self.folder: str | None = None
        self.found: list[str] = []
        self.taught: Taught | None = None
        self.built = False
        self.stage = "idle"  # idle, scanning, recording, building, done
        self._task: TaskHandle | None = None
        self._notices: list[str] = []
        self._started = 0.0
        self._build()
        self.name_edit.setText(suggested_name)
        if self.selected:
            self.selection_radio.setChecked(True)
        self._update()

    # --- layout -----------------------------------------------------------------------------
    def _build(self) -> None:
        intro = QLabel(INTRO)
        intro.setWordWrap(True)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("e.g. ball screw")
        names = sorted(set(self.controller.store.object_names().values()))
        self.name_edit.setCompleter(QCompleter(names, self))
        self.name_edit.textChanged.connect(lambda _t: self._update())
        self.folder_radio = QRadioButton("A folder of good images")
        n = len(self.selected)
        self.selection_radio = QRadioButton(f"The {n} images selected in the queue" if n else
                                            "Images selected in the queue (select two or more there first)")
        self.selection_radio.setEnabled(bool(self.selected))
        self.folder_radio.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.folder_radio)
        group.addButton(self.selection_radio)
        self.folder_radio.toggled.connect(lambda _on: self._update())
        self.folder_button = QPushButton("Choose Folder…")
        self.folder_button.clicked.connect(self.choose_folder)
        self.folder_label = QLabel("No folder chosen")
        self.folder_label.setObjectName("meta")
        self.folder_label.setWordWrap(True)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_radio)
        folder_row.addWidget(self.folder_button)
        folder_row.addStretch(1)
        form = QFormLayout()
        form.addRow("Product", self.name_edit)
        sources = QVBoxLayout()
        sources.addLayout(folder_row)
        sources.addWidget(self.folder_label)
        sources.addWidget(self.selection_radio)
        form.addRow("Good images", sources)
        self.references_note = QLabel(self._references_text())
        self.references_note.setObjectName("meta")
        self.references_note.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.hide()
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.teach_button = QPushButton("Teach")
        self.teach_button.setObjectName("primary")
        self.teach_button.clicked.connect(self.teach)
        self.inspect_button = QPushButton("Inspect a Folder…")
        self.inspect_button.setObjectName("primary")
        self.inspect_button.clicked.connect(self.inspect_folder)
        self.inspect_button.hide()
        self.inspect_queued_button = QPushButton()
        self.inspect_queued_button.clicked.connect(self.inspect_queued)
        self.inspect_queued_button.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.teach_button)
        buttons.addWidget(self.inspect_queued_button)
        buttons.addWidget(self.inspect_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(20, 16, 20, 16)
        lay.addWidget(intro)
        lay.addLayout(form)
        lay.addWidget(self.references_note)
        lay.addWidget(self.bar)
        lay.addWidget(self.status)
        lay.addLayout(buttons)
        self.teach_button.setDefault(True)

    def _references_text(self) -> str:
        c = self.controller
        if self._golden_wanted_count() > 0:
            return (f"The model in use takes golden samples: the first {c.settings.reference_count} good images also "
                    "become the references it is shown beside each image, if the product has none yet.")
        return "The images teach the anomaly map only; the model is not shown them (its folder takes no references)."

    def _golden_wanted_count(self) -> int:
        c = self.controller
        takes = model_takes_references(model_folder(c.settings.model_dir))
        return c.settings.reference_count if takes else 0

    # --- choosing ---------------------------------------------------------------------------
    def choose_folder(self) -> None:
        """Ask for the folder of good images."""
        folder = QFileDialog.getExistingDirectory(self, "A folder of good images of the product",
                                                  self.folder or self.controller.settings.last_open_folder or "")
        if folder:
            self.set_folder(folder)

    def set_folder(self, folder: str) -> None:
        """Teach from this folder: its images are counted in the background (masks left out)."""
        self.folder = folder
        self.found = []
        self.folder_radio.setChecked(True)
        self.folder_label.setText(f"{folder} · counting its images…")
        self.stage = "scanning"
        self._update()
        self._task = self.controller.runner.submit(lambda ctx: good_images_in([folder], ctx.check),
                                                   lambda found, err: self._scanned(folder, found, err), lane="io")

    def _scanned(self, folder: str, found: list[str] | None, error: BaseException | None) -> None:
        if folder != self.folder:
            return
        self._task, self.stage = None, "idle"
        self.found = list(found or [])
        if isinstance(error, TaskCancelled):
            self.folder_label.setText(folder)
        elif error is not None:
            raise error
        else:
            n = len(self.found)
            self.folder_label.setText(f"{folder} · {n} image{'s' if n != 1 else ''}" if n else
                                      f"{folder} · no images in it (nor in its sub-folders)")
            if not self.name_edit.text().strip() and self.found:
                self.name_edit.setText(self.controller.object_name_for(self.found[0]))
        self._update()

    def images(self) -> list[str]:
        """The good images to teach from: the folder's, or the queue selection's."""
        return list(self.selected) if self.selection_radio.isChecked() else list(self.found)

    def _update(self) -> None:
        busy = self.stage in ("scanning", "recording", "building")
        idle = self.stage == "idle"
        self.teach_button.setEnabled(idle and bool(self.name_edit.text().strip()) and bool(self.images()))
        self.teach_button.setVisible(self.stage != "done")
        self.inspect_button.setVisible(self.stage == "done")
        queued = self.queued_rows()
        self.inspect_queued_button.setText(f"Inspect {len(queued)} Queued Image{'s' if len(queued) != 1 else ''}")
        self.inspect_queued_button.setVisible(self.stage == "done" and bool(queued))
        for w in (self.name_edit, self.folder_radio, self.folder_button):
            w.setEnabled(idle)
        self.selection_radio.setEnabled(idle and bool(self.selected))
        self.cancel_button.setText("Stop" if busy and self.stage != "scanning" else
                                   "Close" if self.stage == "done" else "Cancel")

    # --- teaching ---------------------------------------------------------------------------
    def teach(self) -> None:
        """Record the good images under the product's name, then build its anomaly map."""
        try:
            name = check_product_name(self.name_edit.text())
        except TeachError as err:
            self._say(str(err))
            return
        paths = self.images()
        if not paths:
            self._say("No images to teach from: pick a folder of good images of the product")
            return
        c = self.controller
        store_path, reviewer, golden = c.store.path, c.reviewer_name(), self._golden_wanted_count()
        self.stage = "recording"
        self._started = time.monotonic()
        self._progress("Recording good images: %v of %m", 0, len(paths))
        self._say(f"Recording {len(paths)} good images of the {object_phrase(name)}…")
        self._update()

        def work(ctx: TaskContext) -> Taught:
            store = ReviewStore.open(store_path)  # this thread's own connection
            try:
                wanted = references_wanted(store, name, golden) if golden else 0
                return teach_good_images(store, name, paths, reviewer, wanted,
                                         progress=lambda done, total: ctx.progress((done, total)), check=ctx.check)
            finally:
                store.close()

        self._task = c.runner.submit(work, self._recorded, lane="io",
                                     on_progress=lambda v: self._progress("Recording good images: %v of %m", *v))

    def _recorded(self, taught: Taught | None, error: BaseException | None) -> None:
        self._task = None
        c = self.controller
        if isinstance(error, TaskCancelled):
            self._stopped("Stopped. The images recorded so far stay good images of the product.")
            return
        if isinstance(error, (TeachError, StoreError)):
            self._stopped(str(error))
            return
        if error is not None:
            raise error
        self.taught = taught
        if self.folder is not None and self.folder_radio.isChecked():  # the folder is the product's from now on
            c.set_object_name(str(Path(self.folder).resolve()), taught.object_name)
        c.reload_reviews(list(taught.good))
        if taught.golden:
            c.golden.reload(taught.object_name)
        c.maps.changed.emit(taught.object_name)  # its good images changed: the bank row says so at once
        if len(taught.good) < 2:
            self._stopped(taught.text() + ". The anomaly map needs at least two good images.")
            return
        if not c.settings.anomaly_map:
            self._stopped(taught.text() + ". The anomaly map is off in Settings (Inspection → Anomaly map): turn it "
                          "on to use them.")
            return
        self._build_map(taught)

    def _build_map(self, taught: Taught) -> None:
        maps = self.controller.maps
        self.stage = "building"
        self._notices = []
        maps.notice.connect(self._notices.append)
        maps.progress.connect(self._map_progress)
        maps.changed.connect(self._map_changed)
        self._progress("Building the anomaly map: %v of %m good images", 0, len(taught.good))
        self._say(taught.text() + ". Building the anomaly map…")
        self._update()
        if not maps.rebuild(taught.object_name) and maps.waiting_for_model is None:
            self._map_done(built=False)  # another build runs, or this model gives no map: its notice says why
        elif maps.waiting_for_model is not None:
            self._say(taught.text() + ". The model is loading: the anomaly map is built once it is ready…")

    def _map_progress(self, object_name: str, done: int, total: int) -> None:
        if self.taught is not None and object_key(object_name) == object_key(self.taught.object_name):
            self._progress("Building the anomaly map: %v of %m good images", done, total)

    def _map_changed(self, object_name: str) -> None:
        if self.taught is not None and object_key(object_name) == object_key(self.taught.object_name):
            if self.controller.maps.building is None:
                self._map_done(built=self.controller.maps.status(self.taught.object_name).usable)

    def _map_done(self, built: bool) -> None:
        maps = self.controller.maps
        for signal, slot in ((maps.notice, self._notices.append), (maps.progress, self._map_progress),
                             (maps.changed, self._map_changed)):
            try:
                signal.disconnect(slot)
            except (RuntimeError, TypeError):
                pass
        taught = self.taught
        if taught is None:
            return
        if not built:
            why = self._notices[-1] if self._notices else "the map was stopped before it was built"
            self._stopped(f"{taught.text()}. No anomaly map: {why}")
            return
        self.built = True
        self.stage = "done"
        self.bar.hide()
        status = maps.status(taught.object_name)
        took = time.monotonic() - self._started
        text = (f"{taught.text()}. The anomaly map of the {object_phrase(taught.object_name)} is built from "
                f"{status.images} good images ({duration(took)} in all). Inspect its parts: the map marks what is "
                "unlike them.")
        if status.images < MIN_FUSED_BANK:
            text += (f" With fewer than {MIN_FUSED_BANK} good images the map is shown but its score doesn't decide:"
                     " add more good images when you can.")
        self._say(text)
        self._update()

    def _stopped(self, text: str) -> None:
        self.stage = "idle"
        self.bar.hide()
        self._say(text)
        self._update()

    # --- after ------------------------------------------------------------------------------
    def inspect_folder(self) -> None:
        """Queue a folder of the product's parts under its name and inspect them."""
        folder = QFileDialog.getExistingDirectory(self, "A folder of parts to inspect",
                                                  str(Path(self.folder).parent) if self.folder else "")
        if folder and self.taught is not None:
            self.inspect(folder)

    def inspect(self, folder: str) -> None:
        """Name `folder` for the taught product (when its images would be called otherwise), queue and inspect
        its images, and close."""
        c = self.controller
        name = self.taught.object_name if self.taught is not None else self.name_edit.text()
        resolved = str(Path(folder).resolve())
        sample = next(iter(good_images_in([resolved])), None)
        if sample is None or object_key(c.object_name_for(sample)) != object_key(name):
            c.set_object_name(resolved, name)
        c.add_paths([resolved], inspect=True)
        self.accept()

    def queued_rows(self) -> list[int]:
        """Rows of the queue that show the taught product and have no finding yet."""
        if self.taught is None:
            return []
        c, key = self.controller, object_key(self.taught.object_name)
        return [row for row, e in enumerate(c.queue.entries())
                if e.model_finding is None and not e.error and object_key(c.object_name_for(e.path)) == key
                and e.path not in self.taught.good]

    def inspect_queued(self) -> None:
        """Inspect the queued images of the product with its new map, and close."""
        self.controller.inspect_rows(self.queued_rows())
        self.accept()

    def cancel(self) -> None:
        """Stop what runs (recording or the map's build), or close."""
        if self.stage == "recording" and self._task is not None:
            self._task.cancel()
        elif self.stage == "building":
            self.controller.maps.cancel_build()
            self._map_done(built=False)
        elif self.stage == "scanning" and self._task is not None:
            self._task.cancel()
            self.reject()
        else:
            self.reject()

    def _progress(self, form: str, done: int, total: int) -> None:
        self.bar.setFormat(form)
        self.bar.setMaximum(max(1, total))
        self.bar.setValue(done)
        self.bar.show()

    def _say(self, text: str) -> None:
        self.status.setText(text)
        self.adjustSize()  # a longer line or another button: the dialog grows rather than squeezing its rows


def duration(seconds: float) -> str:
    """"42 s", "2 min 5 s"."""
    whole = int(round(seconds))
    return f"{whole} s" if whole < 60 else f"{whole // 60} min {whole % 60} s"


class TeachProductAction(QObject):
    """The menu action: opens the dialog with the queue's selection and the current image's object name."""

    def __init__(self, controller: AppController, window, action: QAction) -> None:
        super().__init__(window)
        self.controller, self.window = controller, window
        self.dialog: TeachProductDialog | None = None
        action.triggered.connect(lambda _checked=False: self.open())

    def open(self) -> TeachProductDialog:
        """Show the dialog (non-blocking); a second call while it is open raises it."""
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.raise_()
            return self.dialog
        q = self.controller.queue
        rows = sorted(i.row() for i in self.window.queue_view.selectionModel().selectedRows())
        selected = [q.entry(r).path for r in rows if 0 <= r < q.rowCount()] if len(rows) > 1 else []
        name = self.controller.object_name_for(selected[0]) if selected else ""
        self.dialog = TeachProductDialog(self.controller, selected, name, self.window)
        self.dialog.open()
        return self.dialog
