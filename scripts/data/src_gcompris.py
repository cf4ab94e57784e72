"""Source `gcompris`: photos and labelled drawings inside GCompris' Qt resource bundles
(Debian package gcompris-qt-data, /usr/share/gcompris-qt/rcc/*.rcc, read with qt_rcc.py).

What is used, and where its label comes from:
  explore_monuments      ~50 monument photos; title and description from the boards' QML
  explore_world_animals  15 animal photos; title and description from the board QML
  explore_farm_animals   9 farm animal photos; title and description from the board QML
  erase                  33 animal photos; the file name is the animal
  categorization         ~140 photos (fish, monuments, renewable energy, tools, household
                         objects); category = folder, object name = file name (table below)
  details                21 photos of landmarks and Van Gogh paintings; title from the board's
                         instruction text ("Vincent van Gogh, The Harvest - 1888")
  solar_system           9 pictures of the Sun and planets; file name
  lang                   116 cartoon cut-outs illustrating words (content-en.json names them):
                         animals, fruit, body parts, people, colours (paint pots), numbers
Photos are cropped/letterboxed to 224x224; the lang cut-outs are composited on backgrounds.
Skipped: paintings/babyshapes (jigsaw fragments without full pictures or titles), clickgame
(unnamed fish), explore_world_music (the photo shows a region's music, not one object).
"""
import io
import json
import os
import re

from PIL import Image

import common
import qt_rcc

NAME = "gcompris"
PACKAGES = ["gcompris-qt-data"]
RCC_DIR = "/usr/share/gcompris-qt/rcc"
ACT = "/gcompris/src/activities"

CAT_DIR = f"{ACT}/categorization/resource/images"
CATEGORIZATION = {
    # folder: (category label, {file stem without digits: object name})
    "fishes": ("fish", {"fish": "fish"}),
    "renewable": ("renewable energy", {
        "dam": "hydroelectric dam", "solar": "solar panels", "geothermal": "geothermal power plant",
        "windmill": "windmill"}),
    "tools": ("tools", {
        "scissors": "scissors", "tweezer": "tweezers", "sickle": "sickle", "multimeter": "multimeter",
        "screwDriver": "screwdriver", "cuttingTool": "cutting tool", "wrench": "wrench",
        "plier": "pliers", "sideCutter": "side cutters", "hammer": "hammer", "spray": "spray bottle",
        "nailCutter": "nail clipper", "measuringTape": "measuring tape"}),
    "others": ("household objects", {
        "chair": "chair", "bulb": "light bulb", "baseball": "baseball", "volleyball": "volleyball",
        "erasers": "erasers", "blackslate": "slate", "spoons": "spoons", "igloo": "igloo",
        "pillow": "pillow", "pan": "pan", "plate": "plate", "buffetset": "cup and saucer",
        "weighingMachine": "weighing scale", "cup": "cup", "knife": "knife", "bucket": "bucket",
        "pencil": "pencil"}),
    "monuments": ("monuments", {
        "operaHouse": "the Sydney Opera House", "zimniPalace": "the Winter Palace",
        "tajMahal": "the Taj Mahal", "arcDeTriomphe": "the Arc de Triomphe", "IndiaGate": "India Gate",
        "greatWall": "the Great Wall of China", "leaningTowerOfPisa": "the Leaning Tower of Pisa",
        "leMusee": "the Louvre", "eiffelTower": "the Eiffel Tower", "cathedral": "a cathedral",
        "mountRushmore": "Mount Rushmore", "parthenon": "the Parthenon", "colosseum": "the Colosseum",
        "statueOfLiberty": "the Statue of Liberty", "burj": "the Burj Khalifa",
        "victoriaMemorial": "the Victoria Memorial", "usCapitol": "the United States Capitol",
        "bayterek": "the Bayterek Tower", "empireState": "the Empire State Building",
        "monument": "a monument", "brandenburgGate": "the Brandenburg Gate",
        "greatPyramid": "the Great Pyramid of Giza", "kutubMinar": "the Qutub Minar",
        "jucheTower": "the Juche Tower", "christTheRedeemer": "Christ the Redeemer"}),
}
PLURALS = {"scissors", "tweezers", "pliers", "side cutters", "solar panels", "erasers", "spoons",
           "camels", "meerkats", "spoonbills", "swans", "flies", "eyes", "teeth"}

LANG_NUMBERS = {w: i for i, w in enumerate(common.NUMBER_WORDS)} | {
    "eleven": 11, "twelve": 12, "sixteen": 16}
