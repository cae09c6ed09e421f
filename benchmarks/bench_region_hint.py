"""The anomaly map's region hint (EAGLE-style) on the bundled model: the same line-like images inspected with
and without the sentence naming where the image differs most from the good images, side by side.

Per kind: a bank of `--good` good images of one product variant (`training.synthetic_data.samples.generate_line_sample`),
then `--per-kind` good and as many defective images, each mapped and inspected twice (hint off, hint on).
Figures: accuracy of the model's verdict, accuracy of the fused decision (threshold 0.5), mean IoU of the
model's boxes on the defective images (best match per truth box), answers the parser can't read, and the
share of defective images whose hint named a region that overlaps the defect.

    python benchmarks/bench_region_hint.py --per-kind 8 --good 16 --seed 4242 [--kinds fabric,washer] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lriad_desktop.core.anomaly_map.patch_map import bank_from_features, map_images  # noqa: E402
from lriad_desktop.core.inspection.confidence import decided_verdict  # noqa: E402
from lriad_desktop.core.backends.engine import Inspector  # noqa: E402
from lriad_desktop.core.evaluation.metrics import best_iou  # noqa: E402
from lriad_desktop.core.inspection.finding import Box, Verdict  # noqa: E402
from lriad_desktop.core.anomaly_map.banks import finding_with_map, hint_for, map_summary, tower_of  # noqa: E402
from lriad_desktop.core.paths import bundled_model_dir  # noqa: E402
from training.synthetic_data.samples import PRODUCT_KINDS, generate_line_sample  # noqa: E402


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def run_kind(inspector: Inspector, kind: str, per_kind: int, good: int, seed: int, batch: int) -> dict:
    tower = tower_of(inspector)
    rng = np.random.default_rng([seed, list(PRODUCT_KINDS).index(kind)])
    bank_images = [generate_line_sample(rng, kind).image for _ in range(good)]
    from lriad_desktop.core.anomaly_map.patch_map import BankIdentity

    bank = bank_from_features(kind, BankIdentity.of(tower), tower.features(bank_images))
    tests = [generate_line_sample(rng, kind) for _ in range(per_kind)]
    tests += [generate_line_sample(rng, kind, defect=True) for _ in range(per_kind)]
    name = PRODUCT_KINDS[kind].object_name
    maps = [m for start in range(0, len(tests), batch)
            for m in map_images(tower, bank, [s.image for s in tests[start:start + batch]])]
    hints = [hint_for(m) for m in maps]
    rows = {}
    for mode in ("off", "on"):
        findings = []
        for start in range(0, len(tests), batch):
            chunk = tests[start:start + batch]
            said = hints[start:start + batch] if mode == "on" else None
            findings += inspector.inspect_batch([s.image for s in chunk], [name] * len(chunk), hints=said)
        fused = [finding_with_map(f, map_summary(m, bank, h if mode == "on" else ""))
                 for f, m, h in zip(findings, maps, hints)]
        truth = [s.anomalous for s in tests]
        model_ok = [f.anomalous == t for f, t in zip(findings, truth)]
        fused_ok = [(decided_verdict(f).value == "anomalous") == t for f, t in zip(fused, truth)]
        ious = [best_iou([Box(*d.box) for d in s.defects], [d.box for d in f.defects])
                for s, f in zip(tests, findings) if s.anomalous]
        rows[mode] = {"model_accuracy": float(np.mean(model_ok)), "fused_accuracy": float(np.mean(fused_ok)),
                      "mean_iou": float(np.mean(ious)) if ious else None,
                      "unparsed": sum(f.verdict is Verdict.UNPARSED for f in findings)}
    on_defect = []
    for s, m in zip(tests, maps):
        if s.anomalous:
            top = m.boxes[0] if m.boxes else None
            on_defect.append(top is not None and any(top.iou(Box(*d.box)) > 0 or _inside(top, Box(*d.box))
                                                     for d in s.defects))
    return {"kind": kind, "images": len(tests), "hinted": sum(bool(h) for h in hints), **rows,
            "hint_on_defect": float(np.mean(on_defect)) if on_defect else None}


def _inside(a: Box, b: Box) -> bool:
    return a.x1 <= b.x2 and b.x1 <= a.x2 and a.y1 <= b.y2 and b.y1 <= a.y2


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-kind", type=int, default=8, help="good and defective test images per kind (each)")
    ap.add_argument("--good", type=int, default=16, help="good images in each kind's bank")
    ap.add_argument("--seed", type=int, default=4242)
    ap.add_argument("--kinds", default=",".join(PRODUCT_KINDS), help="comma-separated product kinds")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    inspector = Inspector(bundled_model_dir(), device="cpu").load()
    start = time.perf_counter()
    results = []
    for kind in (k.strip() for k in args.kinds.split(",") if k.strip()):
        results.append(run_kind(inspector, kind, args.per_kind, args.good, args.seed, args.batch))
        print(f"{kind}: {json.dumps(results[-1])}", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - start

    def mean(key: str, mode: str) -> float | None:
        vals = [r[mode][key] for r in results if r[mode][key] is not None]
        return float(np.mean(vals)) if vals else None

    summary = {mode: {k: mean(k, mode) for k in ("model_accuracy", "fused_accuracy", "mean_iou")}
               for mode in ("off", "on")}
    if args.json:
        print(json.dumps({"kinds": results, "mean": summary, "seconds": round(seconds, 1), "cpu": _cpu(),
                          "args": vars(args)}))
        return 0

    def num(v: float | None) -> str:
        return "—" if v is None else f"{v:.3f}"

    print(f"region hint on the bundled model · {args.per_kind}+{args.per_kind} images per kind · bank of "
          f"{args.good} good · seed {args.seed} · {seconds:.0f} s on {_cpu()} ({torch.get_num_threads()} threads)")
    print(f"{'kind':<10} {'model acc off/on':>17} {'fused acc off/on':>17} {'IoU off/on':>14} {'hint on defect':>15} "
          f"{'unreadable off/on':>18}")
    for r in results + [{"kind": "mean", **summary, "hint_on_defect": None}]:
        unread = (f"{r['off']['unparsed']}/{r['on']['unparsed']}" if "unparsed" in r["off"] else "")
        print(f"{r['kind']:<10} {num(r['off']['model_accuracy']):>8}/{num(r['on']['model_accuracy']):<8} "
              f"{num(r['off']['fused_accuracy']):>8}/{num(r['on']['fused_accuracy']):<8} "
              f"{num(r['off']['mean_iou']):>6}/{num(r['on']['mean_iou']):<7} {num(r.get('hint_on_defect')):>15} "
              f"{unread:>18}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
