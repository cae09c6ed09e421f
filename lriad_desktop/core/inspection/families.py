"""The Qwen vision-language families the app runs, declared once: model_type → how the model is used.

Each family says the coordinate frame its boxes come in, its vision patch size, the default
pixel budget the app gives an image, the chat-template switches the app sets and the extra
module names a LoRA adapter should cover. `config.json`'s `model_type` picks the family; a
folder's `lriad.json` may override the frame and the budget (and lets a model of another
type be tried at all). Everything else (engine, coordinates, training, the Models dialog)
reads this table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

SIDECAR = "lriad.json"


class CoordinateFrame(str, Enum):
    """The frame a model's `bbox_2d` numbers are in."""

    MODEL_PIXELS = "model_pixels"  # absolute pixels of the resized model input (Qwen2.5-VL)
    NORM1000 = "norm1000"  # 0..1000 on both axes, whatever the image size (Qwen2-VL, Qwen3-VL, Qwen3.5)


class ReferenceMode(str, Enum):
    """How a model takes golden-sample references (`lriad.json`: `"references"`)."""

    IMAGES = "images"  # separate images before the query, the text saying which is which (real models)
    SIDE_BY_SIDE = "side_by_side"  # one composite: reference left, query right (`core.inspection.side_by_side`)


# 1280 merged visual tokens per image: the budget Qwen's grounding cookbooks use for boxes
# (`max_pixels = 1280 * 28 * 28` for patch 14; QwenLM/Qwen3-VL issue #1397 finds it grounds better
# than the processors' much larger defaults). A folder's lriad.json can raise or lower it.
VISUAL_TOKEN_BUDGET = 1280


@dataclass(frozen=True)
class ModelFamily:
    """One model family (a `model_type` in `config.json`)."""

    model_type: str
    name: str
    frame: CoordinateFrame
    patch_size: int
    frame_source: str  # where the frame comes from (kept beside the value so it can be checked)
    merge_size: int = 2
    # keyword arguments the app passes to the chat template (the template ignores unknown ones)
    chat_template_kwargs: tuple[tuple[str, Any], ...] = ()
    # module names beyond attention and MLP projections that a LoRA on the language model should cover
    lora_extra_targets: tuple[str, ...] = ()
    mixture_of_experts: bool = False
    # Qwen-VL models take several images in one prompt; a folder trained on composites says so in lriad.json
    references: ReferenceMode = ReferenceMode.IMAGES

    @property
    def default_max_pixels(self) -> int:
        """The pixel budget for one image: `VISUAL_TOKEN_BUDGET` merged tokens of this family's patch."""
        return VISUAL_TOKEN_BUDGET * (self.patch_size * self.merge_size) ** 2

    @property
    def template_kwargs(self) -> dict[str, Any]:
        return dict(self.chat_template_kwargs)


_QWEN2_VL_FRAME = ("Qwen2-VL grounds on a 0-1000 grid (its release wrapped boxes in <|box_start|>(x1,y1),(x2,y2)"
                   "<|box_end|>; QwenLM/Qwen3-VL issue #663, ms-swift PR #6178: 'qwen2-vl ... 千分位坐标归一化')")
_QWEN25_VL_FRAME = ("Qwen2.5-VL answers in absolute pixels of the image after its processor's smart resize "
                    "(QwenLM/Qwen3-VL issues #676 and #940, maintainer answers)")
_QWEN3_VL_FRAME = ("Qwen3-VL uses relative 0-1000 coordinates, unlike Qwen2.5-VL "
                   "(QwenLM/Qwen3-VL issue #1427, maintainer answer; issue #1486)")
# Not stated in the Qwen3.5 model cards we could read. Qwen3.5's vision tower is Qwen3-VL's encoder
# (transformers docs/source/en/model_doc/qwen3_5.md), and Qwen's maintainers answer that later Qwen
# models still ground in "relative coordinates normalized to [0, 1000]" (QwenLM/Qwen3.8-Flash-Next
# issue #4, where the reporter names Qwen3.5's [0, 1000] grid). Check with a real checkpoint before
# relying on Qwen3.5 boxes; a folder's lriad.json overrides this.
_QWEN35_FRAME = ("Qwen3.5 is taken to ground like Qwen3-VL, on a 0-1000 grid (its vision tower is Qwen3-VL's; "
                 "QwenLM/Qwen3.8-Flash-Next issue #4, maintainer answer); not stated in its model card")
# Qwen3.5's chat template opens a <think> block in the generation prompt unless enable_thinking is
# False; the app keeps thinking on, so the model's reasoning lands in that block and the answer follows.
_THINKING = (("enable_thinking", True),)
# Qwen3.5's Gated DeltaNet (linear-attention) layers: their projections hold most of those layers' weights.
_LINEAR_ATTENTION = ("in_proj_qkv", "in_proj_z", "out_proj")

