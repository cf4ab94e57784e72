"""The shared concept vocabulary: one normalised name per thing, whatever source shows it.

Every item of every source gets a `concept` (lowercase, articles and quantity words dropped,
the last word made singular, a synonym table applied) and a `display` form (the same words with
the source's capitalisation kept, e.g. "Eiffel Tower", "flag of France") that captions and answers
use, so "A crowned crane." (Tux Paint), "crowned crane" (GCompris), "Some cherries." (Tux Paint),
"cherries" (art4apps) and "cherries" (emoji) are all named the same way.

    concept, display = normalise("Some cherries.")        # ("cherry", "cherry")
    concept, display = normalise("flag: France")          # ("flag of france", "flag of France")
    mentions("A photo of two cherries.", "cherry")         # True (plural forms count)

`mentions` is what "the caption names the concept" means: the concept's words, or the plural of
its last word, appear in the text as whole words (case-insensitive).
"""
import re

# Words that end in -s but are singular (never singularised; they take an article).
SINGULAR_S = {"bus", "cactus", "octopus", "walrus", "hippopotamus", "platypus", "asparagus", "citrus",
              "iris", "lotus", "hibiscus", "abacus", "compass", "glass", "grass", "dress", "cross", "moss",
              "princess", "lioness", "goddess", "mattress", "address", "class", "harness", "canvas", "atlas",
              "gas", "christmas", "mars", "venus", "uranus", "lens", "cosmos", "rhinoceros", "pancreas",
              "chess", "bonus", "virus", "fungus", "campus", "circus", "genius", "tennis", "pegasus", "octopus",
              "albatross", "boss", "kiss", "bass", "chaos", "ibis", "axis", "tortoise", "mongoose", "walrus"}
