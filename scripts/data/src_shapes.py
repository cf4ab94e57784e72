"""Source `shapes`: synthetic scenes of 1-4 coloured shapes with exact captions and answers.

Shapes: circle, square, triangle, star, pentagon, hexagon, diamond, heart. Colours: red,
green, blue, yellow, purple, orange, pink, black, white (each drawn with a little jitter).
Shapes never overlap and always contrast with the background (plain named colour, or mild
blurred noise around a named colour). Squares are axis-aligned and diamonds are narrow rhombi, so the
two never look alike. Every statement is computed from the scene: counts, colours, which
shape has a colour, left/right and above/below (only when the centres are >= 24 px apart on
that axis), size words only for single shapes that are clearly small (radius < 32 px) or big
(radius > 64 px). Items are scene indices; the split is by sha1("shapes/<index>").
"""
import math

from PIL import Image, ImageDraw

import common

NAME = "shapes"
PACKAGES = []

SHAPES = ["circle", "square", "triangle", "star", "pentagon", "hexagon", "diamond", "heart"]
COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "pink", "black", "white"]
BACKGROUNDS = ["white", "black", "gray", "blue", "green", "yellow", "red", "purple", "orange", "pink", "brown"]
SS = 4  # supersampling factor for anti-aliased edges
MIN_CONTRAST = 140.0  # RGB distance between a shape colour and its background
SEPARATION = 24  # px between centres before left/right or above/below is asked


def collect(opts):
    return [{"id": f"{i:05d}", "index": i} for i in range(opts.scenes)], []


def _dist(a, b):
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))


def _plural(shape):
    return shape + "s"


def _polygon(cx, cy, r, n, rot):
    return [(cx + r * math.cos(rot + 2 * math.pi * k / n), cy + r * math.sin(rot + 2 * math.pi * k / n))
            for k in range(n)]


def _draw_shape(d, shape, cx, cy, r, colour, rot):
    s = SS
    cx, cy, r = cx * s, cy * s, r * s
    if shape == "circle":
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif shape == "square":
        h = r * 0.8
        d.rectangle((cx - h, cy - h, cx + h, cy + h), fill=colour)
    elif shape == "triangle":
        d.polygon(_polygon(cx, cy + r * 0.15, r, 3, -math.pi / 2 + rot), fill=colour)
    elif shape == "pentagon":
        d.polygon(_polygon(cx, cy, r, 5, -math.pi / 2 + rot), fill=colour)
    elif shape == "hexagon":
        d.polygon(_polygon(cx, cy, r, 6, rot), fill=colour)
    elif shape == "diamond":
        d.polygon([(cx, cy - r), (cx + r * 0.6, cy), (cx, cy + r), (cx - r * 0.6, cy)], fill=colour)
    elif shape == "star":
        pts = []
        for k in range(10):
            rad = r if k % 2 == 0 else r * 0.45
            a = -math.pi / 2 + rot + math.pi * k / 5
            pts.append((cx + rad * math.cos(a), cy + rad * math.sin(a)))
        d.polygon(pts, fill=colour)
    elif shape == "heart":
        # the classic parametric heart curve, scaled so its half-width is r
        pts = []
        for k in range(72):
            t = 2 * math.pi * k / 72
            x = 16 * math.sin(t) ** 3
            y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
            pts.append((cx + r * x / 16, cy - r * (y + 2.5) / 16))
        d.polygon(pts, fill=colour)
    else:
        raise ValueError(f"unknown shape {shape}")


def _jitter(rng, rgb, amount=14):
    return tuple(max(0, min(255, c + rng.randint(-amount, amount))) for c in rgb)


def _background(rng):
    """(RGB image, name or None, mean colour)."""
    if rng.random() < 0.65:
        name = rng.choice(BACKGROUNDS)
        base = common.NAMED_COLOURS[name]
        col = _jitter(rng, base, 10)
        return common.solid_background(col), name, col
    # textured: mild noise around a named colour, so every part contrasts with the shapes
    img = common.noise_background(rng, base=common.NAMED_COLOURS[rng.choice(BACKGROUNDS)],
                                  spread=rng.uniform(8, 22))
    mean = tuple(int(v) for v in img.resize((1, 1), Image.BOX).getpixel((0, 0)))
    return img, None, mean


def _place(rng, n):
    """n non-overlapping (cx, cy, r) in the 224 px canvas, or None after too many tries."""
    rmin, rmax = {1: (20, 80), 2: (18, 52), 3: (16, 42), 4: (16, 38)}[n]
    for _ in range(200):
        placed = []
        for _ in range(n):
            for _ in range(100):
                r = rng.uniform(rmin, rmax)
                cx = rng.uniform(r + 4, common.SIZE - r - 4)
                cy = rng.uniform(r + 4, common.SIZE - r - 4)
                if all(_dist((cx, cy), (x, y)) > r + rr + 8 for x, y, rr in placed):
                    placed.append((cx, cy, r))
                    break
            else:
                break
        if len(placed) == n:
            return placed
    return None


