"""Source `emoji`: Noto Color Emoji bitmaps (fonts-noto-color-emoji) named by Unicode's
emoji-test.txt (unicode-data): CLDR short name, group and subgroup.

The font's PNG bitmaps are read straight from its CBLC/CBDT tables (color_emoji.py); code-point
sequences are mapped to glyphs through cmap and the GSUB ligatures, so ZWJ sequences, flags and
keycaps resolve too. Only fully-qualified emoji are used; skin-tone variants and the Component
group are left out (they repeat their base emoji). Each emoji is drawn at a random size and
position on a plain or gradient background.
"""
import io
import os
import re

from PIL import Image

import color_emoji
import common

NAME = "emoji"
PACKAGES = ["fonts-noto-color-emoji", "unicode-data"]
FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
TEST_FILE = "/usr/share/unicode/emoji/emoji-test.txt"

# Yes/no predicates over (group, subgroup); None = the question is not asked for that emoji.
PREDICATES = {
    "an animal": lambda g, s: True if s.startswith("animal-") else
    (None if s in ("cat-face", "monkey-face") else False),
    "food": lambda g, s: g == "Food & Drink" and s not in ("drink", "dishware"),
    "a drink": lambda g, s: s == "drink",
    "a flag": lambda g, s: g == "Flags",
    "a plant": lambda g, s: s.startswith("plant-"),
    "a vehicle": lambda g, s: s in ("transport-ground", "transport-water", "transport-air"),
    "a face": lambda g, s: True if s.startswith("face-") else (None if s in ("cat-face", "monkey-face") else False),
}
QUESTION = {"an animal": "Is this an animal?", "food": "Is this food?", "a drink": "Is this a drink?",
            "a flag": "Is this a flag?", "a plant": "Is this a plant?", "a vehicle": "Is this a vehicle?",
            "a face": "Is this a face?"}


def parse_emoji_test(path):
    """[(codepoints, name, group, subgroup)] for the fully-qualified lines of emoji-test.txt."""
    out, group, sub = [], None, None
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.startswith("# group:"):
                group = line.split(":", 1)[1].strip()
            elif line.startswith("# subgroup:"):
                sub = line.split(":", 1)[1].strip()
            elif line.strip() and not line.startswith("#"):
                m = re.match(r"([0-9A-Fa-f ]+);\s*([a-z-]+)\s*#\s*\S+\s+E\d+\.\d+\s+(.+)$", line.strip())
                if not m:
                    raise ValueError(f"{path}:{n}: unexpected line format: {line.strip()[:60]!r}")
                if m.group(2) != "fully-qualified":
                    continue
                cps = [int(x, 16) for x in m.group(1).split()]
                out.append((cps, m.group(3).strip(), group, sub))
    return out


def collect(opts):
    for p, pkg in ((FONT, "fonts-noto-color-emoji"), (TEST_FILE, "unicode-data")):
        if not os.path.exists(p):
            return [], [f"{p} not found (install {pkg})"]
    try:
        font = color_emoji.ColorEmojiFont(FONT)
    except color_emoji.FontError as e:
        return [], [str(e)]
    items, notes, missing, toned = [], [], 0, 0
    for cps, name, group, sub in parse_emoji_test(TEST_FILE):
        if group == "Component":
            continue
        if "skin tone" in name:
            toned += 1
            continue
        gid = font.glyph_for_sequence(cps)
        if gid is None:
            missing += 1
            continue
        items.append({"id": "-".join(f"{c:04x}" for c in cps if c != 0xFE0F), "name": name,
                      "group": group, "subgroup": sub, "png": font.png(gid)})
    notes.append(f"{toned} skin-tone variants left out")
    if missing:
        notes.append(f"{missing} emoji without a glyph in {os.path.basename(FONT)} skipped")
    return items, notes


def _phrase(name):
    """Noun phrase for captions: 'flag: France' -> 'the flag of France', 'dog' -> 'a dog'."""
    m = re.match(r"flag: (.+)$", name)
    if m:
        return f"the flag of {m.group(1)}"
    m = re.match(r"keycap: (.+)$", name)
    if m:
        return f"the keycap {m.group(1)}"
    if ":" in name or name[:1].isupper() or re.match(r"(the|a|an)\s", name):
        return name
    last = name.split()[-1]
    if last.endswith("s") and not last.endswith(("ss", "us", "is")):
        return name  # plural-looking: 'chopsticks', 'people hugging'
    return common.with_article(name)


def render(item, rng, opts):
    cut = common.trim_alpha(common.load_rgba(item["png"]))
    if cut is None:
        raise ValueError(f"emoji {item['name']}: empty bitmap")
    name, group, sub = item["name"], item["group"], item["subgroup"]
    phrase = _phrase(name)
    out = []
    for _ in range(opts.emoji_renderings):
        if rng.random() < 0.6:
            bg = common.solid_background(common.random_colour(rng))
        else:
            bg = common.gradient_background(rng)
        img = common.composite(cut, bg, rng, scale=(0.35, 0.85))
        forms = [f"An emoji of {phrase}.", f"An emoji showing {phrase}."]
        if ":" in name:  # 'flag: France', 'keycap: 1', 'family: man, woman, boy'
            forms.append(f"{name[0].upper() + name[1:]}." if phrase == name else f"{phrase[0].upper() + phrase[1:]}.")
        else:
            forms += [f"{name[0].upper() + name[1:]}.", f"The {name} emoji."]
        samples = [common.caption(rng.choice(forms))]
        r = rng.random()
        if r < 0.35:
            samples.append(common.qa(rng.choice(["What is this emoji?", "Which emoji is this?",
                                                 "What does this emoji show?"]), name))
        elif r < 0.55:
            samples.append(common.qa("Which category is this emoji?", group))
        elif r < 0.65:
            samples.append(common.qa("Which subgroup is this emoji in?", sub.replace("-", " ")))
        else:
            true_preds = [p for p, f in PREDICATES.items() if f(group, sub) is True]
            false_preds = [p for p, f in PREDICATES.items() if f(group, sub) is False]
            # Balance yes and no: emoji with no true predicate get a 'no' question only
            # part of the time (they are the majority), otherwise the name question.
            if true_preds and (rng.random() < 0.5 or not false_preds):
                samples.append(common.qa(QUESTION[rng.choice(true_preds)], "yes"))
            elif false_preds and (true_preds or rng.random() < 0.12):
                samples.append(common.qa(QUESTION[rng.choice(false_preds)], "no"))
            else:
                samples.append(common.qa("What is this emoji?", name))
        out.append((img, samples))
    return out