FAMILIES: dict[str, ModelFamily] = {f.model_type: f for f in (
    ModelFamily("qwen2_vl", "Qwen2-VL", CoordinateFrame.NORM1000, 14, _QWEN2_VL_FRAME),
    ModelFamily("qwen2_5_vl", "Qwen2.5-VL", CoordinateFrame.MODEL_PIXELS, 14, _QWEN25_VL_FRAME),
    ModelFamily("qwen3_vl", "Qwen3-VL", CoordinateFrame.NORM1000, 16, _QWEN3_VL_FRAME),
    ModelFamily("qwen3_vl_moe", "Qwen3-VL MoE", CoordinateFrame.NORM1000, 16, _QWEN3_VL_FRAME,
                mixture_of_experts=True),
    ModelFamily("qwen3_5", "Qwen3.5", CoordinateFrame.NORM1000, 16, _QWEN35_FRAME,
                chat_template_kwargs=_THINKING, lora_extra_targets=_LINEAR_ATTENTION),
    ModelFamily("qwen3_5_moe", "Qwen3.5 MoE", CoordinateFrame.NORM1000, 16, _QWEN35_FRAME,
                chat_template_kwargs=_THINKING, lora_extra_targets=_LINEAR_ATTENTION, mixture_of_experts=True),
)}


class UnknownFamily(ValueError):
    """A model type that is not in the family table (and has no frame declared in lriad.json)."""


def supported_families_text() -> str:
    """'Qwen2-VL (qwen2_vl), Qwen2.5-VL (qwen2_5_vl), …' for messages."""
    return ", ".join(f"{f.name} ({f.model_type})" for f in FAMILIES.values())


def unknown_family_message(model_type: str, where: str = "") -> str:
    """The one message for a model type outside the table: the families, and how to try another one."""
    place = f"{where} holds" if where else "This folder holds"
    return (f"{place} a '{model_type or 'unknown'}' model, which LR-IAD has no settings for; the supported "
            f"families are {supported_families_text()}. To try another vision-language model that transformers "
            f"loads with AutoModelForImageTextToText, add {SIDECAR} to the folder with the frame its boxes use: "
            '{"coordinate_frame": "norm1000"} for a 0-1000 grid, or "model_pixels" for pixels of the resized input.')


def family_for(model_type: str) -> ModelFamily:
    """The family of a `model_type`; raises `UnknownFamily` (with the one message) for any other."""
    family = FAMILIES.get(model_type)
    if family is None:
        raise UnknownFamily(unknown_family_message(model_type))
    return family


@dataclass(frozen=True)
class Sidecar:
    """What a folder's `lriad.json` declares (every field optional)."""

    coordinate_frame: CoordinateFrame | None = None
    max_pixels: int | None = None
    min_pixels: int | None = None
    references: ReferenceMode | None = None
    extra: dict = field(default_factory=dict)


def read_sidecar(folder: str | Path) -> Sidecar:
    """The folder's `lriad.json`, or an empty one. Raises ValueError for a malformed file."""
    path = Path(folder) / SIDECAR
    if not path.is_file():
        return Sidecar()
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{SIDECAR} must hold a JSON object")
    frame = data.get("coordinate_frame")
    try:
        declared = CoordinateFrame(frame) if frame else None
    except ValueError:
        raise ValueError(f"coordinate_frame '{frame}' is not one of "
                         f"{', '.join(f.value for f in CoordinateFrame)}") from None
    pixels = {}
    for key in ("max_pixels", "min_pixels"):
        value = data.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
            raise ValueError(f"{key} must be a positive whole number of pixels")
        pixels[key] = value
    mode = data.get("references")
    try:
        references = ReferenceMode(mode) if mode else None
    except ValueError:
        raise ValueError(f"references '{mode}' is not one of {', '.join(m.value for m in ReferenceMode)}") from None
    known = ("coordinate_frame", "max_pixels", "min_pixels", "references")
    extra = {k: v for k, v in data.items() if k not in known}
    return Sidecar(declared, pixels["max_pixels"], pixels["min_pixels"], references, extra)


def read_model_type(folder: str | Path) -> str:
    """`config.json`'s `model_type` ('' when there is none). Raises OSError/ValueError for an unreadable file."""
    data = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    return str(data.get("model_type", "")) if isinstance(data, dict) else ""


# --- thinking templates -------------------------------------------------------------------
def prompt_opens_think(prompt: str) -> bool:
    """True when a rendered prompt ends inside an open `<think>` block (a thinking chat template)."""
    start = prompt.rfind("<think>")
    return start >= 0 and prompt.find("</think>", start) < 0


def with_opened_think(completion: str) -> str:
    """The completion as the grammar has it when the prompt already opened `<think>`."""
    return completion if completion.lstrip().startswith("<think>") else "<think>" + completion
