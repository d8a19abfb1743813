#!/usr/bin/env python3
"""Write prodcat's small demo catalog: examples/demo_catalog.csv.

The catalog is invented for this project (brands, products and texts are all
made up here; nothing is taken from a real data set). It is generated from the
per-category word lists below with a fixed seed, so running this script again
gives a byte-identical file.

    python examples/make_demo_catalog.py            # writes examples/demo_catalog.csv
    python examples/make_demo_catalog.py -o out.csv

Columns: sku, title, description, category, tags, price

Why the catalog is deliberately messy
-------------------------------------
A demo where every product is easy would let any classifier score 100% and
would teach nothing about evaluation. Real catalogs are not like that, so this
one has, on purpose (see NOISE SETTINGS below):

* imbalanced classes (largest about 4x the smallest);
* vocabulary shared across categories: colours, words like "set", "pack",
  "kit", "pro", and brands that sell in two categories;
* borderline products that sit between two categories (a sports water bottle
  in Kitchen, a running shirt in Shirts, a pillow mist in Bedding...);
* short, uninformative titles ("Nordvik Grey Essentials Set") whose
  description is empty or generic marketing text;
* about 3% re-listed products whose title exactly repeats another product's
  title in the same category;
* a few pairs of identical titles filed under DIFFERENT categories (label
  conflicts: no model can get both right);
* about 2% empty descriptions;
* some non-ASCII text (é, ü, ™, –) to exercise encoding handling.

The aim is a catalog on which a good text classifier lands at roughly 85-95%
accuracy rather than 100%.

Standard library only.
"""

from __future__ import annotations

import argparse
import csv
import random
import re
from pathlib import Path

SEED = 7

# --------------------------------------------------------------------------
# Vocabulary shared by every category
# --------------------------------------------------------------------------

COLOURS = [
    "Black", "White", "Navy", "Grey", "Charcoal", "Sage Green", "Olive",
    "Sand", "Beige", "Ivory", "Blush Pink", "Burgundy", "Sky Blue", "Teal",
    "Terracotta", "Mustard", "Red", "Midnight Blue", "Silver", "Rose Gold",
]

# Titles with these words could belong anywhere: "Kova Black Starter Kit".
GENERIC_TITLE_WORDS = [
    "Essentials Set", "Starter Kit", "Value Pack", "Pro Edition", "Gift Set",
    "Classic Bundle", "Everyday Kit", "Travel Set", "Pro Set", "Mini Kit",
    "Deluxe Set", "Combo Pack", "Signature Collection",
]

PACKS = ["2-Pack", "3-Pack", "Set of 2", "Set of 4", "Pack of 3", "Bundle"]

# Marketing sentences that say nothing about the category.
GENERIC_SENTENCES = [
    "Makes a thoughtful gift for friends and family.",
    "Ships in plastic-free, recyclable packaging.",
    "Backed by our 2-year warranty and free 30-day returns.",
    "A customer favourite, now available in new colours.",
    "Designed in Europe and built to last for years.",
    "Part of our everyday essentials range.",
    "Pro quality at an honest, everyday price.",
    "Available as a single item or as a money-saving value pack.",
    "Limited edition – once it is gone, it is gone.",
    "Thousands of five-star reviews from happy customers.",
    "Our bestseller, refreshed for this season.",
    "Simple, practical and made to be used every day.",
    "Order before 2 pm for same-day dispatch.",
    "Colours may vary slightly from the photos.",
]

SHARED_TAGS = ["gift", "sale", "new", "bestseller", "eco", "premium", "value"]

# --------------------------------------------------------------------------
# Categories
#
# n            final number of products in the category (re-listed
#              duplicates and label conflicts are counted in it)
# brands       invented brands; a few appear in two categories on purpose
# nouns        ordinary products of the category
# cross_nouns  products that legitimately belong here but read like another
#              category; several appear in two categories' lists (a water
#              bottle is sold as Kitchen by one shop, as Fitness by another).
#              The source of honest classifier mistakes.
# adjectives, materials, specs   title building blocks
# features, uses                 description building blocks
# templates    description sentences; {noun} {adj} {material} {colour}
#              {feature} {use} are filled in lower case
# tags         category tag pool (the multi-label demo draws from this,
#              plus material/colour-derived tags and SHARED_TAGS)
# price        (low, high) in the shop currency
# packs        optional pack/bundle words (default: PACKS)
# --------------------------------------------------------------------------

