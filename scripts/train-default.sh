#!/usr/bin/env bash
# How the shipped projector (Weights/projector/) is made, start to finish: build the dataset from
# Debian packages, cache the DINOv2 features, train, evaluate. Every step resumes where it
# stopped when run again (the feature cache, the run directory with --resume).
#
# Stage 1 (the first shipped projector, commit 5d4e927, step 1,400): the v1 data, one sample a
# line, from a random initialisation. Stage 2 (this script): starts from that projector
# (`git show 5d4e927:Weights/projector/projector.safetensors`) and trains on the v2 data's packed
# conversations (one line holds every question of an image; another its canonical caption) of a
# per-source subset sized for one 2-core session (SUBSET=0 uses the whole training split).
#
#   RUN=runs/default-v2 STEPS=800 bash scripts/train-default.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${RUN:-runs/default-v2}
STEPS=${STEPS:-800}
DATA=${DATA:-data-v2}
FEATURES=${FEATURES:-$DATA/features-dinov2-l-2}
SUBSET=${SUBSET:-1}
bash scripts/setup.sh
swift build -c release
bash scripts/fetch-weights.sh
bash scripts/data/install_sources.sh
# the shipped projector was trained on data-v2 as the builder of commit cd7d280 made it (these options);
# later builder commits renamed two art4apps concepts and added the emojione source (not used here)
[ -f "$DATA/train-conv.jsonl" ] || python3 scripts/data/build_dataset.py --out "$DATA" --scenes 8000 \
  --sources tuxpaint,gcompris,emoji,openclipart,pysiogame,shapes
TRAIN=$DATA/train-conv.jsonl
if [ "$SUBSET" = 1 ]; then
  TRAIN=$DATA/train-conv-s1.jsonl
  [ -f "$TRAIN" ] || python3 scripts/data/subset.py "$DATA/train-conv.jsonl" "$TRAIN" --images shapes=2000 --rendering-max 1 --seed 0
fi
# a fixed validation subset (the validation loss is computed on it every --eval-every steps)
VAL=$DATA/val-conv-s1.jsonl
[ -f "$VAL" ] || python3 scripts/data/subset.py "$DATA/val-conv.jsonl" "$VAL" --images shapes=80 --default-images 40 --seed 0
VLM=.build/release/vlm
$VLM precompute --data "$VAL" --data "$TRAIN" --out "$FEATURES" --layer -2
INIT=$RUN.init.safetensors
[ -f "$INIT" ] || git show 5d4e927:Weights/projector/projector.safetensors > "$INIT"
RESUME="--init-from $INIT"; [ -f "$RUN/checkpoint.safetensors" ] && RESUME="--resume"
$VLM train --data "$TRAIN" --val "$VAL" --features "$FEATURES" --out "$RUN" \
  --layer -2 --reduce shuffle:4 --normalize-features --projector mlp2x_gelu --system none \
  --steps "$STEPS" --batch 8 --lr 5e-4 --warmup 30 --min-lr-ratio 0.1 --clip 1 --max-length 640 \
  --save-every 50 --eval-every 100 --early-stop 3 --seed 0 $RESUME
# evaluation: every non-scene test row and every row of 200 seeded scenes (the whole split: DATA/test.jsonl)
TEST=$DATA/test-s1.jsonl
[ -f "$TEST" ] || python3 scripts/data/subset.py "$DATA/test.jsonl" "$TEST" --images shapes=200 --seed 0
$VLM eval --data "$TEST" --projector "$RUN/best-projector.safetensors" --max-tokens 24 --baselines --baseline-limit 200 \
  --train "$TRAIN" --features "$FEATURES" --out "$RUN/eval-test.json"
