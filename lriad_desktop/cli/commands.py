"""The `lriad` command: the GUI by default; `inspect`, `evaluate`, `watch`, `report`, `train`, `models`,
`export` and `versions` on the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable, Sequence

from lriad_desktop import __version__
from lriad_desktop.core.inspection.coordinates import MAX_PIXEL_BUDGET
from lriad_desktop.core.devices import DEVICE_CHOICES
from lriad_desktop.cli.terminal_text import terminal_safe


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lriad",
        description="LR-IAD Desktop: inspect images of parts with a local reasoning vision-language model.",
    )
    parser.add_argument("--version", action="version", version=f"lriad {__version__}")
    parser.add_argument("--self-test", action="store_true",
                        help="load the bundled model, inspect a sample, round-trip the review store, run one "
                             "training step; print one line (OK or what failed) and exit 0 or 1")
    parser.add_argument("--model", dest="self_test_model", type=Path, default=None, metavar="DIR",
                        help="with --self-test: check this model folder instead of the bundled one")
    sub = parser.add_subparsers(dest="command")

    def model_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", type=Path, default=None, help="model folder (default: the bundled lriad-tiny)")
        p.add_argument("--adapter", type=Path, default=None, help="PEFT LoRA adapter folder on top of the model")
        p.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
        p.add_argument("--batch-size", type=_whole(1, 1024, "a batch size"), default=8,
                       help="images per generate call (default 8)")
        p.add_argument("--max-new-tokens", type=_whole(1, 32_768, "--max-new-tokens"), default=256,
                       help="the longest answer in tokens (default 256; a constrained answer always gets enough to "
                            "close its answer)")
        p.add_argument("--no-grammar", action="store_true",
                       help="let the model write freely instead of holding every answer to the output grammar "
                            "(locally, and on a model server that takes one; for research, and to measure what the "
                            "grammar does); the parser reads what it wrote")
        p.add_argument("--object", default=None,
                       help="object name for the prompt (default: guessed from the path, "
                            "e.g. bottle/test/crack/0.png -> bottle)")
        p.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
        p.add_argument("--tiles", type=_tile_policy, default=None, metavar="POLICY",
                       help="inspect large images in overlapping tiles: auto (at the model's pixel budget), CxR "
                            "(e.g. 4x3), off; per object: 'off, pcb board=auto, washer=3x2'")
        server_options(p)

    def server_options(p: argparse.ArgumentParser) -> None:
        g = p.add_argument_group("model server", "inspect through an OpenAI-compatible model server instead "
                                 "(vLLM, SGLang, Ollama, LM Studio, transformers serve); the API key, if one is "
                                 "needed, comes from LRIAD_SERVER_API_KEY; --model then names a local copy of the "
                                 "served model, for its exact resize and box frame")
        g.add_argument("--server", default=None, metavar="URL", help="e.g. http://gpu-server:8000/v1")
        g.add_argument("--server-model", default="", metavar="NAME",
                       help="served model or LoRA adapter name (default: the server's only model)")
        g.add_argument("--in-flight", type=_whole(1, 256, "--in-flight"), default=4,
                       help="requests in flight (default 4)")
        g.add_argument("--server-timeout", type=_seconds, default=60.0, metavar="S",
                       help="longest wait for one answer (default 60 s)")
        g.add_argument("--server-family", default="qwen2_5_vl",
                       choices=["qwen2_5_vl", "qwen2_vl", "qwen3_vl", "qwen3_vl_moe"],
                       help="without a local copy: the served model's family (default qwen2_5_vl)")
        g.add_argument("--server-frame", default="auto", choices=["auto", "model_pixels", "norm1000"],
                       help="without a local copy: the box frame it answers in (default: the family's)")
        g.add_argument("--server-max-pixels", type=_whole(0, MAX_PIXEL_BUDGET, "--server-max-pixels"), default=0,
                       metavar="N",
                       help="without a local copy: the pixel budget images are resized to (default: the family's)")

    def map_feature_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--map-feature", default="cnn", metavar="FEATURE",
                       help="what the anomaly map compares on: cnn (ImageNet features shipped with the app, the "
                            "default: measured best on real photos), tower (the model's own vision tower, needs "
                            "its local folder), or a feature string such as cnn:efficientnet_lite0@448 or "
                            "block:0+1@448")

    def threshold_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--threshold", type=_threshold, default=None, metavar="T",
                       help="call an image defective when its anomaly score is at least T (0 to 1; default 0.5, "
                            "which agrees with the model's own verdict); an image without a score keeps the "
                            "model's verdict")

    p_inspect = sub.add_parser("inspect", help="inspect image files or folders")
    p_inspect.add_argument("paths", nargs="+", type=Path, help="image files or folders (searched recursively)")
    p_inspect.add_argument("--map", action="append", type=Path, default=[], metavar="GOOD",
                           help="also compare each image with these good images (files or folders, at least two) "
                                "on the --map-feature features: the JSON gains anomaly_map (a score, about 0 "
                                "on good images, and the regions that differ most)")
    map_feature_option(p_inspect)
    p_inspect.add_argument("--reference", action="append", type=Path, default=[], metavar="GOOD",
                           help="a golden sample: a good image of the same object, shown to the model beside each "
                                "image (repeat for more; the finding names the ones used)")
    model_options(p_inspect)
    threshold_option(p_inspect)

    p_eval = sub.add_parser("evaluate", help="score the model on an MVTec-AD, VisA or plain good/<defect> folder")
    p_eval.add_argument("dataset", type=Path)
    p_eval.add_argument("--limit", type=int, default=None, help="evaluate at most N images (spread evenly)")
    p_eval.add_argument("--plot", type=Path, default=None, metavar="DIR",
                        help="also write ROC and precision-recall curves (roc.png, pr.png) to DIR")
    p_eval.add_argument("--shots", type=int, default=0, metavar="K",
                        help="K-shot protocol: K normal training images per category (MVTec-AD train/good, VisA's "
                             "normal train split, a plain layout's good/) go beside each image as golden samples, "
                             "picked with a fixed seed (default 0: each image alone); from K >= 2 the same images "
                             "also build each category's anomaly map: its image (and pixel) AUROC, the model's and "
                             "their fusion's are printed side by side")
    p_eval.add_argument("--seed", type=int, default=0, help="the seed that picks the --shots golden samples")
    p_eval.add_argument("--map", type=int, default=0, metavar="K",
                        help="also build each category's anomaly map from K of its normal training images (the same "
                             "seed) and report image AUROC of the map, the model and their fusion side by side")
    map_feature_option(p_eval)
    model_options(p_eval)
    threshold_option(p_eval)

    p_train = sub.add_parser("train", help="improve the model: GRPO on the flagged images of a review store")
    p_train.add_argument("--db", type=Path, default=None, help="review store (default: the app's)")
    p_train.add_argument("--base", type=Path, default=None, help="base model folder (default: the bundled model)")
    p_train.add_argument("--adapter-from", type=Path, default=None, help="continue from this LoRA adapter")
    p_train.add_argument("--out", type=Path, required=True, help="new adapter folder (must not exist)")
    p_train.add_argument("--events", choices=["jsonl"], default="jsonl", help="progress format on stdout")
    p_train.add_argument("--recipe", type=Path, default=None, help="recipe JSON file (preset + overrides)")
    p_train.add_argument("--recipe-json", default=None, help="recipe as a JSON string (preset + overrides)")
    p_train.add_argument("--preset", default=None,
                         help="recipe preset, cpu_tiny, gpu_large or multi_gpu (default: gpu_large on a CUDA machine, "
                              "multi_gpu there with --num-processes, else cpu_tiny)")
    p_train.add_argument("--steps", type=int, default=None, help="GRPO steps (overrides the recipe)")
    p_train.add_argument("--minutes", type=float, default=None, metavar="M",
                         help="train for about M minutes: training stops when one more step would pass them (the "
                              "step ceiling comes from the pace of earlier runs of this model on this store)")
    p_train.add_argument("--synthetic-per-good", type=int, default=0,
                         help="also paint N synthetic defects on each good replay image")
    p_train.add_argument("--stop-with-parent", action="store_true",
                         help="cancel the run when stdin closes (the app that started it has gone)")
    p_train.add_argument("--device", default="auto", choices=DEVICE_CHOICES,
                         help="device for the before/after evaluation")
    p_train.add_argument("--num-processes", type=int, default=1, metavar="N",
                         help="train as N data-parallel processes under accelerate (one per GPU; on a machine "
                              "without GPUs, N CPU processes over gloo); the recipe's batch is split among them; "
                              "only the main process writes the store and the adapter (default 1)")
    p_train.add_argument("--accelerate-config", default=None, metavar="NAME|FILE",
                         help="accelerate config for --num-processes: ddp, zero2, zero3 (DeepSpeed ZeRO, shipped "
                              "with the app) or an accelerate YAML file (default: plain data parallelism)")

    from lriad_desktop.cli.line import add_parsers as add_line_parsers
    from lriad_desktop.cli.models import add_parser as add_models_parser

    add_models_parser(sub)
    add_line_parsers(sub, model_options)

    from lriad_desktop.cli.export import add_parser as add_export_parser

    add_export_parser(sub)

    from lriad_desktop.cli.versions import add_parser as add_versions_parser

    add_versions_parser(sub)

    p_gui = sub.add_parser("gui", help="open the desktop app (the default without a command)")
    p_gui.add_argument("paths", nargs="*", type=Path, help="images or folders to open")
    p_gui.add_argument("--model", type=Path, default=None, help="model folder (default: from the settings)")
    p_gui.add_argument("--adapter", type=Path, default=None, help="PEFT LoRA adapter folder on top of the model")
    p_gui.add_argument("--device", default=None, choices=DEVICE_CHOICES)
    p_gui.add_argument("--screenshot", type=Path, default=None, metavar="PNG",
                       help="headless: inspect the first image, save a screenshot of the window, exit")
    return parser


def _whole(low: int, high: int, what: str) -> Callable[[str], int]:
    """An argparse type: a whole number from `low` to `high` (one line naming `what` otherwise)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} is a whole number from {low} to {high}, not '{text}'")
        return value
    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 86_400:  # NaN and inf too
        raise argparse.ArgumentTypeError(f"a timeout is a number of seconds above 0 (at most a day), not '{text}'")
    return value


