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
source scripts/server/start-server.sh
"$VENV/bin/python" scripts/server/openai_check.py --base-url "http://127.0.0.1:$PORT/v1" --vlm "$VLM" --image "$IMAGE"
echo "access log:"; cat "$LOG"