CATEGORIES: dict[str, dict] = {
    "Apparel > Shirts": {
        "n": 112,
        "brands": ["Harbor & Pine", "Kova", "Northline", "Tidewear",
                   "Loomcraft", "Bristow", "Stridewell"],
        "nouns": ["T-Shirt", "Oxford Shirt", "Polo Shirt", "Henley Shirt",
                  "Flannel Shirt", "Linen Shirt", "Button-Down Shirt",
                  "Tank Top", "Long Sleeve Tee", "Denim Shirt", "Graphic Tee",
                  "Camp Collar Shirt", "Blouse", "Tunic"],
        "cross_nouns": ["Running Shirt", "Training Tank Top", "Sleep Shirt",
                        "Kids Dinosaur Tee"],
        "adjectives": ["Slim Fit", "Relaxed Fit", "Classic", "Oversized",
                       "Short Sleeve", "Long Sleeve", "Crew Neck", "V-Neck",
                       "Stretch", "Everyday", "Washed"],
        "materials": ["Cotton", "Organic Cotton", "Linen", "Jersey", "Flannel",
                      "Chambray", "Bamboo", "Merino", "Piqué Cotton"],
        "specs": ["Men's", "Women's", "Unisex", "Size M", "Size L",
                  "Regular Fit", "3-Pack"],
        "features": ["a reinforced collar", "double-stitched seams",
                     "a tailored back yoke", "mother-of-pearl buttons",
                     "a soft brushed finish", "a curved hem that works tucked or untucked",
                     "pre-shrunk fabric that keeps its shape"],
        "uses": ["the office", "weekend errands", "warm summer evenings",
                 "layering under a jacket", "travel days", "casual Fridays"],
        "templates": [
            "A {adj} {noun} cut from breathable {material} in {colour}.",
            "This {noun} is made from {material} and finished with {feature}.",
            "Easy to wear for {use}, with {feature2}.",
            "Our {material} {noun} is machine washable and holds its colour wash after wash.",
            "True to size; size up for a looser, relaxed fit.",
            "Pairs well with chinos or jeans for {use}.",
        ],
        "tags": ["men", "women", "unisex", "casual", "summer", "office",
                 "shirt", "tee", "layering"],
        "price": (12, 69),
    },
    "Apparel > Shoes": {
        "n": 56,
        "brands": ["Stridewell", "Pavé", "Trailmark", "Kova", "Ostrander",
                   "Brisa"],
        "nouns": ["Running Shoes", "Sneakers", "Loafers", "Chelsea Boots",
                  "Hiking Boots", "Sandals", "Espadrilles", "Slip-On Shoes",
                  "Derby Shoes", "Ankle Boots", "Canvas Sneakers",
                  "Trail Runners", "Ballet Flats"],
        "cross_nouns": ["Training Shoes", "Sports Socks", "Slippers",
                        "Kids Light-Up Sneakers"],
        "adjectives": ["Lightweight", "Waterproof", "Cushioned", "Classic",
                       "Low-Top", "High-Top", "Wide Fit", "Vegan"],
        "materials": ["Leather", "Suede", "Canvas", "Knit Mesh", "Nubuck",
                      "Recycled Rubber"],
        "specs": ["Men's", "Women's", "EU 42", "EU 38", "UK 9", "Kids'"],
        "features": ["a cushioned memory-foam insole", "a grippy rubber outsole",
                     "a padded heel collar", "a Goodyear-welted sole",
                     "a breathable mesh lining", "quick-lace eyelets"],
        "uses": ["long days on your feet", "city walking", "muddy trails",
                 "the gym", "summer holidays", "smart-casual evenings"],
        "templates": [
            "{adj} {noun} in {colour} {material} with {feature}.",
            "Built for {use}, with {feature2}.",
            "The {material} upper softens with wear and moulds to your foot.",
            "Fits true to size; half sizes should order the next size up.",
            "Supportive {noun} that stay comfortable from morning to night.",
        ],
        "tags": ["footwear", "men", "women", "running", "outdoor", "casual",
                 "leather", "walking"],
        "price": (29, 189),
        "packs": ["2 Pairs", "Twin Pack", "Bundle"],
    },
    "Home > Kitchen": {
        "n": 95,
        "brands": ["Sölve", "Copperleaf", "Nordvik", "Brava Cucina",
                   "Kettleworks", "Hearthstone"],
        "nouns": ["Chef's Knife", "Frying Pan", "Saucepan", "Cutting Board",
                  "Knife Block Set", "Mixing Bowls", "French Press",
                  "Dutch Oven", "Measuring Cups", "Utensil Set",
                  "Salad Spinner", "Baking Sheet", "Spice Rack", "Kettle",
                  "Box Grater", "Stand Mixer"],
        "cross_nouns": ["Water Bottle", "Kids Baking Set", "Digital Scale",
                        "Shaker Bottle", "Coffee Grinder"],
        "adjectives": ["Non-Stick", "Professional", "Compact", "Heavy-Duty",
                       "Dishwasher-Safe", "Induction-Ready", "Nesting"],
        "materials": ["Stainless Steel", "Cast Iron", "Bamboo", "Ceramic",
                      "Enamelled", "Borosilicate Glass", "Acacia Wood",
                      "Copper"],
        "specs": ["Large", "Medium", "Family Size", "20 cm", "28 cm",
                  "Set of 3"],
        "features": ["a smooth, easy-clean finish", "non-slip silicone feet",
                     "a PFOA-free coating", "an even-heating base",
                     "a hanging loop for easy storage", "a ten-year guarantee"],
        "uses": ["weeknight dinners", "slow-cooked stews", "everyday meal prep",
                 "baking bread", "smoothies and purées", "Sunday roasts"],
        "templates": [
            "A {adj} {noun} made from {material}, ideal for {use}.",
            "Made from durable {material} with {feature}.",
            "Works on gas, electric and induction hobs and is oven-safe to 220 °C.",
            "Hand wash recommended to keep the {material} finish looking new.",
            "Everything you need in the kitchen for {use}.",
            "Comes with {feature2} and a lifetime guarantee.",
        ],
        "tags": ["kitchen", "cookware", "cooking", "baking", "dishwasher-safe",
                 "home", "tableware"],
        "price": (9, 249),
    },
    "Home > Bedding": {
        "n": 40,
        "brands": ["Nordvik", "Harbor & Pine", "Dreamloft", "Linnea",
                   "Cloudnest", "Dünenhaus"],
        "nouns": ["Duvet Cover", "Sheet Set", "Pillowcases", "Fitted Sheet",
                  "Comforter", "Throw Blanket", "Quilt", "Pillow",
                  "Mattress Topper", "Bedspread", "Duvet Insert"],
        "cross_nouns": ["Linen Spray", "Weighted Blanket", "Silk Pillowcase",
                        "Sleep Mask"],
        "adjectives": ["Percale", "Sateen", "Stonewashed", "Hypoallergenic",
                       "All-Season", "Quilted", "Breathable"],
        "materials": ["Egyptian Cotton", "Linen", "Bamboo", "Flannel",
                      "Microfibre", "Mulberry Silk", "Down-Alternative"],
        "specs": ["King Size", "Queen", "Double", "Single", "400 Thread Count",
                  "Set of 2", "200 x 200 cm"],
        "features": ["deep elasticated pockets", "hidden button closure",
                     "corner ties that keep the duvet in place",
                     "an OEKO-TEX certified weave", "a cool, crisp handle"],
        "uses": ["hot summer nights", "cosy winter evenings", "guest rooms",
                 "light sleepers", "a hotel-style bed"],
        "templates": [
            "{adj} {noun} in {material} for {use}.",
            "Woven from {material} and available in {colour}.",
            "Designed with {feature2} for a better night's sleep.",
            "Gets softer with every wash; tumble dry on low.",
            "Fits mattresses up to 35 cm deep.",
        ],
        "tags": ["bedding", "bedroom", "sleep", "cotton", "linen", "home",
                 "cosy"],
        "price": (19, 229),
    },
    "Electronics > Phones & Accessories": {
        "n": 88,
        "brands": ["Voltix", "Pulse", "Arcline", "Gripcase", "Nimbus Mobile",
                   "ChargeNest"],
        "nouns": ["Phone Case", "Screen Protector", "Wireless Charger",
                  "USB-C Cable", "Power Bank", "Car Phone Mount",
                  "Wall Charger", "Magnetic Phone Wallet", "Phone Grip",
                  "Charging Dock", "Camera Lens Protector", "Phone Stand"],
        "cross_nouns": ["Fitness Tracker", "Running Armband",
                        "Wireless Earbuds", "Kids Tablet Case"],
        "adjectives": ["Slim", "Rugged", "Fast-Charging", "Shockproof",
                       "Magnetic", "Clear", "Ultra-Thin", "Pro"],
        "materials": ["Silicone", "Tempered Glass", "Aluminium", "Vegan Leather",
                      "Braided Nylon", "TPU"],
        "specs": ["Universal", "USB-C", "6.1-Inch", "6.7-Inch", "2-Pack",
                  "for Android"],
        "features": ["raised edges that protect the camera", "PD 3.0 fast charging",
                     "drop protection up to 3 m", "a 9H hardness rating",
                     "built-in overcharge protection", "a one-hand release clip"],
        "uses": ["daily commutes", "long flights", "the car", "the desk",
                 "weekend trips"],
        "templates": [
            "{adj} {noun} made from {material} with {feature}.",
            "Compatible with most recent smartphones and tablets.",
            "Keeps your phone charged and protected for {use}.",
            "Offers {feature2} and {feature}.",
            "Installs in seconds; no tools or adhesives needed.",
        ],
        "tags": ["phone", "mobile", "charging", "usb-c", "case", "wireless",
                 "travel"],
        "price": (7, 129),
        "packs": ["2-Pack", "3-Pack", "Bundle", "Twin Pack"],
    },
    "Electronics > Audio": {
        "n": 62,
        "brands": ["Pulse", "Sonora", "Voltix", "Bassline", "Echo Ridge",
                   "Hörwerk"],
        "nouns": ["Wireless Earbuds", "Over-Ear Headphones", "Bluetooth Speaker",
                  "Soundbar", "Turntable", "Studio Monitors", "Portable Speaker",
                  "Noise Cancelling Headphones", "In-Ear Monitors",
                  "Bookshelf Speakers", "USB Microphone", "DAC Amplifier"],
        "cross_nouns": ["Sleep Headphones", "Sport Earbuds", "Shower Speaker",
                        "Kids Headphones"],
        "adjectives": ["Wireless", "Hi-Res", "Active Noise Cancelling",
                       "Waterproof", "Compact", "Studio-Grade", "Pro"],
        "materials": ["Walnut", "Aluminium", "Matte", "Fabric-Wrapped",
                      "Memory Foam"],
        "specs": ["40 mm Drivers", "30-Hour Battery", "Bluetooth 5.3", "IPX7",
                  "2.1 Channel", "120W"],
        "features": ["deep, punchy bass", "a 30-hour battery",
                     "multipoint Bluetooth pairing", "crystal-clear call microphones",
                     "AirWeave™ memory-foam ear cushions", "low-latency gaming mode"],
        "uses": ["commuting", "the gym", "home cinema", "podcast recording",
                 "late-night listening", "beach days"],
        "templates": [
            "{adj} {noun} with {feature} for {use}.",
            "Enjoy rich, balanced sound with {feature} and {feature2}.",
            "The {material} finish looks great in any room.",
            "Pairs instantly with phones, laptops and TVs.",
            "Tuned by audio engineers for detailed highs and warm mids.",
        ],
        "tags": ["audio", "music", "bluetooth", "wireless", "headphones",
                 "speaker", "sound"],
        "price": (19, 499),
        "packs": ["Bundle", "2-Pack", "Pair"],
    },
    "Beauty > Skincare": {
        "n": 70,
        "brands": ["Aurelle", "Maison Éclat", "Dermacalm", "Verdance",
                   "Lumi Skin", "Kaia"],
        "nouns": ["Face Serum", "Moisturiser", "Gel Cleanser", "Night Cream",
                  "Eye Cream", "Sunscreen SPF 50", "Toner", "Sheet Face Mask",
                  "Exfoliating Scrub", "Lip Balm", "Hyaluronic Serum",
                  "Retinol Cream", "Micellar Water"],
        "cross_nouns": ["Body Lotion", "Hand Cream Gift Set", "Silk Pillowcase",
                        "Overnight Sleep Mask", "Jade Facial Roller"],
        "adjectives": ["Hydrating", "Brightening", "Fragrance-Free", "Soothing",
                       "Anti-Ageing", "Gentle", "Oil-Free", "Vegan"],
        "materials": ["Vitamin C", "Niacinamide", "Rosehip Oil", "Aloe Vera",
                      "Ceramide", "Shea Butter", "Green Tea"],
        "specs": ["50 ml", "30 ml", "100 ml", "200 ml", "For Dry Skin",
                  "For All Skin Types"],
        "features": ["a lightweight, non-greasy texture",
                     "dermatologist-tested ingredients",
                     "a pH-balanced formula", "slow-release hydration",
                     "no parabens or sulphates"],
        "uses": ["sensitive skin", "dry, tight skin", "your morning routine",
                 "your evening routine", "dull, tired skin"],
        "templates": [
            "A {adj} {noun} with {material} for {use}.",
            "Our {noun} combines {material} with {feature}.",
            "Apply morning and evening to clean skin and massage gently.",
            "Made with {feature2}, this crème-light formula absorbs in seconds.",
            "Suitable for {use}; patch test before first use.",
        ],
        "tags": ["skincare", "face", "hydrating", "vegan", "sensitive-skin",
                 "cruelty-free", "spf"],
        "price": (8, 89),
        "packs": ["Duo", "Set of 3", "Travel Size", "Value Pack"],
    },
    "Beauty > Fragrance": {
        "n": 34,
        "brands": ["Maison Éclat", "Aurelle", "Noir Atelier", "Santalis",
                   "Verano"],
        "nouns": ["Eau de Parfum", "Eau de Toilette", "Cologne", "Perfume Oil",
                  "Body Mist", "Discovery Set", "Travel Spray", "Solid Perfume",
                  "Aftershave"],
        "cross_nouns": ["Scented Candle", "Linen Spray", "Body Lotion",
                        "Hair Mist"],
        "adjectives": ["Floral", "Woody", "Fresh", "Oriental", "Citrus",
                       "Intense", "Musky"],
        "materials": ["Bergamot", "Sandalwood", "Vanilla", "Oud", "Jasmine",
                      "Vetiver", "Neroli"],
        "specs": ["100 ml", "50 ml", "10 ml", "For Her", "For Him", "Unisex"],
        "features": ["top notes of {material}", "a warm base of amber and musk",
                     "a heart of rose and iris", "long-lasting sillage",
                     "a hand-finished glass bottle"],
        "uses": ["evenings out", "everyday wear", "special occasions",
                 "warm summer days"],
        "templates": [
            "A {adj} {noun} with {feature} and {feature2}.",
            "Opens with {material} before settling into {feature}.",
            "Spray on pulse points for a scent that lasts all day.",
            "Perfect for {use}, presented in a hand-finished glass bottle.",
        ],
        "tags": ["fragrance", "perfume", "floral", "woody", "for-her",
                 "for-him", "scent"],
        "price": (15, 165),
        "packs": ["Duo", "Set of 3", "Gift Box", "Travel Size"],
    },
    "Sports > Fitness": {
        "n": 45,
        "brands": ["Stridewell", "IronPeak", "Flexcore", "Zenmat", "Pulse",
                   "Vigor Labs"],
        "nouns": ["Yoga Mat", "Dumbbells", "Kettlebell", "Resistance Bands",
                  "Jump Rope", "Foam Roller", "Pull-Up Bar", "Ab Roller",
                  "Weight Bench", "Adjustable Dumbbell", "Exercise Ball",
                  "Push-Up Handles", "Ankle Weights"],
        "cross_nouns": ["Water Bottle", "Sports Socks", "Training Tank Top",
                        "Fitness Tracker", "Shaker Bottle", "Training Gloves"],
        "adjectives": ["Non-Slip", "Adjustable", "Heavy-Duty", "Foldable",
                       "Pro", "Home Gym", "Extra-Thick"],
        "materials": ["Natural Rubber", "Cast Iron", "Neoprene", "Steel",
                      "TPE", "Cork", "Latex"],
        "specs": ["10 kg", "2 x 5 kg", "6 mm", "183 cm", "Set of 5",
                  "16 kg"],
        "features": ["a textured non-slip grip", "colour-coded resistance levels",
                     "a carry strap", "a printed exercise guide",
                     "FlexGrip™ knurled handles", "shock-absorbing cushioning"],
        "uses": ["home workouts", "HIIT sessions", "yoga and pilates",
                 "strength training", "stretching and recovery"],
        "templates": [
            "{adj} {noun} made from {material} for {use}.",
            "Take your training further with {feature2}.",
            "Ideal for {use}, with {feature} and {feature2}.",
            "Suitable for beginners and advanced athletes alike.",
            "Stores away easily after your workout.",
        ],
        "tags": ["fitness", "workout", "gym", "yoga", "training",
                 "home-gym", "strength"],
        "price": (6, 299),
        "packs": ["Set of 2", "Pair", "Bundle", "3-Pack"],
    },
    "Toys > Building Sets": {
        "n": 28,
        "brands": ["Brickford", "Kinderbloc", "Tinkerton", "BlokWerk",
                   "Clickity"],
        "nouns": ["Building Set", "Brick Set", "Construction Kit", "Castle Set",
                  "Space Station Set", "Fire Station Set", "Race Car Kit",
                  "Pirate Ship Set", "Magnetic Tiles", "Marble Run",
                  "Train Set", "City Builder Set"],
        "cross_nouns": ["Robot Kit with App", "Kids Kitchen Building Set",
                        "Mini Basketball Building Set"],
        "adjectives": ["Creative", "Deluxe", "Classic", "STEM", "Junior",
                       "Starter"],
        "materials": ["Wooden", "Recycled Plastic", "Magnetic", "Plant-Based"],
        "specs": ["500 Pieces", "120 Pieces", "Ages 6+", "Ages 3+",
                  "1,000 Pieces", "Ages 8+"],
        "features": ["step-by-step picture instructions",
                     "bricks compatible with major brands",
                     "a storage box that doubles as a baseplate",
                     "two minifigures", "moving parts and working wheels"],
        "uses": ["rainy afternoons", "budding engineers", "family play time",
                 "birthday gifts"],
        "templates": [
            "A {adj} {noun} with {feature} for {use}.",
            "Kids build, play and rebuild with {feature2}.",
            "Encourages creativity, fine motor skills and problem solving.",
            "Contains {feature} and {feature2}.",
            "Not suitable for children under 3 years: small parts.",
        ],
        "tags": ["toys", "kids", "building", "stem", "educational", "ages-6+",
                 "creative"],
        "price": (9, 149),
        "packs": ["Bundle", "Set of 2", "Gift Box"],
    },
}