def _list_phrase(groups):
    parts = []
    for (colour, shape), count in groups:
        if count == 1:
            parts.append(f"{common.article(colour)} {colour} {shape}")
        else:
            parts.append(f"{common.NUMBER_WORDS[count]} {colour} {_plural(shape)}")
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def make_scene(rng):
    """Draws one scene; returns (image, objects, background name or None)."""
    n = rng.choices([1, 2, 3, 4], weights=[3, 3, 2, 2])[0]
    bg, bg_name, bg_mean = _background(rng)
    places = _place(rng, n)
    while places is None:
        n -= 1
        places = _place(rng, n)
    allowed = [c for c in COLOURS if _dist(common.NAMED_COLOURS[c], bg_mean) >= MIN_CONTRAST
               and c != bg_name]
    # few distinct (colour, shape) kinds so counts > 1 occur often
    objs = []
    for cx, cy, r in places:
        if objs and rng.random() < 0.35:
            colour, shape = rng.choice([(o["colour"], o["shape"]) for o in objs])
        else:
            colour, shape = rng.choice(allowed), rng.choice(SHAPES)
        rgb = _jitter(rng, common.NAMED_COLOURS[colour])
        for _ in range(20):  # the drawn (jittered) colour must contrast too
            if _dist(rgb, bg_mean) >= MIN_CONTRAST:
                break
            rgb = _jitter(rng, common.NAMED_COLOURS[colour])
        else:
            rgb = common.NAMED_COLOURS[colour]
        objs.append({"shape": shape, "colour": colour, "x": cx, "y": cy, "r": r, "rgb": rgb})
    big = bg.resize((common.SIZE * SS, common.SIZE * SS), Image.NEAREST)
    d = ImageDraw.Draw(big)
    for o in objs:
        rot = rng.uniform(-0.2, 0.2) if o["shape"] in ("triangle", "star", "pentagon") else \
            (rng.uniform(0, math.pi / 3) if o["shape"] == "hexagon" else 0.0)
        _draw_shape(d, o["shape"], o["x"], o["y"], o["r"], o["rgb"], rot)
    img = big.resize((common.SIZE, common.SIZE), Image.LANCZOS)
    _check_colours(img, objs, bg_name)
    return img, objs, bg_name


def nearest_colour(rgb, names=None):
    names = names or common.NAMED_COLOURS
    return min(names, key=lambda n: _dist(common.NAMED_COLOURS[n], rgb))


def _check_colours(img, objs, bg_name):
    """Every answer about colour must be what the pixels say: the pixel at each shape's centre is
    nearest to its named colour, and so is the background's mean colour away from the shapes."""
    for o in objs:
        px = img.getpixel((int(o["x"]), int(o["y"] + (o["r"] * 0.1 if o["shape"] == "triangle" else 0))))
        if nearest_colour(px) != o["colour"]:
            raise ValueError(f"colour check: {o['colour']} {o['shape']} drawn as {px}")
        if _dist(px, common.NAMED_COLOURS[o["colour"]]) > 40:
            raise ValueError(f"colour check: {o['colour']} {o['shape']} drawn as {px}, too far from its name")
    if bg_name:
        px = img.getpixel((1, 1))
        covered = any(_dist((1, 1), (o["x"], o["y"])) < o["r"] + 2 for o in objs)
        if not covered and nearest_colour(px) != bg_name:
            raise ValueError(f"colour check: background {bg_name} drawn as {px}")


def _groups(objs):
    counts = {}
    first = {}
    for o in sorted(objs, key=lambda o: o["x"]):
        k = (o["colour"], o["shape"])
        counts[k] = counts.get(k, 0) + 1
        first.setdefault(k, len(first))
    return sorted(counts.items(), key=lambda kv: (-kv[1], first[kv[0]]))


def _refs(objs):
    """Unique way to name each object: 'circle' if its shape is unique, else 'red circle'
    if its colour+shape is unique, else None."""
    out = []
    for o in objs:
        same_shape = [p for p in objs if p["shape"] == o["shape"]]
        same_both = [p for p in same_shape if p["colour"] == o["colour"]]
        out.append(o["shape"] if len(same_shape) == 1 else
                   (f"{o['colour']} {o['shape']}" if len(same_both) == 1 else None))
    return out


