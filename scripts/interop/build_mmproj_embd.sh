#!/bin/bash
# Builds scripts/interop/mmproj_embd.cpp and mtmd_greedy.cpp against llama.cpp's libmtmd into
# /work/peers/interop-mtmd (peers for scripts/interop/check_mmproj.py and check_mtmd.py, never test dependencies). LLAMA is a llama.cpp source
# tree (e.g. the llama-cpp-python sdist's vendor/llama.cpp) whose build/bin already holds libllama and
# libggml (cmake -B build -DBUILD_SHARED_LIBS=ON && cmake --build build --target llama); links to its
# libmtmd when that is built (--target llama-mtmd-cli), else compiles libmtmd's sources here.
set -euo pipefail
LLAMA=${LLAMA:-/work/peers/llama.cpp}
OUT=${OUT:-/work/peers/interop-mtmd}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT/obj"
INC0="-I$LLAMA/include -I$LLAMA/ggml/include -I$LLAMA/tools/mtmd -I$LLAMA/vendor -I$LLAMA/common"
if [ -f "$LLAMA/build/bin/libmtmd.so" ]; then
  # llama.cpp's own libmtmd (cmake --build build --target llama-mtmd-cli builds it): link to it
  nice -n 10 g++ -std=c++17 -O2 $INC0 "$HERE/mmproj_embd.cpp" -L"$LLAMA/build/bin" -lmtmd -lllama -lggml -lggml-base -lpthread \
    -Wl,-rpath,"$LLAMA/build/bin" -o "$OUT/mmproj_embd"
  nice -n 10 g++ -std=c++17 -O2 $INC0 "$HERE/mtmd_greedy.cpp" -L"$LLAMA/build/bin" -lmtmd -lllama -lggml -lggml-base -lpthread \
    -Wl,-rpath,"$LLAMA/build/bin" -o "$OUT/mtmd_greedy"
  echo "$OUT/mmproj_embd $OUT/mtmd_greedy"; exit 0
fi
INC="-I$LLAMA/include -I$LLAMA/ggml/include -I$LLAMA/tools/mtmd -I$LLAMA/vendor -I$LLAMA/common"
SRCS="$LLAMA/tools/mtmd/mtmd.cpp $LLAMA/tools/mtmd/mtmd-audio.cpp $LLAMA/tools/mtmd/mtmd-image.cpp $LLAMA/tools/mtmd/mtmd-helper.cpp $LLAMA/tools/mtmd/mtmd-helper-gen.cpp $LLAMA/tools/mtmd/clip.cpp $LLAMA/tools/mtmd/models/*.cpp"
objs=()
for s in $SRCS; do
  o="$OUT/obj/$(basename "$s" .cpp).o"; objs+=("$o")
  [ -f "$o" ] && [ "$o" -nt "$s" ] && continue
  echo "compiling $(basename "$s")" >&2
  nice -n 10 g++ -std=c++17 -O2 -fPIC -DNDEBUG -DGGML_SHARED -DLLAMA_SHARED -DMTMD_SHARED $INC -c "$s" -o "$o" &
  while [ "$(jobs -r | wc -l)" -ge 2 ]; do sleep 0.5; done
done
wait
nice -n 10 g++ -std=c++17 -O2 $INC "$HERE/mmproj_embd.cpp" "${objs[@]}" -L"$LLAMA/build/bin" -lllama -lggml -lggml-base -lpthread \
  -Wl,-rpath,"$LLAMA/build/bin" -o "$OUT/mmproj_embd"
nice -n 10 g++ -std=c++17 -O2 $INC "$HERE/mtmd_greedy.cpp" "${objs[@]}" -L"$LLAMA/build/bin" -lllama -lggml -lggml-base -lpthread \
  -Wl,-rpath,"$LLAMA/build/bin" -o "$OUT/mtmd_greedy"
echo "$OUT/mmproj_embd $OUT/mtmd_greedy"
