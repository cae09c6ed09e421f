"""The settings dialog, built from the declarations in `core.settings` (one editor per declared field).

The model picker checks a folder with `core.backends.engine.validate_model_folder` before it can be
used: a folder that is not a model says why and keeps OK disabled. With "On a model server" chosen,
*Test connection* reaches the server in the background (the task runner) and says what it found.
Each group of settings is a tab (the dialog fits a 1280×800 screen); labels are plain words, the
technical name is in the tooltip. *Runs on* offers only what this computer has: the others are
listed, disabled, with the reason (found in the background: it asks torch).
"""

from __future__ import annotations

from dataclasses import Field, fields
from typing import Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QColor, QIcon, QPixmap, QStandardItemModel
from PySide6.QtWidgets import (QCheckBox, QColorDialog, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox,
                               QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox,
                               QTabWidget, QVBoxLayout, QWidget)

from lriad_desktop.core.devices import DeviceOption, device_options
from lriad_desktop.core.backends.engine import ModelFolderError, validate_adapter_folder, validate_model_folder
from lriad_desktop.core.backends.model_input import has_processor_settings
from lriad_desktop.core.models.listing import DEMO_MODEL_NOTE
from lriad_desktop.core.paths import model_folder
from lriad_desktop.core.settings import Settings, SettingsError, setting_fields
from lriad_desktop.core.plurals import count
from lriad_desktop.ui.tasks import TaskRunner


def describe_model_folder(path: str) -> tuple[bool, str]:
    """(usable, message) for a model folder ('' = the bundled model)."""
    target = str(model_folder(path))
    try:
        info = validate_model_folder(target)
    except ModelFolderError as err:
        return (not path), str(err) + ("  (the bundled model is missing: choose a folder)" if not path else "")
    frame = FRAME_WORDS.get(info.geometry.frame.value, info.geometry.frame.value.replace("_", " "))
    family = info.family.name if info.family else info.model_type
    demo = f" · {DEMO_MODEL_NOTE} (Model → Models… to get a real one)" if not path else ""
    return True, f"✓ {family} · {count(len(info.weights), 'weight file')} · answers boxes {frame}{demo}"


FRAME_WORDS = {"model_pixels": "in pixels of the resized image", "norm1000": "on a 0-1000 grid"}


def describe_adapter_folder(path: str, version_name: str = "") -> tuple[bool, str]:
    """(usable, message) for an adapter folder ('' = none); `version_name` is its registered version, if any."""
    if not path:
        return True, "None: the model as it came"
    try:
        validate_adapter_folder(path)
    except ModelFolderError as err:
        return False, str(err)
    return True, f"✓ version {version_name}" if version_name else "✓ an improved version (LoRA adapter)"


def describe_processor_folder(path: str) -> tuple[bool, str]:
    """(usable, message) for a local copy of a served model ('' = none: the served folder or the family)."""
    if not path:
        return True, "None: the served model's folder if this computer sees it, else the family below"
    if not has_processor_settings(path):
        return False, f"{path} has no image processor settings (preprocessor_config.json)"
    return True, "✓ processor settings: images are resized exactly as the model's own processor does"


PLACEHOLDERS = {describe_model_folder: f"(bundled lriad-tiny: {DEMO_MODEL_NOTE})",
                describe_processor_folder: "(none)", describe_adapter_folder: "(none: the model as it came)"}


