#!/usr/bin/env bash
# Training throughput of the embedded pair (DINOv2 ViT-S/14 + SmolLM2-135M, mlp2x_gelu, shuffle:2)
# with 1 process and with mpirun -np 2 on this machine, on the fixture images (features cached
# once). Prints samples/s (from metrics.jsonl, steps after the first) and the all-reduce time
# per step. Usage: [CONFIGS="1:2 2:1"] scripts/mpi/throughput.sh [steps] [global batch] [repeats]
# 2 ranks on one machine share its cores: each rank gets cores/2 BLAS threads (set explicitly).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
VLM=${VLM:-$root/.build/release/vlm}
STEPS=${1:-4}; BATCH=${2:-4}; REPEATS=${3:-3}
CORES=$(nproc)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
T=$(mktemp -d /tmp/vlm-mpi-tput.XXXXXX)
trap 'rm -rf "$T"' EXIT
F=$root/Tests/BackbonesTests/Fixtures/images
: > "$T/train.jsonl"
for img in baseline_420.jpg baseline_422.jpg baseline_444.jpg gray.jpg rgb8.png rgba8.png palette.png progressive.jpg orient_1.jpg interlaced_rgb8.png; do
  cp "$F/$img" "$T/"
  echo "{\"image\": \"$img\", \"caption\": \"a small test picture used to measure the speed of training\"}" >> "$T/train.jsonl"
done
"$VLM" precompute --data "$T/train.jsonl" --out "$T/cache" 2> /dev/null
PARAMS=1217665   # the default projector's 1,217,664 parameters + 1 loss sum (printed by the first run below)
TRAIN=(train --data "$T/train.jsonl" --features "$T/cache" --batch "$BATCH" --steps "$STEPS" --save-every 0 --seed 1)
export BATCH
rate() {  # median over repeats of the mean samples/s of steps 2.. (the first step warms up)
  python3 - "$@" <<'PY'
import json, statistics, sys
rates, reduce = [], []
for path in sys.argv[1:]:
    rows = [json.loads(l) for l in open(path) if l.strip()]
    # samples_per_s is cumulative from the start: the rate of steps 2..n from the first and last rows
    batch = int(__import__("os").environ["BATCH"])
    s1, sn = rows[0]["step"] * batch, rows[-1]["step"] * batch
    t1, tn = s1 / rows[0]["samples_per_s"], sn / rows[-1]["samples_per_s"]
    rates.append((sn - s1) / (tn - t1))
    reduce += [r["allreduce_s"] for r in rows[1:] if "allreduce_s" in r]
line = "%.2f samples/s (median of %d: %s)" % (statistics.median(rates), len(rates), ", ".join("%.2f" % r for r in rates))
if reduce: line += "; all-reduce %.2f ms per step (median of %d steps)" % (1000 * statistics.median(reduce), len(reduce))
print(line)
PY
}
echo "machine: $CORES cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); global batch $BATCH, $STEPS steps"
# CONFIGS: "ranks:threads ..." (default: 1 rank with all cores, 1 rank with half, 2 ranks with half each)
for config in ${CONFIGS:-1:$CORES 1:$((CORES / 2)) 2:$((CORES / 2))}; do
  ranks=${config%%:*}; threads=${config##*:}
  files=()
  for r in $(seq 1 "$REPEATS"); do
    out="$T/run-$ranks-$threads-$r"
    if [ "$ranks" = 1 ]; then
      "$VLM" "${TRAIN[@]}" --threads "$threads" --out "$out" 2> "$out.log" || { cat "$out.log"; exit 1; }
    else
      mpirun -np "$ranks" --oversubscribe --bind-to none "$VLM" "${TRAIN[@]}" --threads "$threads" --out "$out" > "$out.log" 2>&1 || { cat "$out.log"; exit 1; }
    fi
    files+=("$out/metrics.jsonl")
  done
  sps=$(rate "${files[@]}")
  echo "$ranks rank(s) x $threads BLAS thread(s): $sps"
done

# the all-reduce alone (after a barrier, so no waiting for a late rank), at the default
# projector's size; needs mpicc (libopenmpi-dev)
if command -v mpicc > /dev/null; then
  mpicc -O2 -o "$T/allreduce_bench" scripts/mpi/allreduce_bench.c
  mpirun -np 2 --oversubscribe --bind-to none "$T/allreduce_bench" "$PARAMS" 50
fi
