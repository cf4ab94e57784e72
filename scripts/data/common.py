"""Shared pieces of the dataset builder: the split rule, seeded randomness, image
backgrounds and compositing, English helpers and sample constructors.

Every source module (src_*.py) uses these so that all sources render and split the same way.
"""
import hashlib
import io
import random
import re
import subprocess

import numpy as np
from PIL import Image, ImageFilter

SIZE = 224  # DINOv2 ViT-S/14 input side

# ---------------------------------------------------------------- split and randomness


def split_of(source, item_id):
    """Stable 80/10/10 split of one source item: sha1("source/item-id"), independent of --seed,
    so every rendering of an item (and every rebuild) lands on the same side."""
    h = int.from_bytes(hashlib.sha1(f"{source}/{item_id}".encode("utf-8")).digest()[:8], "big")
    r = h % 100
    return "train" if r < 80 else ("val" if r < 90 else "test")


def rng_for(seed, *parts):
    """A random.Random seeded from --seed and the given parts (order-independent of the build)."""
    key = "\x1f".join([str(seed)] + [str(p) for p in parts]).encode("utf-8")
    return random.Random(int.from_bytes(hashlib.sha1(key).digest()[:8], "big"))


def stable_order(seed, keys):
    """Deterministic pseudo-random order of `keys` (strings) for capping a source."""
    return sorted(keys, key=lambda k: hashlib.sha1(f"{seed}/{k}".encode("utf-8")).digest())


def safe_id(text):
    """File-name-safe form of an item id."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_.")
    return s[:80] or "item"


# ---------------------------------------------------------------- colours

# Named colours used for backgrounds and for the synthetic shapes; names are what captions say.
NAMED_COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 160, 50),
    "blue": (30, 70, 220),
    "yellow": (245, 215, 20),
    "purple": (130, 40, 170),
    "orange": (250, 130, 10),
    "pink": (250, 130, 190),
    "brown": (120, 70, 30),
    "black": (15, 15, 15),
    "white": (250, 250, 250),
    "gray": (128, 128, 128),
}


def random_colour(rng, lo=0, hi=255):
    return tuple(rng.randint(lo, hi) for _ in range(3))


# ---------------------------------------------------------------- backgrounds


def solid_background(colour):
    return Image.new("RGB", (SIZE, SIZE), colour)


def gradient_background(rng):
    """Linear gradient between two random colours at a random angle."""
    a = np.array(random_colour(rng), dtype=np.float32)
    b = np.array(random_colour(rng), dtype=np.float32)
    theta = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / (SIZE - 1)
    t = (np.cos(theta) * (xx - 0.5) + np.sin(theta) * (yy - 0.5)) / np.sqrt(0.5) + 0.5
    t = np.clip(t, 0, 1)[..., None]
    arr = a * (1 - t) + b * t
    return Image.fromarray(arr.astype(np.uint8), "RGB")


def noise_background(rng, base=None, spread=None):
    """Blurred coloured noise: low-frequency blobs around a base colour (random unless given)
    with the given standard deviation per channel (random 20-80 unless given)."""
    nprng = np.random.default_rng(rng.getrandbits(32))
    cells = rng.choice([4, 6, 8, 12])
    base = np.array(base if base is not None else random_colour(rng, 40, 230), dtype=np.float32)
    spread = spread if spread is not None else rng.uniform(20, 80)
    small = np.clip(base + nprng.normal(0, spread, (cells, cells, 3)), 0, 255).astype(np.uint8)
    img = Image.fromarray(small, "RGB").resize((SIZE, SIZE), Image.BICUBIC)
    fine = nprng.normal(0, rng.uniform(0, 10), (SIZE, SIZE, 3))
    arr = np.clip(np.asarray(img, dtype=np.float32) + fine, 0, 255).astype(np.uint8)
    return Image.fromarray(arr, "RGB").filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.0)))


def photo_background(rng, photo):
    """A heavily blurred random crop of a photo (RGB PIL image): texture, not content."""
    w, h = photo.size
    side = int(min(w, h) * rng.uniform(0.4, 1.0))
    x = rng.randint(0, w - side)
    y = rng.randint(0, h - side)
    crop = photo.crop((x, y, x + side, y + side)).resize((SIZE, SIZE), Image.BILINEAR)
    return crop.filter(ImageFilter.GaussianBlur(rng.uniform(6, 14)))


def random_background(rng, photos=None, kinds=("solid", "gradient", "noise", "photo")):
    """One background of a randomly chosen kind; 'photo' needs a non-empty `photos` list."""
    kinds = [k for k in kinds if k != "photo" or photos]
    kind = rng.choice(kinds)
    if kind == "solid":
        return solid_background(random_colour(rng)), kind
    if kind == "gradient":
        return gradient_background(rng), kind
    if kind == "noise":
        return noise_background(rng), kind
    return photo_background(rng, rng.choice(photos)), kind


# ---------------------------------------------------------------- images


def load_rgba(data_or_path):
    """Opens bytes or a path as RGBA (palette/LA/L images converted, transparency kept)."""
    src = io.BytesIO(data_or_path) if isinstance(data_or_path, (bytes, bytearray)) else data_or_path
    im = Image.open(src)
    im.load()
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    return im.convert("RGBA")


def trim_alpha(im, threshold=8):
    """Crops an RGBA image to the bounding box of its visible pixels."""
    a = np.asarray(im.getchannel("A"))
    ys, xs = np.nonzero(a > threshold)
    if len(xs) == 0:
        return None
    return im.crop((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))


def composite(cutout, background, rng, scale=(0.55, 0.9)):
    """Pastes an RGBA cutout onto an RGB background at a random size and position.

    The cutout's longer side becomes `scale` x 224 px; the cutout always stays fully inside."""
    w, h = cutout.size
    target = rng.uniform(*scale) * SIZE
    f = target / max(w, h)
    nw, nh = max(1, round(w * f)), max(1, round(h * f))
    obj = cutout.resize((nw, nh), Image.LANCZOS)
    x = rng.randint(0, SIZE - nw)
    y = rng.randint(0, SIZE - nh)
    out = background.convert("RGBA")
    out.alpha_composite(obj, (x, y))
    return out.convert("RGB")


