"""Golden samples beside the image under inspection: what the model is shown, in both ways a model takes them.

A model folder's `lriad.json` says how (`"references"`, read into `ModelGeometry.references`):
`images` (the default: each reference a separate image before the query, the text saying which is
which) or `side_by_side` (one composite, reference left and query right, `core.inspection.side_by_side`, for a
model trained on composites; its boxes come back in the composite and are mapped to the query's
right half). Both backends (in-process and model server) build their prompt here, and training
builds its rows here, so what the model learned and what it is shown can't differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from PIL import Image

from lriad_desktop.core.inspection.families import ReferenceMode
from lriad_desktop.core.inspection.prompting import build_messages
from lriad_desktop.core.inspection.side_by_side import Composite, compose


@dataclass(frozen=True)
class ReferenceImage:
    """A golden sample ready for the model: where it came from (recorded with the finding) and its pixels."""

    path: str
    image: Image.Image = field(compare=False, repr=False)


@dataclass(frozen=True)
class PromptImages:
    """The images one prompt carries, in prompt order, and the frame the model's boxes come back in."""

    images: tuple[Image.Image, ...]  # references first, the query last; or the one composite
    reference_paths: tuple[str, ...]  # the golden samples used (a side-by-side model uses one)
    mode: ReferenceMode
    composite: Composite | None = None  # set when the model sees reference | query as one image

    @property
    def answer_size(self) -> tuple[int, int]:
        """The size of the image the model's boxes refer to: the query, or the composite."""
        return self.composite.image.size if self.composite is not None else self.images[-1].size

    def messages(self, object_name: str | None, hint: str = "") -> list[dict[str, Any]]:
        """The chat messages for these images (image entries without pixels, for a processor or a server);
        `hint`: the anomaly map's region hint sentence, "" for none.

        A side-by-side model gets the single-image prompt it was trained on, with the composite as its image.
        """
        n = 0 if self.composite is not None else len(self.reference_paths)
        return build_messages(object_name, references=n, hint=hint)


def prompt_images(query: Image.Image, references: Sequence[ReferenceImage], mode: ReferenceMode) -> PromptImages:
    """What the model is shown for `query` with these golden samples.

    No references: the query alone. `images`: every reference, then the query. `side_by_side`: the first
    reference and the query composed into one image (a composite holds one golden sample).
    """
    refs = list(references)
    if not refs:
        return PromptImages((query,), (), mode)
    if mode is ReferenceMode.SIDE_BY_SIDE:
        composite = compose(refs[0].image, query)
        return PromptImages((composite.image,), (refs[0].path,), mode, composite)
    return PromptImages(tuple(r.image.convert("RGB") for r in refs) + (query,), tuple(r.path for r in refs), mode)
