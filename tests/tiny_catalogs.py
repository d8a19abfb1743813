"""Tiny catalogs made in code, one per label format, for contract tests."""

from __future__ import annotations

import random

import pandas as pd

# A tiny image-cnn: it reads the photo only, so what it predicts shows whether it got one.
IMAGE_CNN = {"image_size": 16, "width": 0.25, "epochs": 4, "batch_size": 8, "lr": 1e-2, "dropout": 0.0,
             "num_threads": 1}

WORDS = {
    ("Apparel", "Shirts"): ["shirt", "oxford", "collar", "cotton", "sleeve", "button"],
    ("Apparel", "Shoes"): ["sneaker", "sole", "lace", "leather", "running", "boot"],
    ("Home", "Kitchen"): ["pan", "knife", "skillet", "kettle", "steel", "chef"],
    ("Home", "Bedding"): ["duvet", "pillow", "sheet", "linen", "quilt", "blanket"],
}


def tiny_frame(n_per_class: int = 24, seed: int = 0) -> pd.DataFrame:
    """Products whose words reveal their category, with a multi-label tag column."""
    rng = random.Random(seed)
    rows = []
    for (top, leaf), words in WORDS.items():
        for i in range(n_per_class):
            colour = rng.choice(["blue", "red", "black"])
            title = " ".join(rng.sample(words, 3) + [colour]) + f" {i}"
            # Every tag can be read off the text, so a working model learns them all.
            tags = [top.lower(), colour]
            rows.append({
                "sku": f"{leaf[:3].upper()}-{i:03d}",
                "title": title,
                "description": f"a fine {words[0]} for every day",
                "category": f"{top} > {leaf}",
                "leaf": leaf,
                "tags": "|".join(tags + [leaf.lower()]),
            })
    rng.shuffle(rows)
    return pd.DataFrame(rows)


FORMATS = {
    "single": dict(text_cols=["title", "description"], label_col="leaf", label_format="single"),
    "multi": dict(text_cols=["title", "description"], label_col="tags", label_format="multi"),
    "path": dict(text_cols=["title", "description"], label_col="category", label_format="path"),
}


# Colours that make each product's photo reveal its leaf (the background) and
# its colour tag (a band across the middle), so image models can learn every format.
LEAF_COLOURS = {"Shirts": (220, 40, 40), "Shoes": (40, 170, 40), "Kitchen": (40, 60, 220), "Bedding": (230, 200, 40)}
TAG_COLOURS = {"blue": (0, 0, 160), "red": (200, 0, 0), "black": (10, 10, 10)}


def tiny_image_frame(image_dir, n_per_class: int = 24, seed: int = 0, size: int = 24) -> pd.DataFrame:
    """`tiny_frame` plus an `image` column of PNG file names written into image_dir."""
    from pathlib import Path

    import numpy as np
    from PIL import Image

    image_dir = Path(image_dir)
    image_dir.mkdir(parents=True, exist_ok=True)
    frame = tiny_frame(n_per_class, seed)
    rng = np.random.default_rng(seed)
    names = []
    for row in frame.itertuples():
        pixels = np.empty((size, size, 3), np.float32)
        pixels[:] = LEAF_COLOURS[row.leaf]
        colour = next(tag for tag in row.tags.split("|") if tag in TAG_COLOURS)
        pixels[size // 3 : 2 * size // 3] = TAG_COLOURS[colour]
        pixels += rng.normal(scale=12, size=pixels.shape)
        name = f"{row.sku}.png"
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(image_dir / name)
        names.append(name)
    return frame.assign(image=names)
