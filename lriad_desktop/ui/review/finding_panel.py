"""What the model said about the current image: the verdict banner (the inspector's verdict once reviewed,
the model's beneath), reasoning as numbered steps, model and time."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSizePolicy, QTextBrowser, QToolButton, QVBoxLayout, QWidget

from lriad_desktop.core.defect_kinds import display_name
from lriad_desktop.core.inspection.finding import Finding, Verdict
from lriad_desktop.core.anomaly_map.banks import describe_fusion
from lriad_desktop.core.store.adapter_versions import version_label
from lriad_desktop.ui.narrow_panel import ElidedLabel, breakable
from lriad_desktop.ui.review.queue_model import QueueEntry
from lriad_desktop.ui.theme import colour
from lriad_desktop.ui.review.verdict_banner import VerdictBanner
from lriad_desktop.core.anomaly_map.decision import map_led
from lriad_desktop.core.anomaly_map.score_words import score_details
from lriad_desktop.core.anomaly_map.score_words import score_headline


def _restyle(widget: QWidget) -> None:
    widget.style().unpolish(widget)
    widget.style().polish(widget)


def section_title(text: str) -> QLabel:
    """A small upper-case section heading."""
    label = QLabel(text.upper())
    label.setObjectName("sectionTitle")
    return label


def reasoning_html(finding: Finding) -> str:
    """The reasoning as a numbered list (and, for an unreadable answer, why and the raw text)."""
    accent, muted, text = colour("accent").name(), colour("muted").name(), colour("text").name()
    rows = []
    for i, step in enumerate(finding.reasoning, start=1):
        rows.append(f"<tr><td width='26' valign='top' style='color:{accent}; font-weight:700;'>{i}</td>"
                    f"<td valign='top' style='color:{text}; padding-bottom:6px;'>{html.escape(step)}</td></tr>")
    parts = []
    if rows:
        parts.append("<table cellspacing='0' cellpadding='2' width='100%'>" + "".join(rows) + "</table>")
    else:
        parts.append(f"<p style='color:{muted};'>The model gave no reasoning.</p>")
    if finding.verdict is Verdict.UNPARSED:
        parts.append(f"<p style='color:{muted};'><b>Why unreadable:</b> {html.escape(finding.parse_error or '-')}</p>")
        raw = html.escape(finding.raw_text[:2000]) or "(empty)"
        parts.append(f"<p style='color:{muted};'><b>Raw answer</b></p><pre style='white-space:pre-wrap;'>{raw}</pre>")
    return "".join(parts)


def describe_timing(finding: Finding) -> str:
    """How long the inspection took, in words."""
    t = finding.timings
    bits = []
    if "total_ms" in t:
        total = t["total_ms"]
        bits.append(f"{total / 1000:.2f} s" if total >= 1000 else f"{total:.0f} ms")
    if t.get("new_tokens"):
        bits.append(f"{t['new_tokens']:.0f} tokens")
    if t.get("batch_size", 1) > 1:
        bits.append(f"batch of {t['batch_size']:.0f}")
    return " · ".join(bits)


def describe_score(entry: QueueEntry) -> str:
    """"Anomaly score 0.47 · threshold 0.50 · needs review" (the one number the verdict follows), "No anomaly
    score: …" for an unreadable answer, "" before inspection (`core.anomaly_map.score_words`)."""
    f = entry.model_finding
    if f is None or entry.error:
        return ""
    decided = entry.finding
    return score_headline(f, decided if decided is not None else f, entry.threshold, entry.needs_review)


def describe_score_details(entry: QueueEntry) -> str:
    """How the score was made, one line each (the panel's *Details*); "" before inspection."""
    f = entry.model_finding
    if f is None or entry.error:
        return ""
    return "\n".join(score_details(f))


