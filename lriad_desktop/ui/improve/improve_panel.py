""""Improve model": the action that opens the panel, where the inspector sees what the run learns from and
chooses how long it trains, then follows it — progress, reward and KL curves, per-class success, the event
log, Cancel — then the before/after table with Activate and Discard (the guard recommends one: Discard when
the held-out images lost more than the tolerance setting, and Activate then asks once, naming what fell; on
too few held-out images it recommends neither, and neither button is the primary one), what the run trained
less than it was asked (a warm start cut short by the minutes, too few GRPO steps), and, once activated,
re-inspection of the flagged images with the new version.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QHBoxLayout, QHeaderView, QLabel, QMessageBox,
                               QPlainTextEdit, QProgressBar, QPushButton, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from lriad_desktop.core.paths import model_folder
from lriad_desktop.core.training_runs.verdict import ACTIVATE
from lriad_desktop.core.training_runs.step_time import measured_s_per_step
from lriad_desktop.core.store.review_store import StoreError
from lriad_desktop.core.training_runs.protocol import RunCancelled, Step, TrainingEvent, recipe_from_env
from lriad_desktop.core.training_runs.budget import TrainedLength
from lriad_desktop.ui.improve.charts import LineChart
from lriad_desktop.ui.tables import read_only_table
from lriad_desktop.ui.improve.run_results import RunResults, confirm_despite_verdict
from lriad_desktop.ui.theme import bring_to_front, colour
from lriad_desktop.ui.improve.training_length import TrainingLength
from lriad_desktop.ui.improve.training_process import plan_improvement
from lriad_desktop.ui.improve.training_text import CANCELLED_LINE, format_duration, reviews_in_words, status_text

if TYPE_CHECKING:  # passed in by the window; importing it at run time would point back up at the window
    from lriad_desktop.ui.window.controller import AppController

LOG_LINES = 2000


def _table(headers: list[str]) -> QTableWidget:
    table = read_only_table(headers)
    table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
    table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    table.setAlternatingRowColors(True)
    return table


def _item(text: str, align_right: bool = False, tone: str = "") -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    if align_right:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    if tone:
        item.setForeground(colour(tone))
    return item


def _section(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("sectionTitle")
    return label


class ImprovePanel(QDialog):
    """Follows the controller's training service; one per window, reused run after run."""

    startRequested = Signal(object)  # ("minutes" | "steps", n): the inspector pressed Start training

    def __init__(self, controller: AppController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setWindowTitle("Improve model")
        self.resize(980, 780)
        self._decided = False  # Activate or Discard was pressed for the finished run
        self._cancel_logged = False  # the run's own RunCancelled event is in the log
        self._learns = ""  # what the run learns from, in words ('1 flag, 1 box correction')
        self._build()
        service = controller.training
        service.started.connect(self.reset)
        service.eventReceived.connect(self._event)
        service.finished.connect(self._finished)
        controller.versionsChanged.connect(self._update_buttons)
        self.reset()

    def _build(self) -> None:
        self.title = QLabel()
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.title.setFont(font)
        self.subtitle = QLabel()
        self.subtitle.setObjectName("meta")
        self.subtitle.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.status = QLabel()
        self.error = QLabel()
        self.error.setObjectName("fieldError")
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.reward_chart = LineChart("Reward", "accent")
        self.kl_chart = LineChart("KL to the starting model", "warn", floor=0.0)  # a KL is never below 0
        self.classes = _table(["Class", "Seen", "Success", "Weight", "Rarity"])
        self.classes.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)  # no "contami…"
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(LOG_LINES)
        self.log.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.activate_button = QPushButton("Activate")
        self.activate_button.setObjectName("primary")
        self.activate_button.setToolTip("Use the new version from the next inspection on")
        self.discard_button = QPushButton("Discard")
        self.discard_button.setToolTip("Set the new version aside (listed as discarded; its adapter folder is "
                                       "deleted to free the disk); the model in use stays as it is")
        self.cancel_button = QPushButton("Cancel training")
        self.close_button = QPushButton("Close")
        self.learns_from = QLabel()
        self.learns_from.setWordWrap(True)
        s = self.controller.settings
        self.length = TrainingLength(s.training_by, s.training_minutes, s.training_steps)
        self.start_button = QPushButton("Start training")
        self.start_button.setObjectName("primary")
        self.start_button.clicked.connect(lambda: self.startRequested.emit(self.length.length()))
        self.reinspect_flagged_button = QPushButton("Re-inspect flagged")
        self.reinspect_all_button = QPushButton("Re-inspect all")
        self.reinspect_flagged_button.clicked.connect(lambda: self._reinspect(True))
        self.reinspect_all_button.clicked.connect(lambda: self._reinspect(False))
        self.activate_button.clicked.connect(self.activate)
        self.discard_button.clicked.connect(self.discard)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button.clicked.connect(self.close)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(18, 14, 18, 14)
        lay.setSpacing(8)
        lay.addWidget(self.title)
        lay.addWidget(self.subtitle)
        row = QHBoxLayout()
        row.addWidget(self.progress, 1)
        row.addWidget(self.status)
        lay.addLayout(row)
        self.setup_box = QWidget()
        sl = QVBoxLayout(self.setup_box)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.addWidget(_section("WHAT IT LEARNS FROM"))
        sl.addWidget(self.learns_from)
        sl.addWidget(_section("HOW LONG"))
        sl.addWidget(self.length)
        start_row = QHBoxLayout()
        start_row.addWidget(self.start_button)
        start_row.addStretch(1)
        sl.addLayout(start_row)
        lay.addWidget(self.setup_box)
        lay.addWidget(self.error)
        self.results_box = RunResults()  # before → after: held out first, the trained-on flags apart
        lay.addWidget(self.results_box)
        charts = QHBoxLayout()
        charts.addWidget(self.reward_chart)
        charts.addWidget(self.kl_chart)
        lay.addLayout(charts, 2)
        bottom = QHBoxLayout()
        left, right = QVBoxLayout(), QVBoxLayout()
        left.addWidget(_section("SUCCESS PER DEFECT CLASS"))
        left.addWidget(self.classes)
        right.addWidget(_section("LOG"))
        right.addWidget(self.log)
        bottom.addLayout(left, 2)
        bottom.addLayout(right, 3)
        lay.addLayout(bottom, 2)
        buttons = QHBoxLayout()
        buttons.addWidget(self.activate_button)
        buttons.addWidget(self.discard_button)
        buttons.addWidget(self.reinspect_flagged_button)
        buttons.addWidget(self.reinspect_all_button)
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.close_button)
        lay.addLayout(buttons)

    # --- following the run ---------------------------------------------------------------------
    def reset(self) -> None:
        """Show the run that is starting (or nothing yet)."""
        plan = self.controller.training.plan
        self._decided = False
        self._cancel_logged = False
        if plan is None:
            self.title.setText("Improve model")
            self.subtitle.setText("")
        else:
            start = f"continuing from {plan.parent_name}" if plan.adapter_from else "starting from the base model"
            self._learns = self._reviews_in_words()  # a box correction is no flag: say which is which
            self.title.setText(f"Improving {plan.base.name} on " + (self._learns or f"{plan.flagged} flagged image"
                                                                    + ("s" if plan.flagged != 1 else "")))
            self.subtitle.setText(f"{start} · new version {plan.out_dir.name} · the model in use doesn't change "
                                  "until you activate the result")
        self.log.clear()
        self.error.hide()
        self.setup_box.setVisible(plan is None and not self.controller.training.running)
        self.reinspect_flagged_button.hide()
        self.reinspect_all_button.hide()
        self.results_box.hide()
        self.classes.setRowCount(0)
        self._refresh()

    def _reviews_in_words(self) -> str:
        """'1 flag, 1 box correction': the current reviews a run learns from, by kind ('' if the store can't say)."""
        try:
            states = self.controller.store.reviewed_states()
        except StoreError:
            return ""
        kinds: dict[str, int] = {}
        for st in states:
            if st.review is not None and st.review.review.disagrees:
                kinds[st.review.review.kind.value] = kinds.get(st.review.review.kind.value, 0) + 1
        return reviews_in_words(kinds)

    @property
    def awaiting_decision(self) -> bool:
        """A finished run's version is waiting for Activate or Discard."""
        p = self.controller.training.progress
        return p.phase == "done" and p.version_id is not None and not self._decided

    def prepare(self) -> None:
        """Before a run: what it would learn from, and how long to train (with the measured pace)."""
        c = self.controller
        self.reset()
        self.title.setText("Improve model")
        self.subtitle.setText("The model in use doesn't change until you activate the result.")
        self.setup_box.show()
        self._refresh()  # "Not started", not the last run's end
        try:
            counts, states = c.store.counts(), c.store.reviewed_states()
            pace = measured_s_per_step(c.store.training_runs(), str(model_folder(c.settings.model_dir)))
        except StoreError as err:
            self.learns_from.setText(str(err))
            self.start_button.setEnabled(False)
            return
        untyped = sum(s.review.review.unlabelled for s in states if s.review is not None and s.review.review.disagrees)
        kinds = [(counts.flagged, "verdict flag"), (counts.corrected, "type or box correction")]
        parts = ", ".join(f"{n} {what}{'s' if n != 1 else ''}" for n, what in kinds if n)
        text = (f"<b>{counts.to_learn} of your reviews</b> ({parts}), and a replay of images you accepted so it "
                f"keeps what it knows ({counts.accepted} accepted).")
        if untyped:
            text += (f" {untyped} box{'es have' if untyped != 1 else ' has'} no type yet: it trains where the defect "
                     "is, not what it is. Give it a type (L) to teach both.")
        self.learns_from.setText(text)
        recipe_steps = (recipe_from_env() or {}).get("max_steps")
        if recipe_steps:  # a recipe given in the environment (a test, a lab) fixes the steps
            self.length.by_steps.setChecked(True)
            self.length.steps.setValue(int(recipe_steps))
        self.length.set_pace(pace)
        self.start_button.setEnabled(counts.to_learn > 0)

    def _reinspect(self, flagged_only: bool) -> None:
        n = self.controller.reinspect(flagged_only)
        self.status.setText(f"Re-inspecting {n} image{'s' if n != 1 else ''} with "
                            f"{self.controller.version_name()}: the queue marks each one ✓ or ✗" if n else
                            "Nothing to re-inspect in the queue: open the images first")

    def _log(self, line: str) -> None:
        self.log.appendPlainText(line)
        bar = self.log.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _event(self, event: TrainingEvent, line: str) -> None:
        self._log(line)
        self._cancel_logged = self._cancel_logged or isinstance(event, RunCancelled)
        if isinstance(event, Step):
            self._fill_classes()
        self._refresh()

    def _finished(self, outcome: str) -> None:
        p = self.controller.training.progress
        if outcome == "failed":
            self._log(f"Failed: {p.error}")
        elif outcome == "cancelled" and not self._cancel_logged:  # killed before it could say so itself
            self._log(CANCELLED_LINE)
        if outcome == "done":
            self._fill_results()
        self._fill_classes()
        self._refresh()

    def _refresh(self) -> None:
        service = self.controller.training
        p = service.progress
        running = service.running
        if p.phase == "training" and p.budget_s:  # a run for so many minutes: the bar is the time
            self.progress.setRange(0, int(p.budget_s))
            self.progress.setValue(int(min(p.elapsed_s or 0, p.budget_s)))
        elif p.phase == "training" and p.max_steps:
            self.progress.setRange(0, p.max_steps)
            self.progress.setValue(p.step)
        elif p.finished:
            self.progress.setRange(0, max(p.max_steps, 1))
            self.progress.setValue(p.max_steps if p.phase == "done" else p.step)
        else:
            self.progress.setRange(0, max(p.max_steps, 1))
            self.progress.setValue(p.step)
        status = "Cancelling…" if service.cancelling else status_text(p)
        if not running and self.setup_box.isVisibleTo(self):
            status = "Not started"  # the setup asks what and how long first: nothing is starting yet
        if p.phase == "done" and p.minutes is not None:
            status = f"Finished in {format_duration(p.minutes * 60)}" + (" · trained less than asked"
                                                                         if self._shortfalls() else "")
        self.status.setText(status)
        if p.phase == "failed" and p.error:
            self.error.setText(p.error)
            self.error.show()
        self.reward_chart.set_values(p.rewards, p.max_steps)
        self.kl_chart.set_values(p.kls, p.max_steps)
        self.cancel_button.setVisible(running)
        self.cancel_button.setEnabled(running and not service.cancelling)
        self._update_buttons()

    def _update_buttons(self) -> None:
        p = self.controller.training.progress
        pending = p.phase == "done" and p.version_id is not None and not self.controller.training.running
        self.activate_button.setVisible(pending)
        self.discard_button.setVisible(pending)
        self.activate_button.setEnabled(pending and not self._decided)
        self.discard_button.setEnabled(pending and not self._decided)
        verdict = self.results_box.verdict if pending else None
        discard_first = verdict is not None and verdict.discard  # the recommended button is the primary one
        activate_first = verdict is not None and verdict.recommendation == ACTIVATE  # no recommendation: neither
        for button, primary in ((self.activate_button, activate_first), (self.discard_button, discard_first)):
            if (button.objectName() == "primary") != primary:
                button.setObjectName("primary" if primary else "")
                button.style().unpolish(button)
                button.style().polish(button)
        self.activate_button.setToolTip("Use the new version from the next inspection on" + (
            f" (it lost {verdict.fell()} on the held-out images: asks first)" if discard_first else ""))

    def _shortfalls(self) -> list[str]:
        trained = TrainedLength.from_dict(self.controller.training.progress.trained)
        return trained.shortfalls() if trained is not None else []

    def _fill_classes(self) -> None:
        classes = self.controller.training.progress.classes
        self.classes.setRowCount(len(classes))
        for r, (name, stats) in enumerate(sorted(classes.items())):
            success = stats.get("success")
            tone = "" if success is None else ("ok" if success >= 0.5 else "danger" if success < 0.2 else "warn")
            cells = [_item(name), _item(f"{stats.get('seen', 0):.0f}", True),
                     _item("–" if success is None else f"{success * 100:.0f}%", True, tone),
                     _item(f"{stats.get('weight', 0):.2f}", True), _item(f"{stats.get('rarity', 0):.2f}", True)]
            for c, cell in enumerate(cells):
                self.classes.setItem(r, c, cell)

    def _fill_results(self) -> None:
        p = self.controller.training.progress
        self.results_box.show_run(p.before, p.after, p.training_falls(), self.controller.settings.improve_tolerance,
                                  self._learns, self._shortfalls())
        self.results_box.show()
        self.log.verticalScrollBar().setValue(self.log.verticalScrollBar().maximum())

    # --- buttons -----------------------------------------------------------------------------
    def activate(self) -> None:
        """Make the finished run's version the active model."""
        version_id = self.controller.training.progress.version_id
        new_name = Path(self.controller.training.progress.adapter).name
        if version_id is not None and not confirm_despite_verdict(self, self.results_box.verdict, new_name):
            return
        if version_id is not None and self.controller.activate_version(version_id):
            self._decided = True
            name = self.controller.version_name()
            self.status.setText(f"Activated {name}: re-inspect the flagged images to see whether it agrees now")
            self.reinspect_flagged_button.setText(f"Re-inspect flagged with {name}")
            self.reinspect_all_button.setText(f"Re-inspect all with {name}")
            self.reinspect_flagged_button.show()
            self.reinspect_all_button.show()
        self._update_buttons()

    def discard(self) -> None:
        """Discard the finished run's version (after asking): listed as discarded, its adapter folder deleted."""
        p = self.controller.training.progress
        if p.version_id is None:
            return
        name = Path(p.adapter).name
        answer = QMessageBox.question(self, "Discard the new version",
                                      f"Discard {name}? It stays listed as discarded in Model Versions, and its "
                                      "adapter folder is deleted to free the disk. The model in use stays as it is.",
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        if answer != QMessageBox.StandardButton.Yes:
            return
        if self.controller.discard_version(p.version_id):
            self._decided = True
            self.status.setText(f"Discarded {name}")
        self._update_buttons()

    def cancel(self) -> None:
        """Stop the run after its current step; the active model is untouched."""
        self.controller.training.cancel()
        self._log("Cancel requested: stopping after the current step…")
        self._refresh()


# --- the action ----------------------------------------------------------------------------------
class ImproveController:
    """The "Improve model" action: starts a run on the flagged images (or shows the one under way), keeps
    the action's text ('Improve Model (16)', 'Training 3/150…') current, and asks before a close stops a run."""

    def __init__(self, controller: AppController, parent: QWidget, notice: Callable[[str], None],
                 action: QAction) -> None:
        self.controller, self.parent, self.notice, self.action = controller, parent, notice, action
        self._panel: ImprovePanel | None = None
        self._length: tuple[str, int] | None = None
        c = controller
        for signal in (c.historyChanged, c.training.started, c.training.eventReceived, c.training.finished):
            signal.connect(lambda *_: self.update_action())
        self.update_action()

    def panel(self) -> ImprovePanel:
        """The training panel, made on first use (one per window, reused run after run)."""
        if self._panel is None:
            self._panel = ImprovePanel(self.controller, self.parent)
            self._panel.startRequested.connect(self.start_run)
        return self._panel

    def start(self) -> None:
        """Open the panel: before a run, to see what it learns from and choose how long; else the run under way."""
        c = self.controller
        panel = self.panel()  # made before the run starts, so it follows the run from its first event
        if not c.training.running:
            if c.flag_count() == 0:
                self.notice("Nothing to learn from yet: flag or correct the images the model got wrong first")
                return
            if not panel.awaiting_decision:  # a finished run not activated or discarded yet stays on show
                panel.prepare()
        bring_to_front(panel)

    def start_run(self, length: tuple[str, int]) -> None:
        """Start a run of `length` ("minutes" | "steps", n) on the flagged and corrected images."""
        c = self.controller
        if c.training.running:
            return
        try:
            plan = plan_improvement(c.store, c.settings, c.register_model_in_use(), length=length)
        except (StoreError, ValueError) as err:  # a bad LRIAD_TRAIN_RECIPE is a ValueError
            self.notice(f"Can't start training: {err}")
            return
        by, n = length
        if not recipe_from_env():  # the inspector's choice is remembered (not a recipe the environment forced)
            c.update_settings(c.settings.with_changes(training_by=by, **{f"training_{by}": n}))
        c.training.start(plan)

    def update_action(self) -> None:
        """'Improve Model (16)' while there are flags; the step while a run is under way."""
        c = self.controller
        p = c.training.progress
        if c.training.running:
            text = f"Training {p.step}/{p.max_steps}…" if p.phase == "training" and p.max_steps else "Training…"
            self.action.setText(text)
            self.action.setEnabled(True)
            return
        n = c.flag_count()
        self.action.setText(f"Improve Model ({n})" if n else "Improve Model")
        self.action.setEnabled(n > 0)

    def may_close(self) -> bool:
        """Closing while training asks first; yes stops the run (the app waits for it to end)."""
        if not self.controller.training.running:
            return True
        answer = QMessageBox.question(self.parent, "Training in progress",
                                      "A training run is under way. Stop it and quit? The model in use stays as it "
                                      "is.", QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def close(self) -> None:
        """Close the panel (the window is closing)."""
        if self._panel is not None:
            self._panel.close()