def fit_photo(im, rng, jitter=True):
    """A full (rectangular, opaque) photo as 224x224 RGB: a random square-ish crop that keeps
    most of the picture (>= 80% of the short side), or the whole picture letterboxed."""
    im = im.convert("RGB")
    w, h = im.size
    if jitter and rng.random() < 0.25:
        # letterbox on a blurred copy of itself, keeps everything
        bg = im.resize((SIZE, SIZE), Image.BILINEAR).filter(ImageFilter.GaussianBlur(12))
        f = SIZE / max(w, h)
        nw, nh = max(1, round(w * f)), max(1, round(h * f))
        bg.paste(im.resize((nw, nh), Image.LANCZOS), ((SIZE - nw) // 2, (SIZE - nh) // 2))
        return bg
    side = min(w, h) * (rng.uniform(0.8, 1.0) if jitter else 1.0)
    side = int(side)
    x = rng.randint(0, w - side) if jitter else (w - side) // 2
    y = rng.randint(0, h - side) if jitter else (h - side) // 2
    return im.crop((x, y, x + side, y + side)).resize((SIZE, SIZE), Image.LANCZOS)


def rasterize_svg(path, width):
    """Renders an SVG file with rsvg-convert (librsvg2-bin) to an RGBA image, or None when
    rsvg-convert is missing or fails on the file."""
    try:
        r = subprocess.run(["rsvg-convert", "-w", str(width), "-a", "-f", "png", path],
                           capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if r.returncode != 0 or not r.stdout:
        return None
    try:
        return load_rgba(r.stdout)
    except Exception:
        return None


def have_rsvg():
    try:
        return subprocess.run(["rsvg-convert", "--version"], capture_output=True).returncode == 0
    except OSError:
        return False


# ---------------------------------------------------------------- English

NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]


def article(phrase):
    """'a' or 'an' for the phrase (by its first letter, with a few exceptions)."""
    w = phrase.strip().lower()
    if re.match(r"(hour|honest|heir)", w):
        return "an"
    if re.match(r"(uni|use|usu|eu|one|ewe|u[bcfhjkqrstn][aeiou])", w):
        return "a"
    return "an" if w[:1] in "aeiou" else "a"


def with_article(phrase):
    return f"{article(phrase)} {phrase}"


def sentence(text):
    """Capitalises the first letter and ends with a full stop (unless it already ends in .!?)."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?\u201d\"" else text + "."


def caption(text):
    return {"caption": text, "qtype": "caption"}


def qa(question, answer, qtype):
    return {"question": question, "answer": answer, "qtype": qtype}


# ---------------------------------------------------------------- renderings (augmentation)

BACKGROUND_WORDS = {"solid": "plain", "gradient": "gradient", "noise": "textured", "photo": "blurred"}


def renderings_for(split, n_train, opts):
    """Number of renderings of one item: n_train for train items, --eval-renderings for val/test."""
    return n_train if split == "train" else opts.eval_renderings


def transform_cutout(cutout, rng, flip_ok, max_rotation=15.0):
    """Random small rotation (within +-max_rotation degrees) and, when `flip_ok`, a horizontal flip
    half of the time, of an RGBA cut-out; returns the trimmed result."""
    im = cutout
    if flip_ok and rng.random() < 0.5:
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    angle = rng.uniform(-max_rotation, max_rotation)
    if abs(angle) > 0.5:
        rot = im.rotate(angle, resample=Image.BICUBIC, expand=True)
        t = trim_alpha(rot)
        im = t if t is not None else im
    return im


def white_to_alpha(im, tolerance=28):
    """An RGB drawing on white as an RGBA cut-out: the near-white region connected to the
    border becomes transparent (flood fill from the border), the rest stays opaque."""
    from PIL import ImageDraw
    rgb = im.convert("RGB")
    w, h = rgb.size
    marker = rgb.copy()
    sentinel = (255, 0, 254)
    seeds = [(x, y) for x in range(0, w, max(1, w // 16)) for y in (0, h - 1)] + \
            [(x, y) for y in range(0, h, max(1, h // 16)) for x in (0, w - 1)]
    arr0 = np.asarray(rgb)
    for x, y in seeds:
        if arr0[y, x].min() >= 255 - tolerance and marker.getpixel((x, y)) != sentinel:
            ImageDraw.floodfill(marker, (x, y), sentinel, thresh=tolerance)
    m = np.asarray(marker)
    bg = (m[..., 0] == 255) & (m[..., 1] == 0) & (m[..., 2] == 254)
    alpha = np.where(bg, 0, 255).astype(np.uint8)
    # shrink the mask by 1 px first: JPEG ringing leaves a light fringe just outside the outline
    alpha_img = Image.fromarray(alpha, "L").filter(ImageFilter.MinFilter(3)).filter(ImageFilter.GaussianBlur(0.7))
    out = rgb.convert("RGBA")
    out.putalpha(alpha_img)
    return out


def _rotated_crop_size(w, h, angle_deg):
    """Largest axis-aligned rectangle inside a w x h rectangle rotated by angle_deg."""
    a = abs(np.deg2rad(angle_deg))
    if w <= 0 or h <= 0:
        return 0, 0
    long_, short = max(w, h), min(w, h)
    sin_a, cos_a = abs(np.sin(a)), abs(np.cos(a))
    if short <= 2.0 * sin_a * cos_a * long_ or abs(sin_a - cos_a) < 1e-10:
        x = 0.5 * short
        wr, hr = (x / sin_a, x / cos_a) if w >= h else (x / cos_a, x / sin_a)
    else:
        cos_2a = cos_a * cos_a - sin_a * sin_a
        wr, hr = (w * cos_a - h * sin_a) / cos_2a, (h * cos_a - w * sin_a) / cos_2a
    return int(wr), int(hr)


def transform_photo(im, rng, flip_ok, max_rotation=15.0):
    """A rectangular photo, randomly flipped (when `flip_ok`) and rotated by a small angle, cropped
    to the largest upright rectangle inside so no corner is empty."""
    im = im.convert("RGB")
    if flip_ok and rng.random() < 0.5:
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    angle = rng.uniform(-max_rotation, max_rotation)
    if abs(angle) > 0.5:
        w, h = im.size
        rot = im.rotate(angle, resample=Image.BICUBIC, expand=True)
        cw, ch = _rotated_crop_size(w, h, angle)
        rw, rh = rot.size
        x0, y0 = (rw - cw) // 2, (rh - ch) // 2
        if cw > 16 and ch > 16:
            im = rot.crop((x0, y0, x0 + cw, y0 + ch))
    return im
