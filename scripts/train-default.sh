#!/usr/bin/env bash
# How the shipped projector (Weights/projector/) is made, start to finish: build the dataset from
# Debian packages, cache the DINOv2 features, train, evaluate. Takes about an hour and a half on a
# 2-core machine; every step resumes where it stopped when run again.
#   RUN=runs/default STEPS=1900 bash scripts/train-default.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${RUN:-runs/default}
STEPS=${STEPS:-1900}
bash scripts/setup.sh
swift build -c release
bash scripts/fetch-weights.sh
bash scripts/data/install_sources.sh
[ -f data/train.jsonl ] || python3 scripts/data/build_dataset.py --out data
# a fixed 240-sample validation subset (the validation loss is computed on it every --eval-every steps)
[ -f data/val-240.jsonl ] || python3 -c "
import random; random.seed(1)
lines = open('data/val.jsonl').read().splitlines(); random.shuffle(lines)
open('data/val-240.jsonl', 'w').write('\n'.join(lines[:240]) + '\n')"
VLM=.build/release/vlm
$VLM precompute --data data/train.jsonl --data data/val.jsonl --out data/features-dinov2-l-2 --layer -2
RESUME=""; [ -f "$RUN/checkpoint.safetensors" ] && RESUME="--resume"
$VLM train --data data/train.jsonl --val data/val-240.jsonl --features data/features-dinov2-l-2 --out "$RUN" \
  --layer -2 --reduce shuffle:4 --normalize-features --projector mlp2x_gelu --system none \
  --steps "$STEPS" --batch 8 --lr 1e-3 --warmup 100 --min-lr-ratio 0.1 --clip 1 \
  --save-every 200 --eval-every 475 --seed 0 $RESUME
$VLM eval --data data/test.jsonl --projector "$RUN/projector.safetensors" --limit 300 --baselines \
  --train data/train.jsonl --features data/features-dinov2-l-2 --out "$RUN/eval.json"
