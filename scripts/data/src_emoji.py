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


NO_FLIP_GROUPS = {"Flags", "Symbols"}
NO_FLIP_SUBGROUPS = {"time", "book-paper", "mail", "money", "keycap", "alphanum", "computer", "phone",
                     "sound", "light & video", "place-map", "writing", "office"}
NO_FLIP_WORDS = re.compile(r"\b(left|right|arrow|keycap|letter|clock|o.clock|button|sign|symbol|flag|"
                           r"map|globe|newspaper|calendar|ID|ATM|SOS|hand|point|pointing|backhand|writing)\b",
                           re.I)


def concept_name(item):
    """The name the concept vocabulary normalises (the CLDR short name)."""
    return item["name"]


def flip_ok(item):
    """A mirror image is still the same emoji: not for flags, symbols, text, clocks, hands
    (the pointing direction is the meaning) or anything left/right."""
    return not (item["group"] in NO_FLIP_GROUPS or item["subgroup"] in NO_FLIP_SUBGROUPS
                or NO_FLIP_WORDS.search(item["name"]))


def _phrase(item):
    """Noun phrase for captions: 'the flag of France', 'a hedgehog', 'people hugging'."""
    import concepts
    display = item["display"]
    name = item["name"]
    if name.startswith("keycap:"):
        return f"the keycap {display}"
    if ":" in name and not name.startswith("flag:"):
        return display
    last = display.split()[-1].lower()
    plural = last.endswith("s") and not last.endswith(("ss", "us", "is"))
    return concepts.display_phrase(display, plural_form=plural)


def questions(item, rng):
    """Every applicable question for one emoji image, as (qtype, question, answer)."""
    name, group, sub = item["display"], item["group"], item["subgroup"]
    qs = [("what", rng.choice(["What is this emoji?", "Which emoji is this?", "What does this emoji show?"]), name),
          ("category", "Which category is this emoji?", group),
          ("subgroup", "Which subgroup is this emoji in?", sub.replace("-", " "))]
    true_preds = [p for p, f in PREDICATES.items() if f(group, sub) is True]
    false_preds = [p for p, f in PREDICATES.items() if f(group, sub) is False]
    # one yes and one no question where both exist: balanced answers
    if true_preds:
        qs.append(("yes_no_group", QUESTION[rng.choice(true_preds)], "yes"))
    if false_preds:
        qs.append(("yes_no_group", QUESTION[rng.choice(false_preds)], "no"))
    return qs


def render(item, rng, opts):
    cut = common.trim_alpha(common.load_rgba(item["png"]))
    if cut is None:
        raise ValueError(f"emoji {item['name']}: empty bitmap")
    return render_cutout(item, cut, rng, opts, opts.emoji_renderings)


def render_cutout(item, cut, rng, opts, n_train):
    """Renderings of one emoji cut-out with its caption and questions (shared with `emojione`)."""
    name = item["name"]
    phrase = _phrase(item)
    flip = flip_ok(item)
    out = []
    for _ in range(common.renderings_for(item["split"], n_train, opts)):
        bg, _ = common.random_background(rng, opts.background_photos)
        obj = common.transform_cutout(cut, rng, flip)
        img = common.composite(obj, bg, rng, scale=(0.35, 0.85))
        if opts.captions == "canonical":
            cap = f"An emoji of {phrase}."
        else:
            forms = [f"An emoji of {phrase}.", f"An emoji showing {phrase}."]
            if ":" in name:
                forms.append(f"{phrase[0].upper() + phrase[1:]}.")
            else:
                forms += [f"{phrase[0].upper() + phrase[1:]}.", f"The {item['display']} emoji."]
            cap = rng.choice(forms)
        samples = [common.caption(cap)]
        samples += [common.qa(q, a, qtype) for qtype, q, a in questions(item, rng)]
        out.append((img, samples))
    return out
