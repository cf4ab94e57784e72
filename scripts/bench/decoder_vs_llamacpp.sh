#!/usr/bin/env bash
# Decoder speed, swift-vlm against llama.cpp's llama-bench on the same GGUF and thread count,
# runs interleaved (one swift-vlm run, one llama.cpp run, per round), medians and min-max of the
# rounds, the machine's load before each run. Prefill: 256 tokens from an empty cache; decode: 64
# tokens (swift-vlm decodes after its 256-token prefill, llama-bench from an empty cache, which
# favours llama.cpp slightly). llama.cpp is a peer built by hand into a throwaway folder (see
# README); it is never a test dependency.
# Usage: scripts/bench/decoder_vs_llamacpp.sh [model.gguf] [threads] [rounds] [extra vlm-bench flags]
#   LLAMA_BENCH=path/to/llama-bench (default /work/peers/llama.cpp/build/bin/llama-bench)
set -euo pipefail
cd "$(dirname "$0")/../.."
GGUF=${1:-Weights/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}
THREADS=${2:-2}
ROUNDS=${3:-3}
EXTRA=${4:-}
LB=${LLAMA_BENCH:-/work/peers/llama.cpp/build/bin/llama-bench}
OUT=$(mktemp)
for r in $(seq "$ROUNDS"); do
    echo "load: $(uptime | sed 's/.*load average: //')" | tee -a "$OUT.load"
    nice -n 5 .build/release/vlm-bench decoder "$GGUF" --threads "$THREADS" --repeats 1 --no-peer $EXTRA \
        | grep '^{' | sed 's/^/swift /' | tee -a "$OUT"
    if [ -x "$LB" ]; then
        nice -n 5 "$LB" -m "$GGUF" -t "$THREADS" -p 256 -n 64 -r 1 -o jsonl 2>/dev/null | sed 's/^/llama /' | tee -a "$OUT"
    fi
done
python3 - "$OUT" <<'PY'
import json, statistics, sys
swift = {"prefill": [], "decode": []}; llama = {"prefill": [], "decode": []}
for line in open(sys.argv[1]):
    who, _, js = line.partition(" ")
    d = json.loads(js)
    if who == "swift":
        swift["prefill"].append(d["prefill_tokens_per_s"]); swift["decode"].append(d["decode_tokens_per_s"])
    elif d.get("n_prompt", 0) > 0:
        llama["prefill"].append(d["avg_ts"])
    else:
        llama["decode"].append(d["avg_ts"])
def fmt(xs): return f"{statistics.median(xs):8.1f} ({min(xs):.1f}-{max(xs):.1f})" if xs else "      —"
print(f"{'workload':<22} {'swift-vlm':>22} {'llama.cpp':>22} {'ratio':>7}")
for k, name in (("prefill", "prefill 256, tok/s"), ("decode", "decode 64, tok/s")):
    ratio = statistics.median(swift[k]) / statistics.median(llama[k]) if swift[k] and llama[k] else float("nan")
    print(f"{name:<22} {fmt(swift[k]):>22} {fmt(llama[k]):>22} {ratio:7.2f}")
PY
rm -f "$OUT" "$OUT.load"
