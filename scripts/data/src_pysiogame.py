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


def _phrase(word):
    last = word.split()[-1]
    plural = last.endswith("s") and not last.endswith(("ss", "us", "is"))
    if word in MASS or word in PLURAL or plural:
        return word
    return common.with_article(word)


def render(item, rng, opts):
    im = Image.open(item["path"]).convert("RGB")
    word, cat = item["word"], item["category"]
    cat_name = CATEGORY_NAMES.get(cat, cat)
    out = []
    for _ in range(opts.drawing_renderings):
        # the drawings sit on white: shrink a little and place on a white canvas
        side = int(common.SIZE * rng.uniform(0.75, 1.0))
        small = im.resize((side, side), Image.LANCZOS)
        canvas = Image.new("RGB", (common.SIZE, common.SIZE), (255, 255, 255))
        canvas.paste(small, (rng.randint(0, common.SIZE - side), rng.randint(0, common.SIZE - side)))
        if cat in VERB_CATEGORIES:
            caps = [f"A drawing illustrating the word \"{word}\".", f"A cartoon that shows \"{word}\"."]
            q = ("Which word does this drawing illustrate?", word)
        else:
            phrase = _phrase(word)
            caps = [f"A drawing of {phrase}.", f"A cartoon of {phrase}.", f"{phrase[0].upper() + phrase[1:]}."]
            q = (rng.choice(["What is this?", "What is shown in the picture?"]), word)
        samples = [common.caption(rng.choice(caps)), common.qa(*q)]
        if rng.random() < 0.35:
            samples.append(common.qa(rng.choice(["Which category does this belong to?", "Which category is this?"]),
                                     cat_name))
        out.append((canvas, samples))
    return out