# --------------------------------------------------------------------------
# NOISE SETTINGS (see the module docstring for why these exist)
# --------------------------------------------------------------------------

P_CROSS = 0.18          # borderline product from the category's cross_nouns
P_VAGUE = 0.12          # short, uninformative title
P_VAGUE_EMPTY = 0.15    # ... whose description is empty
P_VAGUE_GENERIC = 0.55  # ... or only generic marketing text
P_VAGUE_SHARED_BRAND = 0.7  # ... from a brand that sells in 2+ categories
P_EMPTY = 0.003         # any other product with an empty description
N_DUPLICATES = 15       # re-listed products: same title, same category
# Same title filed under two different categories (label conflicts).
CONFLICTS = [
    ("Harbor & Pine Grey Cotton Essentials Set", "Home > Bedding", "Apparel > Shirts"),
    ("Pulse Pro Wireless Kit – Black", "Electronics > Audio",
     "Electronics > Phones & Accessories"),
    ("Maison Éclat Travel Set for Her", "Beauty > Fragrance", "Beauty > Skincare"),
    ("Stridewell Black Training Pack", "Sports > Fitness", "Apparel > Shoes"),
]

# Brands listed under more than one category.
SHARED_BRANDS = {b for b in {b for c in CATEGORIES.values() for b in c["brands"]}
                 if sum(b in c["brands"] for c in CATEGORIES.values()) > 1}

