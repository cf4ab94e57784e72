#!/usr/bin/env python3
"""Cross-checks color_emoji.py against FreeType: for a sample of emoji-test.txt sequences,
the PNG our CBLC/CBDT + cmap + GSUB reader picks must match what Pillow (FreeType + libraqm
shaping) draws for the same text with the same font. Prints the worst mismatch; exits 1 on
any failure. Needs Pillow built with raqm (`PIL.features.check('raqm')`).

    python3 scripts/data/check_emoji_reader.py [--all]
"""
import io
import os
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFont, features

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import color_emoji  # noqa: E402
import src_emoji  # noqa: E402


def main():
    if not features.check("raqm"):
        print("Pillow has no libraqm: cannot shape ZWJ sequences for the cross-check", file=sys.stderr)
        return 2
    font = color_emoji.ColorEmojiFont(src_emoji.FONT)
    ft = ImageFont.truetype(src_emoji.FONT, 109, layout_engine=ImageFont.Layout.RAQM)
    entries = src_emoji.parse_emoji_test(src_emoji.TEST_FILE)
    if "--all" not in sys.argv:
        entries = entries[::15]  # every 15th: all groups, ZWJ sequences, flags and keycaps
    worst, failures = 0.0, []
    for cps, name, _, _ in entries:
        gid = font.glyph_for_sequence(cps)
        if gid is None:
            failures.append(f"{name}: no glyph found by color_emoji")
            continue
        ours = Image.open(io.BytesIO(font.png(gid))).convert("RGBA")
        text = "".join(chr(c) for c in cps)
        canvas = Image.new("RGBA", (ours.width * 3, ours.height * 2), (0, 0, 0, 0))
        ImageDraw.Draw(canvas).text((0, 0), text, font=ft, embedded_color=True)
        bbox = canvas.getchannel("A").getbbox()
        if bbox is None:
            failures.append(f"{name}: FreeType drew nothing")
            continue
        theirs = canvas.crop(bbox)
        ob = ours.getchannel("A").getbbox()
        mine = ours.crop(ob)
        if theirs.size != mine.size:
            failures.append(f"{name}: size {mine.size} vs FreeType {theirs.size} (different glyph?)")
            continue
        # Same glyph <=> same alpha mask and same colours where fully opaque. (FreeType hands
        # Pillow premultiplied BGRA, so colours under partly transparent pixels differ a bit.)
        a = np.asarray(mine, dtype=np.float32)
        b = np.asarray(theirs, dtype=np.float32)
        opaque = (a[..., 3] == 255) & (b[..., 3] == 255)
        err = max(float(np.abs(a[..., 3] - b[..., 3]).mean()),
                  float(np.abs(a[..., :3] - b[..., :3])[opaque].mean()) if opaque.any() else 0.0)
        worst = max(worst, err)
        if err > 1.0:
            failures.append(f"{name}: mean abs difference {err:.2f} (alpha, or RGB where opaque)")
    print(f"checked {len(entries)} emoji; worst mean abs difference (alpha; RGB where opaque) {worst:.3f}; {len(failures)} failures")
    for f in failures[:20]:
        print("  " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
