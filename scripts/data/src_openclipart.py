"""Source `openclipart`: Open Clip Art Library 0.18 drawings (openclipart-png for the bitmaps,
openclipart-svg for the titles and keywords in each SVG's RDF metadata; matched by path).

Titles are filtered hard, since many are not descriptions: empty titles; titles shared by 4 or
more files (icon sets: "Lemon SVG theme", "gramastar", "card", "Clipart by ..."); titles with
digits, underscores or brackets; longer than 6 words or 40 characters; containing words such as
icon/theme/gradient/pattern/logo or tagged so; and titles with a word that is not in the English
word list (/usr/share/dict/american-english, package wamerican: drops "Cavallo", "Coccinelle").
Whole folders of icon themes, gradients, patterns, star polygons, playing cards, jigsaw
pieces, AIGA/map symbols and logos are left out, and so are semaphore/signal flags and
sub-national flags. Country flags are captioned "the flag of <Country>".
Drawings are composited onto white (sometimes a light tint), at random scale and position.
"""
import collections
import html
import os
import re
import warnings

import common

NAME = "openclipart"
PACKAGES = ["openclipart-png", "openclipart-svg", "wamerican"]
ROOT = "/usr/share/openclipart"
WORDS = "/usr/share/dict/american-english"

BAD_DIRS = ("computer/icons", "special/", "shapes/stars", "recreation/games/cards", "shapes/jigsaw",
            "signs_and_symbols/map_symbols", "transportation/aiga", "logos",
            "signs_and_symbols/flags/semaphore", "signs_and_symbols/flags/historic")
BAD_WORDS = {"icon", "icons", "theme", "clipart", "collection", "gradient", "gradients", "pattern",
             "iconset", "svg", "set", "untitled", "submission", "sibmission", "various", "button",
             "buttons", "logo", "illustration", "signalflag", "semaphore"}
BAD_KEYWORDS = {"icon", "icons", "gradient", "gradients", "pattern", "iconset", "logo", "logos"}


def _read_meta(svg_path):
    with open(svg_path, "rb") as f:
        t = f.read(40000).decode("utf-8", "replace")
    m = re.search(r"<cc:Work.*?<dc:title>(.*?)</dc:title>", t, re.S)
    title = html.unescape(m.group(1)).strip() if m else ""
    kws = [html.unescape(k).strip().lower() for k in re.findall(r"<rdf:li>(.*?)</rdf:li>", t) if k.strip()]
    return title, kws


def collect(opts):
    png_root, svg_root = os.path.join(ROOT, "png"), os.path.join(ROOT, "svg")
    if not os.path.isdir(png_root):
        return [], [f"{png_root} not found (install openclipart-png)"]
    if not os.path.isdir(svg_root):
        return [], [f"{svg_root} not found (install openclipart-svg): no titles, source skipped"]
    if not os.path.exists(WORDS):
        return [], [f"{WORDS} not found (install wamerican): cannot filter non-English titles"]
    lower, proper = set(), set()
    with open(WORDS, encoding="utf-8", errors="replace") as f:
        for w in f:
            w = w.strip()
            if "'" in w:
                continue
            (proper if w[:1].isupper() else lower).add(w.lower())
    rows = []
    for dirpath, _, files in os.walk(svg_root):
        for fn in sorted(files):
            if not fn.endswith(".svg"):
                continue
            p = os.path.join(dirpath, fn)
            if os.path.islink(p):
                continue  # duplicates of files elsewhere in the tree
            rel = os.path.relpath(p, svg_root)[:-4]
            title, kws = _read_meta(p)
            rows.append((rel, title, kws))
    counts = collections.Counter(t.lower() for _, t, _ in rows)
    why = collections.Counter()
    items = []
    for rel, title, kws in sorted(rows):
        toks = re.findall(r"[a-z]+", title.lower())
        png = os.path.join(png_root, rel + ".png")
        if not title:
            why["untitled"] += 1
        elif any(rel.startswith(d) for d in BAD_DIRS):
            why["icon/gradient/pattern/card/logo folders"] += 1
        elif counts[title.lower()] >= 4:
            why["title shared by 4+ files"] += 1
        elif re.search(r"[0-9_@#()\[\]{}<>|\\/=]", title) or " - " in title or title.count("-") >= 2:
            why["digits or symbols in title"] += 1
        elif not toks or len(toks) > 6 or len(title) > 40:
            why["empty or long title"] += 1
        elif any(w in BAD_WORDS for w in toks) or any(k in BAD_KEYWORDS for k in kws):
            why["icon/gradient words"] += 1
        elif not all(w in lower or w in proper for w in toks):
            why["not English"] += 1
        elif not os.path.exists(png):
            why["no PNG"] += 1
        else:
            is_flag = "/flags/" in rel and "flag" not in title.lower()
            proper_noun = any(w in proper and w not in lower for w in toks)
            items.append({"id": rel, "png": png, "svg": os.path.join(svg_root, rel + ".svg"),
                          "title": title, "flag": is_flag, "proper": proper_noun,
                          "keywords": [k for k in kws if re.fullmatch(r"[a-z ]{3,20}", k)]})
    notes = [f"{len(rows)} SVGs with metadata, {len(items)} kept; dropped: " +
             ", ".join(f"{k} {v}" for k, v in why.most_common())]
    return items, notes


