"""File → Shift Report: the period's report (`core.line.shift_report`) as one HTML file, made off the UI thread."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from PySide6.QtWidgets import QFileDialog, QInputDialog, QWidget

from lriad_desktop.core.line.shift_report import ReportError, gather_report, parse_since, render_html, write_report
from lriad_desktop.core.store.review_store import ReviewStore, StoreError

if TYPE_CHECKING:  # passed in by the window; importing it at run time would point back up at the window
    from lriad_desktop.ui.window.controller import AppController

PERIODS = ("8h", "12h", "24h", "06:00", "14:00", "22:00", "today", "yesterday")


def make_report(store_path: Path, since_text: str, target: str, title: str) -> tuple[Path, int, int]:
    """The task: read the store (its own connection), render, write; (path, images, defective or flagged)."""
    since = parse_since(since_text)
    with ReviewStore.open(store_path) as store:
        report = gather_report(store, since)
    return write_report(render_html(report, title), target), len(report.images), len(report.shown)


class ShiftReportAction:
    """Asks for the period's start and the file, then writes the report in the background."""

    def __init__(self, controller: AppController, parent: QWidget, notice: Callable[[str], None],
                 ask_period: Callable[[QWidget], str] | None = None,
                 ask_target: Callable[[QWidget, str], str] | None = None) -> None:
        self.controller, self.parent, self.notice = controller, parent, notice
        self._ask_period = ask_period or _ask_period
        self._ask_target = ask_target or (lambda w, suggested: QFileDialog.getSaveFileName(
            w, "Save Shift Report", suggested, "HTML report (*.html)")[0])
        self.running = False

    def ask(self) -> None:
        """Ask for the period and the file, then make the report."""
        since = self._ask_period(self.parent)
        if not since:
            return
        try:
            parse_since(since)
        except ReportError as err:
            self.notice(str(err))
            return
        recent = self.controller.settings.recent_folders
        folder = Path(recent[0]) if recent else Path.home()
        target = self._ask_target(self.parent, str(folder / f"shift-report-{datetime.now():%Y%m%d-%H%M}.html"))
        if target:
            self.run(since, target)

    def run(self, since: str, target: str, title: str = "Shift report") -> None:
        """Make the report of the period since `since` into `target` (the result is a notice)."""
        self.running = True
        store_path = self.controller.store.path

        def done(result: tuple[Path, int, int] | None, error: BaseException | None) -> None:
            self.running = False
            if isinstance(error, (ReportError, StoreError)):
                self.notice(str(error))
            elif error is not None:
                raise error
            elif result is not None:
                path, images, shown = result
                self.notice(f"Shift report written to {path}: {images} images, {shown} defective or flagged")

        self.notice("Making the shift report…")
        self.controller.runner.submit(lambda ctx: make_report(store_path, since, target, title), done, lane="io")


def _ask_period(parent: QWidget) -> str:
    text, ok = QInputDialog.getItem(parent, "Shift Report", "Images inspected since (8h, 06:00, today, "
                                    "2026-03-02T06:00):", list(PERIODS), 0, True)
    return text.strip() if ok else ""
