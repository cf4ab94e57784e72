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
nice -n 10 swift build -c $CONFIG -j 2 --scratch-path $SCRATCH --target Projector \
  -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address >&2
B=$SCRATCH/$CONFIG
OBJECTS=()
for t in Kernels WeightFormats Tokenizers Images VisionEncoders LlamaDecoder Backbones Projector CJPEG CPNG CSentencePiece CQuant CDNNL CMPI; do
  OBJECTS+=($(find "$B/$t.build" -name '*.o' | sort))
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
  nice -n 10 swiftc -sanitize=fuzzer,address -parse-as-library -O -target-cpu haswell -module-name "Fuzz_$h" \
    -I "$B/Modules" "${CLANG_MODULES[@]}" \
    scripts/fuzz/harnesses/Common.swift "scripts/fuzz/harnesses/$h.swift" "${OBJECTS[@]}" \
    -ljpeg -lpng16 -lsentencepiece -lstdc++ -ldl -lpthread $(pkg-config --libs openblas) \
    -o "$SCRATCH/bin/fuzz-$h" 2> >(grep -v "Cannot export local symbol" >&2)
done
echo "harnesses in $SCRATCH/bin" >&2