class FindingPanel(QWidget):
    """The model's side of the story for one image."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        self.title = ElidedLabel()  # a long file name keeps its start and end on one line
        self.title.setStyleSheet("font-size: 12pt; font-weight: 600;")
        self.banner = VerdictBanner()
        self.badge = self.banner.badge
        self.defect_summary = QLabel()
        self.defect_summary.setWordWrap(True)
        self.score = QLabel()  # the anomaly score against the object's threshold
        self.score.setObjectName("score")
        self.score.setWordWrap(True)
        self.details_button = QToolButton()  # how the score was made, for whoever wants to know
        self.details_button.setObjectName("scoreDetails")
        self.details_button.setText("Details")
        self.details_button.setCheckable(True)
        self.details_button.setArrowType(Qt.ArrowType.RightArrow)
        self.details_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.details_button.toggled.connect(self._details_toggled)
        self.details = QLabel()
        self.details.setObjectName("scoreDetails")
        self.details.setWordWrap(True)
        self.details.hide()
        self.reasoning = QTextBrowser()
        self.reasoning.setObjectName("reasoning")
        self.reasoning.setOpenLinks(False)
        self.reasoning.setMinimumHeight(120)
        self.reasoning.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        self.meta = QLabel()
        self.meta.setObjectName("meta")
        self.meta.setWordWrap(True)
        layout.addWidget(self.title)
        layout.addWidget(section_title("Verdict"))
        layout.addWidget(self.banner)
        layout.addWidget(self.score)
        layout.addWidget(self.details_button)
        layout.addWidget(self.details)
        layout.addWidget(self.defect_summary)
        layout.addWidget(section_title("Reasoning"))
        layout.addWidget(self.reasoning, 1)
        layout.addWidget(self.meta)

    def show_entry(self, entry: QueueEntry | None, reviewed: Finding | None = None) -> None:
        """Show the model's finding for `entry` (or an empty state); `reviewed` is the finding its review was
        made against, when a re-inspection has replaced it (the banner's "Model said")."""
        if entry is None:
            self.title.setText("No image")
            self._badge("NO IMAGE", "pending")
            self.defect_summary.setText("")
            self.score.setText("")
            self._show_details("")
            self.reasoning.setHtml("")
            self.meta.setText("")
            return
        self.title.setText(entry.name)
        self.title.setToolTip(entry.path)  # the whole path (the label shows the name, elided when long)
        f = entry.finding
        self.score.setText(describe_score(entry))
        self._show_details(describe_score_details(entry))
        if entry.error:
            self._badge("CAN'T INSPECT IMAGE", "error")  # unreadable, a shape the model can't take, or a failed run
            self.defect_summary.setText(entry.error)
            self.reasoning.setHtml("")
            self.meta.setText("")
        elif f is None and entry.review is not None:  # reviewed without the model (or its finding is gone)
            self.banner.show_entry(entry, reviewed)
            self.defect_summary.setText("Not inspected by the model: press I to inspect it.")
            self.reasoning.setHtml("")
            self.meta.setText("")
        elif f is None:
            self._badge("INSPECTING…" if entry.busy else "NOT INSPECTED", "pending")
            self.defect_summary.setText("Press I to inspect this image, Ctrl+I for all." if not entry.busy else "")
            self.reasoning.setHtml("")
            self.meta.setText("")
        else:
            self.banner.show_entry(entry, reviewed)
            if map_led(entry.model_finding):
                n = len(f.defects)
                self.defect_summary.setText(
                    f"The anomaly map marks {n} region{'s' if n != 1 else ''} to review (dashed yellow with M); "
                    "give each a type (L) or accept" if n else
                    "The anomaly map marks a defect but no single region" if f.verdict is Verdict.ANOMALOUS else
                    "The anomaly map finds nothing unlike the good images")
            elif f.verdict is Verdict.ANOMALOUS:
                names = ", ".join(f"{i}. {display_name(d.label)}" + ("" if d.box else " (no box)")
                                  for i, d in enumerate(f.defects, start=1))
                self.defect_summary.setText("The model found: " + (names or "no defect named"))
            elif f.verdict is Verdict.NORMAL:
                overruled = entry.model_finding is not None and entry.model_finding.verdict is not Verdict.NORMAL
                self.defect_summary.setText("Normal at this object's threshold" if overruled
                                            else "The model found no defect")
            else:
                self.defect_summary.setText("The model's answer could not be read; flag the right verdict.")
            self.reasoning.setHtml(reasoning_html(entry.model_finding or f))
            timing = describe_timing(f)
            obj = f" · object “{f.object_name}”" if f.object_name else ""
            n = len(f.references)
            beside = f" · beside {n} golden sample{'s' if n > 1 else ''}" if n else " · no golden sample"
            self.meta.setText(breakable(f"Model {version_label(f.model_version) or '?'}" + (f" · {timing}" if timing
                                                                                               else "") + obj + beside))
            both = (f"base + adapter: {f.model_version}",) if version_label(f.model_version) != f.model_version else ()
            self.meta.setToolTip("\n".join(both + tuple(f.references)))

    def _show_details(self, text: str) -> None:
        self.details.setText(text)
        self.details_button.setVisible(bool(text))
        self.details.setVisible(bool(text) and self.details_button.isChecked())

    def _details_toggled(self, on: bool) -> None:
        self.details_button.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        self.details.setVisible(on and bool(self.details.text()))

    def _badge(self, text: str, key: str) -> None:
        self.banner.set_badge(text, key)
