"""A finding: what the model concluded about one image, in original-image pixels."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Verdict(str, Enum):
    """The verdict of one inspection."""

    ANOMALOUS = "anomalous"
    NORMAL = "normal"
    UNPARSED = "unparsed"


VERDICT_WORDS: dict[Verdict, str] = {Verdict.ANOMALOUS: "defective", Verdict.NORMAL: "normal",
                                     Verdict.UNPARSED: "unreadable"}


def verdict_word(verdict: Verdict | None) -> str:
    """The verdict as the app, its exports and its command line say it: normal, defective or unreadable."""
    return VERDICT_WORDS[verdict] if verdict is not None else ""


@dataclass(frozen=True)
class Box:
    """An axis-aligned box `x1, y1, x2, y2` (x2 > x1, y2 > y1) in some pixel frame."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return max(0.0, self.x2 - self.x1)

    @property
    def height(self) -> float:
        return max(0.0, self.y2 - self.y1)

    @property
    def area(self) -> float:
        return self.width * self.height

    @property
    def centre(self) -> tuple[float, float]:
        return ((self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2)

    def iou(self, other: "Box") -> float:
        """Intersection over union with `other` (0 when either box is empty)."""
        ix = max(0.0, min(self.x2, other.x2) - max(self.x1, other.x1))
        iy = max(0.0, min(self.y2, other.y2) - max(self.y1, other.y1))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def clipped(self, width: float, height: float) -> "Box":
        """This box clipped to an image of `width` x `height`."""
        return Box(
            min(max(self.x1, 0.0), width),
            min(max(self.y1, 0.0), height),
            min(max(self.x2, 0.0), width),
            min(max(self.y2, 0.0), height),
        )

    def as_list(self, ndigits: int | None = 1) -> list[float]:
        vals = [self.x1, self.y1, self.x2, self.y2]
        return [round(v, ndigits) if ndigits is not None else v for v in vals]

    @classmethod
    def from_corners(cls, a: float, b: float, c: float, d: float) -> "Box":
        """A box from two corners given in any order (swapped corners are fixed)."""
        return cls(min(a, c), min(b, d), max(a, c), max(b, d))


@dataclass(frozen=True)
class Defect:
    """One defect: its type (label), where it is (None when the model gave no box) and, for a defect the
    model named, how sure it was of the label and box tokens (exp of their mean log-probability; None when
    not known). The confidence is not part of equality: a reviewed defect is the same defect."""

    label: str
    box: Box | None = None
    confidence: float | None = field(default=None, compare=False)


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token's log-probability and its most likely alternatives, as a server reports them."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


def _probability(value: Any) -> float | None:
    """A stored probability, or None for a missing or unusable one (findings written before scores)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        p = float(value)
    except (TypeError, ValueError):
        return None
    return p if 0.0 <= p <= 1.0 else None


def _map_summary(value: Any) -> "MapSummary | None":
    """A stored map summary, or None for a missing or damaged one (findings written before the map)."""
    if not isinstance(value, dict):
        return None
    try:
        return MapSummary.from_dict(value)
    except (KeyError, TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Tiling:
    """How a large image was inspected in overlapping tiles (`core.backends.tiles`): the grid asked for ("auto" or
    "4x3"), the grid cut (columns x rows), each tile's size in original pixels, their overlap (a fraction of
    a tile), and how many tiles answered defective or could not be read."""

    spec: str
    columns: int
    rows: int
    tile_size: tuple[int, int]
    overlap: float
    anomalous_tiles: int = 0
    unparsed_tiles: int = 0

    @property
    def tiles(self) -> int:
        return self.columns * self.rows

    def to_dict(self) -> dict[str, Any]:
        return {"spec": self.spec, "columns": self.columns, "rows": self.rows, "tile_size": list(self.tile_size),
                "overlap": self.overlap, "anomalous_tiles": self.anomalous_tiles,
                "unparsed_tiles": self.unparsed_tiles}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Tiling":
        size = data.get("tile_size") or (0, 0)
        return cls(str(data.get("spec", "")), int(data["columns"]), int(data["rows"]), (int(size[0]), int(size[1])),
                   float(data.get("overlap", 0.0)), int(data.get("anomalous_tiles", 0)),
                   int(data.get("unparsed_tiles", 0)))


@dataclass(frozen=True)
class MapSummary:
    """What the anomaly map (`core.anomaly_map.patch_map`) said about the image, kept with the finding: its normalised
    score (about 0 on the object's good images, larger is more anomalous), its boxes (original-image pixels,
    apart from the model's), its cell grid in the same normalised units (row-major, for the heatmap), how many
    good images its bank held, and the region hint sentence the prompt carried ("" when none)."""

    score: float
    boxes: tuple[Box, ...] = ()
    cells: tuple[tuple[float, ...], ...] = ()
    bank_images: int = 0
    hint: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score, "boxes": [b.as_list(1) for b in self.boxes],
                "cells": [[round(v, 3) for v in row] for row in self.cells], "bank_images": self.bank_images,
                "hint": self.hint}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "MapSummary":
        return cls(float(data["score"]), tuple(Box(*b) for b in data.get("boxes") or ()),
                   tuple(tuple(float(v) for v in row) for row in data.get("cells") or ()),
                   int(data.get("bank_images") or 0), str(data.get("hint") or ""))


@dataclass(frozen=True)
class Finding:
    """The result of inspecting one image.

    `defects` boxes are in original-image pixels; `reasoning` holds the model's steps.
    A finding with verdict `unparsed` keeps the raw text and has no defects. `logprobs` holds the
    answer's token log-probabilities where the backend reports them (a model server asked for
    `logprobs`); they travel with the finding in memory only and are not part of `to_dict`.

    `verdict` is the model's own answer. `verdict_probability` is P(anomalous) read at its verdict token
    (`core.inspection.confidence`); `anomaly_score` is the score decisions use (compared with the object's threshold):
    today the verdict probability, later fused with an anomaly map's score, and `score_source` says what
    it came from (`verdict_token`, `server_logprobs`; "" when there is no score, shown as "—"). `tiling` says how a large
    image was cut into tiles, when it was.
    `references` are the golden samples (their paths) the model was shown beside the image.
    `anomaly_map` is what the object's anomaly map said (None when no map ran); `score_rule` says how
    `anomaly_score` was made from the verdict probability and the map ("" when it is the verdict probability).
    """

    verdict: Verdict
    defects: tuple[Defect, ...] = ()
    reasoning: tuple[str, ...] = ()
    raw_text: str = ""
    model_version: str = ""
    image_path: str = ""
    image_size: tuple[int, int] = (0, 0)
    object_name: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    parse_error: str = ""
    anomaly_score: float | None = None
    verdict_probability: float | None = None
    score_source: str = ""
    references: tuple[str, ...] = ()
    logprobs: tuple[TokenLogprob, ...] = field(default=(), compare=False, repr=False)
    tiling: Tiling | None = None  # set when the image was inspected in tiles
    anomaly_map: MapSummary | None = None
    score_rule: str = ""

    @property
    def map_boxes(self) -> tuple[Box, ...]:
        """The anomaly map's boxes (original-image pixels), kept apart from the model's defects."""
        return self.anomaly_map.boxes if self.anomaly_map is not None else ()

    @property
    def anomalous(self) -> bool:
        return self.verdict is Verdict.ANOMALOUS

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(d.label for d in self.defects)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (boxes as `[x1, y1, x2, y2]` lists)."""
        return {
            "verdict": self.verdict.value,
            "defects": [
                {"label": d.label, "box": d.box.as_list(ndigits=2) if d.box else None,
                 "confidence": d.confidence} for d in self.defects
            ],
            "reasoning": list(self.reasoning),
            "raw_text": self.raw_text,
            "model_version": self.model_version,
            "image_path": self.image_path,
            "image_size": list(self.image_size),
            "object_name": self.object_name,
            "timings": dict(self.timings),
            "parse_error": self.parse_error,
            "tiling": self.tiling.to_dict() if self.tiling else None,
            "anomaly_score": self.anomaly_score,  # not rounded: scores near 0 and 1 still rank
            "verdict_probability": self.verdict_probability,
            "score_source": self.score_source,
            "references": list(self.references),
            "anomaly_map": self.anomaly_map.to_dict() if self.anomaly_map is not None else None,
            "score_rule": self.score_rule,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Finding":
        defects = tuple(
            Defect(d["label"], Box(*d["box"]) if d.get("box") else None, _probability(d.get("confidence")))
            for d in data.get("defects", [])
        )
        size = data.get("image_size") or (0, 0)
        return cls(
            verdict=Verdict(data["verdict"]),
            defects=defects,
            reasoning=tuple(data.get("reasoning", ())),
            raw_text=data.get("raw_text", ""),
            model_version=data.get("model_version", ""),
            image_path=data.get("image_path", ""),
            image_size=(int(size[0]), int(size[1])),
            object_name=data.get("object_name", ""),
            timings={k: float(v) for k, v in (data.get("timings") or {}).items()},
            parse_error=data.get("parse_error", ""),
            tiling=Tiling.from_dict(data["tiling"]) if data.get("tiling") else None,
            anomaly_score=_probability(data.get("anomaly_score")),
            verdict_probability=_probability(data.get("verdict_probability")),
            score_source=str(data.get("score_source") or ""),
            references=tuple(str(r) for r in data.get("references") or ()),
            anomaly_map=_map_summary(data.get("anomaly_map")),
            score_rule=str(data.get("score_rule") or ""),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "Finding":
        return cls.from_dict(json.loads(text))