TITLE_PATTERNS = [
    "{brand} {adj} {material} {noun}",
    "{brand} {noun} {dash} {colour}",
    "{brand} {spec} {adj} {noun}, {colour}",
    "{brand} {colour} {material} {noun} {pack}",
    "{adj} {material} {noun} by {brand}",
    "{brand} {adj} {noun} {spec}",
    "{brand} {material} {noun} ({colour}, {spec})",
]

# Borderline products get plainer titles (no category material/adjective).
CROSS_TITLE_PATTERNS = [
    "{brand} {noun} {dash} {colour}",
    "{brand} {colour} {noun}",
    "{brand} {noun} {pack}",
    "{brand} {noun}, {colour}",
]

# Borderline products: descriptions that only hint at the category via {use}.
CROSS_TEMPLATES = [
    "A handy {noun} in {colour}, made for {use}.",
    "A popular add-on for {use}.",
    "Available in {colour}; easy to keep clean.",
]

VAGUE_TITLE_PATTERNS = [
    "{brand} {colour} {generic}",
    "{brand} {generic} {dash} {colour}",
    "{brand} {generic} {pack}",
    "New {brand} {generic}",
    "{brand}™ {generic}",
]


def fill(rng: random.Random, template: str, parts: dict) -> str:
    text = template.format(**parts)
    # "a anti-ageing serum" -> "an anti-ageing serum" (but keep "a one-hand").
    text = re.sub(r"\b([Aa]) (?=[aeioAEIO](?!ne))", r"\1n ", text)
    return text[0].upper() + text[1:]


