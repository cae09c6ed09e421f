"""Every setting of the app, declared once with its type, default and limits, stored as JSON.

Like Picard's `options.py`: one frozen dataclass is the declaration; each field's metadata
says how the settings dialog shows it. Files are written atomically (temp file, fsync,
rename) and upgraded through `UPGRADES` when the format changes.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import MISSING, Field, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable

from lriad_desktop.core.atomic_files import FileWriteError, write_text_atomically
from lriad_desktop.core.devices import DEVICE_CHOICES, DEVICE_NAMES
from lriad_desktop.core.inspection.families import FAMILIES
from lriad_desktop.core.anomaly_map.cnn_features import CNN_FEATURE
from lriad_desktop.core.anomaly_map.features import DEFAULT_MAP_FEATURE, MAP_FEATURE_CHOICES, MAP_FEATURE_NAMES
from lriad_desktop.core.paths import user_data_dir
from lriad_desktop.core.training_runs.verdict import DEFAULT_TOLERANCE_POINTS

SETTINGS_FILE = "settings.json"
SETTINGS_VERSION = 1
MAX_RECENT = 10
MAX_LAST_QUEUE = 500  # files and folders remembered for the next start (a folder counts once, however many images)
# UPGRADES[v] turns a version-v dict into a version v + 1 dict; add one when a key changes meaning.
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


class SettingsError(Exception):
    """Settings that can't be saved; the message says why."""


def _opt(label: str, doc: str = "", *, kind: str = "", choices: tuple[str, ...] = (),
         minimum: float | None = None, maximum: float | None = None, group: str = "General",
         hidden: bool = False, special: str = "", choice_labels: tuple[str, ...] = (), tech: str = "") -> dict[str, Any]:
    # label and doc in the inspector's words; `tech` the technical name, for the tooltip
    return {"label": label, "doc": doc, "kind": kind, "choices": choices, "minimum": minimum, "maximum": maximum,
            "group": group, "hidden": hidden, "special": special, "choice_labels": choice_labels, "tech": tech}


