"""Source `pysiogame`: the art4apps cartoon drawings shipped with pysiogame
(/usr/share/games/pysiogame/res/images/art4apps/<category>/<word>.jpg, 200x200 on white).

The file name is the word, the folder its category. Verbs (actions) and sports are captioned
as illustrations of the word, nouns as drawings of the thing.
"""
import os

from PIL import Image

import common

NAME = "pysiogame"
PACKAGES = ["pysiogame"]
ROOT = "/usr/share/games/pysiogame/res/images/art4apps"

CATEGORY_NAMES = {"clothes_n_accessories": "clothes and accessories", "fruit_n_veg": "fruit and vegetables"}
VERB_CATEGORIES = {"actions", "sport"}
# Words whose folder-free reading would be wrong or that take no article.
MASS = {"bacon", "beef", "bread", "cheese", "chocolate", "coffee", "corn", "flour", "fudge", "gum",
        "ham", "ice", "jam", "jelly", "juice", "lemonade", "lunch", "meat", "milk", "rice", "sauce",
        "soup", "spaghetti", "sugar", "tea", "yoghurt", "candy", "dessert", "spice", "stew",
        "broccoli", "cauliflower", "celery", "garlic", "lettuce", "spinach", "asparagus", "cacao",
        "hair", "smoke", "lava", "land", "jewellery", "police", "magic", "ballet", "office",
        "fries", "mashed potatoes"}
PLURAL = {"artichokes", "bananas", "beans", "blackberries", "blueberries", "cherries", "cucumbers",
          "grapes", "olives", "peas", "peppers", "plums", "potatoes", "brothers", "glasses", "gloves",
          "overalls", "pants", "pyjamas", "sandals", "shoes", "shorts", "slippers", "sunglasses",
          "trousers", "feet", "teeth"}


def collect(opts):
    if not os.path.isdir(ROOT):
        return [], [f"{ROOT} not found (install pysiogame)"]
    items = []
    for cat in sorted(os.listdir(ROOT)):
        d = os.path.join(ROOT, cat)
        if not os.path.isdir(d):
            continue
        for fn in sorted(os.listdir(d)):
            stem, ext = os.path.splitext(fn)
            if ext.lower() not in (".jpg", ".jpeg", ".png"):
                continue
            items.append({"id": f"{cat}/{stem}", "path": os.path.join(d, fn), "category": cat,
                          "word": stem.replace("_", " ")})
    return items, []


def concept_name(item):
    return item["word"]


NO_FLIP_WORDS = {"left", "right", "write", "read", "clock", "watch", "map", "calendar", "book", "newspaper",
                 "sign", "letter", "computer", "keyboard", "television"}


def flip_ok(item):
    return not any(w in NO_FLIP_WORDS for w in item["word"].split())


def render(item, rng, opts):
    import concepts
    im = Image.open(item["path"]).convert("RGB")
    cut = common.trim_alpha(common.white_to_alpha(im))
    if cut is None:
        raise ValueError(f"{item['path']}: blank drawing")
    word, cat = item["word"], item["category"]
    cat_name = CATEGORY_NAMES.get(cat, cat)
    flip = flip_ok(item)
    out = []
    for _ in range(common.renderings_for(item["split"], opts.drawing_renderings, opts)):
        # the drawings sit on white: cut out (flood fill from the border) and composite, or keep
        # them on white (their own style) a third of the time
        if rng.random() < 0.35:
            bg = common.solid_background((255, 255, 255))
        else:
            bg, _ = common.random_background(rng, opts.background_photos)
        obj = common.transform_cutout(cut, rng, flip)
        img = common.composite(obj, bg, rng, scale=(0.6, 0.95))
        if cat in VERB_CATEGORIES:
            caps = [f"A drawing illustrating the word \"{word}\".", f"A cartoon that shows \"{word}\"."]
            q = ("Which word does this drawing illustrate?", word, "what")
        else:
            last = word.split()[-1]
            plural = word in PLURAL or (last.endswith("s") and not last.endswith(("ss", "us", "is")))
            phrase = word if (word in MASS or plural) else concepts.display_phrase(item["display"])
            caps = [f"A drawing of {phrase}.", f"A cartoon of {phrase}.", f"{phrase[0].upper() + phrase[1:]}."]
            q = (rng.choice(["What is this?", "What is shown in the picture?"]), item["display"], "what")
        cap = caps[0] if opts.captions == "canonical" else rng.choice(caps)
        samples = [common.caption(cap), common.qa(*q),
                   common.qa(rng.choice(["Which category does this belong to?", "Which category is this?"]),
                             cat_name, "category")]
        out.append((img, samples))
    return out