LANG_COLOURS = {"black", "blue", "brown", "gray", "green", "mauve", "orange-color", "pink", "red",
                "white", "yellow"}
LANG_BODY = {"arm", "back", "brain", "ear", "eyes", "face", "finger", "foot", "hair", "hand",
             "head", "knee", "leg", "mouth", "neck", "nose", "skin", "teeth", "thumb", "tongue"}
LANG_PEOPLE = {"boy", "brother", "child", "dad", "family", "friend", "girl", "grandmother", "man",
               "mother", "sister", "son", "woman"}


def _qml_entries(text):
    """(title, description, image stem) for each entry of an explore_* board."""
    out = []
    for block in re.split(r"\n\s*\},?\s*\n\s*\{", text):
        t = re.search(r'"title"\s*:\s*qsTr\("((?:[^"\\]|\\.)*)"\)', block)
        d = re.search(r'"text"\s*:\s*qsTr\("((?:[^"\\]|\\.)*)"\)', block)
        im = re.search(r'"image2"\s*:\s*"[^"]*/([^/"]+)\.webp"', block)
        if t and im:
            out.append((t.group(1).replace('\\"', '"'), d.group(1).replace('\\"', '"') if d else "",
                        im.group(1)))
    return out


def _first_sentence(text, max_words=30):
    m = re.match(r"(.+?[.!?])(\s|$)", text.strip())
    s = m.group(1) if m else text.strip()
    return s if 4 <= len(s.split()) <= max_words else None


def _open(name, notes):
    path = os.path.join(RCC_DIR, name + ".rcc")
    if not os.path.exists(path):
        notes.append(f"{path} missing")
        return None
    try:
        return qt_rcc.RCCFile(path)
    except qt_rcc.RCCError as e:
        notes.append(str(e))
        return None


def collect(opts):
    notes, items = [], []
    if not os.path.isdir(RCC_DIR):
        return [], [f"{RCC_DIR} not found (install gcompris-qt-data)"]

    def add(rcc, path, **kw):
        data = rcc.read(path)
        items.append({"data": data, **kw})

    # explore_* activities: photo + title + description
    for act, group in (("explore_monuments", "monument"), ("explore_world_animals", "animal"),
                       ("explore_farm_animals", "animal")):
        rcc = _open(act, notes)
        if rcc is None:
            continue
        images = {p.rsplit("/", 1)[1][:-5]: p for p in rcc.files if p.endswith(".webp")}
        for board in sorted(p for p in rcc.files if "/board/" in p and p.endswith(".qml")):
            for title, desc, stem in _qml_entries(rcc.read(board).decode("utf-8", "replace")):
                if stem not in images:
                    continue
                title = re.sub(r",\s*India$", "", title)
                if group == "animal":
                    title = title.lower()
                else:
                    title = _with_the(title)
                add(rcc, images[stem], id=f"{act}/{stem}", kind="photo", group=group, name=title,
                    description=_first_sentence(desc))
    # erase: animal photos named by file
    rcc = _open("erase", notes)
    if rcc:
        for p in sorted(x for x in rcc.files if x.endswith(".webp")):
            stem = p.rsplit("/", 1)[1][:-5]
            name = {"chamaeleon": "chameleon", "long_nosed_monkey": "proboscis monkey",
                    "flying_fox": "flying fox"}.get(stem, stem.replace("_", " "))
            add(rcc, p, id=f"erase/{stem}", kind="photo", group="animal", name=name, description=None)
    # categorization: photos by folder
    rcc = _open("categorization", notes)
    if rcc:
        for p in sorted(x for x in rcc.files if x.endswith(".webp") and x.startswith(CAT_DIR)):
            folder, fn = p[len(CAT_DIR) + 1:].split("/", 1)
            if folder not in CATEGORIZATION:
                continue
            label, names = CATEGORIZATION[folder]
            stem = fn[:-5]
            base = re.sub(r"\d+$", "", stem)
            if base not in names:
                notes.append(f"categorization/{folder}/{stem}: no name known, skipped")
                continue
            add(rcc, p, id=f"categorization/{folder}/{stem}", kind="photo", group=label,
                name=names[base], description=None)
    # details: full pictures (the *_background images) titled by the board's instruction
    rcc = _open("details", notes)
    if rcc:
        for board in sorted(p for p in rcc.files if "/board/" in p):
            t = rcc.read(board).decode("utf-8", "replace")
            ins = re.search(r'instruction:\s*qsTr\("((?:[^"\\]|\\.)*)"\)', t)
            bg = re.search(r'"pixmapfile"\s*:\s*"(image/[^"]+_background\.webp)"', t)
            if not ins or not bg:
                continue
            path = f"{ACT}/details/resource/{bg.group(1)}"
            if path not in rcc.files:
                continue
            title = ins.group(1).strip().rstrip(".")
            m = re.match(r"Vincent van Gogh, (.+?)\s*-?\s*(\d{4}(?:-\d)?)$", title)
            if m:
                add(rcc, path, id=f"details/{bg.group(1)}", kind="painting", group="painting",
                    name=m.group(1), description=f"{m.group(1)}, a painting by Vincent van Gogh ({m.group(2)})")
            else:
                add(rcc, path, id=f"details/{bg.group(1)}", kind="photo", group="landmark",
                    name=_with_the(title), description=None)
    # solar system
    rcc = _open("solar_system", notes)
    if rcc:
        for p in sorted(x for x in rcc.files if x.endswith(".webp")):
            stem = p.rsplit("/", 1)[1][:-5]
            name = "the Sun" if stem == "sun" else stem.capitalize()
            add(rcc, p, id=f"solar_system/{stem}", kind="space", group="space", name=name,
                description="the Sun" if stem == "sun" else f"the planet {stem.capitalize()}")
    # lang: word cut-outs
    rcc = _open("lang", notes)
    if rcc:
        words = {}
        cj = f"{ACT}/lang/resource/content-en.json"
        if cj in rcc.files:
            words = {k[:-4]: v for k, v in json.loads(rcc.read(cj)).items()}
        for p in sorted(x for x in rcc.files if x.endswith(".webp") and "/words_sample/" in x):
            stem = p.rsplit("/", 1)[1][:-5]
            word = words.get(stem, stem)
            add(rcc, p, id=f"lang/{stem}", kind="word", group="word", name=word, stem=stem,
                description=None)
    return items, notes