# Plural in form, naming one thing or a mass: never singularised, and no article in captions.
KEEP_PLURAL = {
    "scissors", "pliers", "tweezers", "glasses", "sunglasses", "eyeglasses", "pants", "trousers",
    "shorts", "jeans", "pyjamas", "pajamas", "overalls", "clothes", "news", "species", "series",
    "chopsticks", "binoculars", "headphones", "goggles", "tongs", "fries", "mathematics", "physics",
    "dice", "chess", "gymnastics", "athletics", "billiards", "darts", "bowls", "cutters", "side cutters",
    "shears", "fireworks", "confetti", "bellbottoms", "bell bottoms", "measles", "mumps", "crossroads",
    "congratulations", "thanks", "mashed potatoes", "grapes", "lungs", "glasses",
}
IRREGULAR = {
    "teeth": "tooth", "feet": "foot", "mice": "mouse", "geese": "goose", "children": "child",
    "men": "man", "women": "woman", "leaves": "leaf", "knives": "knife", "wolves": "wolf",
    "loaves": "loaf", "calves": "calf", "halves": "half", "shelves": "shelf", "wives": "wife",
    "lives": "life", "thieves": "thief", "scarves": "scarf", "elves": "elf", "oxen": "ox",
    "cacti": "cactus", "fungi": "fungus", "people": "people", "sheep": "sheep", "fish": "fish",
    "deer": "deer", "moose": "moose", "series": "series", "buses": "bus", "gases": "gas",
    "cookies": "cookie", "movies": "movie", "pies": "pie", "ties": "tie", "calories": "calorie",
    "zombies": "zombie", "brownies": "brownie", "hippies": "hippie", "shoes": "shoe", "toes": "toe",
    "canoes": "canoe", "hoes": "hoe", "oboes": "oboe", "horseshoes": "horseshoe", "dominoes": "domino",
    "flies": "fly", "dice": "dice", "lice": "louse", "bonuses": "bonus", "viruses": "virus",
    "octopuses": "octopus", "walruses": "walrus", "cactuses": "cactus", "axes": "axe",
}
# Where two sources (or two spellings) name one thing differently: source form -> shared form.
# Applied to the whole (singular, lowercase) concept.
SYNONYMS = {
    "automobile": "car", "motor car": "car", "auto": "car", "sedan": "car", "aeroplane": "airplane",
    "plane": "airplane", "jet": "airplane", "airliner": "airplane", "aubergine": "eggplant",
    "courgette": "zucchini", "capsicum": "pepper", "bell pepper": "pepper", "red apple": "apple",
    "hot pepper": "chili pepper", "chilli": "chili pepper", "chilli pepper": "chili pepper",
    "chili": "chili pepper", "ear of corn": "corn", "sweet yellow corn": "corn", "corn on the cob": "corn",
    "maize": "corn", "mobile telephone": "mobile phone", "mobile": "mobile phone",
    "cell phone": "mobile phone", "cellphone": "mobile phone", "telephone receiver": "telephone",
    "phone": "telephone", "laptop computer": "laptop", "computer monitor": "monitor", "bike": "bicycle",
    "motorbike": "motorcycle", "lorry": "truck", "delivery truck": "truck", "bunny": "rabbit", "puppy": "dog",
    "kitten": "cat", "doggy": "dog", "pup": "dog", "dog face": "dog", "cat face": "cat",
    "tiger face": "tiger", "horse face": "horse", "cow face": "cow", "pig face": "pig", "mouse face": "mouse",
    "rabbit face": "rabbit", "monkey face": "monkey", "dragon face": "dragon", "bear face": "bear",
    "panda face": "panda", "hamster face": "hamster", "wolf face": "wolf", "fox face": "fox",
    "frog face": "frog", "lion face": "lion", "koala face": "koala", "spouting whale": "whale",
    "baby chick": "chick", "hatching chick": "chick", "front-facing baby chick": "chick", "honeybee": "bee",
    "honey bee": "bee", "bumblebee": "bee", "lady beetle": "ladybug", "ladybird": "ladybug",
    "lady bug": "ladybug", "tropical fish": "fish", "fishes": "fish", "spiral shell": "shell",
    "seashell": "shell", "sea shell": "shell", "evergreen tree": "tree", "deciduous tree": "tree",
    "jack-o-lantern": "jack-o'-lantern", "jack o lantern": "jack-o'-lantern",
    "jackolantern": "jack-o'-lantern", "doughnut": "donut", "hamburger": "burger", "cheeseburger": "burger",
    "french fries": "fries", "cooked rice": "rice", "soft ice cream": "ice cream",
    "ice cream cone": "ice cream", "shaved ice": "ice cream", "birthday cake": "cake", "shortcake": "cake",
    "glass of milk": "milk", "hot beverage": "coffee", "cup of coffee": "coffee",
    "teacup without handle": "tea", "cup of tea": "tea", "bottle with popping cork": "champagne",
    "wine glass": "wine", "tumbler glass": "glass", "beer mug": "beer", "clinking beer mugs": "beer",
    "sun with face": "sun", "sunny": "sun", "new moon": "moon", "crescent moon": "moon", "full moon": "moon",
    "our moon": "moon", "globe showing americas": "globe", "globe showing europe-africa": "globe",
    "globe showing asia-australia": "globe", "world map": "map", "the earth": "earth",
    "planet earth": "earth", "ringed planet": "saturn", "high voltage": "lightning",
    "lightning bolt": "lightning", "cloud with lightning": "lightning", "snowman without snow": "snowman",
    "snow man": "snowman", "wilted flower": "flower", "blossom": "flower", "white flower": "flower",
    "maple leaf": "leaf", "fallen leaf": "leaf", "seedling": "plant", "potted plant": "plant",
    "racing car": "race car", "sports car": "race car", "oncoming automobile": "car",
    "oncoming police car": "police car", "fire engine": "fire truck", "oncoming bus": "bus",
    "school bus": "bus", "locomotive": "train", "steam locomotive": "train", "railway car": "train car",
    "tram car": "tram", "high-speed train": "train", "bullet train": "train", "motor boat": "boat",
    "speedboat": "boat", "passenger ship": "ship", "small airplane": "airplane",
    "airplane departure": "airplane", "airplane arrival": "airplane", "space shuttle": "rocket",
    "flying saucer": "ufo", "farm tractor": "tractor", "kick scooter": "scooter", "motor scooter": "scooter",
    "musical keyboard": "piano", "grand piano": "piano", "soccer ball": "football",
    "closed umbrella": "umbrella", "umbrella with rain drops": "umbrella", "shirt": "t-shirt",
    "tshirt": "t-shirt", "necktie": "tie", "blue jeans": "jeans", "pair of blue jeans": "jeans",
    "woman's hat": "hat", "billed cap": "cap", "baseball cap": "cap", "running shoe": "shoe",
    "man's shoe": "shoe", "woman's sandal": "sandal", "woman's boot": "boot", "high-heeled shoe": "high heel",
    "eyeglasses": "glasses", "socks": "sock", "gloves": "glove", "gem stone": "gem", "gemstone": "gem",
    "diamond": "gem", "alarm clock": "clock", "mantelpiece clock": "clock", "wristwatch": "watch",
    "hourglass done": "hourglass", "hourglass not done": "hourglass", "lightbulb": "light bulb",
    "bulb": "light bulb", "old key": "key", "spanner": "wrench", "plumber's wrench": "wrench",
    "carpentry saw": "saw", "ax": "axe", "magnifying glass tilted left": "magnifying glass",
    "magnifying glass tilted right": "magnifying glass", "fountain pen": "pen", "ballpoint pen": "pen",
    "paint brush": "paintbrush", "books": "book", "closed book": "book", "open book": "book",
    "e-mail": "email", "postbox": "post box", "mailbox": "post box", "uk post box": "post box",
    "tv": "television", "camera with flash": "camera", "movie camera": "video camera",
    "desktop computer": "computer", "personal computer": "computer", "inkjet printer": "printer",
    "laser printer": "printer", "computer disk": "floppy disk", "optical disk": "compact disc",
    "dvd": "compact disc", "cd": "compact disc", "couch and lamp": "couch", "sofa": "couch",
    "bath": "bathtub", "house with garden": "house", "houses": "house", "city house": "house",
    "two city houses": "house", "japanese castle": "castle", "snow-capped mountain": "mountain",
    "desert island": "island", "beach with umbrella": "beach", "water wave": "wave", "droplet": "water drop",
    "drop": "water drop", "glowing star": "star", "wrapped gift": "present", "gift": "present",
    "christmas present": "present", "santa": "santa claus", "father christmas": "santa claus",
    "mrs. claus": "mrs claus", "confetti ball": "confetti", "chocolate easter egg": "easter egg",
    "cooking": "fried egg", "tux": "penguin", "peahen": "peacock", "albino peahen": "peacock",
    "cockerel": "rooster", "hen": "chicken", "duckling": "duck", "raven": "crow", "black bird": "blackbird",
    "pengwin": "penguin", "t-rex": "tyrannosaurus", "tyrannosaurus rex": "tyrannosaurus",
    "tortoise": "turtle", "alligator": "crocodile", "toad": "frog", "spiny lobster": "lobster",
    "prawn": "shrimp", "housefly": "fly", "house fly": "fly", "earthworm": "worm", "bacteria": "microbe",
    "germ": "microbe", "rhino": "rhinoceros", "hippo": "hippopotamus", "two-hump camel": "camel",
    "dromedary": "camel", "alpaca": "llama", "chimp": "chimpanzee", "lioness": "lion", "panther": "leopard",
    "brown bear": "bear", "giant panda": "panda", "hog": "pig", "wild boar": "boar", "buffalo": "bison",
    "pony": "horse", "ewe": "sheep", "baby sheep": "lamb", "elk": "moose", "hare": "rabbit",
    "black cat": "cat", "kitty": "cat", "mandarin": "tangerine", "grape": "grapes",
    "bunch of grapes": "grapes", "kiwi fruit": "kiwi", "kiwifruit": "kiwi", "ripe tomato": "tomato",
    "roasted sweet potato": "sweet potato", "leafy green": "lettuce", "pea pod": "peas", "pea": "peas",
    "bean": "beans", "peanuts": "peanut", "loaf of bread": "bread", "baguette bread": "baguette",
    "pancake": "pancakes", "cheese wedge": "cheese", "slice of pizza": "pizza", "meat on bone": "meat",
    "poultry leg": "chicken leg", "drumstick": "chicken leg", "cut of meat": "meat", "steak": "meat",
    "fried shrimp": "shrimp", "bowl with spoon": "bowl", "pot of food": "soup", "green salad": "salad",
    "honey pot": "honey", "sweet": "candy", "hard candy": "candy", "chocolate bar": "chocolate",
    "biscuit": "cookie", "mince pie": "pie", "ice cube": "ice", "beverage box": "juice",
    "orange juice": "juice", "mug": "cup", "fork and knife": "cutlery", "kitchen knife": "knife",
    "frying pan": "pan", "pasta pot": "pot", "cooking pot": "pot", "pail": "bucket", "bar of soap": "soap",
    "roll of paper": "toilet paper", "digital thermometer": "thermometer", "adhesive bandage": "bandage",
    "red heart": "heart", "flexed biceps": "arm", "raised hand": "hand", "grandma": "grandmother",
    "granny": "grandmother", "grandpa": "grandfather", "kid": "child", "mom": "mother", "mum": "mother",
    "dad": "father", "policeman": "police officer", "cop": "police officer", "fireman": "firefighter",
    "spaceman": "astronaut", "chef": "cook", "builder": "construction worker", "mage": "wizard",
}
# Mass nouns: no article in captions ("A photo of cheese.").
MASS = {"bacon", "beef", "bread", "cheese", "chocolate", "coffee", "corn", "flour", "fudge", "gum",
        "ham", "ice", "jam", "jelly", "juice", "lemonade", "meat", "milk", "rice", "sauce", "soup",
        "spaghetti", "sugar", "tea", "yoghurt", "candy", "broccoli", "cauliflower", "celery", "garlic",
        "lettuce", "spinach", "asparagus", "hair", "smoke", "lava", "fire", "popcorn", "butter", "salt",
        "honey", "wine", "beer", "water", "sushi", "salad", "custard", "money", "confetti", "lightning"}