def captions(objs, bg_name, rng, canonical):
    groups = _groups(objs)
    lst = _list_phrase(groups)
    n = len(objs)
    on = f"on {common.article(bg_name)} {bg_name} background" if bg_name else "on a textured background"
    if canonical:
        return common.sentence(f"{lst} {on}")
    forms = [common.sentence(lst),
             f"There {'is' if groups[0][1] == 1 else 'are'} {lst}.",
             f"A picture of {common.NUMBER_WORDS[n]} shape{'s' if n > 1 else ''}: {lst}.",
             common.sentence(f"{lst} {on}")]
    if n == 1:
        o = objs[0]
        size = "small" if o["r"] < 32 else ("big" if o["r"] > 64 else None)
        if size:
            forms.append(f"A {size} {o['colour']} {o['shape']}.")
    return rng.choice(forms)


def concept_of(objs):
    """The scene's concept: its distinct kinds of shape, sorted ('blue star, red circle')."""
    return ", ".join(sorted({f"{o['colour']} {o['shape']}" for o in objs}))


def questions(objs, bg_name, rng):
    """Every exact question that applies to this scene, as (qtype, question, answer)."""
    qs = []
    n = len(objs)
    shapes_present = sorted({o["shape"] for o in objs})
    colours_present = sorted({o["colour"] for o in objs})
    qs.append(("count_total", rng.choice(["How many shapes are there?", "How many shapes are in the picture?",
                                          "How many objects are there?"]), str(n)))
    for s in shapes_present:
        qs.append(("count_shape", f"How many {_plural(s)} are there?", str(sum(o["shape"] == s for o in objs))))
    absent = [x for x in SHAPES if x not in shapes_present]
    if absent:
        qs.append(("count_absent", f"How many {_plural(rng.choice(absent))} are there?", "0"))
    for c in colours_present:
        qs.append(("count_colour", f"How many {c} shapes are there?", str(sum(o["colour"] == c for o in objs))))
    for o in sorted(objs, key=lambda o: (o["shape"], o["colour"])):
        if sum(p["shape"] == o["shape"] for p in objs) == 1:
            qs.append(("shape_colour", rng.choice([f"What colour is the {o['shape']}?", f"What color is the {o['shape']}?"]),
                       o["colour"]))
        if sum(p["colour"] == o["colour"] for p in objs) == 1:
            qs.append(("colour_shape", f"Which shape is {o['colour']}?", o["shape"]))
    if n == 1:
        qs.append(("what_shape", rng.choice(["What shape is this?", "What is the shape?", "Which shape is shown?"]),
                   objs[0]["shape"]))
        qs.append(("shape_colour", rng.choice(["What colour is this shape?", "What color is the shape?"]),
                   objs[0]["colour"]))
    refs = _refs(objs)
    for i in range(n):
        for j in range(i + 1, n):
            if not (refs[i] and refs[j]):
                continue
            a, b = (i, j) if rng.random() < 0.5 else (j, i)
            oa, ob = objs[a], objs[b]
            if abs(oa["x"] - ob["x"]) >= SEPARATION:
                qs.append(("left_right", f"Is the {refs[a]} left or right of the {refs[b]}?",
                           "left" if oa["x"] < ob["x"] else "right"))
            a, b = (i, j) if rng.random() < 0.5 else (j, i)
            oa, ob = objs[a], objs[b]
            if abs(oa["y"] - ob["y"]) >= SEPARATION:
                qs.append(("above_below", f"Is the {refs[a]} above or below the {refs[b]}?",
                           "above" if oa["y"] < ob["y"] else "below"))
    # yes/no existence, balanced: one yes, one no
    o = rng.choice(objs)
    qs.append(("exists_yes", f"Is there {common.article(o['colour'])} {o['colour']} {o['shape']}?", "yes"))
    for _ in range(50):
        # a near miss half of the time (a present colour or a present shape), so 'no' needs both
        if rng.random() < 0.5:
            p = rng.choice(objs)
            c2, s2 = (p["colour"], rng.choice(SHAPES)) if rng.random() < 0.5 else (rng.choice(COLOURS), p["shape"])
        else:
            c2, s2 = rng.choice(COLOURS), rng.choice(SHAPES)
        if not any(p["colour"] == c2 and p["shape"] == s2 for p in objs):
            qs.append(("exists_no", f"Is there {common.article(c2)} {c2} {s2}?", "no"))
            break
    if bg_name:
        qs.append(("bg_colour", rng.choice(["What colour is the background?", "What color is the background?"]), bg_name))
    return qs


def render(item, rng, opts):
    img, objs, bg_name = make_scene(rng)
    concept = concept_of(objs)
    samples = [common.caption(captions(objs, bg_name, rng, opts.captions == "canonical"))]
    qs = questions(objs, bg_name, rng)
    if opts.scene_questions != "all":
        qs = rng.sample(qs, min(len(qs), opts.scene_questions))
    for t, q, a in qs:
        samples.append(common.qa(q, a, t))
    for smp in samples:
        smp["concept"] = concept
    return [(img, samples)]
