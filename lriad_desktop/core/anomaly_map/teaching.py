"""Teaching a product: the good images an inspector hands over become the object's good set for the anomaly map.

`good_images_in` finds the images of a folder (or a given list) to teach from, leaving out a dataset's
`ground_truth/` masks; `teach_good_images` records each one in the review store under the product's name
with a review that says normal (so `ReviewStore.good_images`, the map's bank, counts it), signed by the
inspector and noted as taught. An image the store already holds as defective (its current review) is left
out, never overruled. Golden samples, the references the model is shown beside each image, are chosen only
when the model's folder declares that it takes references (`lriad.json: "references"`), and then only as many
as the object still lacks (`references_wanted`). Qt-free; the app runs it in the background.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from lriad_desktop.core.inspection.families import read_sidecar
from lriad_desktop.core.inspection.finding import Verdict
from lriad_desktop.core.inspection.images import is_image_file, iter_image_files
from lriad_desktop.core.store.review import Review, ReviewKind
from lriad_desktop.core.store.review_store import ReviewStore, StoreError

TAUGHT_NOTE = "taught as a good image of the product"

Progress = Callable[[int, int], None]


class TeachError(ValueError):
    """Nothing can be taught (no product name, no images); the message is one sentence for the inspector."""


@dataclass(frozen=True)
class Taught:
    """What teaching recorded: images now good for the object, those left out and why, golden samples added."""

    object_name: str
    good: tuple[str, ...] = ()
    already_defective: tuple[str, ...] = ()
    unreadable: tuple[str, ...] = ()
    golden: tuple[str, ...] = ()
    errors: tuple[str, ...] = field(default=(), compare=False)

    def text(self) -> str:
        """"20 good images of the ball screw recorded · 2 left out: reviewed as defective"."""
        n = len(self.good)
        text = f"{n} good image{'s' if n != 1 else ''} of “{self.object_name}” recorded"
        if self.golden:
            text += f" ({len(self.golden)} as golden sample{'s' if len(self.golden) != 1 else ''} the model is shown)"
        if self.already_defective:
            text += f" · {len(self.already_defective)} left out: reviewed as defective already"
        if self.unreadable:
            text += f" · {len(self.unreadable)} can't be read"
        return text


def good_images_in(sources: Iterable[str | Path], check: Callable[[], None] | None = None) -> list[str]:
    """The image files of `sources` (folders walked with their sub-folders, files as given), resolved, in
    order, each once, without a dataset's masks."""
    found: list[str] = []
    seen: set[str] = set()
    for path in iter_image_files([str(s) for s in sources], recursive=True, skip_masks=True):
        if check is not None:
            check()
        if not is_image_file(path):
            continue
        resolved = str(Path(path).resolve())
        if resolved not in seen:
            seen.add(resolved)
            found.append(resolved)
    return found


def model_takes_references(model_folder: str | Path | None) -> bool:
    """Whether the model's folder says it takes golden samples (its `lriad.json` declares `references`).
    A folder that can't be read says no."""
    if model_folder is None:
        return False
    try:
        return read_sidecar(model_folder).references is not None
    except (OSError, ValueError):
        return False


def references_wanted(store: ReviewStore, object_name: str, count: int) -> int:
    """How many golden samples the object still lacks for `count` references beside each image."""
    return max(0, count - len(store.golden_samples(object_name)))


def check_product_name(name: str) -> str:
    """The product's name, stripped; `TeachError` when there is none."""
    cleaned = " ".join(name.split())
    if not cleaned:
        raise TeachError("Name the product first: its good images are filed under that name")
    return cleaned


def teach_good_images(store: ReviewStore, object_name: str, paths: Sequence[str], reviewer: str,
                      golden: int = 0, progress: Progress | None = None,
                      check: Callable[[], None] | None = None) -> Taught:
    """Record `paths` as good images of `object_name` in `store`: each image filed under the name, with a
    normal review (unless its current review says defective: left out). The first `golden` of them become
    golden samples. Raises `TeachError` for no name or no images, `StoreError` when the store can't be written."""
    name = check_product_name(object_name)
    if not paths:
        raise TeachError("No images to teach from: pick a folder of good images of the product")
    good: list[str] = []
    defective: list[str] = []
    unreadable: list[str] = []
    chosen: list[str] = []
    total = len(paths)
    for i, path in enumerate(paths):
        if check is not None:
            check()
        try:
            image = store.add_image(path, name)
        except StoreError as err:
            if not Path(path).is_file() or "Can't read" in str(err):
                unreadable.append(path)
                continue
            raise
        current = store.current_review(image.id)
        if current is not None and current.review.verdict is Verdict.ANOMALOUS:
            defective.append(path)
        else:
            if current is None or current.review.verdict is not Verdict.NORMAL:
                store.save_review(image.id, Review(ReviewKind.ACCEPT, Verdict.NORMAL, (), TAUGHT_NOTE), reviewer)
            good.append(image.path)
            if len(chosen) < golden:
                store.add_golden_sample(image.id, name, reviewer)
                chosen.append(image.path)
        if progress is not None:
            progress(i + 1, total)
    return Taught(name, tuple(good), tuple(defective), tuple(unreadable), tuple(chosen))


__all__ = ["TAUGHT_NOTE", "Taught", "TeachError", "check_product_name", "good_images_in", "model_takes_references",
           "references_wanted", "teach_good_images"]