@dataclass(frozen=True)
class Settings:
    """The app's settings (frozen: change with `dataclasses.replace` or `Settings.with_changes`)."""

    model_dir: str = field(default="", metadata=_opt(
        "Model folder", "A Qwen2-VL / Qwen2.5-VL / Qwen3-VL / Qwen3.5 folder; empty = the bundled demo model",
        kind="model_folder", group="Model"))
    adapter_dir: str = field(default="", metadata=_opt(
        "Improved version", "The version \"Improve model\" trained, on top of the model (optional; Model → Versions "
        "switches between them)", kind="adapter_folder", group="Model", tech="PEFT LoRA adapter folder"))
    device: str = field(default="auto", metadata=_opt(
        "Runs on", "Where the model runs on this computer", choices=DEVICE_CHOICES,
        choice_labels=DEVICE_NAMES, group="Model", tech="torch device: " + ", ".join(DEVICE_CHOICES)))
    batch_size: int = field(default=4, metadata=_opt(
        "Images per model call", "How many images the model looks at together when inspecting many", minimum=1,
        maximum=64, group="Model", tech="batch size"))
    max_new_tokens: int = field(default=256, metadata=_opt(
        "Longest answer", "How much the model may write for one image (in tokens, word pieces); with answers held "
        "to the format this bounds the reasoning, and the verdict and boxes after it always get room to close", minimum=16, maximum=4096, group="Model", tech="max new tokens"))
    constrained_answers: bool = field(default=True, metadata=_opt(
        "Hold answers to the format", "The local model can only write answers the app reads: a short reasoning, "
        "then a verdict, labels and boxes inside the image (off: it writes freely and some answers can't be read)",
        group="Model", tech="grammar-constrained generation (xgrammar)"))
    cpu_threads: int = field(default=0, metadata=_opt(
        "Processor threads", "How many processor cores the model may use; auto keeps one for the window",
        minimum=0, maximum=256, group="Model", special="auto (all cores but one)", tech="CPU threads"))
    inference: str = field(default="local", metadata=_opt(
        "Run the model", "On this computer (the model folder above) or on a model server (below)",
        choices=("local", "server"), choice_labels=("On this computer", "On a model server"), group="Model"))
    server_url: str = field(default="", metadata=_opt(
        "Server URL", "The server's OpenAI-compatible address, e.g. http://gpu-server:8000/v1", group="Model server"))
    server_model: str = field(default="", metadata=_opt(
        "Served model", "The model (or LoRA adapter) name on the server; empty = the server's only model",
        group="Model server"))
    server_api_key: str = field(default="", metadata=_opt(
        "API key", "Sent as a bearer token, never shown or logged; empty = LRIAD_SERVER_API_KEY, or none",
        kind="secret", group="Model server"))
    server_in_flight: int = field(default=4, metadata=_opt(
        "Images sent at once", "Images sent together, so the server can work on them side by side", minimum=1,
        maximum=64, group="Model server", tech="requests in flight"))
    server_timeout_s: int = field(default=60, metadata=_opt(
        "Timeout (s)", "Longest wait for one answer", minimum=5, maximum=600, group="Model server"))
    server_processor_dir: str = field(default="", metadata=_opt(
        "Local copy of the model", "The served model's folder (or its processor settings and lriad.json): the "
        "exact resize and box frame. Empty = the served folder if this computer sees it, else the family below",
        kind="processor_folder", group="Model server"))
    server_family: str = field(default="qwen2_5_vl", metadata=_opt(
        "Model family", "Without a local copy: the served model's family (its patch size and box frame)",
        choices=tuple(FAMILIES), choice_labels=tuple(f.name for f in FAMILIES.values()), group="Model server"))
    server_frame: str = field(default="auto", metadata=_opt(
        "Box coordinates", "Without a local copy: how the served model gives box positions", tech="coordinate frame",
        choices=("auto", "model_pixels", "norm1000"),
        choice_labels=("The family's", "Pixels of the resized image", "0-1000 grid"), group="Model server"))
    server_max_pixels: int = field(default=0, metadata=_opt(
        "Largest image size", "Without a local copy: the most pixels an image is resized to (the server's own "
        "limit or less)", minimum=0, maximum=16_777_216, group="Model server", special="the family's (1280 image tokens)",
        tech="max pixels (pixel budget)"))
    reviewer_name: str = field(default="", metadata=_opt(
        "Your name", "Signs every accept, flag and correction in the review trail and the exports (empty = the "
        "login name)", group="Inspection", tech="reviewer"))
    auto_inspect: bool = field(default=False, metadata=_opt(
        "Inspect images as they arrive", "Inspect every image added to the queue", group="Inspection"))
    recursive_folders: bool = field(default=True, metadata=_opt(
        "Open folders recursively", "Include images in sub-folders", group="Inspection"))
    tiles: str = field(default="off", metadata=_opt(
        "Tiles for large images", "Inspect large images in overlapping tiles: auto (at the model's pixel budget), "
        "CxR (e.g. 4x3) or off; per object, e.g. 'off, circuit board=4x3'", kind="tile_policy",
        group="Inspection"))
    mqtt_broker: str = field(default="", metadata=_opt(
        "MQTT broker", "Publish each finding to this broker (HOST:PORT, QoS 1) for the line's PLC or dashboard; "
        "empty = off", kind="mqtt_broker", group="On the line"))
    mqtt_topic: str = field(default="lriad", metadata=_opt(
        "Topic prefix", "Findings go to PREFIX/finding, online/offline to PREFIX/status", kind="mqtt_topic",
        group="On the line"))
    reference_count: int = field(default=-1, metadata=_opt(
        "Golden samples per image", "How many of the object's golden samples (mark a normal image with G) the "
        "model sees beside each image. As the model says: none, unless the model folder says the model was "
        "trained with them (a model that wasn't answers worse beside them); 0 = none. G still marks golden "
        "samples for the anomaly map and the strip either way", minimum=-1, maximum=8, group="Inspection",
        special="as the model says"))
    anomaly_map: bool = field(default=True, metadata=_opt(
        "Anomaly map", "Compare each image with its object's good images (golden samples and images reviewed as "
        "normal): a heatmap (M), boxes of its own, and a score fused with the "
        "model's", group="Inspection", tech="nearest-neighbour memory bank"))
    map_feature: str = field(default=DEFAULT_MAP_FEATURE, metadata=_opt(
        "Anomaly map compares on", "ImageNet features shipped with the app (measured best on real photos), or the "
        "model's own vision tower (for a real Qwen-VL model; unmeasured on real photos)", choices=MAP_FEATURE_CHOICES,
        choice_labels=MAP_FEATURE_NAMES, group="Inspection",
        tech=f"{CNN_FEATURE} or the tower's own, e.g. block:0+1@448; a bank records which"))
    region_hint: bool = field(default=False, metadata=_opt(  # off: it hurts the bundled model (README)
        "Tell the model where the map looks", "With an anomaly map, the prompt names the region where the image "
        "differs most from the good images (for a real Qwen-VL model; the demo model answers worse)",
        group="Inspection", tech="region hint (EAGLE-style)"))
    map_opacity: float = field(default=0.55, metadata=_opt(
        "Heatmap opacity", "How strongly the anomaly map's heatmap covers the image (M shows it)", minimum=0.1,
        maximum=1.0, group="Appearance"))
    show_map: bool = field(default=False, metadata=_opt(
        "Show the anomaly map", "The heatmap was on when the app closed (M)", hidden=True))
    theme: str = field(default="system", metadata=_opt(
        "Theme", "Follow the system, or force light or dark", choices=("system", "light", "dark"),
        group="Appearance"))
    box_line_width: float = field(default=2.0, metadata=_opt(
        "Box line width", "Screen pixels", minimum=1.0, maximum=12.0, group="Appearance"))
    box_color: str = field(default="#ff453a", metadata=_opt(
        "Box colour", "The model's boxes", kind="color", group="Appearance"))
    flag_color: str = field(default="#0a84ff", metadata=_opt(
        "Flag box colour", "Boxes you drew or changed", kind="color", group="Appearance"))
    show_labels: bool = field(default=True, metadata=_opt(
        "Show label chips", "The defect type above each box", group="Appearance"))
    improve_tolerance: float = field(default=DEFAULT_TOLERANCE_POINTS, metadata=_opt(
        "Allowed loss on held-out images (points)", "After \"Improve model\", Discard is recommended when the images "
        "it never trained on lose more than this on accuracy, label accuracy or mean IoU (2 points = 2 % of "
        "accuracy, 0.02 of IoU)", minimum=0.0, maximum=100.0, group="Improve model", tech="regression tolerance"))
    training_processes: int = field(default=1, metadata=_opt(
        "GPUs to train on", "How many GPUs \"Improve model\" trains on at once, one process each (on a computer "
        "without GPUs, processes on the processor, which buys nothing on a few cores); 1 = one process, as usual",
        minimum=1, maximum=64, group="Improve model", tech="data-parallel processes under accelerate launch"))
    training_sharding: str = field(default="ddp", metadata=_opt(
        "Model on several GPUs", "With more than one GPU: a whole copy of the model on each, or the model split "
        "across them with DeepSpeed ZeRO (needs deepspeed installed) when one GPU can't hold it and its generation",
        choices=("ddp", "zero2", "zero3"), group="Improve model",
        choice_labels=("A copy on each GPU", "Split optimizer and gradients (ZeRO-2)", "Split everything (ZeRO-3)"),
        tech="accelerate config: DDP, DeepSpeed ZeRO-2, ZeRO-3"))
    recent_folders: tuple[str, ...] = field(default=(), metadata=_opt("Recent folders", hidden=True))
    recent_sources: tuple[str, ...] = field(default=(), metadata=_opt("Recent camera sources", hidden=True))
    model_folders: tuple[str, ...] = field(default=(), metadata=_opt(
        "Added model folders", "Folders the Models dialog lists besides the cache and the app's models folder",
        hidden=True))
    demo_notice_shown: bool = field(default=False, metadata=_opt(
        "Demo-model notice shown", "The first-launch notice about the bundled demo model was answered", hidden=True))
    reviewer_asked: bool = field(default=False, metadata=_opt(
        "Reviewer name asked", "The inspector was asked their name once (it stays editable)", hidden=True))
    last_queue: tuple[str, ...] = field(default=(), metadata=_opt(
        "Last queue", "The files and folders queued when the app last closed: opened again at start", hidden=True))
    last_open_folder: str = field(default="", metadata=_opt("Last folder images were opened from", hidden=True))
    last_export_folder: str = field(default="", metadata=_opt("Last folder exported to", hidden=True))
    training_by: str = field(default="minutes", metadata=_opt(
        "Train for", "How \"Improve model\" says how long to train", choices=("minutes", "steps"), hidden=True))
    training_minutes: int = field(default=10, metadata=_opt(
        "Training minutes", minimum=1, maximum=24 * 60, hidden=True))
    training_steps: int = field(default=150, metadata=_opt(
        "Training steps", minimum=1, maximum=100_000, hidden=True, tech="GRPO steps"))

    def with_changes(self, **changes: Any) -> "Settings":
        """A copy with `changes`, each checked against its declaration (raises `SettingsError`)."""
        new = replace(self, **changes)
        problems = new.problems()
        if problems:
            raise SettingsError("; ".join(problems))
        return new

    def problems(self) -> list[str]:
        """What is out of range or not a declared choice."""
        problems = []
        for f in fields(self):
            problem = _field_problem(f, getattr(self, f.name))
            if problem:
                problems.append(problem)
        return problems

    def with_recent_folder(self, folder: str) -> "Settings":
        """Remember `folder` first among the recent folders."""
        items = (folder,) + tuple(f for f in self.recent_folders if f != folder)
        return replace(self, recent_folders=items[:MAX_RECENT])

    def with_queued(self, items: tuple[str, ...]) -> "Settings":
        """Remember `items` (files and folders) as queued, after what is queued already; () forgets the queue."""
        merged = tuple(dict.fromkeys(self.last_queue + items)) if items else ()
        return replace(self, last_queue=merged[:MAX_LAST_QUEUE])

    def with_recent_source(self, source: str) -> "Settings":
        """Remember a camera source first among the recent ones."""
        items = (source,) + tuple(s for s in self.recent_sources if s != source)
        return replace(self, recent_sources=items[:MAX_RECENT])


