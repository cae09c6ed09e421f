"""Exports of the reviewed set: CSV and JSON (findings + reviews), COCO and YOLO boxes, VLM-R1 JSONL.

Every format writes through `core.atomic_files`: a failed export (a full disk) keeps the last good
file or folder and says which path it couldn't write.

Each format declares itself with `@exporter(key, menu label, default name, target)` on its writer;
the app's File → Export menu and its actions are built from `EXPORTERS`, so a new format is one
decorated function here.

Every format carries the model's anomaly score per image (its latest finding's; empty or null when it
has none): a CSV column, the finding in JSON, a key of each COCO image and VLM-R1 line, and `scores.csv`
in a YOLO folder.

The reviewed set is every image with a current review; the inspector's review is the
ground truth (an acceptance carries the model's defects, a flag or correction the corrected ones).
The CSV and JSON keep the audit trail: the review's kind, reviewer and time, the model version and
verdict it was made against, and the latest inspection (every inspection is kept in the store).
Verdicts are written as the app says them, normal / defective; labels in their one spelling. Boxes
stay in original-image pixels everywhere; the VLM-R1 lines say so in `box_frame`, because
a trainer for Qwen2.5-VL must map them into the resized model input itself.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Sequence

from PIL import Image

from lriad_desktop.core.atomic_files import atomic_file, atomic_folder, write_text_atomically
from lriad_desktop.core.defect_kinds import canonical_label
from lriad_desktop.core.inspection.finding import Defect, verdict_word
from lriad_desktop.core.inspection.images import open_raster
from lriad_desktop.core.inspection.prompting import format_answer, user_prompt
from lriad_desktop.core.store.review import agreement
from lriad_desktop.core.store.review_store import ImageState, InspectionRecord, ReviewStore, now_iso

BOX_FRAME = "original_pixels"


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote."""

    path: Path
    images: int
    boxes: int
    skipped: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line for the status bar."""
        def count(n: int, word: str) -> str:
            return f"{n} {word}{'' if n == 1 else 'es' if word == 'box' else 's'}"

        text = f"{count(self.images, 'image')}, {count(self.boxes, 'box')} → {self.path}"
        return text + (f" ({len(self.skipped)} skipped)" if self.skipped else "")


class ExportTarget(str, Enum):
    """What an export writes to: one file, or a folder it fills."""

    FILE = "file"
    FOLDER = "folder"


ExportWriter = Callable[[Sequence[ImageState], Path], ExportResult]


@dataclass(frozen=True)
class Exporter:
    """One export format as it declares itself: its key, its menu label, where it writes, and the writer."""

    key: str  # "coco": the menu action is `export_<key>`, and `export_reviewed(store, key, …)` runs it
    menu_label: str  # "COCO Boxes…"
    default_name: str  # the file (or folder) name the save dialog proposes
    target: ExportTarget
    write: ExportWriter

    @property
    def title(self) -> str:
        """The format as dialogs and notices name it ('COCO Boxes')."""
        return self.menu_label.rstrip("…")


EXPORTERS: dict[str, Exporter] = {}  # key → exporter, in menu order; the File → Export menu loops over it


def exporter(key: str, menu_label: str, default_name: str,
             target: ExportTarget = ExportTarget.FILE) -> Callable[[ExportWriter], ExportWriter]:
    """Register the decorated writer `f(states, path) -> ExportResult` as export format `key`."""
    def register(write: ExportWriter) -> ExportWriter:
        EXPORTERS[key] = Exporter(key, menu_label, default_name, target, write)
        return write
    return register


def reviewed_set(store: ReviewStore) -> list[ImageState]:
    """Every reviewed image with its current review, the inspection it was made against and every inspection."""
    return store.reviewed_states(with_history=True)


def _object_name(state: ImageState) -> str:
    return state.image.object_name or (state.finding.object_name if state.finding else "") or Path(
        state.image.path).parent.name


def image_size(state: ImageState) -> tuple[int, int] | None:
    """(width, height) as the model saw the image (EXIF orientation applied); None when unreadable."""
    if state.finding is not None and min(state.finding.image_size) > 0:
        return state.finding.image_size
    try:
        with open_raster(state.image.path) as im:
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1)
    except (OSError, ValueError):
        return None
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def anomaly_score(state: ImageState) -> float | None:
    """The model's anomaly score for the image (its latest finding's), None when it has none."""
    return state.finding.anomaly_score if state.finding is not None else None


def _score_text(state: ImageState) -> str:
    score = anomaly_score(state)
    return "" if score is None else f"{score:.6g}"


UNTYPED = "defect"  # the class of a box whose type the inspector has not chosen, where a format needs one


def _reviewed_defects(state: ImageState, untyped: str = UNTYPED) -> list[Defect]:
    """The review's defects, each label in its one spelling (`canonical_label`); `untyped` for a box without one."""
    return [Defect(canonical_label(d.label) or untyped, d.box) for d in state.review.review.defects]


