"""Every command of the main window, declared once: text, icon, shortcuts; menus and toolbar from names.

Single-key shortcuts are safe: while a text field has focus, Qt gives it the key instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QIcon, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu, QToolBar, QToolButton

from lriad_desktop.core.evaluation.export import EXPORTERS
from lriad_desktop.ui.theme import icon


@dataclass(frozen=True)
class ActionSpec:
    name: str
    text: str
    icon: str = ""
    shortcuts: tuple[str, ...] = ()
    tip: str = ""
    checkable: bool = False


def export_action(key: str) -> str:
    """The name of the action that exports format `key` (one per `core.evaluation.export.EXPORTERS` entry)."""
    return f"export_{key}"


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("open_files", "&Open Images…", "open-file", ("Ctrl+O",), "Add image files to the queue"),
    ActionSpec("open_folder", "Open &Folder…", "open-folder", ("Ctrl+Shift+O",),
               "Add every image in a folder (and its sub-folders)"),
    ActionSpec("paste", "&Paste Image", "paste", ("Ctrl+V",), "Add the image on the clipboard"),
    ActionSpec("camera", "&Camera…", "camera", ("Ctrl+K",), "Capture frames from a camera, video file or stream"),
    ActionSpec("watch_folder", "&Watch Folder…", "", ("Ctrl+Shift+W",),
               "Inspect each image as it lands in a folder (a camera's output); again to stop", checkable=True),
    ActionSpec("shift_report", "Shift &Report…", "", (),
               "An HTML report of a period: counts, defect types, defective and flagged images with their boxes"),
    ActionSpec("clear_queue", "Clear Queue", "", (), "Remove every image from the queue (reviews stay saved)"),
    ActionSpec("settings", "&Settings…", "settings", ("Ctrl+,",), "Model, device, batch size, theme, boxes"),
    ActionSpec("quit", "&Quit", "", ("Ctrl+Q",)),
    ActionSpec("inspect", "&Inspect Image", "inspect", ("I",), "Inspect the current image"),
    ActionSpec("inspect_all", "Inspect &All", "inspect-all", ("Ctrl+I",), "Inspect every image not inspected yet"),
    ActionSpec("reinspect_flagged", "Re-inspect &Flagged", "inspect", ("Ctrl+Shift+F",),
               "Inspect the flagged and corrected images again with the model in use: does it agree now?"),
    ActionSpec("reinspect_all", "Re-inspect A&ll", "inspect-all", ("Ctrl+Shift+I",),
               "Inspect every image again with the model in use"),
    ActionSpec("pause", "&Pause", "pause", ("Ctrl+P",), "Pause or resume inspecting", checkable=True),
    ActionSpec("cancel", "&Cancel Inspection", "cancel", ("Ctrl+.",), "Stop inspecting the images still waiting"),
    ActionSpec("auto_inspect", "Inspect Images as They &Arrive", "", (), "", checkable=True),
    ActionSpec("accept", "&Accept and Next", "accept", ("Space",),
               "The model is right: save and go to the next image"),
    ActionSpec("toggle_verdict", "Flag &Verdict (Normal ↔ Defective)", "verdict", ("V",),
               "The verdict is wrong: switch it"),
    ActionSpec("draw_box", "&Draw Box", "draw-box", ("B",),
               "Redraw the selected box with one drag (with none selected: a new box)", checkable=True),
    ActionSpec("delete_box", "De&lete Box", "delete", ("Delete", "Backspace"), "Delete the selected box"),
    ActionSpec("edit_label", "Change &Label…", "labels", ("L",), "The defect type is wrong: pick or type another"),
    ActionSpec("edit_note", "Add &Note…", "note", ("N",), "A note for this image"),
    ActionSpec("threshold", "Decision &Threshold…", "", ("Ctrl+T",),
               "Set the threshold of this image's object, with its reviewed images' ROC and precision-recall curves"),
    ActionSpec("mark_golden", "Mark as &Golden Sample", "golden", ("G",),
               "Use this image, judged normal, as a good reference for its object (again: stop using it)"),
    ActionSpec("undo", "&Undo", "undo", ("Ctrl+Z",)),
    ActionSpec("redo", "&Redo", "redo", ("Ctrl+Shift+Z", "Ctrl+Y")),
    ActionSpec("next", "&Next Image", "next", ("D", "Right", "PgDown"), "Next image"),
    ActionSpec("previous", "&Previous Image", "previous", ("A", "Left", "PgUp"), "Previous image"),
    ActionSpec("next_unreviewed", "Next &Unreviewed", "next-unreviewed", ("U",), "Next image nobody reviewed"),
    ActionSpec("next_flagged", "Next &Flagged", "flag", ("F",), "Next image with a flag"),
    ActionSpec("next_needs_review", "Next Needs &Review", "", ("R",),
               "Next unreviewed image whose score is near its object's threshold"),
    ActionSpec("needs_review_only", "Only Images That Need Re&view", "", (),
               "Hide the images that are reviewed or whose score is far from its object's threshold", checkable=True),
    ActionSpec("sort_by_doubt", "Least &Certain First", "", ("Ctrl+R",),
               "Sort the queue: scores nearest their object's threshold first; off: the order images came in",
               checkable=True),
    ActionSpec("zoom_in", "Zoom &In", "zoom-in", ("Ctrl++", "Ctrl+=", "+")),
    ActionSpec("zoom_out", "Zoom &Out", "zoom-out", ("Ctrl+-", "-")),
    ActionSpec("zoom_fit", "&Fit to Window", "zoom-fit", ("Ctrl+0", "0")),
    ActionSpec("zoom_100", "&Actual Size (100 %)", "zoom-100", ("Ctrl+1", "1")),
    ActionSpec("toggle_overlay", "Show &Boxes", "overlay", ("H",), "Show or hide the boxes over the image",
               checkable=True),
    ActionSpec("toggle_labels", "Show Label &Chips", "labels", ("Shift+H",), "", checkable=True),
    ActionSpec("toggle_map", "Show Anomaly &Map", "", ("M",),
               "The heatmap of where the image is least like its object's good images, and the map's own boxes",
               checkable=True),
    ActionSpec("models", "&Models…", "open-folder", (), "Models on this machine, and downloading a real one"),
    ActionSpec("teach_product", "&Teach a Product…", "golden", (),
               "Name a product and give a folder of its good images: its anomaly map is built from them, no training"),
    ActionSpec("improve", "Improve &Model…", "improve", (),
               "Fine-tune the model on the flagged images (GRPO, in the background)"),
    ActionSpec("versions", "Model &Versions…", "versions", (), "Activate or roll back a model version"),
    *(ActionSpec(export_action(key), e.menu_label, "export") for key, e in EXPORTERS.items()),
    ActionSpec("shortcuts", "&How It Works and Keys", "", ("F1",), "The review loop, flags, Improve Model, keys"),
    ActionSpec("about", "&About LR-IAD Desktop", ""),
)

MENUS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("&File", ("open_files", "open_folder", "@recent", "paste", "camera", "watch_folder", "-", "@export",
               "shift_report", "-", "clear_queue", "-",
               "settings", "-", "quit")),
    ("&Inspect", ("inspect", "inspect_all", "pause", "cancel", "-", "reinspect_flagged", "reinspect_all", "-",
                  "auto_inspect")),
    ("&Review", ("accept", "toggle_verdict", "draw_box", "delete_box", "edit_label", "edit_note", "-",
                 "mark_golden", "-", "undo", "redo", "-", "threshold")),
    ("&Go", ("next", "previous", "next_unreviewed", "next_flagged", "next_needs_review", "-", "sort_by_doubt",
             "needs_review_only")),
    ("&View", ("zoom_in", "zoom_out", "zoom_fit", "zoom_100", "-", "toggle_overlay", "toggle_labels", "toggle_map")),
    ("&Model", ("models", "teach_product", "-", "improve", "versions")),
    ("&Help", ("shortcuts", "about")),
)

TOOLBAR: tuple[str, ...] = ("open_files", "open_folder", "camera", "-", "inspect", "inspect_all", "-", "accept",
                            "toggle_verdict", "draw_box", "delete_box", "-", "undo", "redo", "-", "previous", "next",
                            "next_unreviewed", "-", "zoom_fit", "zoom_100", "toggle_overlay", "-", "improve",
                            "settings")


def build_actions(window: QMainWindow) -> dict[str, QAction]:
    """Create every action on `window` (so its shortcuts work anywhere in the window)."""
    actions: dict[str, QAction] = {}
    for spec in ACTIONS:
        a = QAction(icon(spec.icon) if spec.icon else QIcon(), spec.text, window)
        a.setObjectName(spec.name)
        if spec.shortcuts:
            a.setShortcuts([QKeySequence(s) for s in spec.shortcuts])
        tip = spec.tip or spec.text.replace("&", "").rstrip("…")
        if spec.shortcuts:
            tip += f"  ({QKeySequence(spec.shortcuts[0]).toString(QKeySequence.SequenceFormat.NativeText)})"
        a.setToolTip(tip)
        a.setStatusTip(spec.tip)
        a.setCheckable(spec.checkable)
        window.addAction(a)
        actions[spec.name] = a
    return actions


def build_menus(window: QMainWindow, actions: dict[str, QAction]) -> dict[str, QMenu]:
    """The menu bar; '@recent' and '@export' become sub-menus returned by name."""
    special: dict[str, QMenu] = {}
    for title, names in MENUS:
        menu = window.menuBar().addMenu(title)
        for name in names:
            if name == "-":
                menu.addSeparator()
            elif name == "@recent":
                special["recent"] = menu.addMenu(icon("open-folder"), "Open &Recent")
            elif name == "@export":
                sub = menu.addMenu(icon("export"), "&Export Reviewed Set")
                for key in EXPORTERS:
                    sub.addAction(actions[export_action(key)])
                special["export"] = sub
            else:
                menu.addAction(actions[name])
    return special


def build_toolbar(window: QMainWindow, actions: dict[str, QAction]) -> QToolBar:
    """The main toolbar from `TOOLBAR`."""
    bar = QToolBar("Main", window)
    bar.setObjectName("mainToolbar")
    bar.setMovable(False)
    for name in TOOLBAR:
        if name == "-":
            bar.addSeparator()
        else:
            bar.addAction(actions[name])
    button = bar.widgetForAction(actions["improve"])
    if isinstance(button, QToolButton):  # "Improve model (16)": the count is the point, so it shows
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    window.addToolBar(bar)
    return bar


def shortcut_table() -> list[tuple[str, str]]:
    """(keys, what they do) for the help dialog and the README."""
    rows = []
    for spec in ACTIONS:
        if spec.shortcuts:
            keys = " / ".join(QKeySequence(s).toString(QKeySequence.SequenceFormat.NativeText) for s in spec.shortcuts)
            rows.append((keys, spec.text.replace("&", "").rstrip("…")))
    return rows