def _field_problem(f: Field, value: Any) -> str:
    meta = f.metadata
    kind = meta.get("kind")
    if isinstance(value, float) and not math.isfinite(value):  # NaN compares false with every limit
        return f"{meta['label']}: {value} is not a finite number"
    if kind == "tile_policy":
        from lriad_desktop.core.backends.tiles import tile_policy_problem

        problem = tile_policy_problem(str(value))
        return f"{meta['label']}: {problem}" if problem else ""
    if kind in ("mqtt_broker", "mqtt_topic"):
        from lriad_desktop.core.line.publishing import broker_problem, topic_problem

        problem = broker_problem(str(value)) if kind == "mqtt_broker" else topic_problem(str(value))
        return f"{meta['label']}: {problem}" if problem else ""
    if meta.get("choices") and value not in meta["choices"]:
        return f"{meta['label']}: '{value}' is not one of {', '.join(meta['choices'])}"
    if meta.get("minimum") is not None and value < meta["minimum"]:
        return f"{meta['label']}: {value} is below {meta['minimum']}"
    if meta.get("maximum") is not None and value > meta["maximum"]:
        return f"{meta['label']}: {value} is above {meta['maximum']}"
    return ""


def setting_fields() -> tuple[Field, ...]:
    """The declared settings, in order (their metadata drives the settings dialog)."""
    return fields(Settings)


