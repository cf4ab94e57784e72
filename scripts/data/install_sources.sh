#!/usr/bin/env bash
# Installs the Debian packages that scripts/data/build_dataset.py reads its images and labels from.
# Idempotent: packages already installed are left alone; a package the archive does not offer
# is reported and skipped (the builder then skips that source with a message).
# Needs root (or sudo) and apt access. Roughly 410 MB of downloads, ~730 MB installed (pysiogame pulls python3-pygame, ruby-gemojione ruby).
#
#   tuxpaint-stamps-default  photo/drawing stamps with English captions   (GPL-2+)
#   gcompris-qt-data         GCompris activity data (Qt .rcc bundles)      (GPL-3+ / various)
#   fonts-noto-color-emoji   Noto Color Emoji (CBDT bitmaps)               (OFL-1.1)
#   unicode-data             emoji-test.txt (CLDR short names, groups)     (Unicode license)
#   openclipart-png          Open Clip Art Library drawings as PNG         (public domain)
#   openclipart-svg          the same drawings as SVG, with RDF titles     (public domain)
#   pysiogame                art4apps labelled cartoon drawings            (images: public domain per debian/copyright)
#   ruby-gemojione           EmojiOne 2 emoji artwork (SVG), a second emoji style (assets: CC-BY-SA-4.0; pulls ruby)
#   wamerican                English word list, filters non-English clip-art titles (SCOWL, permissive)
#   librsvg2-bin             rsvg-convert: rasterises SVG-only stamps / tiny clip-art PNGs  (tool, LGPL-2+)
#
# Python side: python3 with numpy and Pillow (`pip install pillow numpy`).
set -uo pipefail

pkgs=(tuxpaint-stamps-default gcompris-qt-data fonts-noto-color-emoji unicode-data
      openclipart-png openclipart-svg pysiogame ruby-gemojione wamerican librsvg2-bin)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install_sources: run as root or install sudo" >&2; exit 1; }
  SUDO="sudo"
fi

missing=()
for p in "${pkgs[@]}"; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    echo "install_sources: $p already installed"
  else
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && { echo "install_sources: all sources installed"; exit 0; }

$SUDO apt-get update -qq || echo "install_sources: apt-get update failed; trying with the cached lists" >&2

available=()
for p in "${missing[@]}"; do
  cand=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')
  if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then
    echo "install_sources: SKIP $p: not offered by the configured apt sources" >&2
  else
    available+=("$p")
  fi
done
[ ${#available[@]} -eq 0 ] && { echo "install_sources: nothing installable" >&2; exit 0; }

echo "install_sources: installing ${available[*]}"
if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${available[@]}" >/dev/null; then
  # One broken package should not block the others: retry one by one.
  echo "install_sources: batch install failed; installing one at a time" >&2
  for p in "${available[@]}"; do
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$p" >/dev/null \
      || echo "install_sources: SKIP $p: apt-get install failed" >&2
  done
fi
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    && echo "install_sources: ok $p" || echo "install_sources: missing $p" >&2
done
exit 0