def make_title(rng: random.Random, cat: dict, parts: dict, vague: bool) -> str:
    patterns = (VAGUE_TITLE_PATTERNS if vague else
                CROSS_TITLE_PATTERNS if parts["cross"] else TITLE_PATTERNS)
    while True:
        title = rng.choice(patterns).format(
            brand=parts["brand"], adj=parts["Adj"], material=parts["TitleMaterial"],
            noun=parts["Noun"], colour=parts["Colour"], spec=parts["Spec"],
            pack=rng.choice(cat.get("packs", PACKS)),
            generic=rng.choice(GENERIC_TITLE_WORDS),
            dash="–" if rng.random() < 0.2 else "-")
        title = " ".join(title.split())  # an empty {material} leaves two spaces
        if 4 <= len(title.split()) <= 12:
            return title


def make_description(rng: random.Random, cat: dict, parts: dict,
                     kind: str) -> str:
    """kind: 'normal', 'generic' (marketing text only) or 'empty'."""
    if kind == "empty":
        return ""
    while True:
        if kind == "generic":
            sentences = rng.sample(GENERIC_SENTENCES, rng.choice([2, 3]))
        else:
            templates = CROSS_TEMPLATES if parts["cross"] else cat["templates"]
            k = rng.choice([1, 2, 2, 3])
            sentences = [fill(rng, t, parts)
                         for t in rng.sample(templates, min(k, len(templates)))]
            if len(sentences) < 3 and rng.random() < 0.45:
                sentences.append(rng.choice(GENERIC_SENTENCES))
        text = " ".join(sentences)
        if 15 <= len(text.split()) <= 60:
            return text


