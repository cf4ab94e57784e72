#!/usr/bin/env bash
# Starts `vlm serve` on a free loopback port, runs openai_check.py with the `openai` PyPI client
# (in a throwaway venv, $VLM_OPENAI_VENV, created when missing), stops the server.
# Needs a release build (.build/release/vlm) and the embedded weights (scripts/fetch-weights.sh).
# Usage: bash scripts/server/openai-check.sh [image]     (about a minute on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/../.."
VLM=${VLM:-.build/release/vlm}
IMAGE=${1:-Weights/samples/emoji_hedgehog.png}
VENV=${VLM_OPENAI_VENV:-.venv-openai}
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q openai
fi
LOG=$(mktemp)
"$VLM" serve --port 0 2> "$LOG" &
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
"$VENV/bin/python" scripts/server/openai_check.py --base-url "http://127.0.0.1:$PORT/v1" --vlm "$VLM" --image "$IMAGE"
echo "access log:"; cat "$LOG"
