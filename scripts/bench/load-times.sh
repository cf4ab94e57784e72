#!/usr/bin/env bash
# Load and step times of built vlm/vlm-bench pairs, for comparing build flags; runs alternate
# between the builds (so that load from other processes hits both alike), median of N each.
#   bash scripts/bench/load-times.sh N DIR_A [DIR_B ...]     e.g. 5 /tmp/before .build/release
# Rows: the GGUF decoder + its tokenizer (generate 1 token), a Hugging Face tokenizer.json + tiny
# safetensors decoder, the safetensors vision model + a 224 px PNG / a 4000x3000 JPEG (decode and
# resize) through `features`, the ONNX import, vlm-bench's training step and decoder speed.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=$1; shift; DIRS=("$@")
W=Weights; TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
python3 - "$TMP/big.jpg" <<'PY'
import sys
from PIL import Image
Image.effect_noise((4000, 3000), 64).convert("RGB").save(sys.argv[1], quality=90)
PY
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
row() {  # label, then a command with BIN standing for the build directory
  local label=$1; shift
  for d in "${DIRS[@]}"; do : > "$TMP/t.$(basename "$d")"; done
  for _ in $(seq "$N"); do
    for d in "${DIRS[@]}"; do
      local cmd=("${@//BIN/$d}") s e
      s=$(date +%s.%N); "${cmd[@]}" >/dev/null 2>&1 || { echo "$label: failed with $d" >&2; return 1; }; e=$(date +%s.%N)
      echo "$e - $s" | bc >> "$TMP/t.$(basename "$d")"
    done
  done
  printf "%-38s" "$label"
  for d in "${DIRS[@]}"; do printf " %8.3f s" "$(median < "$TMP/t.$(basename "$d")")"; done
  echo
}
printf "%-38s" "(median wall seconds)"; for d in "${DIRS[@]}"; do printf " %10s" "$(basename "$d")"; done; echo
row "gguf decoder + tokenizer" BIN/vlm generate --threads 1 --llm $W/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf --prompt hi --max-tokens 1
row "tokenizer.json + tiny safetensors" BIN/vlm generate --threads 1 --llm Tests/InferenceTests/Fixtures/llama/bpe-gqa-tied-f32 --prompt hi --max-tokens 1
row "safetensors vision + 224px png" BIN/vlm features --threads 1 --vision $W/dinov2-vits14 --out "$TMP/f.safetensors" $W/samples/emoji_hedgehog.png
row "safetensors vision + 4000x3000 jpeg" BIN/vlm features --threads 1 --vision $W/dinov2-vits14 --out "$TMP/f.safetensors" "$TMP/big.jpg"
row "onnx import (vit_s_focus)" BIN/vlm import-dinov2 --onnx $W/downloads/vit_s_focus.onnx --out "$TMP/imp"
for _ in $(seq 3); do
  for d in "${DIRS[@]}"; do
    echo "$(basename "$d") train: $("$d/vlm-bench" train --threads 1 --steps 3 2>&1 | grep '^swift-vlm' | cut -c1-60)"
    echo "$(basename "$d") decoder: $("$d/vlm-bench" decoder --threads 1 --repeats 3 2>&1 | grep '^swift-vlm' | cut -c1-80)"
  done
done
