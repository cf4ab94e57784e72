#!/usr/bin/env bash
# Load and step times of a built vlm/vlm-bench pair, median of N runs each (wall seconds), for
# comparing build flags: `bash scripts/bench/load-times.sh .build/release 5`.
# GGUF decoder + its tokenizer (generate 1 token), safetensors vision model + a 4000x3000 JPEG
# decode (features), the ONNX import, then vlm-bench's training step and decoder speed.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-.build/release}; N=${2:-5}
W=Weights; TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
python3 - "$TMP/big.jpg" <<'PY'
import sys, random
from PIL import Image
random.seed(0)
img = Image.effect_noise((4000, 3000), 64).convert("RGB")
img.save(sys.argv[1], quality=90)
PY
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
timeit() {  # label, command...
  local label=$1; shift
  for _ in $(seq "$N"); do
    local s=$(date +%s.%N); "$@" >/dev/null 2>&1 || { echo "$label: failed" >&2; return 1; }
    echo "$(date +%s.%N) - $s" | bc
  done | median | xargs printf "%-40s %.3f s\n" "$label"
}
timeit "gguf+tokenizer (generate 1 token)" "$BIN/vlm" generate --threads 1 --llm $W/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf --prompt hi --max-tokens 1
timeit "hf tokenizer.json + tiny safetensors" "$BIN/vlm" generate --threads 1 --llm Tests/InferenceTests/Fixtures/llama/bpe-gqa-tied-f32 --prompt hi --max-tokens 1
timeit "safetensors vision + 224px png" "$BIN/vlm" features --threads 1 --vision $W/dinov2-vits14 --out "$TMP/f.safetensors" $W/samples/emoji_hedgehog.png
timeit "safetensors vision + 4000x3000 jpeg" "$BIN/vlm" features --threads 1 --vision $W/dinov2-vits14 --out "$TMP/f.safetensors" "$TMP/big.jpg"
timeit "onnx import (vit_s_focus)" "$BIN/vlm" import-dinov2 --onnx $W/downloads/vit_s_focus.onnx --out "$TMP/imp"
echo "--- vlm-bench train --threads 1 --steps 3"; "$BIN/vlm-bench" train --threads 1 --steps 3 2>&1 | grep -v "^ *$" | grep -iv torch | tail -4
echo "--- vlm-bench decoder --threads 1 --repeats 3"; "$BIN/vlm-bench" decoder --threads 1 --repeats 3 2>&1 | grep -iv torch | tail -4
