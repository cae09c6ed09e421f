"""The prompt (system + user turn built from the object's name) and the output grammar.

Grammar, one for every model:
`<think>Step 1: ... Step 2: ...</think><answer>{"anomaly": true, "defects":
[{"label": "scratch", "bbox_2d": [x1, y1, x2, y2]}]}</answer>`; boxes in the model's frame.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path, PurePath
from typing import Any, Sequence

SYSTEM_PROMPT = (
    "You are an industrial quality inspector. You look at one image of a product, reason step "
    "by step inside <think></think>, then give the answer inside <answer></answer> as JSON: "
    '{"anomaly": true or false, "defects": [{"label": "<defect type>", "bbox_2d": [x1, y1, x2, y2]}]}.'
)

DEFAULT_OBJECT = "product"


def object_phrase(object_name: str | None) -> str:
    """t = f(object): the readable name of the inspected object ("metal_nut" -> "metal nut")."""
    name = (object_name or "").strip().replace("_", " ").replace("-", " ")
    return " ".join(name.split()) or DEFAULT_OBJECT


# Folder names that say how images are sorted or where they were put, not what they show.
SORTING_NAMES = frozenset({
    "test", "train", "training", "val", "validation", "ground_truth", "good", "ok", "ng", "bad", "normal",
    "anomaly", "anomalies", "defect", "defects", "defective", "reject", "rejects", "images", "image", "imgs",
    "img", "data", "samples", "sample", "captures", "capture", "photos", "pictures", "downloads", "desktop",
    "documents", "raw", "input", "inbox", "new", "todo", "done", "reviewed", "tmp", "temp", "dcim", "camera",
    "lriad-desktop", "lriad_desktop", "share", "local", "home", "users", "mnt", "media", "var", "opt", "volumes",
    "srv", "scan", "scans", "shot", "shots", "frame", "frames", "snapshot", "snapshots", "pic", "pics", "photo",
})
# Names that say when or where on the line images were taken, not what they show: line3, batch_07, lot-12,
# cam2, shift 1, 2026-11-30, 20261130, 0042 — a production line, batch, station or date, never the object.
ID_WORDS = ("line", "batch", "lot", "shift", "run", "station", "cam", "camera", "cell", "day", "week", "order", "job",
            "serial", "sn", "id", "set", "session", "series", "take", "bin", "tray", "rack", "pallet", "folder", "dir")
_ID_LIKE = re.compile(r"^(?:(?:" + "|".join(ID_WORDS) + r")[\s_\-.]?\d+[a-z]?|\d[\d\s_\-.:]*|[a-z]{0,3}\d{3,}[a-z\d]*)$",
                      re.IGNORECASE)


def looks_like_an_id(name: str) -> bool:
    """Whether a folder name is a line, batch, station or date id (`line3`, `batch_07`, `2026-11-30`)."""
    return bool(_ID_LIKE.match(name.strip()))
# MVTec-AD and its relatives keep the object one level above the split folder.
SPLIT_NAMES = frozenset({"test", "train", "validation", "ground_truth"})


def _meaningful(name: str) -> bool:
    return len(name) >= 2 and not name.startswith(".") and name.lower() not in SORTING_NAMES and not looks_like_an_id(name)


def _absolute(path: str | os.PathLike) -> PurePath:
    try:
        return Path(os.fspath(path)).resolve()
    except (OSError, RuntimeError, ValueError):  # a link loop, a NUL in the name: the plain absolute path
        return PurePath(os.path.abspath(os.fspath(path)))


def guess_object_name(path: str | os.PathLike) -> str:
    """The object an image most likely shows, from where it lies, for the prompt's t = f(object).

    `bottle/test/broken_large/000.png` -> bottle; `washer/line3/0001.png` -> washer (a line, batch or date
    folder is skipped: `looks_like_an_id`); `samples/washer_scratch.jpg` -> washer;
    `candle/Data/Images/Anomaly/000.JPG` -> candle.
    The inspector can always set the name for an image or a folder instead. The path is made
    absolute and resolved first, so the same file gets the same name however it was typed
    (`bad/good1.jpg` from its folder's parent, or by its full path, or through a link).
    """
    p = _absolute(path)
    parents = [q.name for q in list(p.parents)[:4] if q.name]
    for i, name in enumerate(parents[:3]):
        if name.lower() in SPLIT_NAMES and i + 1 < len(parents) and _meaningful(parents[i + 1]):
            return parents[i + 1]
    if parents and _meaningful(parents[0]):
        return parents[0]
    lead = re.match(r"[A-Za-z]+", p.stem)
    if lead and len(lead.group()) >= 3 and _meaningful(lead.group()):
        return lead.group().lower()
    for name in parents[1:]:
        if _meaningful(name):
            return name
    return DEFAULT_OBJECT


def user_prompt(object_name: str | None) -> str:
    """The user turn's text for an object, as in the LR-IAD paper's prompt t = f(object)."""
    obj = object_phrase(object_name)
    return (
        f"This is an image of a {obj}. Inspect the {obj} for defects. Think step by step about how a "
        f"good {obj} looks and whether anything is abnormal. If there is a defect, give its type "
        "and its bounding box."
    )


def build_messages(object_name: str | None, image: Any = None) -> list[dict[str, Any]]:
    """Chat messages (system + user with one image) for a processor's chat template.

    `image` is put into the image entry when given (trl's conversational datasets want it
    separate, so it may be None).
    """
    image_part: dict[str, Any] = {"type": "image"}
    if image is not None:
        image_part["image"] = image
    return [
        {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
        {"role": "user", "content": [image_part, {"type": "text", "text": user_prompt(object_name)}]},
    ]


def format_answer(anomalous: bool, defects: Sequence[tuple[str, Sequence[float]]] = ()) -> str:
    """The `<answer>` JSON for a verdict and `(label, [x1, y1, x2, y2])` boxes in the model frame."""
    items = [{"label": label, "bbox_2d": [int(round(v)) for v in box]} for label, box in defects]
    return "<answer>" + json.dumps({"anomaly": bool(anomalous), "defects": items}) + "</answer>"


def format_completion(steps: Sequence[str], anomalous: bool,
                      defects: Sequence[tuple[str, Sequence[float]]] = ()) -> str:
    """A full completion in the grammar: numbered reasoning steps, then the answer."""
    think = " ".join(
        s if s.lower().startswith("step ") else f"Step {i}: {s}" for i, s in enumerate(steps, start=1)
    )
    return f"<think>{think}</think>" + format_answer(anomalous, defects)
