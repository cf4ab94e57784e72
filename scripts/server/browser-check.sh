#!/usr/bin/env bash
# Starts `vlm serve` on a free loopback port and drives its page with headless Chromium
# (browser_check.py, DevTools protocol): pick an image, Caption, wait for the streamed answer,
# screenshot. Needs Debian's chromium (`apt-get install chromium`), a release build and the
# embedded weights. Usage: bash scripts/server/browser-check.sh [image] [screenshot.png]
set -euo pipefail
cd "$(dirname "$0")/../.."
VLM=${VLM:-.build/release/vlm}
IMAGE=${1:-Weights/samples/emoji_hedgehog.png}
SHOT=${2:-server-page.png}
VENV=${VLM_OPENAI_VENV:-.venv-openai}
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
"$VENV/bin/python" -c "import websocket" 2>/dev/null || "$VENV/bin/pip" install -q websocket-client
command -v chromium >/dev/null || { echo "chromium is missing: apt-get install chromium"; exit 1; }
source scripts/server/start-server.sh
# the page's caption must equal `vlm caption`'s (SKIP_EXPECT=1 skips that comparison)
EXPECT_ARGS=()
if [ -z "${SKIP_EXPECT:-}" ]; then EXPECT_ARGS=(--expect "$("$VLM" caption "$IMAGE")"); fi
"$VENV/bin/python" -u scripts/server/browser_check.py --url "http://127.0.0.1:$PORT/" --image "$IMAGE" --screenshot "$SHOT" "${EXPECT_ARGS[@]}"
echo "access log:"; cat "$LOG"