class PathField(QWidget):
    """A folder path with Browse… and a line saying whether the folder can be used."""

    def __init__(self, value: str, check: Any, title: str, parent: QWidget | None = None,
                 placeholder: str = "") -> None:
        super().__init__(parent)
        self._check, self._title = check, title
        self.edit = QLineEdit(value)
        self.edit.setPlaceholderText(placeholder or PLACEHOLDERS.get(check, "(none)"))
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

    def __init__(self, settings: Settings, parent: QWidget | None = None, runner: TaskRunner | None = None,
                 version_names: dict[str, str] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self._settings = settings
        self._runner = runner
        self._version_names = version_names or {}  # adapter folder → its version name
        self.editors: dict[str, Any] = {}
        layout = QVBoxLayout(self)
        self.tabs = QTabWidget()
        layout.addWidget(self.tabs)
        groups: dict[str, QFormLayout] = {}
        for f in setting_fields():
            meta = f.metadata
            if meta.get("hidden"):
                continue
            form = groups.get(meta["group"])
            if form is None:
                page = QWidget()
                form = groups[meta["group"]] = QFormLayout(page)
                self.tabs.addTab(page, meta["group"])
            editor = self._editor(f, getattr(settings, f.name))
            tip = meta.get("doc", "") + (f"\n(technical name: {meta['tech']})" if meta.get("tech") else "")
            editor.setToolTip(tip)
            self.editors[f.name] = editor
            label = QLabel(meta["label"])
            label.setToolTip(tip)
            form.addRow(label, editor)
        self.server_box = groups["Model server"].parentWidget()
        self.device_note = QLabel()
        self.device_note.setObjectName("meta")
        self.device_note.setWordWrap(True)
        groups["Model"].insertRow(groups["Model"].getWidgetPosition(self.editors["device"])[0] + 1, "",
                                  self.device_note)
        self._ask_devices()
        self._add_test_connection(groups["Model server"])
        self.error = QLabel()
        self.error.setObjectName("fieldError")
        self.error.setWordWrap(True)
        layout.addWidget(self.error)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        for name in ("model_dir", "adapter_dir", "server_processor_dir"):
            self.editors[name].edit.textChanged.connect(self._revalidate)
        self.editors["inference"].currentIndexChanged.connect(self._revalidate)
        self._revalidate()
        self.resize(640, min(self.sizeHint().height(), 720))

    def _editor(self, f: Field, value: Any) -> QWidget:
        meta = f.metadata
        if meta.get("kind") == "model_folder":
            return PathField(value, describe_model_folder, "Choose a model folder")
        if meta.get("kind") == "adapter_folder":
            names = self._version_names
            return PathField(value, lambda p: describe_adapter_folder(p, names.get(p, "")),
                             "Choose an improved version (LoRA adapter folder)", placeholder=PLACEHOLDERS[
                                 describe_adapter_folder])
        if meta.get("kind") == "processor_folder":
            return PathField(value, describe_processor_folder, "Choose the served model's folder")
        if meta.get("kind") == "color":
            return ColorField(value)
        if meta.get("kind") == "secret":
            secret = QLineEdit(str(value))
            secret.setEchoMode(QLineEdit.EchoMode.Password)
            secret.setPlaceholderText("(none, or from LRIAD_SERVER_API_KEY)")
            return secret
        if meta.get("choices"):
            combo = QComboBox()
            labels = meta.get("choice_labels") or meta["choices"]
            for choice, label in zip(meta["choices"], labels):
                combo.addItem(label, choice)
            combo.setCurrentIndex(max(0, combo.findData(value)))
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
            dspin.setSingleStep(0.05 if float(meta["maximum"]) <= 1 else 0.5)  # an opacity steps finer
            dspin.setValue(value)
            return dspin
        return QLineEdit(str(value))

    def _add_test_connection(self, form: QFormLayout) -> None:
        self.test_button = QPushButton("Test connection")
        self.test_button.clicked.connect(self.test_connection)
        self.test_status = QLabel()
        self.test_status.setWordWrap(True)
        self.test_status.setObjectName("meta")
        row = QHBoxLayout()
        row.addWidget(self.test_button)
        row.addWidget(self.test_status, 1)
        form.addRow("", row)

    def _ask_devices(self) -> None:
        """Find what this computer has off the UI thread (it imports torch), then disable what it lacks."""
        self.device_note.setText("Looking at what this computer has…")
        if self._runner is None:
            self._runner = TaskRunner(self)
        self._runner.submit(lambda _ctx: device_options(), self._devices_found, lane="io")

    def _devices_found(self, options: tuple[DeviceOption, ...] | None, error: BaseException | None) -> None:
        if not _alive(self):
            return
        if error is not None or options is None:
            self.device_note.setText(f"Can't tell which devices this computer has: {error}")
            return
        self.show_devices(options)

    def show_devices(self, options: tuple[DeviceOption, ...]) -> None:
        """Name each device choice as this computer has it; one it lacks is disabled, with the reason."""
        combo: QComboBox = self.editors["device"]
        model = combo.model()
        for option in options:
            i = combo.findData(option.choice)
            if i < 0:
                continue
            combo.setItemText(i, option.name if option.available else f"{option.name} — {option.why_not}")
            combo.setItemData(i, option.why_not or option.name, Qt.ItemDataRole.ToolTipRole)
            if isinstance(model, QStandardItemModel):
                model.item(i).setEnabled(option.available)
        current = next((o for o in options if o.choice == combo.currentData()), None)
        have = ", ".join(o.name for o in options if o.available and o.choice not in ("auto", "cpu"))
        if current is not None and not current.available:
            self.device_note.setText(f"This computer has no {current.name}: the model would run on the processor. "
                                     "Choose another.")
            self.device_note.setObjectName("fieldError")
        else:
            self.device_note.setText(f"This computer has: {have or 'no GPU'}; the processor (CPU) always works.")
            self.device_note.setObjectName("meta")
        self.device_note.style().unpolish(self.device_note)
        self.device_note.style().polish(self.device_note)

    @property
    def on_server(self) -> bool:
        return self.editors["inference"].currentData() == "server"

    def test_connection(self) -> None:
        """Reach the server with the values as edited, in the background; the answer shows beside the button."""
        from lriad_desktop.core.backends.pipeline import BackendUnavailable
        from lriad_desktop.core.backends.server import ServerConfig, check_server

        try:
            config = ServerConfig.from_settings(self.result_settings())
        except SettingsError as err:
            self._tested(None, err)
            return
        if self._runner is None:
            self._runner = TaskRunner(self)
        self.test_button.setEnabled(False)
        self._set_test_status("Connecting…", "meta")

        def work(_ctx: Any) -> Any:
            try:
                return check_server(config)
            except BackendUnavailable as err:  # an unusable URL: said before anything is sent
                return err

        self._runner.submit(work, self._tested, lane="io")

    def _tested(self, result: Any, error: BaseException | None) -> None:
        if not _alive(self):
            return
        self.test_button.setEnabled(True)
        if error is None and not isinstance(result, Exception):
            self._set_test_status(result.message, "fieldOk" if result.ok else "fieldError")
        else:
            self._set_test_status(str(error or result), "fieldError")

    def _set_test_status(self, text: str, name: str) -> None:
        self.test_status.setText(text)
        self.test_status.setObjectName(name)
        self.test_status.style().unpolish(self.test_status)
        self.test_status.style().polish(self.test_status)

    def _revalidate(self) -> None:
        server = self.on_server
        self.server_box.setEnabled(server)
        needed = ("server_processor_dir",) if server else ("model_dir", "adapter_dir")
        ok = all(self.editors[n].ok for n in needed)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ok)
        self.error.setText("" if ok else "Choose a folder with the served model's processor settings, or leave it "
                           "empty." if server else "Choose a usable model folder (or leave it empty for the "
                           "bundled model).")

    def _value(self, name: str) -> Any:
        w = self.editors[name]
        if isinstance(w, (PathField, ColorField)):
            return w.value()
        if isinstance(w, QComboBox):
            data = w.currentData()
            return data if data is not None else w.currentText()
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


def _alive(obj: QObject) -> bool:
    """False once Qt has deleted the widget under the Python object (a dialog closed while a task ran)."""
    try:
        obj.objectName()
    except RuntimeError:
        return False
    return True
