"""The prompt (system + user turn built from the object's name) and the output grammar.

With golden samples the user turn shows K reference images first, each introduced as a good
example of the object, then the image to inspect (`build_messages(..., references=K)`); without
any, it is the paper's single-image prompt, unchanged.

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

SYSTEM_PROMPT_WITH_REFERENCES = (
    "You are an industrial quality inspector. You are shown good reference images (golden samples) of a "
    "product and then one image of the same product to inspect. Compare the inspected image with the "
    "references, reason step by step inside <think></think>, then give the answer inside <answer></answer> as "
    'JSON: {"anomaly": true or false, "defects": [{"label": "<defect type>", "bbox_2d": [x1, y1, x2, y2]}]}, '
    "with boxes on the inspected image."
)

DEFAULT_OBJECT = "product"


def object_phrase(object_name: str | None) -> str:
    """t = f(object): the readable name of the inspected object ("metal_nut" -> "metal nut")."""
    name = (object_name or "").strip().replace("_", " ").replace("-", " ")
    return " ".join(name.split()) or DEFAULT_OBJECT


def object_key(object_name: str | None) -> str:
    """The name golden samples are filed under: "Metal_Nut", "metal nut" and "metal-nut" are one object."""
    return object_phrase(object_name).lower()


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


def reasoning_names_object(reasoning: str | Sequence[str], object_name: str | None) -> bool:
    """True when the reasoning names the object the prompt asked about (its readable name,
    `object_phrase`, in any case): the check that the model reasons about what it was asked."""
    text = reasoning if isinstance(reasoning, str) else " ".join(reasoning)
    name = object_phrase(object_name).lower()
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", " ".join(text.lower().split())) is not None


def user_prompt(object_name: str | None) -> str:
    """The user turn's text for an object, as in the LR-IAD paper's prompt t = f(object)."""
    obj = object_phrase(object_name)
    return (
        f"This is an image of a {obj}. Inspect the {obj} for defects. Think step by step about how a "
        f"good {obj} looks and whether anything is abnormal. If there is a defect, give its type "
        "and its bounding box."
    )


def compare_prompt(object_name: str | None, references: int) -> str:
    """The closing text after the references and the image to inspect."""
    obj = object_phrase(object_name)
    which = "the reference image" if references == 1 else f"the {references} reference images"
    return (
        f"Inspect the {obj} in the last image for defects. Compare it with {which} of a good {obj}: a "
        "difference in position or lighting is not a defect; a scratch, a crack, a stain, a missing or extra "
        "part is. Think step by step. If there is a defect, give its type and its bounding box in the last image."
    )


_ROWS = ("upper", "middle", "lower")
_COLS = ("left", "centre", "right")


def where_in_image(box: Sequence[float], image_size: tuple[int, int]) -> str:
    """Where a box `[x1, y1, x2, y2]` (pixels of an image of `image_size`) lies, in words: "upper left",
    "centre", "lower right"."""
    w, h = max(1, image_size[0]), max(1, image_size[1])
    cx, cy = (box[0] + box[2]) / 2 / w, (box[1] + box[3]) / 2 / h
    row, col = _ROWS[min(2, max(0, int(cy * 3)))], _COLS[min(2, max(0, int(cx * 3)))]
    if row == "middle":
        return "centre" if col == "centre" else f"middle {col}"
    return f"{row} {'middle' if col == 'centre' else col}"


def region_hint(boxes: Sequence[Sequence[float]], image_size: tuple[int, int]) -> str:
    """The anomaly map's region hint (EAGLE-style), one sentence for the prompt: where the image differs most
    from the object's good images (its largest region, and a second one if there is one); "" when none."""
    if not boxes:
        return ""
    w, h = max(1, image_size[0]), max(1, image_size[1])
    parts = []
    for box in boxes[:2]:
        share = max(1, round(100 * (box[2] - box[0]) * (box[3] - box[1]) / (w * h)))
        parts.append(f"the {where_in_image(box, image_size)} ({share} % of the image)")
    return ("Compared with good images of this product, the image differs most in " + " and ".join(parts) +
            "; look there closely.")


def _with_hint(text: str, hint: str) -> str:
    return f"{text} {hint}" if hint else text


def _image_part(image: Any) -> dict[str, Any]:
    return {"type": "image"} if image is None else {"type": "image", "image": image}


def build_messages(object_name: str | None, image: Any = None, references: int | Sequence[Any] = 0,
                   hint: str = "") -> list[dict[str, Any]]:
    """Chat messages (system + user turn) for a processor's chat template.

    `image` is put into the query's image entry when given (trl's conversational datasets want it
    separate, so it may be None). `references`: how many golden samples come first (each an image
    entry of its own, introduced as a good reference), or the reference images themselves. With
    none, the prompt is the single-image one a model without references was trained on. `hint` (the anomaly
    map's `region_hint`) closes the user turn when given.
    """
    refs = list(references) if not isinstance(references, int) else [None] * references
    if not refs:
        return [
            {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
            {"role": "user", "content": [_image_part(image),
                                         {"type": "text", "text": _with_hint(user_prompt(object_name), hint)}]},
        ]
    obj = object_phrase(object_name)
    content: list[dict[str, Any]] = []
    for i, ref in enumerate(refs, start=1):
        content += [{"type": "text", "text": f"Reference image {i}: a good {obj} (golden sample).\n"},
                    _image_part(ref), {"type": "text", "text": "\n"}]
    content += [{"type": "text", "text": f"Image to inspect: a {obj}.\n"}, _image_part(image),
                {"type": "text", "text": "\n" + _with_hint(compare_prompt(object_name, len(refs)), hint)}]
    return [
        {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT_WITH_REFERENCES}]},
        {"role": "user", "content": content},
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
