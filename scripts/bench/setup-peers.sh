#!/usr/bin/env bash
# Builds the benchmark peers into a throwaway folder (never test dependencies):
#   $PEERS/venv             PyTorch CPU + transformers (+ gguf, accelerate: transformers' GGUF loader)
#   $PEERS/llama.cpp        llama.cpp from the llama-cpp-python sdist (PyPI), its vendor/llama.cpp,
#                           with llama-bench built (CPU-native, Release)
# scripts/bench/all.sh finds them there (PYTHON, LLAMA_BENCH override).
# Usage: PEERS=/work/peers bash scripts/bench/setup-peers.sh
set -euo pipefail
PEERS=${PEERS:-/work/peers}
mkdir -p "$PEERS"
if [ ! -x "$PEERS/venv/bin/python" ]; then
    python3 -m venv "$PEERS/venv"
    # the CPU wheel: a plain `pip install torch` pulls ~4 GB of CUDA libraries
    "$PEERS/venv/bin/pip" install -q "torch==2.13.0+cpu" --extra-index-url https://download.pytorch.org/whl/cpu
fi
"$PEERS/venv/bin/pip" install -q transformers safetensors gguf accelerate
if [ ! -f "$PEERS/llama.cpp/CMakeLists.txt" ]; then
    mkdir -p "$PEERS/dl"
    "$PEERS/venv/bin/pip" download -q --no-binary :all: --no-deps llama-cpp-python -d "$PEERS/dl"
    tar -xzf "$PEERS"/dl/llama_cpp_python-*.tar.gz -C "$PEERS/dl"
    cp -r "$PEERS"/dl/llama_cpp_python-*/vendor/llama.cpp "$PEERS/llama.cpp"
fi
cmake -S "$PEERS/llama.cpp" -B "$PEERS/llama.cpp/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=ON >/dev/null
cmake --build "$PEERS/llama.cpp/build" --target llama-bench -j "$(nproc)"
echo "peers ready: $PEERS/venv/bin/python, $PEERS/llama.cpp/build/bin/llama-bench"