# Determiners and quantity words dropped from the front of a name.
LEADING = re.compile(r"^(a pair of|pair of|a|an|the|some|two|three|many|several|our|another|"
                     r"big|small|little|large)\s+", re.I)
NUMBER_NAMES = {"0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five",
                "6": "six", "7": "seven", "8": "eight", "9": "nine", "10": "ten"}


def _singular_word(w):
    """Singular of one word, keeping its case; unchanged when it does not look plural."""
    low = w.lower()
    if low in KEEP_PLURAL or low in SINGULAR_S or len(low) <= 3:
        return w
    if low in IRREGULAR:
        s = IRREGULAR[low]
        return s if w.islower() else s.capitalize()
    if re.search(r"(ss|us|is|ous|ics)$", low):
        return w
    if re.search(r"[^aeiou]ies$", low):
        return w[:-3] + "y"
    if re.search(r"(ches|shes|xes|sses|zzes)$", low):
        return w[:-2]
    if re.search(r"[^aeiou]oes$", low):
        return w[:-2]  # potatoes, tomatoes
    if low.endswith("s") and not low.endswith("'s"):
        return w[:-1]
    return w


def _singular(phrase):
    """Singularises the head (last word) of a short noun phrase; phrases that read as
    descriptions (with -ing words, 'with', commas, colons) are left alone."""
    low = phrase.lower()
    if low in KEEP_PLURAL or low in SINGULAR_S:
        return phrase
    if low in IRREGULAR:
        s = IRREGULAR[low]
        return s if phrase.islower() else s.capitalize()
    words = phrase.split(" ")
    if len(words) > 4 or re.search(r"(\bwith\b|\bof\b|\band\b|[,:]|ing\b)", low):
        return phrase
    words[-1] = _singular_word(words[-1])
    return " ".join(words)


