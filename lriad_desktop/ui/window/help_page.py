"""Help → (F1): a short page on the review loop, flags and corrections, Improve Model and re-inspection, with
every key, and a Close button."""

from __future__ import annotations

import html

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from lriad_desktop.ui.window.actions import shortcut_table

LOOP = """
<h2>The review loop</h2>
<p>Open images (Ctrl+O, Ctrl+Shift+O, or drop files and folders on the window) and inspect them
(<b>I</b> for this image, <b>Ctrl+I</b> for all). The model draws its boxes over the image and explains
itself step by step on the right. For each image, either:</p>
<ul>
<li><b>Accept</b> (Space): the model is right; the next image comes up.</li>
<li><b>Flag the verdict</b> (V): the part is normal and the model says defective, or the other way round.
A part you call defective gets its box next: drag over the defect.</li>
<li><b>Correct the type</b> (L): the part is defective as the model says, but the defect is another kind.
Select the box, pick or type its type, Enter.</li>
<li><b>Correct the box</b> (B): the verdict and the type are right but the box is not. With a box selected,
B redraws <i>that</i> box (it keeps its type); with none selected, B adds a box, which has no type until you
give it one. Drag a box to move it, its corners to resize it; Del removes the selected box.</li>
</ul>
<p>Each of these is saved at once, signed with your name (Settings → Inspection) and kept: Ctrl+Z undoes it.
The big banner shows your verdict once you have reviewed an image, with the model's answer beneath it.
In the queue: <b>✓ normal / ✓ defective</b> accepted, <b>⚑ flagged</b> the verdict changed,
<b>✎ corrected</b> a type or box changed.</p>
<h2>Improve Model</h2>
<p><b>Improve Model (N)</b> fine-tunes the model on the N images you flagged or corrected (and replays some
you accepted, so it doesn't forget them). Choose how long it trains, in minutes or steps; the time left is
measured as it goes. The model in use doesn't change until you press <b>Activate</b>, and Model → Versions
rolls back in one click.</p>
<h2>After Activate</h2>
<p><b>Re-inspect Flagged</b> (Ctrl+Shift+F) runs the new version on the images you flagged or corrected;
<b>Re-inspect All</b> (Ctrl+Shift+I) on every image. Each one then says whether the new answer agrees with
your review (✓ agrees / ✗ and why). Your reviews stay as they are; exports say which model version each
review was made against and what the latest one says.</p>
"""


def help_html() -> str:
    """The help page: how the loop works, then every key."""
    rows = "".join(f"<tr><td><b>{html.escape(keys)}</b></td><td>{html.escape(what)}</td></tr>"
                   for keys, what in shortcut_table())
    return (LOOP + "<h2>Keys</h2><table cellspacing='0' cellpadding='3'>" + rows + "</table>"
            "<p>Single keys work while the image has the focus; Esc leaves a text field.</p>")


class HelpPage(QDialog):
    """The help page, made once per window and shown again on F1."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("LR-IAD Desktop — how it works")
        self.text = QTextBrowser()
        self.text.setOpenLinks(False)
        self.text.setHtml(help_html())
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.buttons.rejected.connect(self.close)
        lay = QVBoxLayout(self)
        lay.addWidget(self.text)
        lay.addWidget(self.buttons)
        self.resize(640, 640)
