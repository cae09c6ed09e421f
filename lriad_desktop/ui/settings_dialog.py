"""The settings dialog, built from the declarations in `core.settings` (one editor per declared field).

The model picker checks a folder with `core.engine.validate_model_folder` before it can be
used: a folder that is not a model says why and keeps OK disabled.
"""

from __future__ import annotations

from dataclasses import Field, fields
from typing import Any

from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (QCheckBox, QColorDialog, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox,
                               QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPushButton,
                               QSpinBox, QVBoxLayout, QWidget)

from lriad_desktop.core.engine import ModelFolderError, validate_adapter_folder, validate_model_folder
from lriad_desktop.core.paths import bundled_model_dir
from lriad_desktop.core.settings import Settings, SettingsError, setting_fields


def describe_model_folder(path: str) -> tuple[bool, str]:
    """(usable, message) for a model folder ('' = the bundled model)."""
    target = path or str(bundled_model_dir())
    try:
        info = validate_model_folder(target)
    except ModelFolderError as err:
        return (not path), str(err) + ("  (the bundled model is missing: choose a folder)" if not path else "")
    frame = info.geometry.frame.value.replace("_", " ")
    return True, f"✓ {info.model_type} · {len(info.weights)} weight file(s) · boxes in {frame}"


def describe_adapter_folder(path: str) -> tuple[bool, str]:
    """(usable, message) for an adapter folder ('' = none)."""
    if not path:
        return True, "No adapter"
    try:
        validate_adapter_folder(path)
    except ModelFolderError as err:
        return False, str(err)
    return True, "✓ PEFT LoRA adapter"


class PathField(QWidget):
    """A folder path with Browse… and a line saying whether the folder can be used."""

    def __init__(self, value: str, check: Any, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._check, self._title = check, title
        self.edit = QLineEdit(value)
        self.edit.setPlaceholderText("(bundled lriad-tiny)" if check is describe_model_folder else "(none)")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.status = QLabel()
        self.status.setWordWrap(True)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(browse)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(row)
        lay.addWidget(self.status)
        self.edit.textChanged.connect(self.validate)
        self.ok = True
        self.validate()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, self._title, self.edit.text())
        if folder:
            self.edit.setText(folder)

    def validate(self) -> bool:
        self.ok, message = self._check(self.edit.text().strip())
        self.status.setText(message)
        self.status.setObjectName("fieldOk" if self.ok and message.startswith("✓") else
                                  "fieldError" if not self.ok or "missing" in message else "meta")
        self.status.style().unpolish(self.status)
        self.status.style().polish(self.status)
        return self.ok

    def value(self) -> str:
        return self.edit.text().strip()


class ColorField(QPushButton):
    def __init__(self, value: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._value = value
        self.clicked.connect(self._pick)
        self._paint()

    def _pick(self) -> None:
        c = QColorDialog.getColor(QColor(self._value), self, "Box colour")
        if c.isValid():
            self._value = c.name()
            self._paint()

    def _paint(self) -> None:
        swatch = QPixmap(28, 14)
        swatch.fill(QColor(self._value))
        self.setIcon(QIcon(swatch))
        self.setIconSize(swatch.size())
        self.setText(f"  {self._value}")

    def value(self) -> str:
        return self._value


class SettingsDialog(QDialog):
    """Edit every declared setting; `result_settings()` after OK."""

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self._settings = settings
        self.editors: dict[str, Any] = {}
        layout = QVBoxLayout(self)
        groups: dict[str, QFormLayout] = {}
        for f in setting_fields():
            meta = f.metadata
            if meta.get("hidden"):
                continue
            form = groups.get(meta["group"])
            if form is None:
                box = QGroupBox(meta["group"])
                form = groups[meta["group"]] = QFormLayout(box)
                layout.addWidget(box)
            editor = self._editor(f, getattr(settings, f.name))
            editor.setToolTip(meta.get("doc", ""))
            self.editors[f.name] = editor
            form.addRow(meta["label"], editor)
        self.error = QLabel()
        self.error.setObjectName("fieldError")
        self.error.setWordWrap(True)
        layout.addWidget(self.error)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        for name in ("model_dir", "adapter_dir"):
            self.editors[name].edit.textChanged.connect(self._revalidate)
        self._revalidate()
        self.resize(620, self.sizeHint().height())

    def _editor(self, f: Field, value: Any) -> QWidget:
        meta = f.metadata
        if meta.get("kind") == "model_folder":
            return PathField(value, describe_model_folder, "Choose a model folder")
        if meta.get("kind") == "adapter_folder":
            return PathField(value, describe_adapter_folder, "Choose a LoRA adapter folder")
        if meta.get("kind") == "color":
            return ColorField(value)
        if meta.get("choices"):
            combo = QComboBox()
            combo.addItems(list(meta["choices"]))
            combo.setCurrentText(value)
            return combo
        if isinstance(value, bool):
            box = QCheckBox()
            box.setChecked(value)
            return box
        if isinstance(value, int):
            spin = QSpinBox()
            spin.setRange(int(meta["minimum"]), int(meta["maximum"]))
            spin.setSpecialValueText(meta.get("special", ""))  # shown for the minimum, e.g. "auto"
            spin.setValue(value)
            return spin
        if isinstance(value, float):
            dspin = QDoubleSpinBox()
            dspin.setRange(float(meta["minimum"]), float(meta["maximum"]))
            dspin.setSingleStep(0.5)
            dspin.setValue(value)
            return dspin
        return QLineEdit(str(value))

    def _revalidate(self) -> None:
        ok = all(self.editors[n].ok for n in ("model_dir", "adapter_dir"))
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ok)
        self.error.setText("" if ok else "Choose a usable model folder (or leave it empty for the bundled model).")

    def _value(self, name: str) -> Any:
        w = self.editors[name]
        if isinstance(w, (PathField, ColorField)):
            return w.value()
        if isinstance(w, QComboBox):
            return w.currentText()
        if isinstance(w, QCheckBox):
            return w.isChecked()
        if isinstance(w, (QSpinBox, QDoubleSpinBox)):
            return w.value()
        return w.text()

    def result_settings(self) -> Settings:
        """The settings as edited (raises `SettingsError` for a value out of its declared range)."""
        changes = {f.name: self._value(f.name) for f in fields(Settings) if f.name in self.editors}
        return self._settings.with_changes(**changes)

    def accept(self) -> None:
        try:
            self.result_settings()
        except SettingsError as err:
            self.error.setText(str(err))
            return
        super().accept()
