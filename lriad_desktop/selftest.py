"""`lriad --self-test`: check that this install (a checkout or the frozen app) can do its job.

Loads the bundled model (or `--model DIR`), inspects a bundled sample image, builds an anomaly map on the
ImageNet features shipped with the app (its weights are in the bundle), records the finding and an
inspector's flag in a temporary review store and reads them back, turns the flag into
training data and runs one GRPO step on it. Prints one line, OK or the step that failed
and why, and returns 0 or 1. The user's own store, settings and models are never touched.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Callable, TextIO

SAMPLE_IMAGE = "metal_hole.jpg"
SAMPLE_OBJECT = "metal plate"
MAP_SAMPLE = "fabric_good.jpg"  # a good sample the self-test's anomaly map is built from


class SelfTestFailure(Exception):
    """A check that ran but gave the wrong answer."""


def _check_model(ctx: dict) -> str:
    from lriad_desktop.core.backends.engine import Inspector
    from lriad_desktop.core.paths import model_folder

    inspector = Inspector(model_folder(ctx.get("model")), device=ctx.get("device", "auto"),
                          max_new_tokens=160).load()
    ctx["inspector"] = inspector
    return f"model {inspector.model_version} on {inspector.device} in {inspector.load_seconds:.1f} s"


def _check_inspect(ctx: dict) -> str:
    from lriad_desktop.core.inspection.finding import Verdict
    from lriad_desktop.core.inspection.images import load_image
    from lriad_desktop.core.paths import sample_images_dir

    path = sample_images_dir() / SAMPLE_IMAGE
    loaded = load_image(path)
    finding = ctx["inspector"].inspect(loaded.image, SAMPLE_OBJECT, str(path))
    ctx["image_path"], ctx["finding"] = path, finding
    if finding.verdict is Verdict.UNPARSED:
        if ctx.get("model") is None:  # the bundled model is trained on the grammar: garbage means a broken install
            raise SelfTestFailure(f"the model's answer on {path.name} could not be read: {finding.parse_error}")
        # another model may not have learnt the app's grammar yet; the pipeline still worked end to end
        return f"{path.name}: unparsed ({finding.parse_error}; the model does not answer in the app's grammar yet)"
    labels = list(dict.fromkeys(finding.labels))
    what = finding.verdict.value + (f" ({', '.join(labels)})" if labels else "")
    return f"{path.name}: {what}"


def _check_map(ctx: dict) -> str:
    from PIL import Image

    from lriad_desktop.core.anomaly_map.patch_map import build_bank, map_images
    from lriad_desktop.core.inspection.images import load_image
    from lriad_desktop.core.anomaly_map.cnn_features import shared_cnn
    from lriad_desktop.core.paths import sample_images_dir

    start = time.perf_counter()
    good = load_image(sample_images_dir() / MAP_SAMPLE).image
    mirrored = [good, good.transpose(Image.Transpose.FLIP_LEFT_RIGHT), good.transpose(Image.Transpose.FLIP_TOP_BOTTOM)]
    cnn = shared_cnn()
    bank = build_bank(cnn, "woven fabric", mirrored, align=False)
    spoiled = good.copy()
    w, h = good.size
    spoiled.paste((250, 30, 200), (w // 2, h // 3, w // 2 + w // 8, h // 3 + h // 8))
    clean_map, spoiled_map = map_images(cnn, bank, [good.transpose(Image.Transpose.ROTATE_180), spoiled])
    if not spoiled_map.score > clean_map.score or not spoiled_map.boxes:
        raise SelfTestFailure(f"the anomaly map on {cnn.model_version} did not find a pasted defect "
                              f"(score {spoiled_map.score:.2f} against {clean_map.score:.2f} for a good image)")
    return f"anomaly map on {cnn.model_version} in {time.perf_counter() - start:.1f} s"


def _check_store(ctx: dict) -> str:
    from lriad_desktop.core.inspection.finding import Box, Defect, Verdict
    from lriad_desktop.core.store.review import Review, ReviewKind
    from lriad_desktop.core.store.review_store import STORE_FILE, ReviewStore

    db = ctx["tmp"] / STORE_FILE
    finding = ctx["finding"]
    w, h = finding.image_size
    defects = (Defect("hole", Box(0.4 * w, 0.4 * h, 0.6 * w, 0.6 * h)),)
    with ReviewStore.open(db) as store:
        image = store.add_image(ctx["image_path"], SAMPLE_OBJECT)
        inspection = store.record_inspection(image.id, finding)
        store.save_review(image.id, Review(ReviewKind.FLAG, Verdict.ANOMALOUS, defects, "self-test", inspection.id))
    with ReviewStore.open(db) as store:
        back, stored = store.current_review(image.id), store.latest_finding(image.id)
        same_finding = stored is not None and (stored.verdict, stored.labels, stored.raw_text) == (
            finding.verdict, finding.labels, finding.raw_text)
        if back is None or back.review.defects != defects or not same_finding:
            raise SelfTestFailure(f"the review store at {db} did not give back what was written")
    ctx["db"] = db
    return "store round trip"


def _check_training(ctx: dict) -> str:
    from lriad_desktop.core.store.review_store import ReviewStore
    from lriad_desktop.core.training_runs.protocol import Step, TrainingEvent
    from training.recipes.flags import collect, repeat_to, training_rows
    from training.recipes.grpo import GRPORecipe, run_grpo

    inspector = ctx["inspector"]
    with ReviewStore.open(ctx["db"]) as store:
        data = collect(store)
    rows, skipped = training_rows(data, inspector.geometry)
    if not rows:
        raise SelfTestFailure(f"no training rows from the flag ({'; '.join(skipped)})")
    recipe = GRPORecipe.cpu_tiny(max_steps=1, batch_size=4, num_generations=4, max_completion_length=32,
                                 use_cpu=inspector.device == "cpu")
    events: list[TrainingEvent] = []
    start = time.perf_counter()
    out = ctx["tmp"] / "adapter"
    run_grpo(inspector.info.path, repeat_to(rows, 4), recipe, out, emit=events.append)
    if not (out / "adapter_model.safetensors").is_file() or not any(isinstance(e, Step) for e in events):
        raise SelfTestFailure("the GRPO step wrote no adapter")
    return f"1 GRPO step in {time.perf_counter() - start:.1f} s"


CHECKS: tuple[tuple[str, Callable[[dict], str]], ...] = (
    ("loading the model", _check_model),
    ("inspecting a sample image", _check_inspect),
    ("building an anomaly map", _check_map),
    ("the review store", _check_store),
    ("training", _check_training),
)


def run_self_test(model: Path | None = None, device: str = "auto", out: TextIO | None = None,
                  checks=CHECKS) -> int:
    """Run the checks in order; print one line; 0 when all passed, 1 at the first failure."""
    out = out or sys.stdout
    start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="lriad-self-test-"))
    ctx: dict = {"tmp": tmp, "model": model, "device": device}
    done: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # library deprecation notices are not the answer
            for what, check in checks:
                try:
                    done.append(check(ctx))
                except Exception as err:  # the point is to report any failure in one line
                    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                    if not _users_to_fix(err):
                        _log_traceback()
                    print(f"lriad self-test FAILED while {what}: {reason}", file=out, flush=True)
                    return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"lriad self-test OK in {time.perf_counter() - start:.1f} s: {'; '.join(done)}", file=out, flush=True)
    return 0


def _users_to_fix(err: BaseException) -> bool:
    """A damaged or missing model is the user's to fix: its one line says all, no traceback."""
    from lriad_desktop.core.backends.model_files import ModelFolderError

    return isinstance(err, ModelFolderError)


def _log_traceback() -> None:
    """The full traceback goes to the log (stderr or the app's log file), never to the one-line result."""
    err = sys.stderr
    if err is not None:
        traceback.print_exc(file=err)
