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

# Words that are plural in form but name one thing, or mass nouns: never singularised.
KEEP_PLURAL = {
    "scissors", "pliers", "tweezers", "glasses", "sunglasses", "eyeglasses", "pants", "trousers",
    "shorts", "jeans", "pyjamas", "pajamas", "overalls", "clothes", "news", "species", "series",
    "chopsticks", "binoculars", "headphones", "goggles", "tongs", "fries", "mathematics", "physics",
    "dice", "chess", "gymnastics", "athletics", "billiards", "darts", "bowls", "cutters", "side cutters",
    "shears", "fireworks", "confetti", "bellbottoms", "bell bottoms", "ceps", "bus", "cactus",
    "octopus", "walrus", "hippopotamus", "platypus", "asparagus", "citrus", "iris", "lotus", "octopus",
    "hibiscus", "abacus", "compass", "glass", "grass", "dress", "cross", "chess", "moss", "princess",
    "lioness", "goddess", "mattress", "address", "class", "harness", "canvas", "atlas", "gas",
    "christmas", "mars", "venus", "uranus", "dolphins", "lens", "cosmos", "rhinoceros", "pancreas",
    "measles", "mumps", "crossroads", "congratulations", "thanks", "ballet shoes", "mashed potatoes",
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
    "automobile": "car", "motor car": "car", "auto": "car", "sedan": "car",
    "aeroplane": "airplane", "plane": "airplane", "jet": "airplane", "airliner": "airplane",
    "aubergine": "eggplant", "courgette": "zucchini", "capsicum": "pepper", "bell pepper": "pepper",
    "red apple": "apple", "hot pepper": "chili pepper", "chilli": "chili pepper",
    "chilli pepper": "chili pepper", "chili": "chili pepper", "ear of corn": "corn",
    "sweet yellow corn": "corn", "corn on the cob": "corn", "maize": "corn",
    "mobile telephone": "mobile phone", "mobile": "mobile phone", "cell phone": "mobile phone",
    "cellphone": "mobile phone", "telephone receiver": "telephone", "phone": "telephone",
    "laptop computer": "laptop", "computer monitor": "monitor",
    "bike": "bicycle", "motorbike": "motorcycle", "lorry": "truck", "delivery truck": "truck",
    "bunny": "rabbit", "puppy": "dog", "kitten": "cat", "doggy": "dog", "pup": "dog",
    "dog face": "dog", "cat face": "cat", "tiger face": "tiger", "horse face": "horse",
    "cow face": "cow", "pig face": "pig", "mouse face": "mouse", "rabbit face": "rabbit",
    "monkey face": "monkey", "dragon face": "dragon", "bear face": "bear", "panda face": "panda",
    "hamster face": "hamster", "wolf face": "wolf", "fox face": "fox", "frog face": "frog",
    "lion face": "lion", "koala face": "koala", "spouting whale": "whale", "baby chick": "chick",
    "hatching chick": "chick", "front-facing baby chick": "chick", "teddy bear": "teddy bear",
    "honeybee": "bee", "honey bee": "bee", "bumblebee": "bee", "lady beetle": "ladybug",
    "ladybird": "ladybug", "lady bug": "ladybug", "tropical fish": "fish", "fishes": "fish",
    "spiral shell": "shell", "seashell": "shell", "sea shell": "shell", "christmas tree": "christmas tree",
    "evergreen tree": "tree", "deciduous tree": "tree", "jack-o-lantern": "jack-o'-lantern",
    "jack o lantern": "jack-o'-lantern", "jackolantern": "jack-o'-lantern", "doughnut": "donut",
    "hamburger": "burger", "cheeseburger": "burger", "french fries": "fries", "cooked rice": "rice",
    "spaghetti": "spaghetti", "soft ice cream": "ice cream", "ice cream cone": "ice cream",
    "shaved ice": "ice cream", "birthday cake": "cake", "shortcake": "cake", "glass of milk": "milk",
    "baby bottle": "baby bottle", "hot beverage": "coffee", "cup of coffee": "coffee",
    "teacup without handle": "tea", "cup of tea": "tea", "bottle with popping cork": "champagne",
    "wine glass": "wine", "tumbler glass": "glass", "beer mug": "beer", "clinking beer mugs": "beer",
    "sun with face": "sun", "sunny": "sun", "new moon": "moon", "crescent moon": "moon",
    "full moon": "moon", "our moon": "moon", "globe showing americas": "globe",
    "globe showing europe-africa": "globe", "globe showing asia-australia": "globe",
    "world map": "map", "the earth": "earth", "planet earth": "earth", "ringed planet": "saturn",
    "high voltage": "lightning", "lightning bolt": "lightning", "cloud with lightning": "lightning",
    "snowflake": "snowflake", "snowman without snow": "snowman", "snow man": "snowman",
    "rose": "rose", "wilted flower": "flower", "blossom": "flower", "white flower": "flower",
    "sunflower": "sunflower", "tulip": "tulip", "four leaf clover": "four leaf clover",
    "shamrock": "shamrock", "maple leaf": "leaf", "fallen leaf": "leaf", "seedling": "plant",
    "potted plant": "plant", "cactus": "cactus", "palm tree": "palm tree", "mushroom": "mushroom",
    "racing car": "race car", "sports car": "race car", "oncoming automobile": "car",
    "police car": "police car", "oncoming police car": "police car", "fire engine": "fire truck",
    "fire truck": "fire truck", "ambulance": "ambulance", "oncoming bus": "bus", "school bus": "bus",
    "locomotive": "train", "steam locomotive": "train", "railway car": "train car", "tram car": "tram",
    "high-speed train": "train", "bullet train": "train", "sailboat": "sailboat", "boat": "boat",
    "motor boat": "boat", "speedboat": "boat", "ship": "ship", "passenger ship": "ship",
    "small airplane": "airplane", "airplane departure": "airplane", "airplane arrival": "airplane",
    "rocket": "rocket", "space shuttle": "rocket", "flying saucer": "ufo", "helicopter": "helicopter",
    "tractor": "tractor", "farm tractor": "tractor", "kick scooter": "scooter", "motor scooter": "scooter",
    "bicycle": "bicycle", "guitar": "guitar", "violin": "violin", "trumpet": "trumpet",
    "musical keyboard": "piano", "grand piano": "piano", "drum": "drum", "soccer ball": "football",
    "american football": "american football", "basketball": "basketball", "tennis": "tennis ball",
    "tennis ball": "tennis ball", "baseball": "baseball", "volleyball": "volleyball",
    "umbrella": "umbrella", "closed umbrella": "umbrella", "umbrella with rain drops": "umbrella",
    "t-shirt": "t-shirt", "shirt": "t-shirt", "tshirt": "t-shirt", "necktie": "tie", "jeans": "jeans",
    "blue jeans": "jeans", "pair of blue jeans": "jeans", "dress": "dress", "woman's hat": "hat",
    "top hat": "top hat", "billed cap": "cap", "baseball cap": "cap", "crown": "crown",
    "running shoe": "shoe", "man's shoe": "shoe", "woman's sandal": "sandal", "woman's boot": "boot",
    "high-heeled shoe": "high heel", "glasses": "glasses", "eyeglasses": "glasses", "socks": "sock",
    "gloves": "glove", "scarf": "scarf", "coat": "coat", "lipstick": "lipstick", "ring": "ring",
    "gem stone": "gem", "gemstone": "gem", "diamond": "gem", "money bag": "money bag",
    "alarm clock": "clock", "mantelpiece clock": "clock", "watch": "watch", "wristwatch": "watch",
    "hourglass done": "hourglass", "hourglass not done": "hourglass", "light bulb": "light bulb",
    "lightbulb": "light bulb", "bulb": "light bulb", "candle": "candle", "flashlight": "flashlight",
    "torch": "flashlight", "key": "key", "old key": "key", "hammer": "hammer", "wrench": "wrench",
    "spanner": "wrench", "plumber's wrench": "wrench", "screwdriver": "screwdriver", "saw": "saw",
    "carpentry saw": "saw", "axe": "axe", "ax": "axe", "nut and bolt": "nut and bolt",
    "scissors": "scissors", "magnifying glass tilted left": "magnifying glass",
    "magnifying glass tilted right": "magnifying glass", "pencil": "pencil", "pen": "pen",
    "fountain pen": "pen", "ballpoint pen": "pen", "crayon": "crayon", "paintbrush": "paintbrush",
    "paint brush": "paintbrush", "books": "book", "closed book": "book", "open book": "book",
    "notebook": "notebook", "envelope": "envelope", "e-mail": "email",
    "package": "package", "postbox": "post box", "mailbox": "post box", "uk post box": "post box",
    "scroll": "scroll", "newspaper": "newspaper", "calendar": "calendar", "television": "television",
    "tv": "television", "radio": "radio", "camera": "camera", "camera with flash": "camera",
    "movie camera": "video camera", "video camera": "video camera", "desktop computer": "computer",
    "personal computer": "computer", "computer": "computer", "printer": "printer",
    "inkjet printer": "printer", "laser printer": "printer", "telephone": "telephone",
    "computer disk": "floppy disk", "floppy disk": "floppy disk", "optical disk": "compact disc",
    "dvd": "compact disc", "cd": "compact disc", "battery": "battery", "magnet": "magnet",
    "bed": "bed", "couch and lamp": "couch", "sofa": "couch", "chair": "chair", "toilet": "toilet",
    "bathtub": "bathtub", "bath": "bathtub", "shower": "shower", "door": "door", "window": "window",
    "house": "house", "house with garden": "house", "houses": "house", "city house": "house",
    "two city houses": "house", "castle": "castle", "japanese castle": "castle", "church": "church",
    "tent": "tent", "circus tent": "circus tent", "igloo": "igloo", "hut": "hut",
    "statue of liberty": "statue of liberty", "tokyo tower": "tokyo tower",
    "mount fuji": "mount fuji", "volcano": "volcano", "snow-capped mountain": "mountain",
    "mountain": "mountain", "desert island": "island", "beach with umbrella": "beach",
    "rainbow": "rainbow", "cloud": "cloud", "tornado": "tornado", "fire": "fire", "water wave": "wave",
    "droplet": "water drop", "drop": "water drop", "snowman": "snowman", "comet": "comet",
    "star": "star", "glowing star": "star", "shooting star": "shooting star", "balloon": "balloon",
    "wrapped gift": "present", "gift": "present", "present": "present", "christmas present": "present",
    "santa claus": "santa claus", "santa": "santa claus", "father christmas": "santa claus",
    "mrs. claus": "mrs claus", "jack-o'-lantern": "jack-o'-lantern", "ghost": "ghost", "skull": "skull",
    "party popper": "party popper", "confetti ball": "confetti", "fireworks": "fireworks",
    "firecracker": "firecracker", "sparkler": "sparkler", "easter egg": "easter egg",
    "chocolate easter egg": "easter egg", "egg": "egg", "cooking": "fried egg", "fried egg": "fried egg",
    "tux": "penguin", "peacock": "peacock", "peahen": "peacock", "albino peahen": "peacock",
    "rooster": "rooster", "cockerel": "rooster", "hen": "chicken", "chicken": "chicken",
    "turkey": "turkey", "roast turkey": "roast turkey", "duck": "duck", "duckling": "duck",
    "swan": "swan", "owl": "owl", "eagle": "eagle", "parrot": "parrot", "flamingo": "flamingo",
    "dove": "dove", "pigeon": "pigeon", "crow": "crow", "raven": "crow", "black bird": "blackbird",
    "bird": "bird", "penguin": "penguin", "pengwin": "penguin", "dodo": "dodo", "bat": "bat",
    "t-rex": "tyrannosaurus", "tyrannosaurus rex": "tyrannosaurus", "sauropod": "sauropod",
    "dinosaur": "dinosaur", "lizard": "lizard", "snake": "snake", "turtle": "turtle",
    "tortoise": "turtle", "crocodile": "crocodile", "alligator": "crocodile", "frog": "frog",
    "toad": "frog", "whale": "whale", "dolphin": "dolphin", "shark": "shark", "octopus": "octopus",
    "squid": "squid", "crab": "crab", "lobster": "lobster", "spiny lobster": "lobster",
    "shrimp": "shrimp", "prawn": "shrimp", "snail": "snail", "butterfly": "butterfly", "ant": "ant",
    "bug": "bug", "caterpillar": "caterpillar", "spider": "spider", "scorpion": "scorpion",
    "mosquito": "mosquito", "fly": "fly", "housefly": "fly", "house fly": "fly", "worm": "worm",
    "earthworm": "worm", "beetle": "beetle", "cricket": "cricket", "grasshopper": "grasshopper",
    "cockroach": "cockroach", "microbe": "microbe", "bacteria": "microbe", "germ": "microbe",
    "elephant": "elephant", "mammoth": "mammoth", "rhinoceros": "rhinoceros", "rhino": "rhinoceros",
    "hippopotamus": "hippopotamus", "hippo": "hippopotamus", "giraffe": "giraffe", "zebra": "zebra",
    "camel": "camel", "two-hump camel": "camel", "dromedary": "camel", "llama": "llama",
    "alpaca": "llama", "kangaroo": "kangaroo", "koala": "koala", "gorilla": "gorilla",
    "orangutan": "orangutan", "chimpanzee": "chimpanzee", "chimp": "chimpanzee", "monkey": "monkey",
    "lion": "lion", "lioness": "lion", "tiger": "tiger", "leopard": "leopard", "cheetah": "cheetah",
    "panther": "leopard", "wolf": "wolf", "fox": "fox", "raccoon": "raccoon", "bear": "bear",
    "brown bear": "bear", "polar bear": "polar bear", "panda": "panda", "giant panda": "panda",
    "pig": "pig", "hog": "pig", "boar": "boar", "wild boar": "boar", "cow": "cow", "ox": "ox",
    "bull": "bull", "water buffalo": "water buffalo", "bison": "bison", "buffalo": "bison",
    "horse": "horse", "pony": "horse", "donkey": "donkey", "unicorn": "unicorn", "sheep": "sheep",
    "ewe": "sheep", "ram": "ram", "lamb": "lamb", "baby sheep": "lamb", "goat": "goat",
    "deer": "deer", "reindeer": "reindeer", "moose": "moose", "elk": "moose", "rabbit": "rabbit",
    "hare": "rabbit", "squirrel": "squirrel", "chipmunk": "chipmunk", "hedgehog": "hedgehog",
    "mouse": "mouse", "rat": "rat", "hamster": "hamster", "guinea pig": "guinea pig", "beaver": "beaver",
    "otter": "otter", "skunk": "skunk", "badger": "badger", "sloth": "sloth", "seal": "seal",
    "walrus": "walrus", "dog": "dog", "poodle": "poodle", "guide dog": "guide dog", "cat": "cat",
    "black cat": "cat", "kitty": "cat", "apple": "apple", "green apple": "green apple",
    "pear": "pear", "banana": "banana", "orange": "orange", "tangerine": "tangerine",
    "mandarin": "tangerine", "lemon": "lemon", "lime": "lime", "grape": "grapes", "grapes": "grapes",
    "bunch of grapes": "grapes", "cherry": "cherry", "strawberry": "strawberry",
    "blueberry": "blueberry", "watermelon": "watermelon", "melon": "melon", "peach": "peach",
    "pineapple": "pineapple", "mango": "mango", "kiwi fruit": "kiwi", "kiwifruit": "kiwi",
    "kiwi": "kiwi", "coconut": "coconut", "avocado": "avocado", "tomato": "tomato",
    "ripe tomato": "tomato", "carrot": "carrot", "potato": "potato", "sweet potato": "sweet potato",
    "roasted sweet potato": "sweet potato", "onion": "onion", "garlic": "garlic",
    "broccoli": "broccoli", "cucumber": "cucumber", "leafy green": "lettuce", "lettuce": "lettuce",
    "cabbage": "cabbage", "pea pod": "peas", "peas": "peas", "pea": "peas", "bean": "beans",
    "beans": "beans", "peanut": "peanut", "peanuts": "peanut", "chestnut": "chestnut",
    "bread": "bread", "loaf of bread": "bread", "baguette bread": "baguette", "baguette": "baguette",
    "croissant": "croissant", "pretzel": "pretzel", "bagel": "bagel", "pancake": "pancakes",
    "pancakes": "pancakes", "waffle": "waffle", "cheese wedge": "cheese", "cheese": "cheese",
    "pizza": "pizza", "slice of pizza": "pizza", "hot dog": "hot dog", "sandwich": "sandwich",
    "taco": "taco", "burrito": "burrito", "bacon": "bacon", "meat on bone": "meat",
    "poultry leg": "chicken leg", "chicken leg": "chicken leg", "drumstick": "chicken leg",
    "cut of meat": "meat", "steak": "meat", "sushi": "sushi", "fried shrimp": "shrimp",
    "bowl with spoon": "bowl", "bowl": "bowl", "pot of food": "soup", "soup": "soup",
    "salad": "salad", "green salad": "salad", "popcorn": "popcorn", "butter": "butter",
    "salt": "salt", "honey pot": "honey", "honey": "honey", "candy": "candy", "sweet": "candy",
    "hard candy": "candy", "lollipop": "lollipop", "candy cane": "candy cane", "chocolate bar": "chocolate",
    "chocolate": "chocolate", "cookie": "cookie", "biscuit": "cookie", "cupcake": "cupcake",
    "pie": "pie", "mince pie": "pie", "custard": "custard", "christmas pudding": "christmas pudding",
    "ice": "ice", "ice cube": "ice", "milk": "milk", "juice": "juice", "beverage box": "juice",
    "orange juice": "juice", "coffee": "coffee", "tea": "tea", "wine": "wine", "beer": "beer",
    "teapot": "teapot", "cup": "cup", "mug": "cup", "fork and knife": "cutlery", "knife": "knife",
    "kitchen knife": "knife", "spoon": "spoon", "fork": "fork", "plate": "plate", "pan": "pan",
    "frying pan": "pan", "pot": "pot", "pasta pot": "pot", "cooking pot": "pot", "bucket": "bucket",
    "pail": "bucket", "basket": "basket", "broom": "broom", "soap": "soap", "bar of soap": "soap",
    "toothbrush": "toothbrush", "sponge": "sponge", "toilet paper": "toilet paper", "roll of paper": "toilet paper",
    "stethoscope": "stethoscope", "thermometer": "thermometer", "digital thermometer": "thermometer",
    "syringe": "syringe", "pill": "pill", "bandage": "bandage", "adhesive bandage": "bandage",
    "heart": "heart", "red heart": "heart", "anatomical heart": "heart", "brain": "brain", "eye": "eye",
    "eyes": "eyes", "ear": "ear", "nose": "nose", "mouth": "mouth", "tongue": "tongue", "tooth": "tooth",
    "teeth": "teeth", "hand": "hand", "foot": "foot", "leg": "leg", "arm": "arm", "bone": "bone",
    "lungs": "lungs", "flexed biceps": "arm", "raised hand": "hand", "baby": "baby", "boy": "boy",
    "girl": "girl", "man": "man", "woman": "woman", "old man": "old man", "old woman": "old woman",
    "grandmother": "grandmother", "grandma": "grandmother", "granny": "grandmother",
    "grandfather": "grandfather", "grandpa": "grandfather", "person": "person", "child": "child",
    "kid": "child", "family": "family", "mother": "mother", "mom": "mother", "mum": "mother",
    "father": "father", "dad": "father", "police officer": "police officer", "policeman": "police officer",
    "cop": "police officer", "firefighter": "firefighter", "fireman": "firefighter",
    "astronaut": "astronaut", "spaceman": "astronaut", "cook": "cook", "chef": "cook",
    "doctor": "doctor", "nurse": "nurse", "farmer": "farmer", "teacher": "teacher", "pilot": "pilot",
    "judge": "judge", "mechanic": "mechanic", "scientist": "scientist", "artist": "artist",
    "singer": "singer", "construction worker": "construction worker", "builder": "construction worker",
    "king": "king", "queen": "queen", "prince": "prince", "princess": "princess", "knight": "knight",
    "pirate": "pirate", "ninja": "ninja", "robot": "robot", "alien": "alien", "zombie": "zombie",
    "vampire": "vampire", "mermaid": "mermaid", "fairy": "fairy", "genie": "genie", "mage": "wizard",
    "wizard": "wizard", "witch": "witch", "elf": "elf", "troll": "troll", "dragon": "dragon",
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
    if low in KEEP_PLURAL or len(low) <= 3:
        return w
    if low in IRREGULAR:
        s = IRREGULAR[low]
        return s if w.islower() else s.capitalize()
    if re.search(r"(ss|us|is|ous|ics|as|os)$", low):
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
    if low in KEEP_PLURAL or low in IRREGULAR:
        return IRREGULAR.get(low, phrase) if low in IRREGULAR and low not in KEEP_PLURAL else phrase
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
    if low.startswith("flag of "):
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