def clean(name):
    """Trims quotes, trailing punctuation, determiners and the 'flag:'/'keycap:' forms, keeping case."""
    s = name.strip()
    s = s.replace("\u2019", "'").replace("\u2018", "'")
    s = re.sub(r"[\u201c\u201d\"]", "", s)
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"[.!?\u2026]+$", "", s).strip()
    m = re.match(r"flag: (.+)$", s)
    if m:
        return f"flag of {m.group(1)}"
    m = re.match(r"keycap: (.+)$", s)
    if m:
        k = m.group(1)
        return NUMBER_NAMES.get(k, f"keycap {k}")
    for _ in range(2):
        s2 = LEADING.sub("", s)
        if s2 == s or not s2:
            break
        s = s2
    return s


def normalise(name):
    """(concept, display) for a source's name of a thing: concept lowercase, display with the
    source's capitals kept (proper nouns, flags) but the same words."""
    display = clean(name)
    display = _singular(display)
    low = display.lower()
    if low in SYNONYMS:
        syn = SYNONYMS[low]
        display = syn if syn != low else display
        low = syn
    if low.isdigit() and low in NUMBER_NAMES:
        low = display = NUMBER_NAMES[low]
    return low, display


def plural(word):
    """English plural of one (lowercase) word, for `mentions`."""
    inv = {v: k for k, v in IRREGULAR.items() if k != v}
    if word in inv:
        return inv[word]
    if re.search(r"[^aeiou]y$", word):
        return word[:-1] + "ies"
    if re.search(r"(s|x|z|ch|sh)$", word):
        return word + "es"
    if re.search(r"[^aeiou]o$", word):
        return word + "es"
    if word.endswith("f"):
        return word + "s"
    return word + "s"


