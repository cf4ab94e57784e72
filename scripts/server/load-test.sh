#!/usr/bin/env bash
# Bounded load test of `vlm serve` on 127.0.0.1 (load_test.py): throughput, then 10 × queue
# concurrent clients. Usage: bash scripts/server/load-test.sh [parallel] [queue]   (~2 minutes)
set -euo pipefail
cd "$(dirname "$0")/../.."
VLM=${VLM:-.build/release/vlm}
PARALLEL=${1:-1}
QUEUE=${2:-4}
IMAGE=${IMAGE:-Weights/samples/emoji_hedgehog.png}
SERVE_ARGS=(--host 127.0.0.1 --parallel "$PARALLEL" --queue "$QUEUE")
source scripts/server/start-server.sh
python3 scripts/server/load_test.py --port "$PORT" --pid "$SERVER" --image "$IMAGE" --parallel "$PARALLEL" --queue "$QUEUE" "${@:3}"
kill -0 $SERVER && echo "server still running; access-log lines: $(grep -c '"status"' "$LOG")"
