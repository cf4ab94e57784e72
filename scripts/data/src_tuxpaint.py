"""Source `tuxpaint`: the Tux Paint stamps (Debian package tuxpaint-stamps-default).

Each stamp is a cut-out on a transparent background (PNG, or SVG rasterised with
rsvg-convert when no PNG sits beside it) with a `.txt` whose first line is its English
description ("A crowned crane."). About 300 are photographs, the rest drawings; photos are
told apart by their number of distinct colours (and by a 'cartoon' folder). Stamps are
composited onto varied backgrounds (solid, gradient, blurred noise, blurred photo crops)
at random scale and position. Masks that Tux Paint colours itself ('colorable' in the .dat:
letters, digits) are filled with a random colour. Alphabets other than the English filled
letters are left out (outlined letters, German, ASL... would swamp the source).
"""
import os
import re

import numpy as np
from PIL import Image

import common

NAME = "tuxpaint"
PACKAGES = ["tuxpaint-stamps-default"]
ROOT = "/usr/share/tuxpaint/stamps"

CATEGORY_NAMES = {"naturalforces": "natural forces"}
TEXTURED_PHOTO = 0.5  # fraction of small neighbour steps above which a stamp is a photo


def _first_line(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        line = f.readline().strip()
    # a few descriptions start with a dash or quote, or end in doubled punctuation
    line = re.sub(r"^[\s\u2013\u2014\u201c\"'-]+", "", line)
    return re.sub(r"\u2026\.$|\.\.+$", ".", line)


def _noun_phrase(text):
    """(article-less name, full phrase) when the description is a short noun phrase such as
    'A crowned crane.' or 'Some cherries.'; None for sentences and exclamations."""
    t = re.sub(r"[\u201c\u201d\"]", "", text).strip().rstrip(".").strip()
    m = re.fullmatch(r"(A|An|Some|The)\s+([A-Za-z][A-Za-z' -]*)", t)
    if not m or len(m.group(2).split()) > 4 or "!" in text:
        return None
    det, name = m.group(1), m.group(2)
    phrase = f"{det.lower()} {name}" if det != "The" else f"the {name}"
    return name, phrase


def _keep(rel):
    if rel.startswith("symbols/alphabets/"):
        return rel.startswith("symbols/alphabets/english/filled/")
    return True


def collect(opts):
    notes = []
    if not os.path.isdir(ROOT):
        return [], [f"{ROOT} not found (install tuxpaint-stamps-default)"]
    rsvg = common.have_rsvg()
    items, skipped_svg, no_txt = [], 0, 0
    for dirpath, _, files in os.walk(ROOT):
        names = set(files)
        for fn in sorted(files):
            stem, ext = os.path.splitext(fn)
            if ext not in (".png", ".svg"):
                continue
            if ext == ".svg" and stem + ".png" in names:
                continue  # the PNG is used
            rel = os.path.relpath(os.path.join(dirpath, stem), ROOT)
            if not _keep(rel):
                continue
            if stem + ".txt" not in names:
                no_txt += 1
                continue
            if ext == ".svg" and not rsvg:
                skipped_svg += 1
                continue
            text = _first_line(os.path.join(dirpath, stem + ".txt"))
            if not text:
                no_txt += 1
                continue
            dat = os.path.join(dirpath, stem + ".dat")
            flags = open(dat, encoding="utf-8", errors="replace").read() if stem + ".dat" in names else ""
            items.append({
                "id": rel,
                "path": os.path.join(dirpath, fn),
                "text": text,
                "category": rel.split("/")[0],
                "colorable": "colorable" in flags,
                "cartoon": "cartoon" in rel.split("/"),
            })
    if skipped_svg:
        notes.append(f"{skipped_svg} SVG-only stamps skipped: rsvg-convert (librsvg2-bin) not installed")
    if no_txt:
        notes.append(f"{no_txt} stamps without an English description skipped")
    return items, notes


def _load(item):
    if item["path"].endswith(".svg"):
        im = common.rasterize_svg(item["path"], 400)
        if im is None:
            raise ValueError(f"{item['path']}: rsvg-convert could not rasterise it")
    else:
        im = common.load_rgba(item["path"])
    im = common.trim_alpha(im)
    if im is None:
        raise ValueError(f"{item['path']}: no visible pixels")
    return im


def _style(item, im):
    """'photo', 'drawing' or 'picture' (unsure). Photos have fine texture: many small
    non-zero luminance steps between neighbouring opaque pixels; drawings have flat fills
    (mostly zero steps). Cartoon folders, colourable masks and SVGs are drawings."""
    if item["cartoon"] or item["colorable"] or item["path"].endswith(".svg"):
        return "drawing"
    a = np.asarray(im).astype(np.int32)
    lum = a[..., :3].sum(axis=2)
    opaque = (a[:, 1:, 3] > 250) & (a[:, :-1, 3] > 250)
    d = np.abs(lum[:, 1:] - lum[:, :-1])[opaque]
    if len(d) < 200:
        return "picture"
    textured = ((d >= 4) & (d <= 45)).mean()
    flat = (d == 0).mean()
    if textured >= TEXTURED_PHOTO:
        return "photo"
    if textured <= 0.15 and flat >= 0.5:
        return "drawing"
    return "picture"


def _tint(im, colour):
    """Colours a mask stamp: its luminance becomes shading of `colour`, alpha kept."""
    a = np.asarray(im).astype(np.float32)
    lum = (a[..., :3].mean(axis=2, keepdims=True) / 255.0)
    rgb = np.array(colour, dtype=np.float32) * (0.35 + 0.65 * (1 - lum)) if lum.mean() < 0.5 else \
        np.array(colour, dtype=np.float32) * (0.35 + 0.65 * lum)
    out = np.concatenate([np.clip(rgb, 0, 255), a[..., 3:]], axis=2).astype(np.uint8)
    return Image.fromarray(out, "RGBA")


# Stamps whose description names nothing usable (a joke, an instruction): the concept by hand.
NAME_OVERRIDES = {
    "naturalforces/explosion": "explosion", "vehicles/flight/planes/cartoon/plane": "airplane",
    "vehicles/farming/cartoon/tux_tractor": "tractor", "food/vegetables/tomato": "tomato",
    "vehicles/emergency/sedan_police": "police car", "seasonal/clover": "four leaf clover",
    "vehicles/ship/cartoon/bathyscape": "submarine", "animals/birds/cartoon/penguin_with_spider": "penguin",
    "animals/insects/cartoon/spider_fly": "spider", "town/roadsigns/give_way_sign": "give way sign",
    "town/roadsigns/yield": "yield sign", "town/roadsigns/stop": "stop sign",
    "town/roadsigns/stoplight_01_red": "traffic light", "town/roadsigns/stoplight_02_yellow": "traffic light",
    "town/roadsigns/stoplight_03_green": "traffic light", "symbols/recycle": "recycling symbol",
    "seasonal/hanukkah/menorah": "menorah", "medical/stethoscope": "stethoscope",
    "animals/insects/hoverfly": "hoverfly", "animals/fish/lionfish": "lionfish",
    "animals/fish/bluegroper": "blue groper", "sports/cartoon/football_helmet_front": "football helmet",
    "sports/cartoon/football_helmet_side": "football helmet", "military/final-roll-call": "memorial",
    "vehicles/locomotive/cartoon/boxcar": "boxcar", "vehicles/locomotive/cartoon/tanker": "tank car",
    "vehicles/locomotive/cartoon/tender": "tender", "vehicles/locomotive/cartoon/caboose": "caboose",
    "vehicles/construction/dumper": "dumper", "vehicles/construction/cartoon/bulldozer": "bulldozer",
    "plants/trees/rambutan": "tree", "plants/mushrooms/cep-2": "cep", "household/wheelie_bin": "wheelie bin",
    "household/toilet": "toilet", "seasonal/shamrock": "shamrock", "seasonal/christmas/Candy_cane_photo_1":
    "candy cane", "seasonal/christmas/Candy_cane_photo_2": "candy cane",
    "seasonal/christmas/Christmas_pudding": "christmas pudding", "seasonal/christmas/Mince_Pie": "mince pie",
    "seasonal/christmas/Roast_turkey": "roast turkey", "seasonal/christmas/German_Christmas_toy": "wooden toy",
    "animals/dinosaur/cartoon/dinosaurSings": "dinosaur", "animals/mammals/cats/cartoon/lion": "lion",
    "animals/birds/cartoon/pengwin": "penguin", "animals/birds/cartoon/tux": "penguin",
    "vehicles/boxcar": "boxcar", "household/electronics/compact_disc": "compact disc",
    "military/vehicles/bradley": "armoured vehicle", "military/vehicles/infantry-stryker": "armoured vehicle",
    "military/vehicles/ww2_german_gun": "cannon", "military/ammunition/old_naval_shell": "artillery shell",
    "town/roadsigns/no_entry_sign": "no entry sign", "town/roadsigns/dead_end_sign": "dead end sign",
    "town/roadsigns/school_sign": "school sign", "town/roadsigns/roundabout": "roundabout sign",
    "town/roadsigns/blankroadsign": "road sign", "town/uk_post_box": "post box",
    "town/cartoon/docks": "docks", "town/houses/cartoon/cave_entrance": "cave",
    "vehicles/7spoke256": "wheel", "people/cartoon/woman_dancing": "woman dancing",
    "symbols/math/operators/op0_plus": "plus sign", "symbols/math/operators/op1_minus": "minus sign",
    "symbols/math/operators/op2_multiply": "multiplication sign", "symbols/math/operators/op3_divide": "division sign",
    "symbols/math/operators/op4_equals": "equals sign", "symbols/math/operators/op5_notequals": "not equal sign",
    "symbols/math/operators/op6_lessthan": "less-than sign", "symbols/math/operators/op7_greaterthan": "greater-than sign",
    "symbols/math/operators/op8_lessthanequal": "less-than-or-equal sign",
    "symbols/math/operators/op9_greaterthanequal": "greater-than-or-equal sign",
    "household/recyclingbox": "recycling box", "household/recyclingbox2": "recycling box",
    "medical/digitalthermometer": "thermometer", "clothes/bluejeans1": "jeans", "clothes/bellbottoms": "bell bottoms",
    "food/fruit/orange_seville": "seville orange", "town/houses/cartoon/tower_flag_red": "tower",
    "town/houses/cartoon/tower_round_flag": "tower", "space/moon/moon_crescent": "moon",
    "space/spacewalk": "astronaut", "seasonal/easter/bunny-egg": "rabbit", "seasonal/easter/chick-hatched": "chick",
    "plants/flowers/flower9": "flower", "plants/flowers/anemone_red": "anemone", "people/toys/grannysmith": "rag doll",
    "household/electronics/mouse": "computer mouse", "vehicles/flight/cartoon/eddieCopter": "helicopter",
    "seasonal/hanukkah/dreydl-gimmel": "dreidel", "seasonal/hanukkah/dreydl-hay": "dreidel",
    "seasonal/hanukkah/dreydl-nun": "dreidel", "seasonal/hanukkah/dreydl-shin": "dreidel",
    "space/voyager2": "space probe", "animals/mammals/bears/toys/edward_bear": "teddy bear",
}
# Capitalised first words of descriptions that are names, not sentence starts.
PROPER_FIRST = {"Mercury", "Venus", "Earth", "Mars", "Jupiter", "Saturn", "Uranus", "Neptune", "Pluto",
                "Santa", "US", "Canadian", "European", "Japanese", "F-22", "Voyager-2", "Adenium",
                "Anthurium", "Appooppan", "Hibiscus", "UK", "T-intersection", "Jack-o'-lantern"}
NOT_A_NAME = re.compile(
    r"\b(you|your|is|are|was|were|means|me|my|say|eat|enter|remember|put|give|we|it|its|it's|this|that|"
    r"there|here|because|let|lets|resembles|carries|carry|pushes|stands|used|called|take|do)\b", re.I)


def concept_name(item):
    """The thing a stamp shows, from its description: the noun phrase of its first sentence
    ('A laptop computer.  Tap. Tap.' -> 'laptop computer'), a table for the jokes and
    instructions, else the file name ('food/bread' -> 'bread')."""
    name = _concept_name(item)
    first = name.split(" ")[0]
    if first[:1].isupper() and first not in PROPER_FIRST and first[1:] == first[1:].lower():
        name = name[0].lower() + name[1:]
    return name


def _concept_name(item):
    if item["id"] in NAME_OVERRIDES:
        return NAME_OVERRIDES[item["id"]]
    if item["id"].startswith("symbols/chess/"):
        return "chess " + _first_line_name(item).lower()
    return _first_line_name(item)


def _first_line_name(item):
    np_ = _noun_phrase(item["text"])
    if np_:
        return np_[0]
    first = re.split(r"[.!?(\u2014]|\s-\s", item["text"])[0].strip(" \"'\u201c\u201d")
    words = first.split()
    starts_det = bool(re.match(r"(a|an|the|some|our|another)\s", first, re.I))
    if words and len(words) <= (6 if starts_det else 4) and not NOT_A_NAME.search(first):
        return first
    stem = os.path.basename(item["id"])
    stem = re.sub(r"([-_]?(\d+|photo|outline|front|side|cartoon|[ab]))+$", "", stem)
    stem = re.sub(r"^\d+[-_]?", "", stem)
    return re.sub(r"[_-]+", " ", stem).strip() or item["id"]


FLIP_NEVER = ("symbols/", "town/roadsigns/", "people/body_parts/manga_eye")
FLIP_WORDS = re.compile(r"\b(left|right|letter|number|sign|flag|clock|map|coin|dollar|euro|yen|note)\b", re.I)


def flip_ok(item):
    return not (item["colorable"] or item["id"].startswith(FLIP_NEVER) or FLIP_WORDS.search(item["text"])
                or "money" in item["id"] or "flag" in item["id"])


def questions(item, style, rng):
    cat = CATEGORY_NAMES.get(item["category"], item["category"])
    qs = [("what", rng.choice(["What is this?", "What is shown in the picture?", "What is in this image?",
                               "Name the object in the picture."]), item["display"]),
          ("category", rng.choice(["Which category does this belong to?", "What kind of thing is this?",
                                   "Which category is this?"]), cat)]
    if style != "picture":
        qs.append(("photo_or_drawing", "Is this a photo or a drawing?", style))
    return qs


def render(item, rng, opts):
    import concepts
    im = _load(item)
    style = _style(item, im)
    phrase = concepts.caption_phrase(concept_name(item))
    desc = common.sentence(item["text"])
    flip = flip_ok(item)
    out = []
    for k in range(common.renderings_for(item["split"], opts.renderings, opts)):
        obj = im
        if item["colorable"]:
            obj = _tint(im, common.random_colour(rng, 0, 200))
        obj = common.transform_cutout(obj, rng, flip)
        bg, bg_kind = common.random_background(rng, opts.background_photos)
        img = common.composite(obj, bg, rng, scale=(0.5, 0.92))
        if opts.captions == "canonical":
            cap = f"A {style} of {phrase}."
        else:
            cap_phrase = phrase[0].upper() + phrase[1:]
            cap = rng.choice([desc, f"A {style} of {phrase}.", f"{cap_phrase}.", f"This is {phrase}.",
                              f"{cap_phrase} on a {common.BACKGROUND_WORDS[bg_kind]} background."])
        samples = [common.caption(cap)]
        samples += [common.qa(q, a, t) for t, q, a in questions(item, style, rng)]
        out.append((img, samples))
    return out