def _tile_policy(text: str):
    from lriad_desktop.core.backends.tiles import TilePolicy

    try:
        return TilePolicy.parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _threshold(text: str) -> float:
    from lriad_desktop.core.inspection.confidence import check_threshold

    try:
        return check_threshold(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a threshold is a number from 0 to 1, not '{text}'") from None


def _make_backend(args: argparse.Namespace):
    """The model `--model`/`--server` name (the bundled one by default), in tiles where `--tiles` says."""
    backend = _model_backend(args)
    if args.tiles is not None and args.tiles.enabled:
        from lriad_desktop.core.backends.tiles import TiledBackend

        return TiledBackend(backend, args.tiles, tile_batch=args.batch_size)
    return backend


def _model_backend(args: argparse.Namespace):
    """The local model (the bundled one by default), or the model server `--server` names."""
    if args.server:
        import os

        from lriad_desktop.core.backends.server import API_KEY_ENV, ServerBackend, ServerConfig

        return ServerBackend(ServerConfig(
            url=args.server, model=args.server_model, api_key=os.environ.get(API_KEY_ENV, ""),
            in_flight=args.in_flight, timeout_s=args.server_timeout, max_new_tokens=args.max_new_tokens,
            processor_dir=str(args.model) if args.model else "", family=args.server_family,
            frame=args.server_frame, max_pixels=args.server_max_pixels,
            grammar=not getattr(args, "no_grammar", False)))
    from lriad_desktop.core.backends.engine import Inspector
    from lriad_desktop.core.paths import model_folder

    return Inspector(model_folder(args.model), args.adapter, device=args.device, max_new_tokens=args.max_new_tokens,
                     grammar=not getattr(args, "no_grammar", False))


def _describe(finding) -> str:
    if not finding.defects:
        return finding.parse_error if finding.verdict.value == "unparsed" else "-"
    parts = []
    for d in finding.defects:
        box = "no box" if d.box is None else "[" + ", ".join(f"{v:.0f}" for v in d.box.as_list()) + "]"
        parts.append(f"{d.label} {box}")
    return "; ".join(parts)


def _verdict_column(finding, decided) -> str:
    from lriad_desktop.core.inspection.finding import verdict_word

    if decided is finding.verdict:
        return verdict_word(finding.verdict)
    return f"{verdict_word(decided)} (model: {verdict_word(finding.verdict)})"


def _references(paths: Sequence[Path]) -> tuple[str, ...] | None:
    """The --reference files as absolute paths, or None (after one error line) when one can't be read."""
    from lriad_desktop.core.inspection.images import ImageLoadError, load_image

    for path in paths:
        try:
            load_image(path)
        except ImageLoadError as err:
            print(f"error: --reference {path}: {err.reason}", file=sys.stderr)
            return None
        except OSError as err:
            print(f"error: --reference {path}: {err.strerror or err}", file=sys.stderr)
            return None
    return tuple(str(Path(p).resolve()) for p in paths)


def _warn_side_by_side_without_reference(backend, references: Sequence) -> None:
    from lriad_desktop.core.inspection.families import ReferenceMode

    if not references and backend.geometry.references is ReferenceMode.SIDE_BY_SIDE:
        print("warning: this model was trained to compare each image with a golden sample beside it; give one "
              "with --reference GOOD", file=sys.stderr)


def _print_notices(result, shown: set[str]) -> None:
    for text in result.notices:
        if text not in shown:
            shown.add(text)
            print(f"warning: {text}", file=sys.stderr, flush=True)


def cmd_inspect(args: argparse.Namespace) -> int:
    from lriad_desktop.core.inspection.confidence import DEFAULT_THRESHOLD, decided_verdict, format_score
    from lriad_desktop.core.inspection.images import iter_image_files
    from lriad_desktop.core.backends.pipeline import InspectionRequest, inspect_requests
    from lriad_desktop.core.inspection.prompting import guess_object_name

    references = _references(args.reference)
    if references is None:
        return 2
    backend = _make_backend(args)
    amap = _map_option(args) if args.map else None
    if args.map and amap is None:
        return 2
    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    failures = count = 0
    requests = (InspectionRequest(str(path), args.object or guess_object_name(path), references=references)
                for path in iter_image_files(args.paths))
    shown: set[str] = set()
    for result in inspect_requests(backend, requests, args.batch_size):
        if count == 0:
            _warn_side_by_side_without_reference(backend, references)
        count += 1
        _print_notices(result, shown)
        finding = result.finding
        if finding is None:
            failures += 1
            if args.json:
                print(json.dumps({"image_path": result.request.path, "error": result.error}), flush=True)
            print(terminal_safe(f"error: {result.request.path}: {result.error}"), file=sys.stderr, flush=True)
        elif args.json:  # the finding (the model's own verdict) and what the threshold decides
            line = {**finding.to_dict(), "threshold": threshold,
                    "decision": decided_verdict(finding, threshold).value}
            if amap is not None:
                line["anomaly_map"] = amap.describe(result.request.path)
            print(json.dumps(line, ensure_ascii=False), flush=True)
        else:
            decided = decided_verdict(finding, threshold)
            mapped = amap.describe(result.request.path) if amap is not None else None
            shown_map = "" if mapped is None else f"map {mapped.get('score', '—')}\t"
            print(f"{terminal_safe(finding.image_path)}\t{_verdict_column(finding, decided)}\t"
                  f"{terminal_safe(_describe(finding))}\tscore {format_score(finding.anomaly_score)}\t{shown_map}"
                  f"{finding.timings.get('total_ms', 0):.0f} ms", flush=True)
    if count == 0:
        print("error: no image files found in " + ", ".join(map(str, args.paths)), file=sys.stderr)
        return 1
    return 1 if failures else 0


def _map_option(args: argparse.Namespace):
    """The `--map` memory bank on the local model's tower (None after one error line)."""
    from lriad_desktop.core.paths import model_folder
    from lriad_desktop.cli.map import MapOption

    from lriad_desktop.core.anomaly_map.features import needs_model

    if args.server and not args.model and needs_model(args.map_feature):
        print("error: --map-feature tower compares on the model's own vision tower: give its local folder with "
              "--model", file=sys.stderr)
        return None
    model = model_folder(args.model) if not args.server or args.model else None
    return MapOption.build(args.map, model, args.adapter, args.device, args.object or "", args.map_feature)


def _map_figures(args: argparse.Namespace, pairs: list, good: dict) -> dict:
    from lriad_desktop.core.paths import model_folder
    from lriad_desktop.cli.map import evaluate_maps

    model = model_folder(args.model) if not args.server or args.model else None
    return evaluate_maps(pairs, good, model, args.adapter, args.device, args.map_feature)


def _spread(items: list, limit: int | None) -> list:
    if not limit or limit >= len(items):
        return items
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def cmd_evaluate(args: argparse.Namespace) -> int:
    from lriad_desktop.core.inspection.confidence import as_decided
    from lriad_desktop.core.evaluation.datasets import DatasetError, pick_references, read_dataset
    from lriad_desktop.core.evaluation.metrics import format_table, score_by_category
    from lriad_desktop.core.inspection.finding import Finding, Verdict
    from lriad_desktop.core.backends.pipeline import InspectionRequest, inspect_requests

    from lriad_desktop.core.anomaly_map.features import check_choice, needs_model
    from lriad_desktop.core.backends.vision_features import FeatureError

    try:
        check_choice(args.map_feature)
    except FeatureError as err:
        print(f"error: --map-feature: {err}", file=sys.stderr)
        return 2
    tower_without_model = bool(args.server and not args.model and needs_model(args.map_feature))
    if args.map == 1 or args.map < 0 or (args.map and tower_without_model):
        print("error: --map K needs K of at least 2 (the map is normalised by leave-one-out scores)" if not
              (args.map and tower_without_model) else
              "error: --map-feature tower compares on the model's own vision tower: give its local folder with "
              "--model", file=sys.stderr)
        return 2
    items = read_dataset(args.dataset, note=lambda line: print(f"warning: {line}", file=sys.stderr))
    protocol = pick_references(args.dataset, args.shots, {item.category for item in items}, args.seed)
    try:
        banks = pick_references(args.dataset, args.map, {item.category for item in items}, args.seed)
    except DatasetError as err:  # too few normal training images for the banks
        print(f"error: {str(err).replace('--shots', '--map')}", file=sys.stderr)
        return 2
    if not args.map and args.shots:  # --shots K: the map's bank from the same K golden samples
        from lriad_desktop.cli.map import shots_map_note

        note = shots_map_note(args.shots, bool(args.server and not args.model), args.map_feature)
        if note:
            print(f"warning: {note}", file=sys.stderr)
        else:
            args.map, banks = args.shots, protocol
    items = _spread(banks.remaining(protocol.remaining(items)), args.limit)
    if not items:
        print(f"error: no test images in {args.dataset}", file=sys.stderr)
        return 1
    backend = _make_backend(args)
    requests = [InspectionRequest(str(item.path), args.object or item.category, tag=item,
                                  references=tuple(map(str, protocol.references.get(item.category, ()))))
                for item in items]

    def progress(done: int, total: int | None) -> None:
        print(f"\r{done}/{total} images", end="", file=sys.stderr, flush=True)

    pairs = []
    shown: set[str] = set()
    for result in inspect_requests(backend, requests, args.batch_size, on_progress=progress):
        if not pairs:
            _warn_side_by_side_without_reference(backend, protocol.references)
        _print_notices(result, shown)
        finding = result.finding
        if finding is None:
            print(f"\nerror: {result.request.path}: {result.error}", file=sys.stderr)
            finding = Finding(Verdict.UNPARSED, image_path=result.request.path, parse_error=result.error)
        elif args.threshold is not None:  # accuracy and F1 at this threshold (AUROC and AP don't depend on it)
            finding = as_decided(finding, args.threshold)
        pairs.append((result.request.tag, finding))
    print(file=sys.stderr)
    scores = score_by_category(pairs)
    maps = _map_figures(args, pairs, banks.references) if args.map else None
    if args.json:
        extra = {"anomaly_map": maps} if maps is not None else {}
        print(json.dumps({**{name: s.as_dict() for name, s in scores.items()}, "protocol": protocol.as_dict(),
                          **extra}))
    else:
        print(protocol.describe())
        print(format_table(scores))
        if maps is not None:
            from lriad_desktop.cli.map import format_map_table

            print(format_map_table(maps))
    if args.plot is not None:
        from lriad_desktop.core.evaluation.curve_plots import write_curve_plots

        for path in write_curve_plots(pairs, args.plot):
            print(f"wrote {path}", file=sys.stderr)
    return 0


def cmd_gui(args: argparse.Namespace) -> int:
    try:
        from lriad_desktop.ui.window.app import run_gui
    except ImportError as err:  # a build without Qt
        print(f"error: the desktop app can't start ({err}); the inspect and evaluate commands still work",
              file=sys.stderr)
        return 2
    return run_gui(args.paths, model=args.model, adapter=args.adapter, device=args.device, screenshot=args.screenshot)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `lriad` and `python -m lriad_desktop` (the GUI when no command is given)."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.self_test:
        from lriad_desktop.selftest import run_self_test

        return run_self_test(model=args.self_test_model)
    if args.command is None:
        args = parser.parse_args(["gui"])
        return cmd_gui(args)
    if args.command == "gui":
        return cmd_gui(args)
    if args.command == "train":
        from lriad_desktop.cli.train import cmd_train

        return cmd_train(args)
    if args.command == "models":
        from lriad_desktop.cli.models import cmd_models

        return cmd_models(args)
    if args.command == "export":
        from lriad_desktop.cli.export import cmd_export

        return cmd_export(args)
    if args.command == "versions":
        from lriad_desktop.cli.versions import cmd_versions

        return cmd_versions(args)
    from lriad_desktop.core.evaluation.datasets import DatasetError
    from lriad_desktop.core.backends.engine import ModelFolderError
    from lriad_desktop.core.line.hot_folder import HotFolderError
    from lriad_desktop.core.backends.pipeline import BackendUnavailable
    from lriad_desktop.core.line.publishing import PublishError
    from lriad_desktop.core.line.shift_report import ReportError
    from lriad_desktop.core.store.review_store import StoreError
    from lriad_desktop.cli.line import cmd_report, cmd_watch

    handlers = {"inspect": cmd_inspect, "evaluate": cmd_evaluate, "watch": lambda a: cmd_watch(a, _make_backend),
                "report": cmd_report}
    try:
        return handlers[args.command](args)
    except (ModelFolderError, DatasetError, BackendUnavailable, HotFolderError, PublishError, ReportError,
            StoreError) as err:
        print(terminal_safe(f"error: {err}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as err:  # disk full, permissions: one clear line
        print(f"error: {err}", file=sys.stderr)
        return 2
