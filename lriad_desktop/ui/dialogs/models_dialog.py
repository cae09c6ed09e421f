"""Model → Models…: the models on this machine (bundled demo, Hugging Face cache, the app's models
folder, added folders) and a catalog to download from, with progress, Cancel and resume.

Everything slow (scanning folders, asking CUDA, downloading, the smoke inspection) runs through
the app's one task API (`TaskRunner.submit`); this dialog only shows results. A download ends in
`validate_model_folder` and a one-image inspection before "Use This Model" is offered for it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QFileDialog, QGroupBox, QHBoxLayout, QHeaderView, QLabel,
                               QLineEdit, QProgressBar, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout,
                               QWidget)

from lriad_desktop.core.inspection.families import FAMILIES
from lriad_desktop.core.models.download import (DownloadCancelled, DownloadError, DownloadProgress, check_disk_space,
                                               plan_download, run_download)
from lriad_desktop.core.models.listing import (CATALOG, Machine, ModelEntry, Source, fit_on, format_bytes, format_parameters,
                                       list_models, smoke_inspect)
from lriad_desktop.core.paths import model_folder, models_dir
from lriad_desktop.core.settings import SettingsError
from lriad_desktop.ui.tasks import TaskCancelled, TaskContext, TaskHandle
from lriad_desktop.ui.theme import bring_to_front, colour

if TYPE_CHECKING:  # passed in by the window; importing it at run time would point back up at the window
    from lriad_desktop.ui.window.controller import AppController

LANE = "models"  # downloads and smoke inspections: one at a time, apart from inspection's "model" lane
MODEL_COLUMNS = ("", "Model", "Family", "Parameters", "Size", "Boxes in", "Fits this machine", "Found in")
CATALOG_COLUMNS = ("Repo", "Family", "Parameters", "Download", "GPU memory (est.)", "Licence")
SOURCE_TEXT = {Source.BUNDLED: "bundled", Source.HF_CACHE: "Hugging Face cache",
               Source.MODELS_FOLDER: "models folder", Source.ADDED: "added folder"}
FRAME_TEXT = {"model_pixels": "input pixels", "norm1000": "0–1000 grid"}


def _table(columns: tuple[str, ...], stretch: int = -1) -> QTableWidget:
    table = QTableWidget(0, len(columns))
    table.setHorizontalHeaderLabels(columns)
    table.verticalHeader().hide()
    table.setWordWrap(False)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(stretch % len(columns), QHeaderView.ResizeMode.Stretch)
    return table


def _download_and_verify(repo_id: str, device: str, ctx: TaskContext) -> tuple[Path, Any]:
    """The download task: plan, disk check, fetch (resuming), then validate and inspect one image."""
    plan = plan_download(repo_id)
    check_disk_space(plan)
    folder = run_download(plan, ctx.progress, cancelled=lambda: ctx.cancelled)
    return folder, smoke_inspect(folder, device=device)


class ModelsDialog(QDialog):
    """The models on this machine and the download catalog."""

    def __init__(self, controller: AppController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.entries: list[ModelEntry] = []
        self.machine: Machine | None = None
        self.verified: dict[str, Any] = {}  # path -> its smoke inspection (core.models.listing.SmokeResult)
        self._select_after: Path | None = None
        self.download: TaskHandle | None = None
        self.downloading = ""
        self.setWindowTitle("Models")
        self.resize(1280, 720)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(16, 14, 16, 14)
        lay.addWidget(self._build_local())
        lay.addWidget(self._build_catalog())
        self.status = QLabel()
        self.status.setObjectName("meta")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)  # copy the command
        lay.addWidget(self.status)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(close)
        lay.addLayout(row)
        controller.settingsChanged.connect(lambda _s: self._fill_models())

    # --- layout ---------------------------------------------------------------------------
    def _build_local(self) -> QGroupBox:
        box = QGroupBox("On this machine")
        self.models_table = _table(MODEL_COLUMNS, stretch=1)
        self.models_table.itemSelectionChanged.connect(self._update_buttons)
        self.models_table.itemDoubleClicked.connect(lambda _item: self.use_selected())
        self.details = QLabel()
        self.details.setObjectName("meta")
        self.details.setWordWrap(True)
        self.use_button = QPushButton("Use This Model")
        self.use_button.setObjectName("primary")
        self.verify_button = QPushButton("Check It Runs")
        self.verify_button.setToolTip("Load the model and inspect one sample image with it")
        self.add_button = QPushButton("Add Folder…")
        self.remove_button = QPushButton("Remove from List")
        self.refresh_button = QPushButton("Refresh")
        self.use_button.clicked.connect(self.use_selected)
        self.verify_button.clicked.connect(self.verify_selected)
        self.add_button.clicked.connect(self.add_folder)
        self.remove_button.clicked.connect(self.remove_selected)
        self.refresh_button.clicked.connect(self.refresh)
        buttons = QHBoxLayout()
        for b in (self.use_button, self.verify_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        for b in (self.add_button, self.remove_button, self.refresh_button):
            buttons.addWidget(b)
        lay = QVBoxLayout(box)
        lay.addWidget(self.models_table, 1)
        lay.addWidget(self.details)
        lay.addLayout(buttons)
        return box

    def _build_catalog(self) -> QGroupBox:
        box = QGroupBox("Download from Hugging Face")
        intro = QLabel(f"Recommended instruct models (figures approximate; GPU memory is our estimate for bf16). "
                       f"Only the weights (safetensors), configs, tokenizer and processor files are fetched, into "
                       f"{models_dir()}. A cancelled or cut-off download carries on where it stopped.")
        intro.setObjectName("meta")
        intro.setWordWrap(True)
        self.catalog_table = _table(CATALOG_COLUMNS)
        self.catalog_table.setRowCount(len(CATALOG))
        for r, c in enumerate(CATALOG):
            cells = (c.repo_id, FAMILIES[c.family].name, format_parameters(c.parameters),
                     f"~{format_bytes(c.download_bytes)}", f"~{c.gpu_bytes / 1024 ** 3:.1f} GB", c.licence)
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(c.source)
                self.catalog_table.setItem(r, col, item)
        rows_height = self.catalog_table.verticalHeader().defaultSectionSize() * len(CATALOG)
        self.catalog_table.setFixedHeight(rows_height + self.catalog_table.horizontalHeader().sizeHint().height()
                                          + 2 * self.catalog_table.frameWidth() + 8)
        self.catalog_table.itemSelectionChanged.connect(self._catalog_picked)
        self.repo_edit = QLineEdit()
        self.repo_edit.setPlaceholderText("or any repo id, e.g. Qwen/Qwen3-VL-4B-Instruct")
        self.repo_edit.returnPressed.connect(self.start_download)
        self.download_button = QPushButton("Download")
        self.download_button.setObjectName("primary")
        self.download_button.clicked.connect(self.start_download)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_download)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setRange(0, 1000)
        for w in (self.cancel_button, self.progress):
            w.setVisible(False)
        row = QHBoxLayout()
        row.addWidget(self.repo_edit, 1)
        row.addWidget(self.download_button)
        row.addWidget(self.cancel_button)
        lay = QVBoxLayout(box)
        lay.addWidget(intro)
        lay.addWidget(self.catalog_table)
        lay.addLayout(row)
        lay.addWidget(self.progress)
        return box

    # --- the list -------------------------------------------------------------------------
    def refresh(self) -> None:
        """Scan for models again (and, the first time, ask what the machine has) in the background."""
        folders = list(self.controller.settings.model_folders)
        known = self.machine
        self.refresh_button.setEnabled(False)

        def scan(ctx: TaskContext) -> tuple[list[ModelEntry], Machine]:
            return list_models(folders), known or Machine.detect()

        self.controller.runner.submit(scan, self._scanned, lane="io")

    def _scanned(self, result: tuple[list[ModelEntry], Machine] | None, error: BaseException | None) -> None:
        self.refresh_button.setEnabled(True)
        if error is not None:
            if isinstance(error, (OSError, TaskCancelled)):
                self.status.setText(f"Can't list the models: {error}")
                return
            raise error
        self.entries, self.machine = result
        self._fill_models()
        if self._select_after is not None:
            self.select_path(self._select_after)
            self._select_after = None

    def _in_use(self) -> Path:
        s = self.controller.settings
        return model_folder(s.model_dir).expanduser()

    def _fill_models(self) -> None:
        selected = self.selected_entry()
        in_use = os.path.realpath(self._in_use())
        self.models_table.setRowCount(len(self.entries))
        for r, e in enumerate(self.entries):
            active = os.path.realpath(e.path) == in_use
            fit = "checking…" if self.machine is None else fit_on(e.parameters, self.machine).text
            name = f"{e.name} — {e.note}" if e.note else e.name
            cells = ("● in use" if active else "", name, e.family or e.model_type or "?",
                     format_parameters(e.parameters), format_bytes(e.size_bytes), FRAME_TEXT.get(e.frame, "—"),
                     fit if e.usable else e.problem, SOURCE_TEXT.get(e.source, e.source))
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(e.problem or str(e.path))
                if not e.usable:
                    item.setForeground(colour("danger" if c == 6 else "muted"))
                elif active and c == 0:
                    item.setForeground(colour("ok"))
                self.models_table.setItem(r, c, item)
        row = next((r for r, e in enumerate(self.entries) if selected and e.path == selected.path),
                   next((r for r, e in enumerate(self.entries) if os.path.realpath(e.path) == in_use), 0))
        if self.entries:
            self.models_table.selectRow(row)
        self._update_buttons()

    def selected_entry(self) -> ModelEntry | None:
        rows = self.models_table.selectionModel().selectedRows() if self.models_table.selectionModel() else []
        return self.entries[rows[0].row()] if rows and rows[0].row() < len(self.entries) else None

    def select_path(self, path: Path) -> None:
        """Select the row of `path` (after a download)."""
        for r, e in enumerate(self.entries):
            if os.path.realpath(e.path) == os.path.realpath(path):
                self.models_table.selectRow(r)
                return

    def _update_buttons(self) -> None:
        e = self.selected_entry()
        in_use = e is not None and os.path.realpath(e.path) == os.path.realpath(self._in_use())
        smoke = self.verified.get(str(e.path)) if e is not None else None
        self.use_button.setEnabled(e is not None and e.usable and not in_use and (smoke is None or smoke.ok))
        self.verify_button.setEnabled(e is not None and e.usable and self.download is None)
        self.remove_button.setEnabled(e is not None and e.source == Source.ADDED)
        if e is None:
            self.details.setText("")
            return
        bits = [str(e.path)]
        if e.problem:
            bits.append(e.problem)
        elif smoke is not None:
            bits.append(smoke.text)
        self.details.setText(" · ".join(bits))

    # --- actions ----------------------------------------------------------------------------
    def use_selected(self) -> None:
        """Make the selected model the one inspections use (reloaded in the background)."""
        e = self.selected_entry()
        if e is None or not e.usable:
            return
        model_dir = "" if e.source == Source.BUNDLED else str(e.path)
        try:
            settings = self.controller.settings.with_changes(model_dir=model_dir, adapter_dir="")
        except SettingsError as err:
            self.status.setText(str(err))
            return
        self.controller.update_settings(settings)
        self.controller.notice.emit(f"Model {e.name} is in use: the next inspection loads it")
        self._fill_models()

    def verify_selected(self) -> None:
        """Load the selected model and inspect one sample image (in the background)."""
        e = self.selected_entry()
        if e is None:
            return
        device = self.controller.settings.device
        self.status.setText(f"Checking {e.name}: loading it and inspecting one sample image…")
        self.verify_button.setEnabled(False)
        self.controller.runner.submit(lambda ctx: smoke_inspect(e.path, device=device),
                                      lambda result, error: self._verified(e, result, error), lane=LANE)

    def _verified(self, e: ModelEntry, result: Any, error: BaseException | None) -> None:
        if error is not None and not isinstance(error, TaskCancelled):
            raise error
        if result is not None:
            self.verified[str(e.path)] = result
            self.status.setText(f"{e.name}: {result.text}")
        self._update_buttons()

    def add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a model folder (or a folder of model folders)")
        if folder:
            self._set_folders(tuple(dict.fromkeys(self.controller.settings.model_folders + (folder,))))

    def remove_selected(self) -> None:
        e = self.selected_entry()
        if e is not None and e.source == Source.ADDED:
            keep = tuple(f for f in self.controller.settings.model_folders
                         if os.path.realpath(f) not in (os.path.realpath(e.path), os.path.realpath(e.path.parent)))
            self._set_folders(keep)

    def _set_folders(self, folders: tuple[str, ...]) -> None:
        self.controller.update_settings(self.controller.settings.with_changes(model_folders=folders))
        self.refresh()

    # --- downloading --------------------------------------------------------------------------
    def _catalog_picked(self) -> None:
        rows = self.catalog_table.selectionModel().selectedRows()
        if rows:
            self.repo_edit.setText(CATALOG[rows[0].row()].repo_id)

    def start_download(self) -> None:
        """Download the repo in the field (checked, resumed where a previous try stopped, then verified)."""
        repo_id = self.repo_edit.text().strip()
        if not repo_id or self.download is not None:
            return
        self.downloading = repo_id
        self.progress.setValue(0)
        self.progress.setFormat(f"{repo_id}: asking the hub…")
        for w in (self.cancel_button, self.progress):
            w.setVisible(True)
        self.download_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setText("")
        device = self.controller.settings.device
        self.download = self.controller.runner.submit(
            lambda ctx: _download_and_verify(repo_id, device, ctx), self._downloaded, lane=LANE,
            on_progress=self._progressed)
        self._update_buttons()

    def _progressed(self, p: DownloadProgress) -> None:
        if p.total_bytes:
            self.progress.setValue(int(1000 * p.done_bytes / p.total_bytes))
            if p.done_bytes >= p.total_bytes:
                self.progress.setFormat(f"{p.repo_id}: downloaded · checking it loads and inspects one image…")
                return
        self.progress.setFormat(f"{p.repo_id}: {p.text()}")

    def cancel_download(self) -> None:
        """Stop the download; what arrived is kept, and Download carries on from there."""
        if self.download is not None:
            self.download.cancel()
            self.cancel_button.setEnabled(False)
            self.progress.setFormat(f"{self.downloading}: cancelling…")

    def _downloaded(self, result: tuple[Path, Any] | None, error: BaseException | None) -> None:
        repo_id, self.download = self.downloading, None
        self.download_button.setEnabled(True)
        self.cancel_button.setVisible(False)
        if isinstance(error, (DownloadCancelled, TaskCancelled)):
            self.progress.setFormat(f"{repo_id}: cancelled at {self.progress.value() / 10:.0f} %")
            self.status.setText("Cancelled. What arrived is kept: press Download again to carry on from there.")
        elif isinstance(error, DownloadError):
            self.progress.setVisible(False)
            self.status.setText(str(error))
        elif error is not None:
            raise error
        else:
            folder, smoke = result
            self.progress.setValue(1000)
            self.progress.setFormat(f"{repo_id}: downloaded to {folder}")
            self.verified[str(folder)] = smoke
            self.status.setText(f"{repo_id}: {smoke.text}" + (" · Use This Model to inspect with it." if smoke.ok
                                                              else ""))
            self._select_after = folder
        self.refresh()


class ModelsAction:
    """The "Models…" action: one dialog per window, refreshed each time it opens."""

    def __init__(self, controller: AppController, parent: QWidget) -> None:
        self.controller, self.parent = controller, parent
        self._dialog: ModelsDialog | None = None

    def dialog(self) -> ModelsDialog:
        """The models dialog, made on first use."""
        if self._dialog is None:
            self._dialog = ModelsDialog(self.controller, self.parent)
        return self._dialog

    def show(self) -> None:
        """Refresh and show the dialog."""
        dialog = self.dialog()
        dialog.refresh()
        bring_to_front(dialog)

    def close(self) -> None:
        """Close the dialog (the window is closing)."""
        if self._dialog is not None:
            self._dialog.close()
