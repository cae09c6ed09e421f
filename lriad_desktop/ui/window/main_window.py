"""The inspector's main window: queue on the left, the image in the middle, finding and review on the right."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QItemSelectionModel, QTimer, Qt, Signal
from PySide6.QtGui import QCloseEvent, QKeyEvent
from PySide6.QtWidgets import QLabel, QMainWindow, QScrollArea, QSplitter, QVBoxLayout, QWidget

from lriad_desktop.core.evaluation.export import EXPORTERS
from lriad_desktop.core.inspection.images import ImageLoadError
from lriad_desktop.core.store.review import ImageStatus, current_reviewer, effective_defects
from lriad_desktop.core.settings import Settings
from lriad_desktop.ui.window.actions import ACTIONS, build_actions, build_menus, build_toolbar, export_action
from lriad_desktop.ui.review.box_editing import BoxEditing
from lriad_desktop.ui.window.controller import AppController
from lriad_desktop.ui.narrow_panel import fit_to_width, follow_focus
from lriad_desktop.ui.review.finding_panel import FindingPanel
from lriad_desktop.ui.window.help_page import HelpPage
from lriad_desktop.ui.review.image_view import ImageView
from lriad_desktop.ui.imaging import DisplayImage, decode_display_image
from lriad_desktop.ui.improve.improve_panel import ImproveController
from lriad_desktop.ui.dialogs.models_dialog import ModelsAction
from lriad_desktop.ui.review.queue_model import QueueEntry, least_certain_first
from lriad_desktop.ui.review.queue_view import QueueView
from lriad_desktop.ui.line.report_action import ShiftReportAction
from lriad_desktop.ui.maps.reference_strip import ReferenceStrip
from lriad_desktop.ui.review.review_panel import ReviewPanel
from lriad_desktop.ui.review.reviewer_prompt import ReviewerPrompt
from lriad_desktop.ui.window.status_bar import InspectionStatus
from lriad_desktop.ui.maps.teach_product import TeachProductAction
from lriad_desktop.ui.theme import icon
from lriad_desktop.ui.dialogs.threshold_dialog import ThresholdDialog
from lriad_desktop.ui.improve.versions_dialog import VersionsAction
from lriad_desktop.ui.line.watch_mode import FolderWatchMode
from lriad_desktop.ui.maps.map_layer import BankRow, MapLayer
from lriad_desktop.ui.window.window_io import DropTarget, ExportAction, FileIntake, SettingsAction, object_hints, show_about

CACHE_IMAGES = 4
CACHE_MAX_PIXELS = 30_000_000  # bigger images are decoded again rather than kept


class MainWindow(QMainWindow):
    """The main window. All state lives in the controller; this class lays out and routes commands."""

    currentShown = Signal(str, bool)  # path, whether a finding is drawn

    def __init__(self, controller: AppController, load_model: bool = True) -> None:
        super().__init__()
        self.controller = controller
        self.setWindowTitle("LR-IAD Desktop")
        self.resize(1440, 900)
        self._row: int | None = None
        self._cache: OrderedDict[str, DisplayImage] = OrderedDict()
        self._loading_path: str | None = None
        self._help: HelpPage | None = None
        self._notice_sticky = False  # the notice above the review panel stays until the next one
        self._build()
        self.actions_ = build_actions(self)
        self.menus_ = build_menus(self, self.actions_)
        self.toolbar = build_toolbar(self, self.actions_)
        self.inspection_status = InspectionStatus(controller, self.statusBar(), self.actions_,
                                       lambda text: self.show_notice(text, sticky=True))
        self.intake = FileIntake(controller, self, self.show_notice)
        self.exports = ExportAction(controller, self, self.show_notice)
        self.settings_action = SettingsAction(controller, self, self.refresh_icons)
        self.improving = ImproveController(controller, self, self.show_notice, self.actions_["improve"])
        self.versions = VersionsAction(controller, self, self.show_notice)
        self.models = ModelsAction(controller, self)
        self.watch_mode = FolderWatchMode(controller, self, self.actions_["watch_folder"], self.statusBar(),
                                          self.show_notice)
        self.report = ShiftReportAction(controller, self, self.show_notice)
        self.boxes = BoxEditing(controller, self.view, self.review_panel, self.actions_["draw_box"],
                                lambda: self._row, self.show_notice)
        self.map_layer = MapLayer(controller, self.view, self.bank_row, self.actions_["toggle_map"],
                                  self.current_entry, self)
        self.teaching = TeachProductAction(controller, self, self.actions_["teach_product"])
        self._connect()
        self.drops = DropTarget(self, self.view, self.intake)
        self.apply_settings(controller.settings)
        self._update_queue_header()
        self._show_current()
        if load_model:
            QTimer.singleShot(0, controller.inspection.load)

    # --- layout -----------------------------------------------------------------------
    def _build(self) -> None:
        self.queue_view = QueueView()
        self.queue_view.setModel(self.controller.queue)
        self.queue_header = QLabel("QUEUE")
        self.queue_header.setObjectName("queueHeader")
        left = QWidget()
        lay = QVBoxLayout(left)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.queue_header)
        lay.addWidget(self.queue_view, 1)
        self.view = ImageView()
        self.finding_panel = FindingPanel()
        self.review_panel = ReviewPanel()
        self.reference_strip = ReferenceStrip(self.controller.queue.thumbnails)
        side = QWidget()
        side.setObjectName("sidePanel")
        side_lay = QVBoxLayout(side)
        side_lay.setContentsMargins(14, 12, 14, 12)
        side_lay.setSpacing(10)
        self.notice_label = QLabel()
        self.notice_label.setObjectName("notice")
        self.notice_label.setWordWrap(True)
        self.notice_label.hide()
        side_lay.addWidget(self.finding_panel, 1)
        side_lay.addWidget(self.reference_strip)
        self.bank_row = BankRow()  # the object's anomaly-map bank, beside its golden samples
        side_lay.addWidget(self.bank_row)
        self.reviewer_prompt = ReviewerPrompt(current_reviewer())
        self.reviewer_prompt.setVisible(not self.controller.settings.reviewer_asked)
        side_lay.addWidget(self.reviewer_prompt)
        side_lay.addWidget(self.review_panel)
        side_lay.addWidget(self.notice_label)
        scroll = QScrollArea()
        scroll.setObjectName("sideScroll")
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(340)
        fit_to_width(scroll)  # a long file or object name never pushes the panel's controls off screen
        follow_focus(scroll)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.view)
        self.splitter.addWidget(scroll)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([270, 800, 370])
        self.setCentralWidget(self.splitter)

    def _connect(self) -> None:
        c, a = self.controller, self.actions_
        io = self.intake
        handlers = {
            "open_files": io.open_files, "open_folder": io.open_folder, "paste": io.paste, "camera": io.open_camera,
            "settings": self.settings_action.open, "quit": self.close,
            "clear_queue": self.clear_queue, "inspect": self.inspect_current, "inspect_all": self.inspect_all,
            "cancel": c.inspection.cancel, "accept": self.accept_and_next, "toggle_verdict": self.boxes.toggle_verdict,
            "delete_box": self.boxes.delete_box, "edit_label": self.review_panel.focus_label,
            "edit_note": self.review_panel.focus_note, "undo": lambda: self._after_undo(c.undo()),
            "redo": lambda: self._after_undo(c.redo()), "next": lambda: self.go(1), "previous": lambda: self.go(-1),
            "next_unreviewed": lambda: self.go_to_next(lambda e: e.review is None and not e.error, "unreviewed"),
            "next_flagged": lambda: self.go_to_next(lambda e: e.status in (ImageStatus.FLAGGED, ImageStatus.CORRECTED),
                                                    "flagged or corrected"),
            "next_needs_review": lambda: self.go_to_next(lambda e: e.needs_review, "needs-review"),
            "sort_by_doubt": lambda: c.queue.reorder(least_certain_first if a["sort_by_doubt"].isChecked() else None),
            "zoom_in": lambda: self.view.zoom_by(1.25), "zoom_out": lambda: self.view.zoom_by(0.8),
            "zoom_fit": self.view.fit, "zoom_100": self.view.actual_size,
            "shortcuts": self.show_help, "about": lambda: show_about(self, c.store.path),
            "reinspect_flagged": lambda: self.reinspect(True), "reinspect_all": lambda: self.reinspect(False),
            "threshold": self.open_threshold, "improve": self.improving.start, "versions": self.versions.show,
            "models": self.models.show, "shift_report": self.report.ask,
            "mark_golden": lambda: self._with_row(c.toggle_golden),
        }
        for name, fn in handlers.items():
            a[name].triggered.connect(lambda _=False, f=fn: f())
        for key in EXPORTERS:
            a[export_action(key)].triggered.connect(lambda _=False, k=key: self.exports.ask(k))
        a["toggle_overlay"].toggled.connect(self.view.set_overlay_visible)
        a["toggle_labels"].toggled.connect(self._labels_toggled)
        a["auto_inspect"].toggled.connect(self._auto_toggled)
        a["needs_review_only"].toggled.connect(self._filter_toggled)
        self.menus_["recent"].aboutToShow.connect(lambda: io.fill_recent(self.menus_["recent"]))
        self.queue_view.selectionModel().currentRowChanged.connect(lambda cur, _prev: self.set_current(cur.row()))
        c.queue.rowsInserted.connect(self._rows_inserted)
        c.queue.layoutChanged.connect(self._rows_moved)
        c.queue.countsChanged.connect(self._update_queue_header)
        c.entryChanged.connect(self._entry_changed)
        c.notice.connect(self.show_notice)
        c.settingsChanged.connect(self.apply_settings)
        c.historyChanged.connect(self._update_undo)
        v, rp = self.view, self.review_panel
        v.boxEdited.connect(lambda i, box: self._with_row(lambda r: c.set_box(r, i, box)))
        v.selectionChanged.connect(rp.select_defect)
        v.drawModeChanged.connect(a["draw_box"].setChecked)
        rp.acceptClicked.connect(self.accept_and_next)
        rp.verdictClicked.connect(lambda verdict: self._with_row(lambda r: c.set_verdict(r, verdict)))
        rp.drawClicked.connect(lambda: a["draw_box"].setChecked(True))
        rp.deleteClicked.connect(self.boxes.delete_box)
        rp.defectSelected.connect(v.select_defect)
        rp.noteEdited.connect(lambda note: self._with_row(lambda r: c.set_note(r, note)))
        rp.objectNameEdited.connect(self._object_name_edited)
        self.reference_strip.removeRequested.connect(c.remove_golden)
        c.golden.changed.connect(lambda _key: self._update_references(self.current_entry()))
        rp.labelCancelled.connect(self.view.setFocus)
        c.imagesAdded.connect(lambda first, _n: self.set_current(first))  # the drop's first image, not the old one
        c.versionsChanged.connect(self._update_reinspect)
        self.reviewer_prompt.named.connect(self._reviewer_named)
        self.statusBar().messageChanged.connect(  # a passing notice shown above the review panel goes with it
            lambda text: None if text or self._notice_sticky else self.notice_label.hide())
        self._update_undo()

    # --- settings -----------------------------------------------------------------------
    def apply_settings(self, settings: Settings) -> None:
        """Reflect settings in the view and the checkable actions."""
        a = self.actions_
        self.view.set_box_style(settings.box_line_width, settings.box_color, settings.flag_color, settings.show_labels)
        for name, value in (("toggle_labels", settings.show_labels), ("auto_inspect", settings.auto_inspect),
                            ("toggle_overlay", self.view.overlay_visible)):
            a[name].blockSignals(True)
            a[name].setChecked(value)
            a[name].blockSignals(False)
        self.map_layer.apply_settings(settings)
        self.inspection_status.update_model_state()
        self._update_reinspect()

    def _update_reinspect(self) -> None:
        name = self.controller.version_name()
        self.actions_["reinspect_flagged"].setText(f"Re-inspect &Flagged with {name}")
        self.actions_["reinspect_all"].setText(f"Re-inspect A&ll with {name}")

    def _reviewer_named(self, name: str) -> None:
        c = self.controller
        c.update_settings(c.settings.with_changes(reviewer_name=name or c.settings.reviewer_name, reviewer_asked=True))
        self.show_notice(f"Reviews are signed “{c.reviewer_name()}” (Settings → Inspection changes it)")
        self.view.setFocus()

    def _labels_toggled(self, on: bool) -> None:
        self.view.set_labels_visible(on)
        if on != self.controller.settings.show_labels:
            self.controller.update_settings(self.controller.settings.with_changes(show_labels=on))

    def _auto_toggled(self, on: bool) -> None:
        if on != self.controller.settings.auto_inspect:
            self.controller.update_settings(self.controller.settings.with_changes(auto_inspect=on))

    # --- current image ------------------------------------------------------------------
    @property
    def current_row(self) -> int | None:
        return self._row

    def current_entry(self) -> QueueEntry | None:
        """The current queue entry, or None."""
        return self.controller.queue.entry(self._row) if self._row is not None else None

    def set_current(self, row: int) -> None:
        """Make `row` the current image (selects it in the queue, shows it)."""
        q = self.controller.queue
        if not 0 <= row < q.rowCount():
            return
        if row != self._row:
            self.view.set_draw_mode(False)
        self._row = row
        if q.entry(row).landed:  # a watched folder's arrival, looked at now: no longer new
            q.update(row, landed=False)
        idx = q.index(row)
        if self.queue_view.currentIndex() != idx:  # one selected row, whatever keys are held (Ctrl+Z: no Ctrl-click)
            self.queue_view.selectionModel().setCurrentIndex(idx, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        self.queue_view.scrollTo(idx)
        self._show_current()

    def _show_current(self) -> None:
        entry = self.current_entry()
        self._update_panels()
        if entry is None:
            self.view.set_image(None)
            return
        shown = self.view.image
        if shown is not None and shown.path == entry.path:
            self._refresh_overlay()
            return
        cached = self._cache.get(entry.path)
        if cached is not None:
            self._cache.move_to_end(entry.path)
            self._display(cached)
            return
        self._loading_path = entry.path
        path = entry.path
        self.controller.runner.submit(lambda ctx: decode_display_image(path),
                                      lambda img, err: self._decoded(path, img, err), lane="io")

    def _decoded(self, path: str, image: DisplayImage | None, error: BaseException | None) -> None:
        if image is not None and image.size[0] * image.size[1] <= CACHE_MAX_PIXELS:
            self._cache[path] = image
            while len(self._cache) > CACHE_IMAGES:
                self._cache.popitem(last=False)
        entry = self.current_entry()
        if entry is None or entry.path != path:
            return  # the inspector moved on
        if error is not None:
            if not isinstance(error, ImageLoadError):
                raise error
            self.view.set_image(None, f"Can't show {entry.name}\n{error.reason}")
            self.currentShown.emit(path, False)
            return
        self._display(image)

    def _display(self, image: DisplayImage) -> None:
        self.view.set_image(image)
        self._refresh_overlay()

    def _refresh_overlay(self) -> None:
        entry = self.current_entry()
        if entry is None or self.view.image is None or self.view.image.path != entry.path:
            return
        review = entry.review.review if entry.review else None
        defects = effective_defects(entry.finding, review)
        flagged = review is not None and review.disagrees
        ghosts = entry.finding.defects if flagged and entry.finding is not None else ()
        self.view.set_defects(defects, ghosts, flagged)
        self.map_layer.show(entry)
        self.currentShown.emit(entry.path, entry.finding is not None)

    def _update_references(self, entry: QueueEntry | None) -> None:
        c = self.controller
        if entry is None:
            self.reference_strip.show_samples(None, (), 0)
            self.map_layer.show_bank(None)
            return
        name = c.object_name_for(entry.path)
        samples = c.golden.of(name)
        self.reference_strip.show_samples(name, samples, c.reference_count(),
                                          any(g.image_id == entry.image_id for g in samples),
                                          by_the_model=c.settings.reference_count < 0)
        self.map_layer.show_bank(name)

    def _update_panels(self) -> None:
        entry = self.current_entry()
        self.finding_panel.show_entry(entry, self.controller.reviewed_finding(entry))
        self._update_references(entry)
        c = self.controller
        if entry is None:
            self.review_panel.show_entry(None, (), None, "", "folder", ())
            return
        review = entry.review.review if entry.review else None
        verdict = review.verdict if review else (entry.finding.verdict if entry.finding else None)
        scope = c.object_name_scope(entry.path)
        kind = "image" if scope == entry.path else "folder"
        self.review_panel.show_entry(entry, effective_defects(entry.finding, review), verdict,
                                     c.object_name_for(entry.path), kind, c.known_labels())
        self.review_panel.select_defect(self.view.selected_index() if self.view.image is not None
                                        and self.view.image.path == entry.path else -1)
        self.review_panel.set_object_hints(object_hints(c, entry.path))

    def _entry_changed(self, row: int) -> None:
        if row == self._row:
            self._update_panels()
            self._refresh_overlay()

    def _rows_inserted(self, _parent: object, first: int, _last: int) -> None:
        if self._row is None:
            self.set_current(first)

    def _rows_moved(self) -> None:  # sorted: the current image keeps its place in the view, not its row number
        idx = self.queue_view.currentIndex()
        self._row = idx.row() if idx.isValid() else self._row
        if self._row is not None:
            self.queue_view.scrollTo(self.controller.queue.index(self._row))

    def _filter_toggled(self, on: bool) -> None:
        self.queue_view.set_filter((lambda e: e.needs_review) if on else None)
        if self._row is not None and self.queue_view.isRowHidden(self._row):  # the current image went: a near one
            before = self._row
            self.go(1)
            if self._row == before:
                self.go(-1)

    # --- navigation -----------------------------------------------------------------------
    def go(self, step: int) -> None:
        """Move `step` images forward (or back) in the queue."""
        n = self.controller.queue.rowCount()
        if n == 0:
            return
        row = 0 if self._row is None else self._row + step
        while 0 <= row < n and self.queue_view.isRowHidden(row):  # filtered out of the queue
            row += step
        if not 0 <= row < n:
            self.show_notice("Last image" if step > 0 else "First image")
            return
        self.set_current(row)

    def go_to_next(self, predicate: Callable[[QueueEntry], bool], what: str) -> None:
        """Go to the next image (wrapping around) that matches `predicate`."""
        q = self.controller.queue
        row = q.find(self._row if self._row is not None else -1, 1,
                     lambda e: predicate(e) and not self.queue_view.isRowHidden(q.row_of(e.path) or 0))
        if row is None:
            self.show_notice(f"No {what} image left")
        else:
            self.set_current(row)

    # --- inspection -----------------------------------------------------------------------
    def inspect_current(self) -> None:
        """Inspect the current image before anything else waiting."""
        if self._row is not None:
            self.controller.inspect_rows([self._row], front=True)
            self._update_panels()

    def inspect_all(self) -> None:
        """Inspect every image not inspected yet."""
        if self.controller.inspect_all() == 0:
            self.show_notice(f"Every image is inspected already: Re-inspect All (Ctrl+Shift+I) inspects them again "
                             f"with {self.controller.version_name()}")

    def reinspect(self, flagged_only: bool) -> None:
        """Inspect again with the model in use: the flagged and corrected images, or all of them."""
        n = self.controller.reinspect(flagged_only)
        name = self.controller.version_name()
        self.show_notice(f"Re-inspecting {n} image{'s' if n != 1 else ''} with {name}…" if n else
                         "Nothing flagged or corrected to re-inspect" if flagged_only else "Nothing to re-inspect")

    def _update_queue_header(self) -> None:
        self.queue_header.setText(f"QUEUE · {self.controller.queue.rowCount()}")

    # --- review -------------------------------------------------------------------------
    def _with_row(self, fn: Callable[[int], object]) -> bool:
        if self._row is None:
            self.show_notice("Open an image first")
            return False
        return bool(fn(self._row))

    def accept_and_next(self) -> None:
        """Accept the model's finding for this image (written at once) and move to the next image; on an
        unreadable answer, offer Normal / Defective instead."""
        if self.boxes.offer_verdict(self.finding_panel.banner, self._next_image):
            return
        if self._with_row(self.controller.accept) and self._row is not None:
            self._next_image("Accepted")

    def _next_image(self, done: str = "Normal") -> None:
        if self._row is not None and self._row + 1 < self.controller.queue.rowCount():
            self.set_current(self._row + 1)
        else:
            self.show_notice(f"{done} · that was the last image")

    def _object_name_edited(self, scope_kind: str, name: str) -> None:
        entry = self.current_entry()
        if entry is None:
            return
        scope = entry.path if scope_kind == "image" else str(Path(entry.path).parent)
        self.controller.set_object_name(scope, name)
        self.show_notice(f"Object name for {Path(scope).name}: “{name or self.controller.object_name_for(entry.path)}”")

    def _after_undo(self, row: int | None) -> None:
        if row is not None and row != self._row:
            self.set_current(row)

    def _update_undo(self) -> None:
        h = self.controller.history
        self.actions_["undo"].setEnabled(h.can_undo)
        self.actions_["redo"].setEnabled(h.can_redo)
        self.actions_["undo"].setText(f"&Undo {h.undo_text}" if h.can_undo else "&Undo")
        self.actions_["redo"].setText(f"&Redo {h.redo_text}" if h.can_redo else "&Redo")

    # --- queue, notices, drops, closing ----------------------------------------------------
    def open_threshold(self) -> None:
        """The threshold dialog for the current image's object."""
        entry = self.current_entry()
        if entry is None:
            self.show_notice("Open an image first: the threshold belongs to its object")
            return
        self.threshold_dialog = ThresholdDialog(self.controller, self.controller.object_name_for(entry.path), self)
        self.threshold_dialog.finished.connect(lambda _r: self._update_panels())
        self.threshold_dialog.open()

    def clear_queue(self) -> None:
        """Empty the queue and stop inspecting (reviews stay saved)."""
        self.controller.inspection.cancel()
        self.controller.queue.clear()
        self.controller.update_settings(self.controller.settings.with_queued(()))  # the next start opens it empty
        self._row = None
        self._show_current()

    def show_help(self) -> None:
        """The help page (F1): the review loop, flags, Improve Model and the keys."""
        if self._help is None:
            self._help = HelpPage(self)
        self._help.show()
        self._help.raise_()

    def refresh_icons(self) -> None:
        """Redraw icons after a theme change."""
        for spec in ACTIONS:
            if spec.icon:
                self.actions_[spec.name].setIcon(icon(spec.icon))
        self.review_panel.refresh_icons()
        self.view.viewport().update()
        self.queue_view.viewport().update()
        self.finding_panel.show_entry(entry := self.current_entry(), self.controller.reviewed_finding(entry))

    def show_notice(self, text: str, sticky: bool = False) -> None:
        """A message for the inspector: in the status bar and, if sticky or too long to read whole there, above
        the review panel (wrapped; a passing one goes with the status bar's)."""
        self.statusBar().showMessage(text, 0 if sticky else 6000)
        self.notice_label.setText(text)
        self._notice_sticky = sticky
        self.notice_label.setVisible(sticky or not self.inspection_status.fits(text))

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape and self.view.draw_mode:
            self.actions_["draw_box"].setChecked(False)
            return
        super().keyPressEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.improving.may_close():  # a training run is under way and the inspector keeps it
            event.ignore()
            return
        self.improving.close()
        self.versions.close()
        self.models.close()
        self.hide()  # gone at once, even while a model call finishes below (every review is already saved)
        self.controller.shutdown()
        super().closeEvent(event)
