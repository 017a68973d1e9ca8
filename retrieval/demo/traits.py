"""Product traits for the demo catalog: features and use cases with the sentences that sell them.

A trait is one tag the generator can give a product ("waterproof", "commute"). Its tag is
stored in `attributes["features"]` or `attributes["use"]`, its title word (if any) can appear
in the product title, and one of its phrases goes into the description. The eval-set
judge reads the tags, so the words a shopper uses for a need ("keep me dry") and the
products labelled for it meet through these traits.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class Trait:
    """One feature or use case: its tag, an optional title word and description phrases."""

    tag: str
    title: str
    phrases: tuple[str, ...]


_FEATURES = (
    Trait(
        "cushioned",
        "Cushioned",
        (
            "Plush cushioning softens every step on hard pavement.",
            "Extra cushioning absorbs impact and eases the load on knees and joints.",
        ),
    ),
    Trait(
        "breathable",
        "Breathable",
        (
            "Breathable construction lets heat escape, so you stay cool and comfortable.",
            "Airy, breathable panels keep sweat from building up on warm days.",
        ),
    ),
    Trait(
        "lightweight",
        "Lightweight",
        (
            "Lightweight enough to carry all day and easy to pack for travel.",
            "It weighs next to nothing, which makes it an easy travel companion.",
        ),
    ),
    Trait(
        "reflective",
        "Reflective",
        (
            "Reflective details keep you visible to drivers at dawn and dusk.",
            "Reflective trim helps you stay seen on dark evening commutes.",
        ),
    ),
    Trait(
        "wide-fit",
        "Wide-Fit",
        (
            "A roomy wide fit gives toes space to spread.",
            "Cut on a wider last for feet that feel squeezed in standard widths.",
        ),
    ),
    Trait(
        "slip-resistant",
        "All-Terrain",
        (
            "A grippy outsole holds on wet rock, mud and icy ground.",
            "Deep lugs give sure footing on slippery trails and sidewalks.",
        ),
    ),
    Trait(
        "waterproof",
        "Waterproof",
        (
            "Fully waterproof, so downpours, puddles and splashes are no problem.",
            "Waterproof from top to bottom, built to shrug off heavy rain and slush.",
        ),
    ),
    Trait(
        "water-resistant",
        "Water-Resistant",
        (
            "A water-resistant finish shrugs off light rain and spills.",
            "Handles drizzle and splashes without soaking through.",
        ),
    ),
    Trait(
        "durable",
        "Rugged",
        (
            "Rugged construction stands up to drops, dust and years of hard use.",
            "Built tough, with reinforced stitching and hard-wearing materials.",
        ),
    ),
    Trait(
        "washable",
        "",
        (
            "Machine washable for easy care.",
            "Toss it in the washing machine when it needs a refresh.",
        ),
    ),
    Trait(
        "quick-dry",
        "Quick-Dry",
        (
            "Quick-drying fabric wicks sweat away and dries fast after a rinse.",
            "Dries in a flash, whether it's soaked by sweat, rain or the sea.",
        ),
    ),
    Trait(
        "insulated",
        "Insulated",
        (
            "Insulation traps warmth on freezing winter days.",
            "Warm insulation keeps the cold out when temperatures drop below freezing.",
        ),
    ),
    Trait(
        "packable",
        "Packable",
        (
            "Packs down into its own pocket, so it fits in any bag.",
            "Squeezes into a small stuff sack for trips where space is tight.",
        ),
    ),
    Trait(
        "cozy",
        "Cozy",
        (
            "Soft, cozy and warm, ideal for chilly evenings.",
            "Feels snug and soft against the skin on cold days.",
        ),
    ),
    Trait(
        "pockets",
        "",
        (
            "Deep pockets keep your phone, keys and cards close at hand.",
            "Handy pockets mean you can leave the bag at home.",
        ),
    ),
    Trait(
        "stretch",
        "Stretch",
        (
            "Stretchy fabric moves with you and keeps its shape all day.",
            "A touch of stretch gives freedom to move without sagging.",
        ),
    ),
    Trait("slim-fit", "Slim-Fit", ("A slim fit that looks sharp without feeling tight.",)),
    Trait("relaxed-fit", "Relaxed-Fit", ("A relaxed fit with plenty of room to move.",)),
    Trait(
        "wrinkle-resistant",
        "Wrinkle-Free",
        ("Wrinkle-resistant fabric comes out of a suitcase looking fresh.",),
    ),
    Trait(
        "high-waisted",
        "High-Rise",
        ("A high-rise waistband stays put through squats, lunges and long runs.",),
    ),
    Trait(
        "laptop-sleeve",
        "Laptop",
        (
            "A padded sleeve fits laptops up to 16 inches.",
            "A padded laptop compartment keeps your computer safe on the go.",
        ),
    ),
    Trait(
        "spinner",
        "Spinner",
        ("Smooth 360-degree spinner wheels glide through airports and train stations.",),
    ),
    Trait("expandable", "Expandable", ("Expands for extra packing room on the way home.",)),
    Trait(
        "noise-cancelling",
        "Noise-Cancelling",
        (
            "Active noise cancelling blocks out engine hum, traffic and chatty offices.",
            "One button quiets planes, trains and open-plan offices.",
        ),
    ),
    Trait(
        "wireless",
        "Wireless",
        (
            "A stable Bluetooth connection means no cables to tangle.",
            "Pairs over Bluetooth in seconds with phones, tablets and laptops.",
        ),
    ),
    Trait(
        "long-battery",
        "",
        (
            "The battery lasts for days on a single charge.",
            "Long battery life gets you through long flights and busy weeks.",
        ),
    ),
    Trait(
        "mic",
        "",
        (
            "A clear built-in microphone handles calls and video meetings.",
            "Crisp microphones make it easy to take calls hands-free.",
        ),
    ),
    Trait(
        "bass",
        "Bass",
        (
            "Deep, punchy bass brings your favourite playlists to life.",
            "Rich sound with booming bass, even at high volume.",
        ),
    ),
    Trait(
        "sweatproof",
        "Sport",
        (
            "Sweat- and splash-proof for hard workouts and runs in the rain.",
            "A secure fit that stays put through sprints, burpees and sweaty sessions.",
        ),
    ),
    Trait(
        "portable",
        "Portable",
        (
            "Small and portable enough to take to the beach, the park or a picnic.",
            "Compact and easy to carry from room to room or out the door.",
        ),
    ),
    Trait("gps", "GPS", ("Built-in GPS tracks your route, pace and distance without your phone.",)),
    Trait("heart-rate", "", ("Tracks heart rate around the clock and during every workout.",)),
    Trait(
        "swimproof",
        "Swimproof",
        ("Water-resistant to 50 meters, so you can wear it in the pool or the sea.",),
    ),
    Trait(
        "sleep-tracking", "", ("Sleep tracking shows how well you rested and when to wind down.",)
    ),
    Trait(
        "programmable",
        "Programmable",
        (
            "A programmable timer means things are ready exactly when you want them.",
            "Set it the night before and wake up to a hot pot of coffee.",
        ),
    ),
    Trait(
        "compact",
        "Compact",
        (
            "A compact footprint that suits small apartments and dorm rooms.",
            "Small enough to tuck into a cupboard or a crowded corner.",
        ),
    ),
    Trait("dishwasher-safe", "", ("Dishwasher-safe parts make clean-up quick.",)),
    Trait("quiet", "Quiet", ("Runs quietly, so it won't wake the rest of the house.",)),
    Trait("milk-frother", "", ("A steam wand froths milk for lattes and cappuccinos at home.",)),
    Trait(
        "powerful",
        "High-Power",
        (
            "A powerful motor crushes ice and frozen fruit for silky smoothies.",
            "Enough power for nut butters, soups and frozen drinks.",
        ),
    ),
    Trait(
        "nonstick",
        "Nonstick",
        (
            "A nonstick surface releases eggs and pancakes with barely any oil.",
            "Food slides right off the nonstick coating, so washing up takes seconds.",
        ),
    ),
    Trait("induction-ready", "Induction", ("Works on gas, electric and induction cooktops.",)),
    Trait(
        "oven-safe",
        "",
        ("Oven-safe to 500°F, so you can sear on the stove and finish in the oven.",),
    ),
    Trait("fast-boil", "Rapid-Boil", ("Boils a full pot of water in about three minutes.",)),
    Trait(
        "temperature-control",
        "Variable-Temperature",
        ("Preset temperatures for green tea, black tea, coffee and baby formula.",),
    ),
    Trait(
        "non-slip",
        "Non-Slip",
        (
            "A non-slip grip keeps you steady, even in sweaty hot yoga.",
            "Grippy on both sides so it stays put on wood floors and carpet.",
        ),
    ),
    Trait(
        "extra-thick",
        "Extra-Thick",
        ("Extra-thick padding cushions knees and wrists on hard floors.",),
    ),
    Trait(
        "adjustable",
        "Adjustable",
        (
            "Adjusts in seconds, so one piece of kit covers many needs.",
            "Fully adjustable to fit different bodies and tasks.",
        ),
    ),
    Trait(
        "textured", "Textured", ("A textured surface digs into knots in calves, quads and back.",)
    ),
    Trait(
        "easy-setup",
        "Instant",
        (
            "Sets up in minutes, even on your own.",
            "Color-coded poles and clips make pitching it quick and simple.",
        ),
    ),
    Trait(
        "rechargeable", "Rechargeable", ("Recharges over USB-C, so there are no batteries to buy.",)
    ),
    Trait("bright", "Ultra-Bright", ("A bright beam lights up the path far ahead.",)),
    Trait(
        "dimmable",
        "Dimmable",
        (
            "Dimmable, flicker-free light is easy on the eyes during late-night reading.",
            "Several brightness and color settings, from cool daylight to warm evening light.",
        ),
    ),
    Trait("usb-charging", "", ("A built-in USB port charges your phone while you work.",)),
    Trait(
        "ergonomic",
        "Ergonomic",
        (
            "Ergonomic lumbar support eases lower-back strain during long days at the desk.",
            "Designed with physiotherapists to support good posture for hours of sitting.",
        ),
    ),
    Trait(
        "hydrating",
        "Hydrating",
        (
            "A deeply hydrating formula soothes dry, tight skin.",
            "Locks in moisture with hyaluronic acid and ceramides.",
        ),
    ),
    Trait(
        "fragrance-free",
        "Fragrance-Free",
        ("Fragrance-free and gentle enough for sensitive skin.",),
    ),
    Trait("vegan", "Vegan", ("Vegan and cruelty-free, with no animal-derived ingredients.",)),
    Trait(
        "spf",
        "SPF 50",
        (
            "Broad-spectrum SPF 50 protection for beach days and daily sun.",
            "Protects against UVA and UVB rays without a white cast.",
        ),
    ),
    Trait(
        "gentle", "Gentle", ("A gentle, low-foam formula that cleans without stripping the skin.",)
    ),
    Trait(
        "educational",
        "STEM",
        ("Teaches early engineering, counting and problem-solving through play.",),
    ),
    Trait(
        "quick-to-learn",
        "",
        ("Easy rules you can learn in five minutes, with rounds that last about half an hour.",),
    ),
    Trait(
        "hypoallergenic",
        "Hypoallergenic",
        ("Hypoallergenic materials are friendly to allergy sufferers.",),
    ),
    Trait("high-speed", "Turbo", ("Reaches speeds of up to 20 mph on grass, gravel and dirt.",)),
    Trait("cooling", "Cooling", ("A cooling, breathable weave sleeps cool on hot summer nights.",)),
    Trait("soft", "Ultra-Soft", ("Ultra-soft and absorbent, and it gets softer with every wash.",)),
)

_USES = (
    Trait(
        "running",
        "",
        (
            "Built for daily runs, from easy 5Ks to marathon training.",
            "A dependable partner for road runs and interval sessions.",
        ),
    ),
    Trait("trail", "", ("Handles rocky, muddy trails with confidence.",)),
    Trait(
        "hiking",
        "",
        (
            "Made for day hikes and long weekends on the trail.",
            "A trusty companion for hill walks and mountain hikes.",
        ),
    ),
    Trait("backpacking", "", ("Light and tough enough for multi-day backpacking trips.",)),
    Trait(
        "winter",
        "",
        (
            "Ready for winter hikes, snowy walks and icy mornings.",
            "Keeps you going through cold, wet winter weather.",
        ),
    ),
    Trait(
        "commute",
        "",
        (
            "A smart pick for the daily commute, on foot, by bike or on the train.",
            "Made for getting to work and back, whatever the weather.",
        ),
    ),
    Trait("cycling", "", ("Cut with a longer back and room to move for riding to work by bike.",)),
    Trait(
        "everyday",
        "",
        (
            "An easy everyday choice that goes with almost anything.",
            "The kind of piece you reach for every single day.",
        ),
    ),
    Trait("casual", "", ("A relaxed weekend staple for errands, coffee runs and lazy Sundays.",)),
    Trait(
        "travel",
        "",
        (
            "Great for travel, from weekend getaways to long-haul flights.",
            "A favorite for travelers who like to pack light.",
        ),
    ),
    Trait("beach", "", ("Take it to the beach, the pool or the backyard.",)),
    Trait("summer", "", ("Light and easy to wear on hot summer days.",)),
    Trait(
        "camping",
        "",
        (
            "A dependable companion for camping trips and festivals.",
            "Earns its place in the car for weekends at the campsite.",
        ),
    ),
    Trait("gym", "", ("Works well at the gym for strength and cardio sessions.",)),
    Trait("yoga", "", ("Suited to yoga, pilates and stretching at home or in the studio.",)),
    Trait(
        "home-workout",
        "",
        (
            "Perfect for home workouts in a spare room or a small apartment.",
            "Turns a corner of the living room into a home gym.",
        ),
    ),
    Trait("recovery", "", ("Helps sore muscles recover after long runs and hard training days.",)),
    Trait("formal", "", ("Dressy enough for weddings, parties and evening events.",)),
    Trait(
        "office",
        "",
        (
            "Looks smart enough for the office.",
            "A polished choice for the workplace.",
        ),
    ),
    Trait("students", "", ("A smart pick for students and dorm rooms.",)),
    Trait("party", "", ("Loud enough to get a backyard party going.",)),
    Trait("gaming", "", ("Comfortable through long gaming sessions and movie marathons.",)),
    Trait(
        "work-from-home",
        "",
        (
            "Made for long days working from home.",
            "A solid upgrade for a home office or a desk in the corner of the bedroom.",
        ),
    ),
    Trait(
        "small-kitchen",
        "",
        ("A good fit for small kitchens and apartments with little counter space.",),
    ),
    Trait("family", "", ("Sized for families and batch cooking.",)),
    Trait("mornings", "", ("Makes busy weekday mornings a little easier.",)),
    Trait("entertaining", "", ("Great for entertaining guests and dinner parties.",)),
    Trait("reading", "", ("Focused light for reading, homework and crafts.",)),
    Trait("daily-skincare", "", ("Fits into a simple morning and evening skincare routine.",)),
    Trait("game-night", "", ("A hit for family game night and get-togethers with friends.",)),
    Trait("gift", "", ("Makes a thoughtful gift for birthdays and holidays.",)),
    Trait("sleep", "", ("Helps you relax and sleep better.",)),
    Trait("lounging", "", ("Made for curling up on the couch for movie nights.",)),
    Trait("outdoor-play", "", ("Gets kids outside and racing around the yard or the park.",)),
)

FEATURES: MappingProxyType[str, Trait] = MappingProxyType({t.tag: t for t in _FEATURES})
USES: MappingProxyType[str, Trait] = MappingProxyType({t.tag: t for t in _USES})
