"""The prompt (system + user turn built from the object's name) and the output grammar.

Grammar, one for every model:
`<think>Step 1: ... Step 2: ...</think><answer>{"anomaly": true, "defects":
[{"label": "scratch", "bbox_2d": [x1, y1, x2, y2]}]}</answer>`; boxes in the model's frame.
"""

from __future__ import annotations

import json
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
