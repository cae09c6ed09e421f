"""Inference speed of the engine: load time, ms/image at batch 1, images/s batched (each with answers held to the
grammar, as the app runs, and with free generation, in one run on the same loaded model: the grammar's cost), peak RSS,
and how long `import lriad_desktop` takes (with proof that it does not import torch). With `--server URL`,
also images/s through that model server (OpenAI API) with 1, 4 and 8 requests in flight, in the same run.
With `--references K`, also the cost of golden samples with 0, 1, …, K references beside each image (as the model
folder's `lriad.json` says it takes them), in the same run: ms/image at batch 1 (which also moves with the answer's
length), ms for the prompt alone (processing + one forward pass) and the prompt's tokens.

    python benchmarks/bench_inference.py [--model DIR] [--n 20] [--batch-size 16] [--threads 2] [--server URL]
                                         [--references K]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def import_time() -> tuple[float, list[str]]:
    code = ("import sys, time; t = time.perf_counter(); import lriad_desktop, lriad_desktop.cli.commands; "
            "dt = time.perf_counter() - t; "
            "print(dt, ','.join(m for m in ('torch', 'transformers', 'PySide6') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    seconds, heavy = out.stdout.split(" ", 1) if " " in out.stdout else (out.stdout, "")
    return float(seconds), [m for m in heavy.strip().split(",") if m]


def server_figures(args: argparse.Namespace, images: list, max_new_tokens: int) -> dict:
    """images/s through the server with 1, 4 and 8 requests in flight (one warm-up request first)."""
    from lriad_desktop.core.backends.server import ServerBackend, ServerConfig

    n = args.server_images
    batch = (images * (n // len(images) + 1))[:n]
    figures: dict = {}
    for in_flight in (1, 4, 8):
        backend = ServerBackend(ServerConfig(args.server, model=args.server_model, in_flight=in_flight,
                                             max_new_tokens=max_new_tokens, timeout_s=300)).load()
        backend.inspect_batch(batch[:1], ["part"])  # warm-up (and the image processor's first load)
        t = time.perf_counter()
        answers = backend.inspect_batch(batch, ["part"] * len(batch))
        figures[f"server_images_per_s_in_flight{in_flight}"] = round(len(batch) / (time.perf_counter() - t), 2)
        errors = [a for a in answers if not hasattr(a, "verdict")]
        if errors:
            figures[f"server_errors_in_flight{in_flight}"] = f"{len(errors)}: {errors[0].message}"
        backend.close()
    figures["server"] = f"{args.server} ({backend.model_name})"
    return figures


def reference_figures(inspector, samples: list, k_max: int, n: int) -> dict:
    """ms/image at batch 1, ms and tokens of the prompt alone, with 0..k_max golden samples beside each image.

    The first golden sample is the one rendered with the image (same product, moved, other light); more
    are other good renders of the same kind. Every k runs on the same images, after one warm-up."""
    import numpy as np

    from lriad_desktop.core.inspection.references import ReferenceImage, prompt_images
    from training.synthetic_data.samples import generate_sample

    refs = []
    for i, s in enumerate(samples[:n]):
        more = [generate_sample(np.random.default_rng([78, i, j]), kind=s.kind, defect=False, size=s.image.size).image
                for j in range(1, k_max)]
        refs.append([ReferenceImage(f"golden-{i}-{j}", im) for j, im in enumerate([s.reference] + more)])
    import torch

    processor, model = inspector._processor, inspector._model
    template_kwargs = inspector.info.family.template_kwargs if inspector.info.family else {}
    figures: dict = {"references_mode": inspector.geometry.references.value}
    for k in range(k_max + 1):
        inspector.inspect(samples[0].image, "part", references=refs[0][:k])  # warm-up
        times, tokens = [], []
        for s, r in zip(samples[:n], refs):
            t = time.perf_counter()
            f = inspector.inspect(s.image, "part", references=r[:k])
            times.append((time.perf_counter() - t) * 1000)
            tokens.append(f.timings["new_tokens"])
        prefill, prompt = [], 0
        for s, r in zip(samples[:n], refs):  # the prompt alone: what the golden samples cost, whatever the answer
            t = time.perf_counter()
            view = prompt_images(s.image, r[:k], inspector.geometry.references)
            text = processor.apply_chat_template(view.messages("part"), add_generation_prompt=True, tokenize=False,
                                                 **template_kwargs)
            inputs = processor(text=[text], images=list(view.images), return_tensors="pt").to(inspector.device)
            with torch.inference_mode():
                model(**inputs)
            prefill.append((time.perf_counter() - t) * 1000)
            prompt = prompt or int(inputs["input_ids"].shape[1])
        figures[f"ms_per_image_refs{k}_median"] = round(statistics.median(times), 1)
        figures[f"prompt_ms_refs{k}_median"] = round(statistics.median(prefill), 1)
        figures[f"prompt_tokens_refs{k}"] = prompt
        figures[f"new_tokens_mean_refs{k}"] = round(statistics.mean(tokens), 1)
    return figures


def cpu_name() -> str:
    """The processor's model name (timings mean little without it)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def speed(inspector, images: list, n: int, batch_size: int, batches: int) -> dict:
    """ms/image at batch 1 (median, p90), images/s at `batch_size`, new tokens per image, and ms per generated
    step at `batch_size` (what the grammar adds per token, apart from answers of another length)."""
    inspector.inspect(images[0], "part")  # warm-up
    single, tokens = [], []
    for img in images[:n]:
        t = time.perf_counter()
        f = inspector.inspect(img, "part")
        single.append((time.perf_counter() - t) * 1000)
        tokens.append(f.timings["new_tokens"])
    batch = images[:batch_size]
    inspector.inspect_batch(batch, ["part"] * len(batch))  # warm-up
    t = time.perf_counter()
    steps = 0
    for _ in range(batches):
        found = inspector.inspect_batch(batch, ["part"] * len(batch))
        steps += max(int(f.timings["new_tokens"]) for f in found)  # the batch runs as long as its longest row
    elapsed = time.perf_counter() - t
    return {"ms_per_image_batch1_median": round(statistics.median(single), 1),
            "ms_per_image_batch1_p90": round(sorted(single)[int(0.9 * (len(single) - 1))], 1),
            "new_tokens_mean": round(statistics.mean(tokens), 1),
            f"images_per_s_batch{batch_size}": round(batches * len(batch) / elapsed, 2),
            f"ms_per_token_batch{batch_size}": round(elapsed * 1000 / max(1, steps), 2)}


