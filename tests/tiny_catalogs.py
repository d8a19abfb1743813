"""Tiny catalogs made in code, one per label format, for contract tests."""

from __future__ import annotations

import random

import pandas as pd

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
