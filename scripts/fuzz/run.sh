#!/usr/bin/env bash
# Runs every libFuzzer harness (built by scripts/fuzz/build.sh) for a fixed number of executions,
# with an RSS cap, seeded from the test fixtures. A crash, leak, timeout or allocation over the
# cap stops that harness with its input saved under .build-fuzz/findings/<harness>/; copy it to
# Tests/<Target>Tests/Fixtures/fuzz/<harness>/ (replayed by the FuzzRegressionTests) and fix it.
#   bash scripts/fuzz/run.sh smoke              # CI: every harness briefly (about a minute in all)
#   bash scripts/fuzz/run.sh RUNS [harness ...] # e.g. 1000000 for the long runs (FUZZ_MAX_SECONDS=N caps the time)
# The summary line per harness gives executions, exec/s, coverage and findings.
set -uo pipefail
cd "$(dirname "$0")/../.."
MODE=${1:-smoke}; shift || true
B=.build-fuzz
ALL=(safetensors gguf onnx image tokenizer configs dataset projector request)
HARNESSES=("$@"); [ ${#HARNESSES[@]} -gt 0 ] || HARNESSES=("${ALL[@]}")
if [ "$MODE" = smoke ]; then LIMIT=(-max_total_time=7); else LIMIT=(-runs="$MODE"); fi
[ -z "${FUZZ_MAX_SECONDS:-}" ] || LIMIT+=(-max_total_time="$FUZZ_MAX_SECONDS")   # stop early at a time budget
seeds() {  # the fixture files each harness starts from
  case $1 in
    safetensors) find Tests -name '*.safetensors' -size -300k ;;
    gguf) find Tests -name '*.gguf' -size -300k ;;
    onnx) find Tests -name '*.onnx' -size -300k ;;
    image) find Tests -name '*.jpg' -o -name '*.png' | grep -v wide_20000 ;;
    tokenizer) find Tests -name 'tokenizer.json' -size -300k ;;
    configs) find Tests \( -name 'config.json' -o -name 'preprocessor_config.json' -o -name 'tokenizer_config.json' \) -size -100k ;;
    dataset) find scripts/fuzz/seeds/dataset -type f ;;
    request) find scripts/fuzz/seeds/request -type f ;;
    projector) find Tests -path '*llava/projector.safetensors'; find Tests -path '*Fixtures/fuzz/projector/*' -type f ;;
  esac
  find Tests -path "*Fixtures/fuzz/$1/*" -type f 2>/dev/null
}
status=0
for h in "${HARNESSES[@]}"; do
  bin=$B/bin/fuzz-$h
  [ -x "$bin" ] || { echo "$h: not built (bash scripts/fuzz/build.sh)"; status=1; continue; }
  corpus=$B/corpus/$h; findings=$B/findings/$h; mkdir -p "$corpus" "$findings"
  seeds "$h" | while read -r f; do cp -n "$f" "$corpus/seed-$(basename "$(dirname "$f")")-$(basename "$f")" 2>/dev/null; done
  log=$B/logs/$h.log; mkdir -p "$(dirname "$log")"
  # detect_leaks=0: Foundation leaks 4 KiB reading an empty file (readBytesFromFile), reported at exit
  ASAN_OPTIONS=detect_leaks=0:${ASAN_OPTIONS:-} nice -n 10 "$bin" "$corpus" "${LIMIT[@]}" -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=60 -max_len=262144 \
    -artifact_prefix="$findings/" -print_final_stats=1 -detect_leaks=0 > "$log" 2>&1
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  speed=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  found=$(ls "$findings" | grep -vc "^slow-unit-")   # slow units are kept but are not failures
  printf "%-12s exit %-3s %10s runs %7s exec/s  %-10s findings %s\n" "$h" "$rc" "${runs:-?}" "${speed:-?}" "${cov:-}" "$found"
  [ "$rc" = 0 ] && [ "$found" = 0 ] || status=1
done
exit $status
