"""How shoppers phrase things: vague needs, casual wrappers, attribute wordings and typos.

`queries.py` turns these into eval queries; each vague need also says, in catalog terms
(product types, trait tags, spec values), which products satisfy it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class VagueNeed:
    """A need in the shopper's words and the catalog terms that satisfy it.

    A product fully matches when its type is in `types`, it has any one of `tags` (if
    given) and its `spec` attribute takes one of the listed values (if given). `substitutes`
    are close-enough types.
    """

    texts: tuple[str, ...]
    types: tuple[str, ...]
    tags: tuple[str, ...] = ()
    substitutes: tuple[str, ...] = ()
    spec: tuple[str, tuple[str, ...]] | None = None


VAGUE_NEEDS: tuple[VagueNeed, ...] = (
    VagueNeed(
        (
            "something to keep me dry on my bike commute",
            "rain gear for cycling to work",
            "jacket for riding my bike in the rain",
            "what do i wear to bike to work when its pouring",
        ),
        ("rain jacket",),
        tags=("commute", "cycling", "reflective"),
    ),
    VagueNeed(
        (
            "need something warm for winter hikes",
            "warm layer for hiking in the snow",
            "what should i wear hiking when its freezing",
        ),
        ("down jacket", "fleece jacket"),
        tags=("winter",),
    ),
    VagueNeed(
        (
            "shoes i can stand in all day",
            "comfy shoes for long shifts on my feet",
            "most comfortable shoes for walking all day",
        ),
        ("sneaker", "running shoe"),
        tags=("cushioned",),
    ),
    VagueNeed(
        ("boots that wont leak on muddy trails", "footwear that keeps my feet dry on hikes"),
        ("hiking boot", "trail running shoe"),
        tags=("waterproof",),
        substitutes=("winter boot",),
    ),
    VagueNeed(
        (
            "something to keep my feet warm in the snow",
            "boots for walking on icy sidewalks",
            "footwear for brutal winters",
        ),
        ("winter boot",),
        tags=("insulated", "slip-resistant"),
        substitutes=("hiking boot",),
    ),
    VagueNeed(
        (
            "gift for a coffee lover",
            "present for someone obsessed with coffee",
            "coffee gift ideas",
        ),
        ("coffee maker", "espresso machine"),
    ),
    VagueNeed(
        ("something to make smoothies every morning", "machine for protein shakes and smoothies"),
        ("blender",),
        tags=("powerful", "mornings", "gym"),
    ),
    VagueNeed(
        (
            "coffee maker that doesnt take up much counter space",
            "small coffee machine for a tiny kitchen",
        ),
        ("coffee maker",),
        tags=("compact", "small-kitchen"),
        substitutes=("espresso machine",),
    ),
    VagueNeed(
        (
            "kitchen appliances for a tiny apartment",
            "small appliances for a studio apartment kitchen",
        ),
        ("coffee maker", "blender", "electric kettle", "espresso machine"),
        tags=("compact", "small-kitchen"),
    ),
    VagueNeed(
        (
            "something to block out noise on flights",
            "headphones for a long flight",
            "block out my noisy coworkers",
            "cancel the noise on my train commute",
        ),
        ("over-ear headphones", "wireless earbuds"),
        tags=("noise-cancelling",),
    ),
    VagueNeed(
        ("speaker for a pool party", "music at the beach", "something loud for a backyard party"),
        ("bluetooth speaker",),
        tags=("waterproof", "portable", "party", "beach"),
    ),
    VagueNeed(
        (
            "earbuds that wont fall out when i run",
            "headphones for the gym",
            "something to listen to music while working out",
        ),
        ("wireless earbuds",),
        tags=("sweatproof", "gym", "running"),
        substitutes=("over-ear headphones",),
    ),
    VagueNeed(
        ("track my runs without taking my phone", "watch with gps for marathon training"),
        ("smartwatch", "fitness tracker"),
        tags=("gps",),
    ),
    VagueNeed(
        ("something to count my steps and track my sleep", "device that tracks my sleep"),
        ("fitness tracker", "smartwatch"),
        tags=("sleep-tracking", "sleep"),
    ),
    VagueNeed(
        ("pan that eggs wont stick to", "cook eggs without them sticking"),
        ("skillet",),
        tags=("nonstick",),
        substitutes=("cookware set",),
    ),
    VagueNeed(
        ("setting up my first kitchen", "everything i need to cook in a new apartment"),
        ("cookware set",),
        substitutes=("skillet",),
    ),
    VagueNeed(
        ("something to boil water for tea fast", "i drink a lot of tea"),
        ("electric kettle",),
        tags=("fast-boil", "temperature-control"),
    ),
    VagueNeed(
        ("mat for hot yoga", "yoga mat that doesnt slip when im sweaty"),
        ("yoga mat",),
        tags=("non-slip",),
    ),
    VagueNeed(
        ("build muscle at home", "equipment to lift weights at home"),
        ("dumbbell set",),
        substitutes=("resistance bands",),
    ),
    VagueNeed(
        (
            "workout gear for a small apartment",
            "exercise stuff that doesnt take up space",
            "workout equipment i can take on trips",
        ),
        ("resistance bands", "yoga mat", "dumbbell set"),
        tags=("compact", "home-workout", "travel", "portable"),
    ),
    VagueNeed(
        ("sore muscles after running", "something for muscle recovery", "help with tight calves"),
        ("foam roller",),
        substitutes=("resistance bands",),
    ),
    VagueNeed(
        ("tent big enough for the whole family", "tent for four people", "camping with two kids"),
        ("tent",),
        spec=("sleeps", ("4-person", "6-person")),
    ),
    VagueNeed(
        (
            "stay warm camping in freezing weather",
            "sleeping bag for winter camping",
            "sleeping bag for below freezing",
        ),
        ("sleeping bag",),
        spec=("temperature rating", ("0°F", "15°F", "20°F")),
    ),
    VagueNeed(
        ("light for night hikes", "hands free light for camping", "light for running in the dark"),
        ("headlamp",),
    ),
    VagueNeed(
        ("cook dinner at the campsite", "something to boil water while backpacking"),
        ("camping stove",),
    ),
    VagueNeed(
        (
            "my back hurts from sitting all day",
            "chair for long hours at the computer",
            "something to fix my posture while working",
        ),
        ("office chair",),
        tags=("ergonomic",),
        substitutes=("standing desk",),
    ),
    VagueNeed(
        ("i want to stop sitting all day at work", "desk i can stand at"), ("standing desk",)
    ),
    VagueNeed(
        ("light thats easy on the eyes for reading", "lamp for late night studying"),
        ("desk lamp",),
        tags=("dimmable", "reading"),
    ),
    VagueNeed(
        ("something for my dry skin", "my face feels tight and flaky", "cream for dry winter skin"),
        ("face moisturizer",),
        spec=("skin type", ("dry",)),
        substitutes=("facial cleanser",),
    ),
    VagueNeed(
        (
            "protect my face from the sun",
            "daily spf for my face",
            "sun protection for a beach trip",
        ),
        ("sunscreen",),
        tags=("spf",),
        substitutes=("face moisturizer",),
    ),
    VagueNeed(
        ("skincare for sensitive skin", "gentle face wash that wont irritate my skin"),
        ("facial cleanser", "face moisturizer"),
        spec=("skin type", ("sensitive",)),
    ),
    VagueNeed(
        ("gift for a 5 year old", "toy for a kindergartener", "birthday present for a preschooler"),
        ("building blocks set", "plush toy"),
        spec=("age", ("0+", "3+", "5+")),
    ),
    VagueNeed(
        ("something for family game night", "fun game to play with the kids"), ("board game",)
    ),
    VagueNeed(
        ("toy that teaches building and engineering", "stem toy for my nephew"),
        ("building blocks set",),
        tags=("educational",),
    ),
    VagueNeed(
        ("cozy stuff for movie night on the couch", "something warm to curl up with"),
        ("throw blanket",),
    ),
    VagueNeed(
        ("sheets that sleep cool in summer", "i get hot at night, need new bedding"),
        ("bed sheet set",),
        tags=("cooling",),
    ),
    VagueNeed(
        ("fluffy towels for the bathroom", "the softest towels you have"),
        ("bath towel set",),
        tags=("soft",),
    ),
    VagueNeed(
        ("towels that dry fast", "towels that dont stay damp"),
        ("bath towel set",),
        tags=("quick-dry",),
    ),
    VagueNeed(
        (
            "a bag for my laptop and gym clothes",
            "backpack for work that fits a laptop",
            "bag to carry my laptop to class",
        ),
        ("backpack",),
        tags=("laptop-sleeve",),
        substitutes=("tote bag",),
    ),
    VagueNeed(
        ("luggage that fits in the overhead bin", "bag for a weekend trip on a plane"),
        ("carry-on suitcase",),
        substitutes=("duffel bag",),
    ),
    VagueNeed(
        ("outfit for a summer wedding", "something to wear to a wedding"),
        ("dress",),
        tags=("formal",),
    ),
    VagueNeed(
        ("something stretchy for yoga class", "pants for pilates"),
        ("leggings",),
        tags=("yoga", "stretch"),
    ),
    VagueNeed(
        ("light jacket for chilly evenings", "something to layer on cool spring mornings"),
        ("fleece jacket", "hoodie"),
    ),
    VagueNeed(
        ("raincoat that packs small for travel", "something waterproof for a rainy vacation"),
        ("rain jacket",),
        tags=("packable", "travel"),
    ),
    VagueNeed(
        ("basic tees for everyday", "plain shirts to wear under a sweater"),
        ("t-shirt",),
        tags=("everyday",),
    ),
    VagueNeed(("shoes for the beach", "something open for hot summer days"), ("sandal",)),
    VagueNeed(
        ("comfortable shoes for sightseeing", "walking around a city all day on vacation"),
        ("sneaker", "running shoe"),
        tags=("travel", "cushioned"),
    ),
    VagueNeed(
        ("headset for zoom calls", "headphones with a good mic for working from home"),
        ("over-ear headphones", "wireless earbuds"),
        tags=("mic",),
    ),
    VagueNeed(
        ("watch i can wear swimming", "tracker for swimming laps"),
        ("smartwatch", "fitness tracker"),
        tags=("swimproof",),
    ),
    VagueNeed(
        ("cuddly toy for a newborn", "soft toy for a baby shower"),
        ("plush toy",),
        spec=("age", ("0+",)),
    ),
    VagueNeed(
        ("fun outdoor toy for a 10 year old", "something fast for a kid to race outside"),
        ("rc car",),
        spec=("age", ("6+", "8+")),
    ),
    VagueNeed(
        ("setting up a home office", "work from home desk setup"),
        ("office chair", "standing desk", "desk lamp"),
        tags=("work-from-home",),
    ),
    VagueNeed(
        ("pack light for a week of travel", "lightweight bag for backpacking europe"),
        ("backpack",),
        tags=("travel", "lightweight"),
        substitutes=("duffel bag", "carry-on suitcase"),
    ),
    VagueNeed(
        ("gym bag that fits shoes and a towel", "bag to take to the gym"),
        ("duffel bag",),
        tags=("gym",),
        substitutes=("backpack",),
    ),
    VagueNeed(
        ("something to keep me warm on my walk to work", "warm coat for commuting in winter"),
        ("down jacket",),
        tags=("commute", "winter"),
        substitutes=("fleece jacket",),
    ),
    VagueNeed(
        ("make lattes at home", "skip the coffee shop and make cappuccinos at home"),
        ("espresso machine",),
        tags=("milk-frother",),
        substitutes=("coffee maker",),
    ),
    VagueNeed(
        ("run on trails without slipping", "shoes for muddy trail runs"),
        ("trail running shoe",),
        tags=("slip-resistant", "trail"),
        substitutes=("running shoe", "hiking boot"),
    ),
)

# Phrases that cover several product types at once: (wording, types, substitutes).
TYPE_GROUPS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("boots", ("hiking boot", "winter boot"), ()),
    ("headphones or earbuds", ("over-ear headphones", "wireless earbuds"), ()),
    ("luggage", ("carry-on suitcase", "duffel bag"), ()),
    ("pots and pans or a good skillet", ("cookware set", "skillet"), ()),
    ("something to track my workouts", ("smartwatch", "fitness tracker"), ()),
    ("coffee machine or espresso maker", ("coffee maker", "espresso machine"), ()),
)

WRAPPERS = (
    "looking for {q}",
    "need {q}",
    "show me {q}",
    "any {q}?",
    "do you sell {q}",
    "{q} recommendations",
    "i need {q}",
    "want to buy {q}",
    "{q} pls",
    "got any {q}",
)

GENDER_WORDS = MappingProxyType(
    {
        "men": (("men's", "mens", "male"), ("for men", "for him", "for a guy")),
        "women": (("women's", "womens", "ladies"), ("for women", "for her", "for a woman")),
    }
)

COLOUR_WORDS = MappingProxyType(
    {
        "grey": ("grey", "gray"),
        "navy": ("navy", "navy blue"),
        "beige": ("beige", "cream colored"),
    }
)

APPAREL_SIZE_WORDS = MappingProxyType(
    {
        "XS": ("xs", "extra small"),
        "S": ("s", "small"),
        "M": ("m", "medium"),
        "L": ("l", "large"),
        "XL": ("xl", "extra large"),
        "XXL": ("xxl", "2xl"),
    }
)

# Round budgets shoppers name: "under $50", "between $100 and $150".
NICE_PRICES = (
    (5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 60, 70, 75, 80, 90)
    + (100, 120, 125, 150, 175, 200, 250, 300, 350, 400, 450, 500)
    + (600, 700, 750, 800, 900, 1000, 1200, 1500)
)
MAX_PRICE_WORDS = (
    "under ${v}",
    "under {v}",
    "less than ${v}",
    "below {v} dollars",
    "for under ${v}",
    "max ${v}",
    "${v} or less",
    "no more than ${v}",
    "under {v} bucks",
    "budget ${v}",
)
PRICE_RANGE_WORDS = (
    "between ${lo} and ${hi}",
    "${lo}-{hi}",
    "{lo} to {hi} dollars",
    "in the ${lo}-${hi} range",
    "from ${lo} to ${hi}",
)
IN_STOCK_WORDS = (
    "in stock",
    "thats in stock",
    "available now",
    "in stock now",
    "that can ship today",
)
RATING_WORDS = (
    ("highly rated", 4.0, "pre"),
    ("top rated", 4.0, "pre"),
    ("with good reviews", 4.0, "post"),
    ("rated 4 stars or more", 4.0, "post"),
    ("4.5 stars and up", 4.5, "post"),
    ("with 4+ stars", 4.0, "post"),
)

COMMON_TYPOS = MappingProxyType(
    {
        "headphones": ("hedphones", "headphons", "headfones"),
        "wireless": ("wireles", "wirless"),
        "running": ("runing", "runnin"),
        "sneakers": ("snekers", "sneakrs", "sneekers"),
        "jacket": ("jaket", "jackt", "jackett"),
        "waterproof": ("waterprof", "watreproof", "water proof"),
        "backpack": ("bakpack", "backpak"),
        "bluetooth": ("blutooth", "bluetoth"),
        "espresso": ("expresso",),
        "sleeping": ("sleping",),
        "leggings": ("legings", "leggins"),
        "moisturizer": ("moisturizor", "moisterizer"),
        "sunscreen": ("sunscren", "suncreen"),
        "dumbbells": ("dumbells", "dumbels"),
        "smartwatch": ("smartwach", "smart wach"),
        "blender": ("blendr", "blander"),
        "kettle": ("kettel", "ketle"),
        "suitcase": ("suitecase", "sutcase"),
        "luggage": ("lugage", "luggauge"),
        "earbuds": ("earbudds", "earbds"),
        "speaker": ("speeker", "spekaer"),
        "hiking": ("hikking", "hikeing"),
        "coffee": ("cofee", "coffe"),
        "hoodie": ("hoodi", "hoddie"),
        "sandals": ("sandles", "sandels"),
        "blanket": ("blankit", "blancket"),
        "towels": ("towles", "towells"),
        "cookware": ("cookwear",),
        "skillet": ("skilet", "skillit"),
        "chair": ("chiar", "chari"),
        "women's": ("womans", "woman's"),
        "womens": ("womans", "wmns"),
        "trainers": ("trainres", "traners"),
        "cleanser": ("clenser", "cleanzer"),
        "raincoat": ("rainkoat", "raincaot"),
        "fleece": ("fleese", "flece"),
        "shoes": ("shoos", "sheos"),
        "boots": ("botts", "bootes"),
        "jeans": ("jeens",),
        "dresses": ("dresess", "dreses"),
        "tent": ("tnet",),
        "stuffed": ("stuffd",),
        "puffer": ("pufer",),
        "between": ("betwen", "bewteen"),
        "under": ("undr", "uner"),
        "something": ("somthing", "sumthing"),
        "comfortable": ("comfortible", "confortable"),
        "recommendations": ("recomendations", "reccomendations"),
    }
)

_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def misspell(text: str, rng: random.Random) -> str:
    """Put one or two realistic typos into a query; returns the text unchanged only if no word
    is long enough to misspell.

    Known misspellings ("hedphones") are used where a word has one, otherwise a letter is
    dropped, doubled, swapped with its neighbour or hit on the next key.
    """
    words = text.split(" ")
    candidates = [
        i for i, w in enumerate(words) if (len(w) >= 4 and w.isalpha()) or w in COMMON_TYPOS
    ]
    if not candidates:
        return text
    known = [i for i in candidates if words[i] in COMMON_TYPOS]
    count = 2 if len(candidates) > 2 and rng.random() < 0.3 else 1
    chosen: list[int] = []
    if known and rng.random() < 0.8:
        chosen.append(rng.choice(known))
    while len(chosen) < count:
        index = rng.choice(candidates)
        if index not in chosen:
            chosen.append(index)
    for index in chosen:
        word = words[index]
        if word in COMMON_TYPOS and rng.random() < 0.8:
            words[index] = rng.choice(COMMON_TYPOS[word])
        else:
            words[index] = _mangle(word, rng)
    return " ".join(words)


def _mangle(word: str, rng: random.Random) -> str:
    for _ in range(10):
        i = rng.randint(1, len(word) - 2)
        op = rng.choice(("drop", "double", "swap", "neighbour"))
        if op == "drop":
            typo = word[:i] + word[i + 1 :]
        elif op == "double":
            typo = word[:i] + word[i] + word[i:]
        elif op == "swap":
            typo = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        else:
            typo = word[:i] + _neighbour_key(word[i], rng) + word[i + 1 :]
        if typo != word:
            return typo
    return word[:-1]


def _neighbour_key(char: str, rng: random.Random) -> str:
    for row in _KEYBOARD_ROWS:
        at = row.find(char)
        if at >= 0:
            options = [row[j] for j in (at - 1, at + 1) if 0 <= j < len(row)]
            return rng.choice(options)
    return char
