#!/usr/bin/env bash
# Bounded load test of `vlm serve` on 127.0.0.1 (load_test.py): throughput, then 10 × queue
# concurrent clients. Usage: bash scripts/server/load-test.sh [parallel] [queue]   (~2 minutes)
set -euo pipefail
cd "$(dirname "$0")/../.."
VLM=${VLM:-.build/release/vlm}
PARALLEL=${1:-1}
QUEUE=${2:-4}
IMAGE=${IMAGE:-Weights/samples/emoji_hedgehog.png}
LOG=$(mktemp)
"$VLM" serve --host 127.0.0.1 --port 0 --parallel "$PARALLEL" --queue "$QUEUE" 2> "$LOG" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -f "$LOG"' EXIT
PORT=""
for _ in $(seq 1 600); do
    PORT=$(sed -n 's#.*listening on http://127.0.0.1:\([0-9]*\)/.*#\1#p' "$LOG" | head -1)
    [ -n "$PORT" ] && break
    kill -0 $SERVER 2>/dev/null || { cat "$LOG"; exit 1; }
    sleep 0.1
done
[ -n "$PORT" ] || { echo "the server did not start"; cat "$LOG"; exit 1; }
python3 scripts/server/load_test.py --port "$PORT" --pid "$SERVER" --image "$IMAGE" --parallel "$PARALLEL" --queue "$QUEUE" "${@:3}"
kill -0 $SERVER && echo "server still running; access-log lines: $(grep -c '"status"' "$LOG")"
