#!/usr/bin/env bash
# Builds the libFuzzer harnesses (scripts/fuzz/harnesses/*.swift) into .build-fuzz/bin/.
# The package's library targets are built by SwiftPM with coverage instrumentation and
# AddressSanitizer (-sanitize=fuzzer,address; the C shims with -fsanitize=fuzzer-no-link,address)
# in their own scratch path; each harness is then compiled by swiftc against those modules and
# linked with libFuzzer's main. Linux only (libFuzzer ships with the Swift toolchain there).
# Usage: bash scripts/fuzz/build.sh [harness ...]   (default: all)
set -euo pipefail
cd "$(dirname "$0")/../.."
SCRATCH=.build-fuzz
CONFIG=release
# Projector brings the readers; Inference and HTTPTypes are what the request harness's server
# sources (named on its "fuzz-sources:" line) import
for target in Projector Inference HTTPTypes; do
  nice -n 10 swift build -c $CONFIG -j 2 --scratch-path $SCRATCH --target $target \
    -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address >&2
done
B=$SCRATCH/$CONFIG
OBJECTS=()
for t in Kernels WeightFormats Tokenizers Images VisionEncoders LlamaDecoder Backbones Projector Inference HTTPTypes CJPEG CPNG CSentencePiece CQuant CDNNL CMPI; do
  # only objects whose source still exists (a scratch path kept across builds holds stale ones)
  for o in $(find "$B/$t.build" -name '*.o' | sort); do
    src=$(basename "$o" .o)
    if [ ! -d "Sources/$t" ] || [ -n "$(find "Sources/$t" -name "$src" -print -quit)" ]; then OBJECTS+=("$o"); fi
  done
done
CLANG_MODULES=()
for t in CJPEG CPNG CSentencePiece CQuant CDNNL CMPI; do
  CLANG_MODULES+=(-Xcc -fmodule-map-file="$B/$t.build/module.modulemap" -Xcc -I -Xcc "Sources/$t/include")
done
CLANG_MODULES+=(-Xcc -fmodule-map-file=Sources/CBLAS/module.modulemap -Xcc -I -Xcc Sources/CBLAS)
mkdir -p $SCRATCH/bin
HARNESSES=("$@")
[ ${#HARNESSES[@]} -gt 0 ] || HARNESSES=($(cd scripts/fuzz/harnesses && ls *.swift | grep -v Common.swift | sed 's/\.swift$//'))
for h in "${HARNESSES[@]}"; do
  echo "building fuzz-$h" >&2
  # package sources a harness compiles into itself (to reach a target's internal API), from its
  # "// fuzz-sources: ..." line
  EXTRA=($(sed -n 's|^// fuzz-sources: ||p' "scripts/fuzz/harnesses/$h.swift"))
  nice -n 10 swiftc -sanitize=fuzzer,address -parse-as-library -O -target-cpu haswell -module-name "Fuzz_$h" \
    -I "$B/Modules" "${CLANG_MODULES[@]}" \
    scripts/fuzz/harnesses/Common.swift "scripts/fuzz/harnesses/$h.swift" "${EXTRA[@]}" "${OBJECTS[@]}" \
    -ljpeg -lpng16 -lsentencepiece -lstdc++ -ldl -lpthread $(pkg-config --libs openblas) \
    -o "$SCRATCH/bin/fuzz-$h" 2> >(grep -v "Cannot export local symbol" >&2)
done
echo "harnesses in $SCRATCH/bin" >&2