THE_HEADS = re.compile(
    r"(Tower|Gate|Gateway|Cathedral|Palace|Temple|Memorial|Wall|Pyramid|Colosseum|Baths|"
    r"Amphitheat(re|er)|Caves|Stupa|Statue|Bridge|Taj Mahal|Louvre|Sun)\b")


def _with_the(title):
    """Adds 'the' to landmark names whose head is a common noun ('the Eiffel Tower')."""
    if re.match(r"(the|a|an)\s", title, re.I) or not THE_HEADS.search(title):
        return title
    return "the " + title


def _is_plural(name):
    return name in PLURALS


def _np(name):
    """Noun phrase with an article where the name has none."""
    if re.match(r"(the|a|an)\s", name) or name[:1].isupper():
        return name
    return name if _is_plural(name) else common.with_article(name)


def _bare(name):
    return re.sub(r"^(the|a|an)\s+", "", name)


def concept_name(item):
    if item["kind"] == "word":
        stem = item["stem"]
        if stem in LANG_NUMBERS:
            return common.NUMBER_WORDS[LANG_NUMBERS[stem]] if LANG_NUMBERS[stem] <= 10 else stem
        if stem in LANG_COLOURS:
            return f"{item['name']} paint"
        if stem == "color":
            return "paint"
    if item["kind"] == "space":
        return "sun" if item["name"] == "the Sun" else item["name"]
    return item["name"]


def flip_ok(item):
    if item["kind"] == "word":
        return item["stem"] not in LANG_NUMBERS
    return item["group"] not in ("monument", "monuments", "landmark", "painting", "space")


def _phrase(item):
    import concepts
    name = item["name"]
    if re.match(r"(the|a|an)\s", name):
        return name
    return concepts.display_phrase(item["display"], plural_form=_is_plural(name))


