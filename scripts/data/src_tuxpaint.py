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


def render(item, rng, opts):
    im = _load(item)
    style = _style(item, im)
    photo = style == "photo"
    renderings = opts.renderings if photo else max(1, (opts.renderings + 1) // 2)
    np_ = _noun_phrase(item["text"])
    desc = common.sentence(item["text"])
    cat = CATEGORY_NAMES.get(item["category"], item["category"])
    kind_word = style
    out = []
    for k in range(renderings):
        obj = im
        if item["colorable"]:
            obj = _tint(im, common.random_colour(rng, 0, 200))
        bg, bg_kind = common.random_background(rng, opts.background_photos)
        bg_word = {"solid": "plain", "gradient": "gradient", "noise": "textured", "photo": "blurred"}[bg_kind]
        img = common.composite(obj, bg, rng, scale=(0.5, 0.92))
        samples = []
        if np_:
            name, phrase = np_
            cap_phrase = phrase[0].upper() + phrase[1:]
            samples.append(common.caption(rng.choice([
                desc,
                f"A {kind_word} of {phrase}.",
                f"{cap_phrase}.",
                f"This is {phrase}.",
                f"{cap_phrase} on a {bg_word} background.",
            ])))
            samples.append(common.qa(rng.choice([
                "What is this?", "What is shown in the picture?", "What is in this image?",
                "Name the object in the picture.",
            ]), name))
        else:
            samples.append(common.caption(desc))
        if rng.random() < 0.35:
            samples.append(common.qa(rng.choice([
                "Which category does this belong to?", "What kind of thing is this?",
                "Which category is this?",
            ]), cat))
        if style != "picture" and rng.random() < 0.2:
            samples.append(common.qa("Is this a photo or a drawing?", style))
        out.append((img, samples))
    return out
