#!/bin/bash
# A diagnostic copy of llama.cpp's ggml with the float16 shortcuts of its vision path switched
# off, for scripts/interop/check_mmproj.py --ggml-f32 (a peer, never a test dependency):
#   - ggml-cpu computes GELU and quick GELU through float16 lookup tables (GGML_GELU_FP16 and
#     GGML_GELU_QUICK_FP16 in ggml-cpu/vec.h);
#   - ggml_conv_2d stores im2col as float16 for any kernel but BF16 (ggml.c), so the patch embedding
#     multiplies float16-rounded pixels by a float16-rounded kernel.
# Both change image rows by about 0.3% of their magnitude; without them the remaining difference to
# swift-vlm is what the exported graph itself computes. LLAMA is the llama.cpp source tree (the
# llama-cpp-python sdist's vendor/llama.cpp); the copy goes to OUT, and only libggml* are built (the
# mmproj_embd built against LLAMA picks them up with LD_LIBRARY_PATH=$OUT/build/bin).
set -euo pipefail
LLAMA=${LLAMA:-/work/peers/llama.cpp}
OUT=${OUT:-/work/peers/llama.cpp-f32}
mkdir -p "$OUT"
tar -C "$LLAMA" --exclude=./build -cf - . | tar -C "$OUT" -xf -
cd "$OUT"
sed -i 's|^#define GGML_GELU_FP16|// #define GGML_GELU_FP16 (off: diagnostic build)|' ggml/src/ggml-cpu/vec.h
sed -i 's|^#define GGML_GELU_QUICK_FP16|// #define GGML_GELU_QUICK_FP16 (off: diagnostic build)|' ggml/src/ggml-cpu/vec.h
sed -i 's|true, a->type == GGML_TYPE_BF16 ? GGML_TYPE_F32 : GGML_TYPE_F16); // \[N, OH, OW, IC \* KH \* KW\]|true, GGML_TYPE_F32); // F32 im2col (diagnostic build)|' ggml/src/ggml.c
[ "$(grep -c 'off: diagnostic build' ggml/src/ggml-cpu/vec.h)" = 2 ] || { echo "GGML_GELU_FP16/GGML_GELU_QUICK_FP16 not found: another llama.cpp version" >&2; exit 1; }
grep -q 'F32 im2col (diagnostic build)' ggml/src/ggml.c || { echo "ggml_conv_2d's im2col type not found: another llama.cpp version" >&2; exit 1; }
cmake -S . -B build -DBUILD_SHARED_LIBS=ON -DGGML_NATIVE=ON -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF >&2
nice -n 10 cmake --build build -j2 --target ggml-base ggml-cpu ggml >&2
echo "$OUT/build/bin"