def make_tags(rng: random.Random, cat: dict, parts: dict) -> str:
    pool = list(cat["tags"])
    pool.append(parts["Material"].lower().replace(" ", "-"))
    pool.append(parts["Colour"].lower().replace(" ", "-"))
    chosen = rng.sample(pool, rng.choice([2, 2, 3, 3, 4]) - 1)
    # Tags shared by all categories: not informative on their own.
    chosen.append(rng.choice(SHARED_TAGS) if rng.random() < 0.35
                  else rng.choice([t for t in pool if t not in chosen]))
    return "|".join(dict.fromkeys(t.replace(",", "") for t in chosen))


def make_price(rng: random.Random, cat: dict) -> float:
    low, high = cat["price"]
    # Log-uniform-ish: most products sit at the cheap end of the range.
    value = low * (high / low) ** (rng.random() ** 1.4)
    return round(int(value) + rng.choice([0.99, 0.99, 0.49, 0.0, 0.95]), 2)


def draw_parts(rng: random.Random, cat: dict, cross: bool) -> dict:
    features = [f.format(material=m) for f in cat["features"]
                for m in [rng.choice(cat["materials"]).lower()]]
    f1, f2 = rng.sample(features, 2)
    noun = rng.choice(cat["cross_nouns"] if cross else cat["nouns"])
    # Avoid "Magnetic Magnetic Phone Wallet".
    adjectives = [a for a in cat["adjectives"] if a.lower() not in noun.lower()]
    parts = {
        "cross": cross,
        "brand": rng.choice(cat["brands"]),
        "Noun": noun,
        "Adj": rng.choice(adjectives),
        "Material": rng.choice(cat["materials"]),
        "Colour": rng.choice(COLOURS),
        "Spec": rng.choice(cat["specs"]),
        "feature": f1,
        "feature2": f2,
        "use": rng.choice(cat["uses"]),
    }
    # "Linen Shirt" is linen: never "flannel linen shirt" or "Linen Linen Shirt".
    named = [m for m in cat["materials"] if m.lower() in noun.lower()]
    if named:
        parts["Material"] = named[0]
    parts["TitleMaterial"] = "" if named else parts["Material"]
    for key in ("Noun", "Adj", "Material", "Colour"):
        parts[key.lower()] = parts[key].lower()
    return parts