def concept_name(item):
    t = item["title"].strip()
    if item["flag"]:
        return "flag of " + " ".join(w if w.isupper() else w.capitalize() for w in t.split())
    return t if item["proper"] else t.lower()


NO_FLIP = re.compile(r"\b(left|right|letter|number|sign|flag|map|text|clock|arrow|alphabet|word|digit)\b", re.I)


def flip_ok(item):
    return not (item["flag"] or item["proper"] or item["id"].startswith(("signs_and_symbols", "education/",
                                                                       "computer/", "office/"))
                or NO_FLIP.search(item["title"]) or "/flags/" in item["id"])


MAX_PNG_PIXELS = 4_000_000  # a few shipped PNGs are 16000 px tall: re-render their SVG instead


def _load(item):
    """The drawing as a trimmed RGBA cut-out. The shipped PNG is used unless it is tiny
    (< 160 px), huge (> 4 Mpx) or blank; then the SVG is rasterised with rsvg-convert."""
    from PIL import Image
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(item["png"]) as probe:  # header only: size check
                w, h = probe.size
    except Image.DecompressionBombError:  # > 179 Mpx: Pillow refuses even to open it
        w = h = 1 << 16
    im = None
    if w * h <= MAX_PNG_PIXELS:
        im = common.trim_alpha(common.load_rgba(item["png"]))
    if im is None or max(im.size) < 160:
        big = common.rasterize_svg(item["svg"], 400)
        big = common.trim_alpha(big) if big is not None else None
        if big is not None:
            im = big
    if im is None:
        raise ValueError(f"{item['png']}: {w}x{h} px PNG is blank or too large, and its SVG renders blank or not at all")
    return im


def render(item, rng, opts):
    import concepts
    cut = _load(item)
    phrase = concepts.caption_phrase(concept_name(item), proper=item["proper"])
    flip = flip_ok(item)
    out = []
    for _ in range(common.renderings_for(item["split"], opts.drawing_renderings, opts)):
        # the clip-art style is black-outlined drawings on white: keep white for half of them
        r = rng.random()
        if r < 0.35:
            bg, bg_kind = common.solid_background((255, 255, 255)), "white"
        elif r < 0.5:
            bg, bg_kind = common.solid_background(common.random_colour(rng, 215, 255)), "tint"
        else:
            bg, bg_kind = common.random_background(rng, opts.background_photos)
        obj = common.transform_cutout(cut, rng, flip)
        img = common.composite(obj, bg, rng, scale=(0.6, 0.95))
        if opts.captions == "canonical":
            cap = f"A drawing of {phrase}."
        else:
            cap = rng.choice([f"A drawing of {phrase}.", f"Clip art of {phrase}.", f"{phrase[0].upper() + phrase[1:]}.",
                              f"A drawing of {phrase} on a white background." if bg_kind == "white"
                              else f"A drawing of {phrase}."])
        samples = [common.caption(cap),
                   common.qa(rng.choice(["What is this?", "What does this drawing show?", "What is shown in the picture?"]),
                             item["display"], "what")]
        out.append((img, samples))
    return out
