#!/usr/bin/env bash
# Runs swift-vlm's test suite: installs the system libraries, fetches the real backbones when
# the fetch script exists (tests that need them skip with a message otherwise), then runs
# every test in release configuration (numeric kernels are 10-200x slower in debug).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -f scripts/fetch-weights.sh ]; then bash scripts/fetch-weights.sh; fi
swift build -c release
swift test -c release
