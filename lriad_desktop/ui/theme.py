"""Light and dark palettes (following the system unless the settings force one), icons, the style sheet."""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtCore import QByteArray, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QGuiApplication, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QApplication, QWidget

from lriad_desktop.core.paths import resources_dir

# Colours per theme: the palette roles plus the tokens the style sheet uses.
THEMES: dict[str, dict[str, str]] = {
    "light": {
        "window": "#f3f4f6", "panel": "#f8f9fa", "base": "#ffffff", "canvas": "#e4e6ea", "text": "#1c1e21",
        "muted": "#6b7280", "border": "#d8dbe0", "button": "#ffffff", "hover": "#e9ebef",
        "accent": "#0a6cf0", "accent_soft": "#dbe9fd", "ok": "#1f9d55", "ok_soft": "#dcf3e5",
        "danger": "#d93025", "danger_soft": "#fbe1df", "danger_dark": "#8e1b14", "warn": "#c77700",
        "warn_soft": "#fff1d6",
    },
    "dark": {
        "window": "#1d1f23", "panel": "#23262b", "base": "#2a2d33", "canvas": "#141518", "text": "#e6e8eb",
        "muted": "#9aa1ab", "border": "#3a3e45", "button": "#30343a", "hover": "#343840",
        "accent": "#3d8bfd", "accent_soft": "#1f3a5f", "ok": "#34c171", "ok_soft": "#1c3b2a",
        "danger": "#ff5c4d", "danger_soft": "#4a2422", "danger_dark": "#a3271d", "warn": "#e0a030",
        "warn_soft": "#4a3a1c",
    },
}


def system_is_dark() -> bool:
    """True when the desktop asks for a dark appearance."""
    hints = QGuiApplication.styleHints()
    return hints.colorScheme() == Qt.ColorScheme.Dark


def resolve_theme(preference: str) -> str:
    """'light' or 'dark' for a setting of 'system', 'light' or 'dark'."""
    if preference in ("light", "dark"):
        return preference
    return "dark" if system_is_dark() else "light"


def make_palette(theme: str) -> QPalette:
    """The QPalette of a theme ("light" or "dark")."""
    c = {k: QColor(v) for k, v in THEMES[theme].items()}
    pal = QPalette()
    role = QPalette.ColorRole
    for r, key in ((role.Window, "window"), (role.WindowText, "text"), (role.Base, "base"),
                   (role.AlternateBase, "panel"), (role.Text, "text"), (role.Button, "button"),
                   (role.ButtonText, "text"), (role.ToolTipBase, "base"), (role.ToolTipText, "text"),
                   (role.Highlight, "accent"), (role.Link, "accent"), (role.PlaceholderText, "muted"),
                   (role.Mid, "border"), (role.Midlight, "hover"), (role.Dark, "border")):
        pal.setColor(r, c[key])
    pal.setColor(role.HighlightedText, QColor("#ffffff"))
    pal.setColor(role.BrightText, c["danger"])
    disabled = QPalette.ColorGroup.Disabled
    for r in (role.Text, role.WindowText, role.ButtonText):
        pal.setColor(disabled, r, c["muted"])
    return pal


@lru_cache(maxsize=4)
def style_sheet(theme: str) -> str:
    """The app style sheet with this theme's colours filled in."""
    path = resources_dir() / "style" / "app.qss"
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    for key, value in THEMES[theme].items():
        text = text.replace("{{" + key + "}}", value)
    return text


class ThemeState:
    """The theme in force (so icons and the image view can pick matching colours)."""

    current = "light"


def apply_theme(app: QApplication, preference: str) -> str:
    """Apply palette, style sheet and icon colours; returns the theme in force ('light' or 'dark')."""
    theme = resolve_theme(preference)
    app.setStyle("Fusion")
    app.setPalette(make_palette(theme))
    app.setStyleSheet(style_sheet(theme))
    ThemeState.current = theme
    icon.cache_clear()
    return theme


def colour(token: str) -> QColor:
    """A colour token of the theme in force."""
    return QColor(THEMES[ThemeState.current][token])


def _render(svg: bytes, size: int, dpr: float) -> QPixmap:
    pix = QPixmap(int(size * dpr), int(size * dpr))
    pix.fill(Qt.GlobalColor.transparent)
    pix.setDevicePixelRatio(dpr)
    painter = QPainter(pix)
    QSvgRenderer(QByteArray(svg)).render(painter, QRectF(0, 0, size, size))
    painter.end()
    return pix


@lru_cache(maxsize=128)
def icon(name: str) -> QIcon:
    """The icon `resources/icons/<name>.svg`, drawn in the theme's text colour (muted when disabled)."""
    path = resources_dir() / "icons" / f"{name}.svg"
    if not path.is_file():
        return QIcon()
    text = path.read_text(encoding="utf-8")
    dpr = max(1.0, QGuiApplication.primaryScreen().devicePixelRatio() if QGuiApplication.primaryScreen() else 1.0)
    result = QIcon()
    for mode, token in ((QIcon.Mode.Normal, "text"), (QIcon.Mode.Disabled, "muted"), (QIcon.Mode.Active, "text")):
        svg = text.replace("currentColor", THEMES[ThemeState.current][token]).encode()
        for size in (16, 20, 24, 32):
            result.addPixmap(_render(svg, size, dpr), mode)
    return result


def paint_card(p: QPainter, rect: QRectF, font: QFont, title: str) -> QRectF:
    """A chart's card: the rounded frame in the theme's colours and its title in bold capitals at the top
    left; returns the header area (for a figure at its right). Leaves the painter on a bold font."""
    frame = QRectF(rect).adjusted(0.5, 0.5, -0.5, -0.5)
    p.setPen(colour("border"))
    p.setBrush(colour("base"))
    p.drawRoundedRect(frame, 6, 6)
    bold = QFont(font)
    bold.setBold(True)
    p.setFont(bold)
    p.setPen(colour("muted"))
    header = frame.adjusted(10, 6, -10, 0)
    p.drawText(header, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, title.upper())
    return header


def bring_to_front(window: QWidget) -> None:
    """Show a dialog or panel window, raised above the others and given the focus."""
    window.show()
    window.raise_()
    window.activateWindow()
