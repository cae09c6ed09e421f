"""The app's findings over MQTT (Settings → On the line): each recorded finding published as `lriad watch
--mqtt` publishes it (`core.line.publishing`), the broker's comings and goings as notices for the inspector.

paho's own network thread does the sending; publishing only queues. What it has to say (connected, the broker
is gone, it is back, the queue is full) is read on the main thread every `NOTES_MS`.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal

from lriad_desktop.core.inspection.finding import Finding
from lriad_desktop.core.line.publishing import Broker, FindingPublisher, PublishError, parse_broker
from lriad_desktop.core.settings import Settings
from lriad_desktop.core.plurals import count

NOTES_MS = 1000


class PublishingService(QObject):
    """Publishes findings to the broker the settings name (none: publishing is off)."""

    notice = Signal(str)

    def __init__(self, settings: Settings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._publisher: FindingPublisher | None = None
        self._broker: Broker | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(NOTES_MS)
        self._timer.timeout.connect(self._read_notes)
        self.configure(settings)

    @property
    def broker(self) -> Broker | None:
        """Where findings go now (None: nowhere)."""
        return self._broker

    def configure(self, settings: Settings) -> None:
        """Follow the settings: a new broker or topic reconnects; an empty broker stops publishing."""
        try:
            broker = parse_broker(settings.mqtt_broker, settings.mqtt_topic) if settings.mqtt_broker.strip() else None
        except PublishError as err:  # settings are checked when saved; a hand-edited file lands here
            self.notice.emit(f"MQTT: {err}; findings are not published")
            broker = None
        if broker == self._broker:
            return
        self.close()
        self._broker = broker
        if broker is not None:
            self._publisher = FindingPublisher(broker).start()
            self._timer.start()

    def publish(self, finding: Finding, image_path: str, at: str = "") -> None:
        """Queue one finding's message (nothing when publishing is off)."""
        if self._publisher is not None:
            self._publisher.publish(finding, image_path, at)

    def _read_notes(self) -> None:
        if self._publisher is not None:
            for line in self._publisher.notes():
                self.notice.emit(line)

    def close(self) -> None:
        """Send what can be sent (a moment at most), then disconnect."""
        self._timer.stop()
        publisher, self._publisher, self._broker = self._publisher, None, None
        if publisher is not None:
            left = publisher.close(flush_s=1.0)
            if left:
                self.notice.emit(f"MQTT: {count(left, 'finding')} {'was' if left == 1 else 'were'} not delivered "
                                 "(the broker is gone); they are in the review store")