def make_product(rng: random.Random, name: str, title: str | None = None,
                 vague: bool | None = None, parts: dict | None = None) -> dict:
    cat = CATEGORIES[name]
    if vague is None:
        vague = rng.random() < P_VAGUE
    if parts is None:
        parts = draw_parts(rng, cat, cross=rng.random() < P_CROSS)
    if vague and rng.random() < P_VAGUE_SHARED_BRAND:
        shared = [b for b in cat["brands"] if b in SHARED_BRANDS]
        parts["brand"] = rng.choice(shared or cat["brands"])
    if vague:
        r = rng.random()
        kind = ("empty" if r < P_VAGUE_EMPTY else
                "generic" if r < P_VAGUE_EMPTY + P_VAGUE_GENERIC else "normal")
    else:
        kind = "empty" if rng.random() < P_EMPTY else "normal"
    return {
        "title": title or make_title(rng, cat, parts, vague),
        "description": make_description(rng, cat, parts, kind),
        "category": name,
        "tags": make_tags(rng, cat, parts),
        "price": make_price(rng, cat),
        "_parts": parts,
    }


def build_catalog(seed: int = SEED) -> list[dict]:
    rng = random.Random(seed)
    rows: list[dict] = []
    seen: set[str] = set()

    # How many special rows each category gets, taken out of its budget n.
    conflict_slots = {name: 0 for name in CATEGORIES}
    for _, a, b in CONFLICTS:
        conflict_slots[a] += 1
        conflict_slots[b] += 1
    names = list(CATEGORIES)
    weights = [CATEGORIES[n]["n"] for n in names]
    dup_slots = {name: 0 for name in CATEGORIES}
    for name in rng.choices(names, weights=weights, k=N_DUPLICATES):
        dup_slots[name] += 1

    # 1. Ordinary products, with unique titles.
    for name, cat in CATEGORIES.items():
        for _ in range(cat["n"] - conflict_slots[name] - dup_slots[name]):
            while True:
                product = make_product(rng, name)
                if product["title"] not in seen:
                    break
            seen.add(product["title"])
            rows.append(product)

    # 2. Re-listed products: a new listing (own description, tags, price)
    #    that repeats an existing title of the same category.
    for name, k in dup_slots.items():
        pool = [r for r in rows if r["category"] == name and r["description"]]
        for original in rng.sample(pool, k):
            rows.append(make_product(rng, name, title=original["title"],
                                     vague=False, parts=original["_parts"]))

    # 3. Label conflicts: one title, two categories.
    for title, a, b in CONFLICTS:
        assert title not in seen
        for name in (a, b):
            rows.append(make_product(rng, name, title=title, vague=False))

    rng.shuffle(rows)
    for i, row in enumerate(rows, start=1):
        row["sku"] = f"DEMO-{i:05d}"
    return rows


FIELDS = ["sku", "title", "description", "category", "tags", "price"]


def write_csv(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS, extrasaction="ignore",
                                quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "price": f"{row['price']:.2f}"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path,
                        default=Path(__file__).with_name("demo_catalog.csv"))
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    rows = build_catalog(args.seed)
    write_csv(rows, args.output)
    print(f"wrote {len(rows)} products in {len(CATEGORIES)} categories "
          f"to {args.output}")


if __name__ == "__main__":
    main()
