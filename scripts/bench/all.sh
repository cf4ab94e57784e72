#!/usr/bin/env bash
# One table of swift-vlm against its peers on this machine, runs interleaved by round (each
# workload: swift-vlm, then each peer, then the next workload), medians and min–max of the
# rounds, the load average before each round. Writes the table, the raw JSON lines, a summary
# JSON and a bar chart (SVG) into OUT.
#
#   decoder: `vlm-bench decoder` (as `vlm` runs by default: prefill products in bf16 where the CPU
#            has it, decode on the GGUF's blocks) vs llama.cpp's llama-bench (-p 256 -n 64) and
#            PyTorch + transformers float32, on the same GGUF and thread count
#   vision:  `vlm-bench vision` in float32 and with bf16 products vs PyTorch float32 and bf16
#            autocast (DINOv2-S/14 and a ViT-B/16-sized DINOv2, 224x224)
#   train:   `vlm-bench train` (one projector step through the frozen decoder) in float32 and
#            bf16 vs PyTorch float32 and bf16 autocast, samples/s and peak RSS
#
# Peers are never test dependencies: scripts/bench/setup-peers.sh builds them into a throwaway
# folder (PyTorch CPU in a venv: PYTHON; llama-bench from the llama-cpp-python sdist:
# LLAMA_BENCH). A missing or failing peer is reported as "—" (its errors in OUT/peer-errors.log).
# Usage: scripts/bench/all.sh [OUT=bench-out] [THREADS=2] [ROUNDS=3]
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-bench-out}
THREADS=${2:-2}
ROUNDS=${3:-3}
PY=${PYTHON:-/work/peers/venv/bin/python}
LB=${LLAMA_BENCH:-/work/peers/llama.cpp/build/bin/llama-bench}
GGUF=Weights/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
VIT=Weights/dinov2-vits14
BENCH=.build/release/vlm-bench
mkdir -p "$OUT"
RAW="$OUT/raw.jsonl"
: > "$RAW"; : > "$OUT/peer-errors.log"
have_torch=0; "$PY" -c "import torch, transformers" 2>/dev/null && have_torch=1
emit() {  # emit WHO WORKLOAD: tags each JSON line of stdin and appends it to the raw file
    grep '^{' | sed "s/^/{\"who\": \"$1\", \"round\": $R, \"load\": \"$LOAD\", \"data\": /; s/\$/}/" >> "$RAW" || true
}
for R in $(seq "$ROUNDS"); do
    LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
    echo "round $R/$ROUNDS (load $LOAD)" >&2
    "$BENCH" decoder "$GGUF" --threads "$THREADS" --repeats 1 --no-peer --precision auto | emit swift-vlm
    # llama-bench's tg64 decodes from an empty context; -d 256 decodes after 256 tokens, as vlm-bench's "decode after"
    if [ -x "$LB" ]; then { "$LB" -m "$GGUF" -t "$THREADS" -p 256 -n 64 -r 1 -o jsonl 2>/dev/null || true; } | emit llama.cpp; fi
    if [ -x "$LB" ]; then { "$LB" -m "$GGUF" -t "$THREADS" -p 0 -n 64 -d 256 -r 1 -o jsonl 2>/dev/null || true; } | emit llama.cpp; fi
    if [ $have_torch = 1 ]; then { "$PY" scripts/bench/torch_decoder.py "$GGUF" 256 64 "$THREADS" 1 2>>"$OUT/peer-errors.log" || true; } | emit pytorch-fp32; fi
    for p in fp32 auto; do "$BENCH" vision "$VIT" --threads "$THREADS" --repeats 2 --no-peer --precision $p | emit swift-vlm; done
    if [ $have_torch = 1 ]; then
        for p in fp32 bf16; do { "$PY" scripts/bench/torch_vision.py "$VIT" "$THREADS" 2 $p 2>>"$OUT/peer-errors.log" || true; } | emit pytorch-$p; done
    fi
    "$BENCH" train "$GGUF" --threads "$THREADS" --steps 3 --no-peer | emit swift-vlm
    if [ $have_torch = 1 ]; then
        for p in fp32 bf16; do { "$PY" scripts/bench/torch_train.py "$GGUF" "$THREADS" 3 $p 2>>"$OUT/peer-errors.log" || true; } | emit pytorch-$p; done
    fi
done
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
FLAGS=$(grep -m1 '^flags' /proc/cpuinfo | grep -o -w -E 'avx2|avx512f|avx512_bf16|amx_bf16' | sort -u | tr '\n' ' ')
python3 scripts/bench/summarize.py "$RAW" "$OUT" "$CPU ($FLAGS) $THREADS threads, $ROUNDS rounds"
