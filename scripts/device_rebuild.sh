#!/usr/bin/env bash
# Rebuild the bundled model on one GPU (the `device` tool's H200 machine) in a single call of about
# nine minutes, then evaluate it on the model card's test set. Plan for a 15-minute lease: the
# machine's start and the transfers take the rest.
#
# Here, once per session (needs the package registry; .whl/ is git-ignored and travels by carry):
#     bash scripts/device_rebuild.sh --fetch-wheels
# There, as the device tool's `run` command, with carry [".whl"] and timeout_s 600:
#     SPEC=deeper-tower bash scripts/device_rebuild.sh
#
# Settings (environment): SPEC (a --spec of training.bundled_model.build_tiny_model; default deeper-tower),
# VISION_MIN and SFT_MIN (minutes of training per stage; default 3 and 3.5), BATCH (default 64),
# WORKERS (batch-drawing processes; default 12), DEVICE (default cuda; cpu rehearses the script
# here), LIMIT (evaluate at most this many test images; default all 352), WHEELS (default .whl),
# RECIPE (the recipe options of training.bundled_model.build_tiny_model, e.g. "--curriculum balanced
# --object-names aliases --reasoning short"; default none: the shipped recipe).
# What comes back under $OUT: model.tar.part-* (the model folder, split to fit the tool's 16 MiB
# per file; `cat model.tar.part-* | tar -x`), metrics.jsonl, build.log, evaluation.txt.
# No GRPO there: trl and datasets are not on that machine, and GRPO never earned its place in the
# shipped model; run it here afterwards if wanted.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--fetch-wheels" ]]; then
    # The device's image has torch and an older transformers; bring the versions tested here.
    py=.venv/bin/python
    [[ -x "$py" ]] || py=python3
    pins=()
    for name in transformers regex platformdirs; do
        pins+=("$name==$("$py" -c "import importlib.metadata as m; print(m.version('$name'))")")
    done
    rm -rf .whl
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl "${pins[@]}"
    ls -l .whl
    exit 0
fi

: "${OUT:?OUT must name the folder whose files come back (the device tool sets it)}"
SPEC=${SPEC:-deeper-tower}
VISION_MIN=${VISION_MIN:-3}
SFT_MIN=${SFT_MIN:-3.5}
BATCH=${BATCH:-64}
WORKERS=${WORKERS:-12}
DEVICE=${DEVICE:-cuda}
PY=${PYTHON:-python3}
S=${SCRATCH:-/tmp/lriad-rebuild}  # emptied first
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
WHEELS=${WHEELS:-.whl}  # what --fetch-wheels brought, for that machine's Python 3.12
if compgen -G "$WHEELS/*.whl" > /dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
log=$OUT/build.log
{
    date -u
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
    "$PY" -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'transformers', transformers.__version__)"
} | tee "$log"

read -r -a recipe <<< "${RECIPE:-}"
common=(--spec "$SPEC" --device "$DEVICE" --workers "$WORKERS" --threads 4 --grpo-steps 0
        --batch-size "$BATCH" --vision-batch-size "$BATCH" "${recipe[@]}")

# 1. A short probe measures seconds per step of each stage on this machine (and builds the
#    tokenizer and random init once: the real run starts from the probe's init).
rm -rf "$S" && mkdir -p "$S"
"$PY" -m training.bundled_model.build_tiny_model "${common[@]}" --work "$S/probe" --out "$S/probe-model" \
    --vision-steps 60 --sft-steps 40 --eval-every 1000 --eval-samples 8 --max-new-tokens 16 \
    > "$S/probe.log" 2>&1 || { tail -40 "$S/probe.log" | tee -a "$log"; exit 1; }
"$PY" - "$S/probe.log" "$VISION_MIN" "$SFT_MIN" > "$S/probe.steps" <<'EOF'
import json, sys
events = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{"event": "step"')]
def per_step(stage):
    rows = [e for e in events if e.get("stage", "sft") == stage]
    a, b = rows[1], rows[-1]  # from step 20 on: the first steps include warm-up
    return (b["elapsed_s"] - a["elapsed_s"]) / (b["step"] - a["step"])
v, s = per_step("vision"), per_step("sft")
vision_min, sft_min = float(sys.argv[2]), float(sys.argv[3])
print(f"probe: {v:.3f} s/step vision, {s:.3f} s/step sft")
print(max(10, int(vision_min * 60 / v)), max(10, int(sft_min * 60 / s)),
      round(vision_min * 1.15, 2), round(sft_min * 1.15, 2))
EOF
head -1 "$S/probe.steps" | tee -a "$log"
read -r VISION_STEPS SFT_STEPS VISION_CAP SFT_CAP < <(tail -1 "$S/probe.steps")
echo "steps: vision $VISION_STEPS, sft $SFT_STEPS (caps $VISION_CAP and $SFT_CAP min)" | tee -a "$log"

# 2. The real run, from the probe's init; the minute caps are a safety net over the step counts.
work=$S/work
mkdir -p "$work"
cp -r "$S/probe/init" "$S/probe/spec.json" "$work/"
set +e
"$PY" -m training.bundled_model.build_tiny_model "${common[@]}" --work "$work" --out "$S/lriad-tiny" \
    --vision-steps "$VISION_STEPS" --sft-steps "$SFT_STEPS" --eval-every $(( SFT_STEPS / 4 + 1 )) \
    --vision-minutes "$VISION_CAP" --sft-minutes "$SFT_CAP" 2>&1 | grep -v '"event": "step"' >> "$log"
status=${PIPESTATUS[0]}
set -e
cp "$work/metrics.jsonl" "$OUT/" 2>/dev/null || true
[[ $status -eq 0 ]] || { echo "build failed ($status)" | tee -a "$log"; tail -30 "$log"; exit "$status"; }

# 3. The model card's test set and figures.
"$PY" -m training.synthetic_data.samples "$S/testset" --per-kind 4 --seed 777001 > /dev/null
"$PY" -m lriad_desktop evaluate "$S/testset" --model "$S/lriad-tiny" --device "$DEVICE" --batch-size 64 \
    ${LIMIT:+--limit "$LIMIT"} 2>&1 | tee "$OUT/evaluation.txt"
tar -C "$S" -cf - lriad-tiny | split -b 15M - "$OUT/model.tar.part-"
ls -l "$OUT"