def _boxed(defects: Sequence[Defect]) -> list[Defect]:
    return [d for d in defects if d.box is not None and d.box.area > 0]


def _defect_dicts(defects: Sequence[Defect]) -> list[dict[str, Any]]:
    return [{"label": canonical_label(d.label), "box": d.box.as_list(ndigits=2) if d.box else None} for d in defects]


def _inspection_dict(record: InspectionRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    f = record.finding
    return {"inspection_id": record.id, "model_version": record.model_version, "verdict": verdict_word(f.verdict),
            "defects": _defect_dicts(f.defects), "inspected_at": record.created_at}


def _agrees(state: ImageState) -> bool | None:
    """Whether the latest inspection agrees with the review (None when it is the one reviewed, or there is none)."""
    latest = state.latest
    if latest is None or (state.reviewed_against is not None and latest.id == state.reviewed_against.id):
        return None
    return agreement(state.review.review, latest.finding).agrees


def _review_dict(state: ImageState) -> dict[str, Any]:
    rec = state.review
    assert rec is not None
    r = rec.review
    return {"kind": r.kind.value, "kind_words": r.kind.words, "verdict": verdict_word(r.verdict),
            "defects": _defect_dicts(r.defects), "note": r.note, "reviewer": rec.reviewer,
            "reviewed_at": rec.created_at, "review_id": rec.id}


def _labels_text(record: InspectionRecord | None) -> str:
    return "; ".join(canonical_label(d.label) for d in record.finding.defects) if record is not None else ""


CSV_COLUMNS = ("image_id", "path", "sha256", "object_name", "review", "verdict", "defect", "label",
               "x1", "y1", "x2", "y2", "note", "reviewer", "reviewed_at",
               "reviewed_model_version", "reviewed_model_verdict", "reviewed_model_labels",
               "latest_model_version", "latest_model_verdict", "latest_model_labels", "latest_inspected_at",
               "latest_agrees", "inspections", "anomaly_score")


def csv_rows(state: ImageState) -> list[list[Any]]:
    """The CSV rows of one reviewed image: one per reviewed defect (one row without defect columns for a part
    without defects). Each carries the review (its kind, verdict, reviewer, time), the model version and
    verdict the review was made against, and the latest inspection with whether it agrees."""
    rec, against, latest = state.review, state.reviewed_against, state.latest
    agrees = _agrees(state)
    head = [state.image.id, state.image.path, state.image.sha256, _object_name(state), rec.review.kind.words,
            verdict_word(rec.review.verdict)]
    tail = [rec.review.note, rec.reviewer, rec.created_at,
            against.model_version if against else "", verdict_word(against.finding.verdict) if against else "",
            _labels_text(against), latest.model_version if latest else "",
            verdict_word(latest.finding.verdict) if latest else "", _labels_text(latest),
            latest.created_at if latest else "", "" if agrees is None else ("yes" if agrees else "no"),
            len(state.inspections), _score_text(state)]
    defects = _reviewed_defects(state, untyped="")
    if not defects:
        return [head + ["", "", "", "", "", ""] + tail]
    rows = []
    for i, d in enumerate(defects, start=1):
        box = [round(v, 2) for v in d.box.as_list(None)] if d.box is not None else ["", "", "", ""]
        rows.append(head + [i, d.label, *box] + tail)
    return rows


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: a string starting like a formula (`=`, `+`, `-`, `@`, a tab or a
    carriage return) gets a leading `'` (OWASP's CSV-injection rule); numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


@exporter("csv", "CSV (findings + reviews)…", "reviews.csv")
def export_csv(states: Sequence[ImageState], path: str | os.PathLike) -> ExportResult:
    """One row per reviewed defect (or per reviewed image without defects), flat columns: the review next to
    the model version and verdict it was made against and the latest inspection."""
    target = Path(path)
    boxes = 0
    with atomic_file(target, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for s in states:
            boxes += len(_boxed(s.review.review.defects))
            writer.writerows([spreadsheet_safe(cell) for cell in row] for row in csv_rows(s))
    return ExportResult(target, len(states), boxes)


@exporter("json", "JSON (findings, reasoning, reviews)…", "reviews.json")
def export_json(states: Sequence[ImageState], path: str | os.PathLike) -> ExportResult:
    """All reviewed images: the review, the inspection it was made against, the latest finding in full
    (reasoning, raw text, timings) with whether it agrees, and every inspection of the image."""
    target = Path(path)
    items = []
    for s in states:
        finding = s.finding.to_dict() if s.finding else None
        if finding is not None:
            finding["verdict"] = verdict_word(s.finding.verdict)
        items.append({"image_id": s.image.id, "path": s.image.path, "sha256": s.image.sha256,
                      "object_name": _object_name(s), "review": _review_dict(s),
                      "reviewed_against": _inspection_dict(s.reviewed_against),
                      "latest": _inspection_dict(s.latest), "latest_agrees": _agrees(s), "finding": finding,
                      "inspections": [_inspection_dict(h) for h in s.inspections]})
    doc = {"format": "lriad-reviews", "version": 2, "exported_at": now_iso(), "box_frame": BOX_FRAME,
           "verdicts": ["normal", "defective"], "images": items}
    write_text_atomically(target, json.dumps(doc, indent=1, ensure_ascii=False))
    return ExportResult(target, len(items), sum(len(_boxed(s.review.review.defects)) for s in states))


def _categories(states: Sequence[ImageState]) -> list[str]:
    return sorted({d.label for s in states for d in _boxed(_reviewed_defects(s))})


@exporter("coco", "COCO Boxes…", "coco.json")
def export_coco(states: Sequence[ImageState], path: str | os.PathLike) -> ExportResult:
    """A COCO detection file: images (absolute paths), categories, one annotation per reviewed box."""
    target = Path(path)
    names = _categories(states)
    cat_id = {name: i + 1 for i, name in enumerate(names)}
    images, annotations, skipped = [], [], []
    for s in states:
        size = image_size(s)
        if size is None:
            skipped.append(f"{s.image.path}: unreadable")
            continue
        images.append({"id": s.image.id, "file_name": s.image.path, "width": size[0], "height": size[1],
                       "anomaly_score": anomaly_score(s)})
        for d in _boxed(_reviewed_defects(s)):
            b = d.box
            annotations.append({"id": len(annotations) + 1, "image_id": s.image.id, "category_id": cat_id[d.label],
                                "bbox": [round(b.x1, 2), round(b.y1, 2), round(b.width, 2), round(b.height, 2)],
                                "area": round(b.area, 2), "iscrowd": 0})
    doc = {"info": {"description": "LR-IAD Desktop reviewed set", "date_created": now_iso()},
           "images": images, "annotations": annotations,
           "categories": [{"id": cat_id[n], "name": n, "supercategory": "defect"} for n in names]}
    write_text_atomically(target, json.dumps(doc, indent=1, ensure_ascii=False))
    return ExportResult(target, len(images), len(annotations), tuple(skipped))


@exporter("yolo", "YOLO Folder…", "yolo", ExportTarget.FOLDER)
def export_yolo(states: Sequence[ImageState], folder: str | os.PathLike, copy_images: bool = True) -> ExportResult:
    """A YOLO folder: `images/` (copies), `labels/` (class cx cy w h, normalised), `data.yaml`, `classes.txt`.

    Without `copy_images`, `images.txt` lists the original paths instead of copying.
    """
    out = Path(folder)
    names = _categories(states)
    index = {name: i for i, name in enumerate(names)}
    listed, skipped, boxes, scores = [], [], 0, ["file,image_id,anomaly_score"]
    with atomic_folder(out) as stage:  # the previous export stays whole until this one is complete
        (stage / "labels").mkdir()
        if copy_images:
            (stage / "images").mkdir()
        for s in states:
            size = image_size(s)
            src = Path(s.image.path)
            if size is None or (copy_images and not src.is_file()):
                skipped.append(f"{s.image.path}: unreadable")
                continue
            w, h = size
            stem = f"{s.image.id:06d}_{src.stem}"
            lines = []
            for d in _boxed(_reviewed_defects(s)):
                b = d.box
                cx, cy = (b.x1 + b.x2) / 2 / w, (b.y1 + b.y2) / 2 / h
                lines.append(f"{index[d.label]} {cx:.6f} {cy:.6f} {b.width / w:.6f} {b.height / h:.6f}")
            (stage / "labels" / f"{stem}.txt").write_text("\n".join(lines) + ("\n" if lines else ""),
                                                          encoding="utf-8")
            boxes += len(lines)
            scores.append(f"{stem},{s.image.id},{_score_text(s)}")
            if copy_images:
                shutil.copy2(src, stage / "images" / f"{stem}{src.suffix.lower()}")
            else:
                listed.append(str(src))
        if not copy_images:
            (stage / "images.txt").write_text("\n".join(listed) + "\n", encoding="utf-8")
        (stage / "scores.csv").write_text("\n".join(scores) + "\n", encoding="utf-8")  # the model's, per image
        (stage / "classes.txt").write_text("".join(n + "\n" for n in names), encoding="utf-8")
        yaml = f"path: {json.dumps(str(out.resolve()))}\ntrain: images\nval: images\n"
        yaml += ("names:\n" + "".join(f"  {i}: {json.dumps(n)}\n" for i, n in enumerate(names))
                 if names else "names: {}\n")
        (stage / "data.yaml").write_text(yaml, encoding="utf-8")
    return ExportResult(out, len(states) - len(skipped), boxes, tuple(skipped))


def vlm_r1_record(state: ImageState) -> dict[str, Any]:
    """One VLM-R1-style training line: image, prompt (problem), answer in the app's grammar (solution)."""
    review = state.review.review
    obj = _object_name(state)
    problem = user_prompt(obj)
    defects = _reviewed_defects(state)
    boxed = [(d.label, d.box.as_list(ndigits=None)) for d in defects if d.box is not None]
    solution = format_answer(review.verdict.value == "anomalous", boxed)
    size = image_size(state)
    return {"id": f"lriad-{state.image.id}", "image": state.image.path, "image_size": list(size) if size else None,
            "object_name": obj, "problem": problem, "solution": solution,
            "conversations": [{"from": "human", "value": "<image>" + problem}, {"from": "gpt", "value": solution}],
            "box_frame": BOX_FRAME, "labels_without_box": [d.label for d in defects if d.box is None],
            "review": review.kind.value, "note": review.note, "reviewer": state.review.reviewer,
            "reviewed_at": state.review.created_at,
            "anomaly_score": anomaly_score(state)}


@exporter("vlm-r1", "VLM-R1 JSONL (training elsewhere)…", "train.jsonl")
def export_vlm_r1(states: Sequence[ImageState], path: str | os.PathLike) -> ExportResult:
    """JSONL for training elsewhere (VLM-R1 / R1-V style); boxes in original pixels (`box_frame`)."""
    target = Path(path)
    boxes = 0
    with atomic_file(target, "w") as fh:
        for s in states:
            rec = vlm_r1_record(s)
            boxes += len(_boxed(s.review.review.defects))
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return ExportResult(target, len(states), boxes)


def export_reviewed(store: ReviewStore, kind: str, target: str | os.PathLike) -> ExportResult:
    """Export the store's reviewed set in format `kind` (a key of `EXPORTERS`)."""
    if kind not in EXPORTERS:
        raise ValueError(f"unknown export '{kind}' (use {', '.join(EXPORTERS)})")
    return EXPORTERS[kind].write(reviewed_set(store), Path(target))
