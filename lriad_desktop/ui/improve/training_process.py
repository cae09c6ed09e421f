"""Running "Improve model": `lriad train` as a separate process through QProcess (never in the app's
own process, never on a thread), its JSON events, Cancel, and a clean stop when the app quits.

A crash, a kill or an out-of-memory in training can't take the window down, and the active
model is untouched until the inspector activates a finished, evaluated run.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from lriad_desktop.core.inspection.golden_default import references_per_image
from lriad_desktop.core.paths import model_folder
from lriad_desktop.core.settings import Settings
from lriad_desktop.core.store.review_store import ReviewStore
from lriad_desktop.core.training_runs.protocol import ExitCode, TrainingEvent, decode_event, recipe_from_env, train_command
from lriad_desktop.core.store.adapter_versions import ModelVersion, adapters_dir, next_adapter_dir
from lriad_desktop.core.training_runs.progress import TrainingProgress
from lriad_desktop.ui.improve.training_text import event_line

log = logging.getLogger(__name__)
KILL_AFTER_MS = 10_000  # Cancel sends SIGTERM (stop after this step); a run still alive this much later is killed
STDERR_LINES = 40


@dataclass(frozen=True)
class TrainingPlan:
    """One run to start: the command line and what it works on."""

    command: tuple[str, ...]
    out_dir: Path
    base: Path
    adapter_from: Path | None
    parent_version_id: int
    parent_name: str
    flagged: int


def plan_improvement(store: ReviewStore, settings: Settings, parent: ModelVersion,
                     recipe: dict[str, Any] | None = None, length: tuple[str, int] | None = None) -> TrainingPlan:
    """The run "Improve model" starts now: base = the settings' model, continuing from the active adapter
    (`parent`, the model in use as the controller registered it), into the next free `adapters/<base>-vN`,
    for `length` ("minutes" or "steps", n; None: the recipe's steps). Reads the store only."""
    base = model_folder(settings.model_dir)
    adapter = Path(settings.adapter_dir) if settings.adapter_dir else None
    versions = store.model_versions()
    taken = [v.name for v in versions] + [Path(v.adapter_path).name for v in versions if v.adapter_path]
    out = next_adapter_dir(adapters_dir(), base.name, taken)
    recipe = recipe if recipe is not None else recipe_from_env()
    shown = references_per_image(settings.reference_count, base)
    recipe = {"references": shown, **(recipe or {})}  # rows show what inspection shows
    by, n = length or ("", 0)
    command = train_command(store.path, base, out, adapter, recipe, settings.device,
                            steps=n if by == "steps" else None, minutes=n if by == "minutes" else None,
                            processes=settings.training_processes, sharding=settings.training_sharding)
    return TrainingPlan(tuple(command), out, base, adapter, parent.id, parent.name, store.counts().to_learn)


class TrainingService(QObject):
    """Starts one `lriad train` process at a time and turns its stdout into events."""

    started = Signal()
    eventReceived = Signal(object, str)  # the TrainingEvent (an Output for a stray line), a line for the log
    finished = Signal(str)  # "done", "cancelled" or "failed"

    def __init__(self, parent: QObject | None = None, kill_after_ms: int = KILL_AFTER_MS) -> None:
        super().__init__(parent)
        self.kill_after_ms = kill_after_ms
        self.plan: TrainingPlan | None = None
        self.progress = TrainingProgress()
        self.exit_code: int | None = None
        self._process: QProcess | None = None
        self._buffer = b""
        self._stderr: deque[str] = deque(maxlen=STDERR_LINES)
        self._cancel_requested = False
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self._kill)

    @property
    def running(self) -> bool:
        return self._process is not None

    @property
    def pid(self) -> int | None:
        return int(self._process.processId()) if self._process is not None else None

    @property
    def cancelling(self) -> bool:
        return self.running and self._cancel_requested

    def start(self, plan: TrainingPlan) -> None:
        """Start the run (one at a time)."""
        if self.running:
            raise RuntimeError("a training run is already under way")
        self.plan = plan
        self.progress = TrainingProgress()
        self.exit_code = None
        self._buffer = b""
        self._stderr.clear()
        self._cancel_requested = False
        proc = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        env.insert("PYTHONIOENCODING", "utf-8")
        proc.setProcessEnvironment(env)
        proc.setProgram(plan.command[0])
        proc.setArguments(list(plan.command[1:]))
        proc.readyReadStandardOutput.connect(self._read_stdout)
        proc.readyReadStandardError.connect(self._read_stderr)
        proc.finished.connect(self._finished)
        proc.errorOccurred.connect(self._error)
        self._process = proc
        log.info("starting training: %s", " ".join(plan.command))
        proc.start()
        self.started.emit()

    def cancel(self) -> None:
        """Ask the run to stop after its current step (SIGTERM); kill it if it is still alive 10 s later."""
        if self._process is None or self._cancel_requested:
            return
        self._cancel_requested = True
        self._process.terminate()
        self._kill_timer.start(self.kill_after_ms)

    def stop(self) -> None:
        """Cancel and wait until the process is gone (the app is quitting: leave no orphan, no zombie)."""
        proc = self._process
        if proc is None:
            return
        self.cancel()
        if not proc.waitForFinished(self.kill_after_ms + 1000):
            proc.kill()
            proc.waitForFinished(5000)

    # --- the process ---------------------------------------------------------------------------
    def _read_stdout(self) -> None:
        if self._process is None:
            return
        self._buffer += bytes(self._process.readAllStandardOutput().data())
        *lines, self._buffer = self._buffer.split(b"\n")
        for raw in lines:
            self._line(raw.decode("utf-8", errors="replace"))

    def _line(self, text: str) -> None:
        if not text.strip():
            return
        event: TrainingEvent = decode_event(text)  # a library's print comes back as an Output: logged, nothing else
        self.progress.apply(event)
        self.eventReceived.emit(event, event_line(event))

    def _read_stderr(self) -> None:
        if self._process is None:
            return
        text = bytes(self._process.readAllStandardError().data()).decode("utf-8", errors="replace")
        for line in text.splitlines():
            if line.strip():
                self._stderr.append(line.rstrip())

    def _finished(self, exit_code: int, status: QProcess.ExitStatus) -> None:
        self._read_stdout()
        self._read_stderr()
        if self._buffer:
            self._line(self._buffer.decode("utf-8", errors="replace"))
            self._buffer = b""
        self._kill_timer.stop()
        crashed = status == QProcess.ExitStatus.CrashExit
        self.exit_code = None if crashed else exit_code
        p = self.progress
        if p.phase == "done" and exit_code == ExitCode.DONE and not crashed:
            outcome = "done"
        elif self._cancel_requested or (not crashed and exit_code == ExitCode.CANCELLED):
            p.phase, outcome = "cancelled", "cancelled"
        else:
            if not p.error:
                how = "was stopped" if crashed else f"ended with exit code {exit_code}"
                last = self._last_stderr_line()
                p.error = f"The training process {how}" + (f": {last}" if last else "")
            p.phase, outcome = "failed", "failed"
        self._end(outcome)

    def _error(self, error: QProcess.ProcessError) -> None:
        if error != QProcess.ProcessError.FailedToStart or self._process is None:
            return  # a crash also ends in `finished`
        self.progress.phase = "failed"
        self.progress.error = f"Can't start the training process ({self._process.program()}): " \
                              f"{self._process.errorString()}"
        self._end("failed")

    def _end(self, outcome: str) -> None:
        proc, self._process = self._process, None
        if proc is not None:
            proc.deleteLater()
        self.finished.emit(outcome)

    def _kill(self) -> None:
        if self._process is not None:
            log.warning("training did not stop within %d s of Cancel: killing it", self.kill_after_ms // 1000)
            self._process.kill()

    def _last_stderr_line(self) -> str:
        for line in reversed(self._stderr):
            if not line.startswith((" ", "\t")) and "Warning" not in line:
                return line.strip()
        return ""

    @property
    def stderr_tail(self) -> list[str]:
        """The last lines the run wrote on stderr (for a failure's details)."""
        return list(self._stderr)