def _lang_samples(item, rng, canonical):
    stem, word = item["stem"], item["name"]
    pick = (lambda xs: xs[0]) if canonical else rng.choice
    if stem in LANG_NUMBERS:
        n = LANG_NUMBERS[stem]
        return [common.caption(pick([f"A drawing of the number {word}.", f"The number {n}.",
                                     f"The digit{'s' if n > 9 else ''} {n}."])),
                common.qa(rng.choice(["What number is this?", "Which number is shown?"]), str(n), "number")]
    if stem in LANG_COLOURS:
        return [common.caption(pick([f"A pot of {word} paint.", f"A paint pot with {word} paint."])),
                common.qa(rng.choice(["What colour is the paint?", "What color is the paint?"]), word, "paint_colour")]
    if stem == "color":
        return [common.caption("A drawing of paint in many colours."),
                common.qa("What is this?", "paint", "what")]
    if stem in LANG_BODY:
        return [common.caption(pick([f"A drawing of the {word}.", f"A cartoon showing the {word}."])),
                common.qa(rng.choice(["Which body part is shown?", "What part of the body is this?"]), word, "what")]
    phrase = _phrase(item) if stem not in ("flies",) else "flies"
    if stem in LANG_PEOPLE:
        return [common.caption(pick([f"A drawing of {phrase}.", f"A cartoon illustrating the word \"{word}\"."])),
                common.qa("What word does this picture illustrate?", word, "what")]
    return [common.caption(pick([f"A drawing of {phrase}.", f"A cartoon of {phrase}.",
                                 f"{phrase[0].upper() + phrase[1:]}."])),
            common.qa(rng.choice(["What is this?", "What is shown in the picture?"]), item["display"], "what")]


def _photo_samples(item, rng, canonical):
    name, kind, group = item["name"], item["kind"], item["group"]
    phrase = _phrase(item)
    cap_phrase = phrase[0].upper() + phrase[1:]
    if kind == "painting":
        caps = [f"A painting by Vincent van Gogh: {name}.", item["description"] + ".", f"{name}, by Vincent van Gogh."]
    elif kind == "space":
        caps = [f"A picture of {item['description']}.", f"{item['description'][0].upper() + item['description'][1:]}."]
    elif group == "landmark":
        caps = [f"A photo of {phrase}.", f"{cap_phrase}.", f"A photo of a famous place: {name}."]
    else:
        caps = [f"A photo of {phrase}.", f"{cap_phrase}."] + ([item["description"]] if item.get("description") else [])
    out = [common.caption(caps[0] if canonical else rng.choice(caps))]
    if kind == "painting":
        out.append(common.qa(rng.choice(["Who painted this?", "Which painter made this picture?"]),
                             "Vincent van Gogh", "painter"))
        out.append(common.qa("Which painting is this?", name, "what"))
    else:
        q = {"monument": "Which monument is this?", "monuments": "Which monument is this?",
             "landmark": "What place is this?", "space": "What is this?"}.get(group, "What is this?")
        answer = _bare(name)
        if group == "landmark":
            answer = re.sub(r"^(Panorama of|Courtyard of the Museum of)\s+", "", answer).split(",")[0]
            answer = re.sub(r"\s+(seen from|in|at)\s.*$", "", answer)
        elif group not in ("monument", "monuments", "space"):
            answer = item["display"]
        out.append(common.qa(q, answer, "what"))
    if group in ("fish", "renewable energy", "tools", "household objects", "monuments"):
        out.append(common.qa("Which category does this belong to?", group, "category"))
    return out


def render(item, rng, opts):
    im = Image.open(io.BytesIO(item["data"]))
    im.load()
    out = []
    canonical = opts.captions == "canonical"
    flip = flip_ok(item)
    n = common.renderings_for(item["split"], opts.renderings, opts)
    if item["kind"] == "word":
        cut = common.trim_alpha(im.convert("RGBA"))
        if cut is None:
            raise ValueError(f"gcompris {item['id']}: no visible pixels")
        for _ in range(n):
            bg, _ = common.random_background(rng, opts.background_photos)
            obj = common.transform_cutout(cut, rng, flip)
            out.append((common.composite(obj, bg, rng, scale=(0.6, 0.95)), _lang_samples(item, rng, canonical)))
        return out
    for _ in range(n):
        photo = common.transform_photo(im, rng, flip)
        out.append((common.fit_photo(photo, rng), _photo_samples(item, rng, canonical)))
    return out


def background_photos(items, limit=40):
    """Landscape-ish photos (monuments, landmarks, renewable energy) of the train split, for
    blurred backgrounds of the cut-out sources."""
    pool = []
    for it in items:
        if common.split_of(NAME, it["id"]) != "train":
            continue
        if it["kind"] == "photo" and it["group"] in ("monument", "monuments", "landmark", "renewable energy"):
            im = Image.open(io.BytesIO(it["data"])).convert("RGB")
            im.thumbnail((256, 256))
            pool.append(im)
            if len(pool) >= limit:
                break
    return pool