def mentions(text, concept):
    """Whether `text` names `concept` (whole words, case-insensitive; the head word may be plural)."""
    t = " " + re.sub(r"[^a-z0-9'-]+", " ", text.lower()) + " "
    c = re.sub(r"[^a-z0-9'-]+", " ", concept.lower()).strip()
    if f" {c} " in t:
        return True
    words = c.split(" ")
    words[-1] = plural(words[-1])
    return f" {' '.join(words)} " in t


def display_phrase(display, plural_form=False, proper=False):
    """Noun phrase with an article for captions: 'a crowned crane', 'an eagle', 'the flag of
    France', 'Mercury' (proper names, capitalised displays), 'scissors' (plural-only words)."""
    import common
    low = display.lower()
    if low.startswith("flag of ") or re.fullmatch(r"letter \w", low):
        return "the " + display
    if proper or display[:1].isupper() or re.match(r"(the|a|an)\s", low):
        return display
    if plural_form or low in KEEP_PLURAL or low.split(" ")[-1] in KEEP_PLURAL:
        return display
    if low in ("fries", "grapes", "peas", "beans", "pancakes", "eyes", "teeth", "lungs") or low in MASS:
        return display
    if low in NUMBER_NAMES.values() or low in ("eleven", "twelve", "sixteen"):
        return f"the number {display}"
    return common.with_article(display)


def caption_phrase(name, proper=False):
    """The noun phrase captions use for a source's name: the concept's display form with an
    article ('a crowned crane'), except that a plural name stays plural ('cherries', when the
    picture shows several) unless a synonym renamed it."""
    plain = clean(name)
    single = _singular(plain)
    _, display = normalise(name)
    if single != plain and display == single:
        return plain
    return display_phrase(display, proper=proper)