def settings_path() -> Path:
    """Where the settings are kept (the user data folder)."""
    return user_data_dir() / SETTINGS_FILE


def _coerce(f: Field, value: Any) -> Any:
    default = f.default if f.default is not MISSING else None
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
    elif isinstance(default, tuple):
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
    raise TypeError(f"{f.name}: expected {type(default).__name__}, got {type(value).__name__}")


def _stored_version(data: dict[str, Any], notes: list[str]) -> int:
    """The format version a settings file says it has; an unreadable one is read as this version (noted)."""
    raw = data.get("version", 0)
    if raw is None:
        return 0
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw <= 10_000:
        return raw
    notes.append(f"the settings' version {json.dumps(raw)[:40]} is not a version number; each setting is checked "
                 "as this version's")
    return SETTINGS_VERSION


def settings_from_dict(data: dict[str, Any]) -> tuple[Settings, list[str]]:
    """Settings from a stored dict, upgraded; bad or unknown values fall back to defaults (reported)."""
    notes: list[str] = []
    version = _stored_version(data, notes)
    if version > SETTINGS_VERSION:
        notes.append(f"settings were written by a newer version ({version}); unknown keys are ignored")
    while version < SETTINGS_VERSION:
        upgrade = UPGRADES.get(version)
        data = upgrade(dict(data)) if upgrade else data
        version += 1
    values: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name not in data:
            continue
        try:
            value = _coerce(f, data[f.name])
        except (TypeError, OverflowError) as err:
            notes.append(str(err))
            continue
        problem = _field_problem(f, value)
        if problem:  # out of range or not a choice: keep the default
            notes.append(problem)
        else:
            values[f.name] = value
    return Settings(**values), notes


def load_settings(path: str | os.PathLike | None = None) -> tuple[Settings, list[str]]:
    """The saved settings (defaults when there is no file) and notes about anything ignored."""
    target = Path(path) if path is not None else settings_path()
    if not target.is_file():
        return Settings(), []
    try:
        data = json.loads(target.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as err:
        return Settings(), [f"{target} can't be read ({err}); using defaults"]
    return settings_from_dict(data)


def load_settings_warned(path: str | os.PathLike | None = None) -> Settings:
    """`load_settings` for a command: what was ignored goes to stderr as one warning line."""
    settings, notes = load_settings(path)
    if notes:
        print(f"warning: settings: {'; '.join(notes)} (defaults used for these)", file=sys.stderr)
    return settings


def settings_to_dict(settings: Settings) -> dict[str, Any]:
    """The settings as stored (with the format version)."""
    data = asdict(settings)
    return {"version": SETTINGS_VERSION, **{k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}}


def save_settings(settings: Settings, path: str | os.PathLike | None = None) -> Path:
    """Write the settings atomically (a crash leaves the old file or the new one, never half)."""
    target = Path(path) if path is not None else settings_path()
    text = json.dumps(settings_to_dict(settings), indent=2, ensure_ascii=False)
    try:
        write_text_atomically(target, text)
    except FileWriteError as err:
        raise SettingsError(f"Can't save the settings: {err}") from None
    return target
