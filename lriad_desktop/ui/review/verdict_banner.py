"""The verdict banner: the verdict that stands for the image, big, and where it comes from beneath it.

Until someone reviews the image the banner is the model's verdict. Once reviewed it is the inspector's
(a flagged capsule reads DEFECTIVE, not the model's green NORMAL), with the model's answer on the line
below, and, after a re-inspection with a newer version, whether that answer now agrees with the review.
On the demo model with an anomaly map (`core.anomaly_map.decision`) the map's verdict leads, with its score and regions,
and the demo model's answer is shown beneath it as its guess.
"""

from __future__ import annotations

from datetime import datetime

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from lriad_desktop.core.inspection.confidence import format_score
from lriad_desktop.core.defect_kinds import display_name
from lriad_desktop.core.inspection.finding import Finding, Verdict, verdict_word
from lriad_desktop.core.anomaly_map.decision import map_led
from lriad_desktop.core.store.review import ReviewKind, agreement
from lriad_desktop.core.store.adapter_versions import version_label
from lriad_desktop.ui.review.queue_model import QueueEntry

BADGES = {Verdict.ANOMALOUS: ("DEFECTIVE", "anomalous"), Verdict.NORMAL: ("NORMAL", "normal"),
          Verdict.UNPARSED: ("UNREADABLE ANSWER", "unparsed")}
_DID = {ReviewKind.ACCEPT: "accepted", ReviewKind.FLAG: "verdict flagged", ReviewKind.LABEL: "type corrected",
        ReviewKind.BOX: "box corrected"}


def when_text(iso: str) -> str:
    """'12 Mar 10:02' for a stored time (as it is when it can't be read)."""
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%d %b %H:%M")
    except ValueError:
        return iso


def demo_guess(model: Finding) -> str:
    """"Demo model's guess: unreadable answer" / "…: defective (scratch)" / "…: normal"."""
    if model.verdict is Verdict.UNPARSED:
        said = "unreadable answer"
    else:
        said = verdict_word(model.verdict)
        names = ", ".join(dict.fromkeys(display_name(d.label) for d in model.defects if d.label.strip()))
        if model.verdict is Verdict.ANOMALOUS and names:
            said += f" ({names})"
    return f"Demo model's guess: {said}"


def map_source(decided: Finding) -> str:
    """Where a map-led verdict comes from: "The anomaly map's verdict · score 0.97 · 3 regions to review"."""
    regions = len(decided.defects)
    what = f"{regions} region{'s' if regions != 1 else ''} to review" if regions else "no region stands out"
    return f"The anomaly map's verdict · score {format_score(decided.anomaly_score)} · {what}"


def _restyle(widget: QWidget) -> None:
    widget.style().unpolish(widget)
    widget.style().polish(widget)


# the inspector's verdict carries the mark of what they did, as the queue's badges do: a flagged DEFECTIVE is not
# an accepted one
_MARK = {ReviewKind.ACCEPT: "✓", ReviewKind.FLAG: "⚑", ReviewKind.LABEL: "✎", ReviewKind.BOX: "✎"}


class VerdictBanner(QWidget):
    """The big verdict badge and its source line, for one queue entry."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.badge = QLabel("NOT INSPECTED")
        self.badge.setObjectName("verdictBadge")
        self.badge.setProperty("verdict", "pending")
        self.source = QLabel()
        self.source.setObjectName("verdictSource")
        self.source.setWordWrap(True)
        self.agreement = QLabel()
        self.agreement.setObjectName("verdictAgreement")
        self.agreement.setWordWrap(True)
        self.agreement.hide()
        self.guess = QLabel()  # the demo model's answer, beneath the map's verdict
        self.guess.setObjectName("demoGuess")
        self.guess.setWordWrap(True)
        self.guess.hide()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(3)
        lay.addWidget(self.badge)
        lay.addWidget(self.source)
        lay.addWidget(self.agreement)
        lay.addWidget(self.guess)

    def set_badge(self, text: str, key: str, source: str = "") -> None:
        """A state without a verdict (no image, inspecting, an error)."""
        self._badge(text, key, reviewed=False)
        self.source.setText(source)
        self.source.setVisible(bool(source))
        self.agreement.hide()
        self.guess.hide()

    def show_entry(self, entry: QueueEntry, reviewed: Finding | None = None) -> None:
        """The verdict in force for `entry` (which has a finding or a review) and where it comes from; after a
        re-inspection "Model said" is `reviewed`, the finding the review was made against, not the newest."""
        f, rec = entry.finding, entry.review
        said = reviewed if entry.reinspected else f
        led = map_led(entry.model_finding)
        if said is not None:
            model = f"{verdict_word(said.verdict)} ({version_label(said.model_version) or 'model'})"
        else:
            model = "an earlier inspection" if entry.reinspected else "not inspected"
        who = "Model said"
        if led and f is not None and not entry.reinspected:
            who, model = "Anomaly map said", verdict_word(f.verdict)
        if rec is None:
            text, key = BADGES[f.verdict] if f is not None else ("NOT INSPECTED", "pending")
            self._badge(text, key, reviewed=False)
            if f is not None and f.verdict is Verdict.UNPARSED and not led:
                self.source.setText("The model's answer couldn't be read · Space: say Normal or Defective")
            else:
                source = map_source(f) if led and f is not None else "The model's verdict"
                self.source.setText(f"{source} · not reviewed yet (Space accepts it, V flags it)")
        else:
            r = rec.review
            text, key = BADGES[r.verdict]
            self._badge(text, key, reviewed=True, mark=_MARK[r.kind])
            how = {ReviewKind.LABEL: ", another defect type", ReviewKind.BOX: ", the box elsewhere"}.get(r.kind, "")
            self.source.setText(f"Your review · {_DID[r.kind]} by {rec.reviewer} · {when_text(rec.created_at)}\n"
                                f"{who}: {model}{how if said is not None else ''}")
        self.source.show()
        if rec is not None and entry.reinspected and f is not None:
            a = agreement(rec.review, f)
            who = version_label(f.model_version) or "the model"
            self.agreement.setText(f"✓ {who} now agrees with your review" if a.agrees
                                   else f"✗ {who} still disagrees with your review: {a.why}")
            self.agreement.setProperty("agrees", "yes" if a.agrees else "no")
            _restyle(self.agreement)
            self.agreement.show()
        else:
            self.agreement.hide()
        self.guess.setText(demo_guess(entry.model_finding) if led and entry.model_finding is not None else "")
        self.guess.setVisible(led)

    def _badge(self, text: str, key: str, reviewed: bool, mark: str = "") -> None:
        self.badge.setText((mark + " " if mark else "") + text)
        self.badge.setProperty("verdict", key)
        self.badge.setProperty("reviewed", "yes" if reviewed else "no")
        _restyle(self.badge)