def main() -> int:
    import numpy as np
    import torch

    from lriad_desktop.core.backends.engine import Inspector
    from lriad_desktop.core.paths import bundled_model_dir
    from training.synthetic_data.samples import generate_sample

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=bundled_model_dir())
    p.add_argument("--n", type=int, default=20, help="images timed at batch size 1")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--batches", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--server", default=None, metavar="URL", help="also time this model server (e.g. http://127.0.0.1:8000/v1)")
    p.add_argument("--server-model", default="", help="served model name (default: the server's only model)")
    p.add_argument("--server-images", type=int, default=16, help="images per in-flight setting")
    p.add_argument("--references", type=int, default=None, metavar="K",
                   help="also time 0..K golden samples beside each image (ms/image at batch 1, prompt tokens)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    imp_s, heavy = import_time()
    samples = [generate_sample(np.random.default_rng([77, i]), reference=bool(args.references))
               for i in range(max(args.n, args.batch_size))]
    images = [s.image for s in samples]
    t = time.perf_counter()
    inspector = Inspector(args.model, device="cpu").load()
    load_s = time.perf_counter() - t
    result = {"cpu": cpu_name(), "model": str(args.model), "threads": args.threads, "load_s": round(load_s, 2)}
    t = time.perf_counter()
    inspector.inspect(images[0], "part")  # warm-up, and the grammar's first compile
    result["first_constrained_call_s"] = round(time.perf_counter() - t, 2)
    for grammar, tag in ((True, "constrained"), (False, "free")):
        inspector.grammar = grammar
        figures = {f"{k}_{tag}": v for k, v in speed(inspector, images, args.n, args.batch_size, args.batches).items()}
        print(json.dumps(figures), file=sys.stderr, flush=True)  # as they come: a long run on a busy machine
        result.update(figures)
    inspector.grammar = True
    b = args.batch_size
    result["grammar_cost_batch1_pct"] = round(100 * (result["ms_per_image_batch1_median_constrained"]
                                                     / result["ms_per_image_batch1_median_free"] - 1), 1)
    result[f"grammar_cost_batch{b}_pct"] = round(100 * (result[f"images_per_s_batch{b}_free"]
                                                        / result[f"images_per_s_batch{b}_constrained"] - 1), 1)
    result[f"grammar_cost_per_token_batch{b}_pct"] = round(100 * (
        result[f"ms_per_token_batch{b}_constrained"] / result[f"ms_per_token_batch{b}_free"] - 1), 1)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    folder_mb = sum(f.stat().st_size for f in Path(args.model).rglob("*") if f.is_file()) / 1e6
    result.update({
        "model_folder_mb": round(folder_mb, 1), "peak_rss_mb": round(rss_mb),
        "import_lriad_desktop_ms": round(imp_s * 1000, 1), "heavy_modules_on_import": heavy,
    })
    if args.references:
        result.update(reference_figures(inspector, samples, args.references, args.n))
    if args.server:
        result.update(server_figures(args, images, inspector.max_new_tokens))
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>32}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
