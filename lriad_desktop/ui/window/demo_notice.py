"""The first-launch notice: the bundled model is a demo trained on synthetic images only.

Shown once (the answer is kept in the settings) while the bundled model is the one in use; it
offers *Get a Real Model* (the Models dialog) or *Keep the Demo*.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from lriad_desktop.core.models.listing import DEMO_MODEL_NOTE
from lriad_desktop.core.settings import Settings
from lriad_desktop.ui.window.controller import AppController

NOTICE_TEXT = (
    "<h3>You are using the bundled demo model</h3>"
    f"<p>The model that comes with the app is a <b>{DEMO_MODEL_NOTE}</b>. It lets you try the whole loop "
    "(inspect, flag, improve) on this computer, but it can't inspect real parts: on the six bundled sample "
    "images it gets 3 right, and on real MVTec-AD or VisA photos it finds almost nothing.</p>"
    "<p>For real inspection, use a Qwen vision-language model such as Qwen3-VL-4B-Instruct or "
    "Qwen2.5-VL-7B-Instruct. <i>Get a Real Model</i> lists the models already on this machine and downloads one "
    "(or tells you how to copy one in when this machine is offline).</p>"
)


def should_show(settings: Settings) -> bool:
    """True on a first launch that uses the bundled model (and never again once answered)."""
    return not settings.demo_notice_shown and not settings.model_dir


class DemoModelNotice(QDialog):
    """'Get a Real Model' or 'Keep the Demo'; `choice` is 'models' or 'keep' once answered."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About the bundled model")
        self.choice = ""
        text = QLabel(NOTICE_TEXT)
        text.setWordWrap(True)
        text.setMinimumWidth(520)
        self.get_button = QPushButton("Get a Real Model…")
        self.get_button.setObjectName("primary")
        self.keep_button = QPushButton("Keep the Demo")
        self.get_button.clicked.connect(lambda: self._answer("models"))
        self.keep_button.clicked.connect(lambda: self._answer("keep"))
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.keep_button)
        buttons.addWidget(self.get_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(20, 16, 20, 16)
        lay.addWidget(text)
        lay.addLayout(buttons)
        self.get_button.setDefault(True)

    def _answer(self, choice: str) -> None:
        self.choice = choice
        self.accept()


def offer_real_model(controller: AppController, parent: QWidget,
                     open_models: Callable[[], None]) -> DemoModelNotice | None:
    """Show the notice (non-blocking) over `parent` if this launch should; remember the answer, open Models on
    request."""
    if not should_show(controller.settings):
        return None
    notice = DemoModelNotice(parent)

    def answered(_result: int) -> None:
        controller.update_settings(controller.settings.with_changes(demo_notice_shown=True))
        if notice.choice == "models":
            open_models()

    notice.finished.connect(answered)
    notice.open()
    return notice
