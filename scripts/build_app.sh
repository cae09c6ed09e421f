#!/usr/bin/env bash
# Build the packaged app (dist/lriad/, PyInstaller onedir) and check the frozen result.
#
#     bash scripts/build_app.sh            # uses .venv (create it with the README's install command)
#     PYTHON=/path/to/python bash scripts/build_app.sh
#
# Prints the build time and size, then runs the frozen app's --self-test, its `train` dispatch
# and a headless screenshot of the window. Exits non-zero if any of them fails.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}

"$PY" -m pip install -q -e ".[build]"
start=$(date +%s)
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN lriad.spec
build_s=$(( $(date +%s) - start ))
app=dist/lriad/lriad
[ -x "$app" ] || { echo "build_app: $app was not built" >&2; exit 1; }
size=$(du -sh dist/lriad | cut -f1)
files=$(find dist/lriad -type f | wc -l)
echo "build_app: built dist/lriad in ${build_s} s: ${size}, ${files} files"

check=$(mktemp -d)
trap 'rm -rf "$check"' EXIT
export LRIAD_DATA_DIR="$check/data" QT_QPA_PLATFORM=offscreen

start=$(date +%s)
"$app" --self-test
echo "build_app: frozen self-test passed in $(( $(date +%s) - start )) s"

# "Improve model" re-launches the frozen executable with `train`: check the dispatch (exit 2: no store yet).
set +e
"$app" train --out "$check/adapter" > "$check/train.jsonl"
rc=$?
set -e
if [ "$rc" != 2 ] || ! grep -q '"event": "error"' "$check/train.jsonl"; then
    echo "build_app: the frozen 'train' command did not answer as expected (exit $rc):" >&2
    cat "$check/train.jsonl" >&2
    exit 1
fi
echo "build_app: frozen train dispatch OK"

# ... and a real two-step run on a store with two flags: events, before/after, a new adapter.
"$PY" packaging/flagged_store.py "$check/reviews.sqlite3" > /dev/null
start=$(date +%s)
"$app" train --db "$check/reviews.sqlite3" --out "$check/adapters/v1" --steps 2 \
    --recipe-json '{"batch_size": 4, "max_completion_length": 32}' > "$check/train.jsonl"
if [ ! -f "$check/adapters/v1/adapter_model.safetensors" ] || ! grep -q '"event": "done"' "$check/train.jsonl"; then
    echo "build_app: the frozen app's training run wrote no adapter:" >&2
    tail -5 "$check/train.jsonl" >&2
    exit 1
fi
echo "build_app: frozen 'Improve model' run (2 GRPO steps + before/after) OK in $(( $(date +%s) - start )) s"

"$app" gui --screenshot "$check/frozen-window.png" resources/samples
[ -s "$check/frozen-window.png" ] || { echo "build_app: no screenshot from the frozen app" >&2; exit 1; }
mkdir -p dist && cp "$check/frozen-window.png" dist/frozen-window.png
echo "build_app: frozen window screenshot in dist/frozen-window.png"
echo "build_app: OK (build ${build_s} s, ${size})"
