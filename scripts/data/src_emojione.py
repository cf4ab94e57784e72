"""Source `emojione`: the EmojiOne 2 artwork shipped in Debian's ruby-gemojione (SVG per emoji,
named by its code points), a second drawing style of the same emoji concepts as `emoji`.

Each SVG file name is a code-point sequence; it is named, grouped and questioned exactly like a
Noto emoji through Unicode's emoji-test.txt (unicode-data): only fully-qualified emoji, no
skin-tone variants, no Component group. Drawn with rsvg-convert (librsvg2-bin) at 256 px.
The split is by sha1("emojione/<code points>"), independent of the `emoji` source's, so an emoji
can be in train in one style and in test in the other (its concept then counts as seen).
"""
import os

import common
import src_emoji

NAME = "emojione"
PACKAGES = ["ruby-gemojione", "unicode-data", "librsvg2-bin"]
ROOT = "/usr/share/rubygems-integration/all/gems/gemojione-3.3.0/assets/svg"


def collect(opts):
    if not os.path.isdir(ROOT):
        return [], [f"{ROOT} not found (install ruby-gemojione)"]
    if not os.path.exists(src_emoji.TEST_FILE):
        return [], [f"{src_emoji.TEST_FILE} not found (install unicode-data)"]
    if not common.have_rsvg():
        return [], ["rsvg-convert not found (install librsvg2-bin)"]
    names = {}
    for cps, name, group, sub in src_emoji.parse_emoji_test(src_emoji.TEST_FILE):
        names["-".join(f"{c:04x}" for c in cps if c != 0xFE0F)] = (name, group, sub)
    items, unnamed, toned = [], 0, 0
    for fn in sorted(os.listdir(ROOT)):
        if not fn.endswith(".svg"):
            continue
        key = "-".join(x for x in fn[:-4].lower().split("-") if x != "fe0f")
        if key not in names:
            unnamed += 1
            continue
        name, group, sub = names[key]
        if group == "Component":
            continue
        if "skin tone" in name:
            toned += 1
            continue
        items.append({"id": key, "path": os.path.join(ROOT, fn), "name": name, "group": group, "subgroup": sub})
    return items, [f"{toned} skin-tone variants left out",
                   f"{unnamed} files whose code points are no fully-qualified emoji-test.txt entry skipped"]


concept_name = src_emoji.concept_name


def render(item, rng, opts):
    im = common.rasterize_svg(item["path"], 256)
    cut = common.trim_alpha(im) if im is not None else None
    if cut is None:
        raise ValueError(f"{item['path']}: rsvg-convert gave no visible pixels")
    item = dict(item, png=None)
    return src_emoji.render_cutout(item, cut, rng, opts, opts.emoji_renderings)
