"""`bow`: a fastText-style bag of hashed word and character n-grams.

Each product becomes the set of its word unigrams and bigrams and the
character n-grams (2 to 5 characters) of each word wrapped in boundary marks
(`<shirt>` gives `<s`, `sh`, ..., `rt>`, `<sh`, ..., `<shirt`, ...), hashed into
a fixed space. The embeddings of its n-grams are averaged and a linear layer
(optionally after a hidden layer) gives the class logits: the architecture of
fastText's supervised mode, trained by the shared trainer.

Why it is fast:
- featurizing is done for many products at once with numpy (a polynomial
  rolling hash over the whole batch's characters, then a 64-bit mixer), with
  no Python loop per n-gram; the hash is deterministic across processes and
  machines (never Python's salted `hash()`);
- only the hash buckets seen in training get an embedding row, so the model
  is as large as the training vocabulary, and an n-gram never seen in
  training adds nothing (a text of only unseen words gets the class prior);
- the embedding is sparse: an optimizer step touches only the rows of the
  batch's n-grams;
- prediction runs each batch as one flat bag (no padding at all).

    >>> from prodcat.catalog.products import Products
    >>> from prodcat.labels import LabelSpace
    >>> space = LabelSpace("single", ["mug", "shirt"])
    >>> texts = ["blue cotton shirt", "coffee mug", "linen shirt", "tea mug"] * 5
    >>> y = space.encode([("shirt",), ("mug",), ("shirt",), ("mug",)] * 5)
    >>> model = BagOfNgrams(epochs=20, dim=16).fit(Products.from_texts(texts), y, space)
    >>> model.predict_proba(Products.from_texts(["red shirt", "green mug"])).argmax(axis=1)
    array([1, 0])
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any, Sequence

import numpy as np
import torch

from prodcat.catalog.products import Products
from prodcat.errors import ConfigError, SavedSettingsError
from prodcat.models import register
from prodcat.models.base import MAX_NGRAM
from prodcat.models.torch_base import TorchModel, check_probability_below_one
from prodcat.training.trainer import use_all_cores

# --- hashing -------------------------------------------------------------------

_MASK = (1 << 64) - 1
# Odd multiplier of the polynomial hash (any odd number is invertible mod 2**64).
_BASE = 0x100000001B3  # FNV-1's 64-bit prime
_BASE_INVERSE = pow(_BASE, -1, 1 << 64)
# Boundary marks outside Unicode, so no text character can imitate them.
_WORD_START, _WORD_END = 0x110001, 0x110002
# Salts keep a word, a word bigram and a character n-gram with the same
# characters apart.
_SALT_WORD = np.uint64(0x9E3779B97F4A7C15)
_SALT_BIGRAM = np.uint64(0xC2B2AE3D27D4EB4F)
_SALT_CHAR = np.uint64(0x165667B19E3779F9)


@lru_cache(maxsize=1)
def _word_characters() -> np.ndarray:
    """Which code points are word characters (Python's regex \\w, as sklearn's token pattern)."""
    table = np.zeros(0x110000 + 3, dtype=bool)
    every = "".join(map(chr, range(0x110000)))
    table[[m.start() for m in re.finditer(r"\w", every)]] = True
    return table


def _mix(x: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer: spreads every input bit over the output (wraps mod 2**64)."""
    x = x ^ (x >> np.uint64(33))
    x = x * np.uint64(0xFF51AFD7ED558CCD)
    x = x ^ (x >> np.uint64(33))
    x = x * np.uint64(0xC4CEB9FE1A85EC53)
    return x ^ (x >> np.uint64(33))


_POWERS = np.ones(1, dtype=np.uint64)
_INVERSE_POWERS = np.ones(1, dtype=np.uint64)


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """BASE**k and BASE**-k mod 2**64 for k < n, cached and grown by doubling."""
    global _POWERS, _INVERSE_POWERS
    if len(_POWERS) < n:
        size = max(n, 2 * len(_POWERS), 1 << 16)
        with np.errstate(over="ignore"):
            _POWERS = np.cumprod(np.full(size, _BASE, dtype=np.uint64)) * np.uint64(_BASE_INVERSE)
            _INVERSE_POWERS = np.cumprod(np.full(size, _BASE_INVERSE, dtype=np.uint64)) * np.uint64(_BASE)
    return _POWERS, _INVERSE_POWERS


class _PolynomialHash:
    """Hashes of any substring of a code-point array in O(1) each, vectorized.

    h(a, b) = sum_{a <= j < b} c_j * BASE**(b - 1 - j) mod 2**64, from prefix
    sums of c_j * BASE**-j: it depends on the characters only, not on where
    the substring sits.
    """

    def __init__(self, codes: np.ndarray):
        n = len(codes)
        self.powers, inverse = _powers(n + 1)
        self.prefix = np.zeros(n + 1, dtype=np.uint64)
        with np.errstate(over="ignore"):
            np.cumsum(codes.astype(np.uint64) * inverse[:n], out=self.prefix[1:])

    def __call__(self, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            return self.powers[stop - 1] * (self.prefix[stop] - self.prefix[start])


def _group_by_product(blocks: list[tuple[np.ndarray, np.ndarray]], n_docs: int) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate (hashes, product) blocks, each ordered by product, into CSR order.

    A scatter instead of a sort: within a product the order of n-grams does
    not matter (it is a bag), so each block's n-grams of product d go after
    those of the blocks before it.
    """
    counts = [np.bincount(doc, minlength=n_docs) for _, doc in blocks]
    offsets = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(np.sum(counts, axis=0), out=offsets[1:])
    out = np.empty(offsets[-1], dtype=np.uint64)
    filled = offsets[:-1].copy()
    for (hashes, doc), count in zip(blocks, counts):
        block_start = np.zeros(n_docs, dtype=np.int64)
        np.cumsum(count[:-1], out=block_start[1:])
        out[filled[doc] + np.arange(len(doc)) - block_start[doc]] = hashes
        filled += count
    return out, offsets


def hashed_ngrams(
    texts: Sequence[str], *, word_ngrams: int = 2, minn: int = 2, maxn: int = 5, lowercase: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of every product's n-grams, grouped by product.

    Returns (hashes uint64, offsets int64 of length n + 1): product i's
    n-grams are hashes[offsets[i]:offsets[i + 1]] (duplicates kept, so an
    n-gram twice in a text weighs twice, as in fastText).

        >>> h, offsets = hashed_ngrams(["Red shirt", "red  SHIRT!"])
        >>> sorted(h[offsets[0]:offsets[1]]) == sorted(h[offsets[1]:offsets[2]])
        True
    """
    texts = [t if isinstance(t, str) else "" for t in texts]
    if lowercase:
        texts = [t.lower() for t in texts]
    n_docs = len(texts)
    # One space after every text keeps words of neighbouring texts apart.
    joined = " ".join(texts) + " "
    codes = np.frombuffer(joined.encode("utf-32-le", errors="replace"), dtype=np.uint32)
    doc_starts = np.zeros(n_docs, dtype=np.int64)
    if n_docs > 1:
        doc_starts[1:] = np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=n_docs) + 1)[:-1]

    is_word = _word_characters()[codes]
    edges = np.diff(is_word.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    word_start = np.flatnonzero(edges == 1)
    lengths = np.flatnonzero(edges == -1) - word_start
    n_words = len(word_start)
    if n_words == 0:
        return np.zeros(0, np.uint64), np.zeros(n_docs + 1, np.int64)
    word_doc = np.searchsorted(doc_starts, word_start, side="right") - 1

    # The words' characters with boundary marks, one after another: "<red><shirt>".
    # Words and character n-grams are both hashed from this stream.
    padded_start = np.zeros(n_words, dtype=np.int64)
    np.cumsum(lengths[:-1] + 2, out=padded_start[1:])
    stream_word = np.repeat(np.arange(n_words), lengths + 2)
    stream = np.empty(len(stream_word), dtype=np.uint32)
    char_word = np.repeat(np.arange(n_words), lengths)
    stream[np.arange(len(char_word)) + 2 * char_word + 1] = codes[is_word]
    stream[padded_start] = _WORD_START
    stream[padded_start + lengths + 1] = _WORD_END
    poly = _PolynomialHash(stream)

    blocks: list[tuple[np.ndarray, np.ndarray]] = []
    word_hash = poly(padded_start + 1, padded_start + 1 + lengths)
    blocks.append((_mix(word_hash ^ _SALT_WORD), word_doc))
    with np.errstate(over="ignore"):
        for n in range(2, word_ngrams + 1):
            count = n_words - n + 1
            if count <= 0:
                break
            # words are in text order: first and last word in one product means all are
            same_doc = word_doc[n - 1 :] == word_doc[:count]
            combined = word_hash[:count]
            for k in range(1, n):
                combined = _mix(combined * np.uint64(_BASE) + word_hash[k : count + k])
            blocks.append((_mix(combined ^ (_SALT_BIGRAM + np.uint64(n)))[same_doc], word_doc[:count][same_doc]))
        if minn > 0:
            for n in range(minn, maxn + 1):
                if n > len(stream):
                    break
                starts = np.flatnonzero(stream_word[: len(stream) - n + 1] == stream_word[n - 1 :])
                ngram_hash = _mix(poly(starts, starts + n) ^ (_SALT_CHAR + np.uint64(n)))
                blocks.append((ngram_hash, word_doc[stream_word[starts]]))
    return _group_by_product(blocks, n_docs)


# --- the network -------------------------------------------------------------------


class BagNetwork(torch.nn.Module):
    """Mean of n-gram embeddings -> (hidden layer ->) logits. forward(ids, offsets) as EmbeddingBag."""

    def __init__(self, rows: int, dim: int, n_classes: int, hidden: int = 0, dropout: float = 0.0):
        super().__init__()
        # At least one row so a model of a vocabulary-less catalog still runs.
        self.embedding = torch.nn.EmbeddingBag(max(rows, 1), dim, mode="mean", sparse=True)
        # fastText's initialisation: small uniform inputs, zero output layer.
        torch.nn.init.uniform_(self.embedding.weight, -1.0 / dim, 1.0 / dim)
        self.hidden = torch.nn.Linear(dim, hidden) if hidden else None
        self.dropout = torch.nn.Dropout(dropout)
        self.output = torch.nn.Linear(hidden or dim, n_classes)
        torch.nn.init.zeros_(self.output.weight)
        torch.nn.init.zeros_(self.output.bias)

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        x = self.embedding(ids, offsets)
        if self.hidden is not None:
            x = torch.relu(self.hidden(self.dropout(x)))
        return self.output(self.dropout(x))


# --- the model ---------------------------------------------------------------------


#: the settings that decide which embedding row an n-gram is hashed to, saved with the rows
HASHING_SETTINGS = ("word_ngrams", "minn", "maxn", "buckets", "lowercase")


@register("bow")
class BagOfNgrams(TorchModel):
    """fastText-style classifier: averaged embeddings of hashed word and character n-grams.

    Settings (besides the trainer's, see `prodcat.training.TrainingSettings`):
    dim, word_ngrams, minn, maxn, buckets, min_count, hidden, dropout, lowercase.

        >>> BagOfNgrams(dim=50, maxn=4).get_params()["maxn"]
        4
    """

    # every TorchModel has max_length, but n-grams are hashed from the whole text
    unused_settings = {"max_length": "its n-grams are hashed from the whole text"}
    unshared_settings = frozenset(unused_settings)

    DEFAULTS = {
        # embedding width (fastText's dim)
        "dim": 100,
        # longest word n-gram: 2 = unigrams + bigrams (fastText's wordNgrams)
        "word_ngrams": 2,
        # character n-gram lengths inside word boundaries; minn 0 turns them off
        "minn": 2,
        "maxn": 5,
        # size of the hash space; only buckets seen in training get a row, so
        # it costs no model size, and a large space keeps collisions rare
        "buckets": 1 << 22,
        # n-grams seen in fewer training products than this are left out
        "min_count": 1,
        # 0: linear on the mean embedding (fastText); > 0: one ReLU layer of this width first
        "hidden": 0,
        "dropout": 0.0,
        "lowercase": True,
        # Trainer settings for a bag of embeddings, chosen on fashion articleType
        # (split_catalog valid 0.1 / test 0.2, seed 0, class_weight balanced):
        # batch 128 / lr 0.02 gave macro-F1 0.846, accuracy 0.962 in 90 s;
        # batch 32 / lr 0.01: 0.826 / 0.950 in 13 min; batch 128 / lr 0.05:
        # 0.869 / 0.949 in 130 s.
        "batch_size": 128,
        "lr": 0.02,
        "warmup_ratio": 0.0,
        "eval_batch_size": 2048,
        # One thread: a bag's ops are too small to gain from intra-op threads,
        # and on a busy machine the threads wait on each other (one epoch of
        # fashion: 8 s with 1 thread, 80 s with 2 on a loaded 2-core box).
        "num_threads": 1,
    }

    def check_settings(self, settings: dict[str, Any]) -> None:
        def positive(key: str, low: int = 1) -> None:
            if settings[key] < low:
                raise ConfigError(f"bow: {key} must be at least {low}, got {settings[key]}")

        positive("dim")
        positive("word_ngrams")
        positive("min_count")
        positive("minn", 0)
        positive("hidden", 0)
        if settings["minn"] and settings["maxn"] < settings["minn"]:
            raise ConfigError(f"bow: maxn ({settings['maxn']}) must be at least minn ({settings['minn']})")
        for key in ("word_ngrams", "maxn"):
            if settings[key] > MAX_NGRAM:
                raise ConfigError(f"bow: {key} must be at most {MAX_NGRAM}, got {settings[key]}")
        buckets = settings["buckets"]
        if buckets < 2 or buckets > 1 << 30 or buckets & (buckets - 1):
            raise ConfigError(f"bow: buckets must be a power of two between 2 and 2**30, got {buckets}")
        check_probability_below_one("bow", "dropout", settings["dropout"])

    # --- preprocessing ---------------------------------------------------------------
    def _buckets(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        s = self.settings
        hashes, offsets = hashed_ngrams(
            texts, word_ngrams=s["word_ngrams"], minn=s["minn"], maxn=s["maxn"], lowercase=s["lowercase"]
        )
        shift = np.uint64(64 - (s["buckets"].bit_length() - 1))
        return (hashes >> shift).astype(np.int64), offsets

    def _set_rows(self, seen: np.ndarray) -> None:
        self.seen_buckets = np.asarray(seen, dtype=np.int64)
        self.row_of_bucket = np.full(self.settings["buckets"], -1, dtype=np.int32)
        self.row_of_bucket[self.seen_buckets] = np.arange(len(self.seen_buckets), dtype=np.int32)

    def build_preprocessor(self, products: Products) -> None:
        buckets, offsets = self._buckets(products.texts)
        if self.settings["min_count"] > 1:
            # count each bucket once per product
            doc = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
            pairs = np.unique(buckets * len(offsets) + doc)
            buckets = pairs // len(offsets)
            counts = np.bincount(buckets, minlength=self.settings["buckets"])
            self._set_rows(np.flatnonzero(counts >= self.settings["min_count"]))
        else:
            self._set_rows(np.unique(buckets))

    def rows(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Embedding rows of each text's n-grams (unseen ones left out) and offsets, CSR-style."""
        buckets, offsets = self._buckets(texts)
        rows = self.row_of_bucket[buckets]
        known = rows >= 0
        if known.all():
            return rows.astype(np.int64), offsets
        kept_before = np.concatenate([[0], np.cumsum(known)])
        return rows[known].astype(np.int64), kept_before[offsets]

    def encode(self, products: Products) -> list[dict[str, Any]]:
        rows, offsets = self.rows(products.texts)
        return [{"ids": rows[offsets[i] : offsets[i + 1]]} for i in range(len(offsets) - 1)]

    def collate(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        lengths = np.fromiter((len(e["ids"]) for e in examples), dtype=np.int64, count=len(examples))
        offsets = np.zeros(len(examples), dtype=np.int64)
        np.cumsum(lengths[:-1], out=offsets[1:])
        ids = np.concatenate([e["ids"] for e in examples]) if examples else np.zeros(0, np.int64)
        return {"ids": torch.from_numpy(ids), "offsets": torch.from_numpy(offsets)}

    def build_network(self, n_classes: int) -> torch.nn.Module:
        s = self.settings
        return BagNetwork(len(self.seen_buckets), s["dim"], n_classes, hidden=s["hidden"], dropout=s["dropout"])

    def network_config(self) -> dict[str, Any]:
        return {"rows": int(len(self.seen_buckets))}

    def preprocessor_state(self) -> dict[str, Any]:
        hashing = {key: self.settings[key] for key in HASHING_SETTINGS}
        return {"hash": "poly64-fmix64-v1", "seen_buckets": self.seen_buckets.tolist(), "hashing": hashing}

    def load_preprocessor(self, state: dict[str, Any]) -> None:
        if state.get("hash") != "poly64-fmix64-v1":
            raise ConfigError(f"bow: unknown n-gram hash {state.get('hash')!r}; this model needs another prodcat")
        # The weights do not show these (an n-gram hashed otherwise just finds
        # another row): a hand-edited one would predict from the wrong rows.
        # Models saved before they were kept have no "hashing".
        hashing = state.get("hashing") or {}
        for key, saved in hashing.items():
            if key == "maxn" and hashing.get("minn") == self.settings["minn"] == 0:
                continue  # no character n-grams: their longest length means nothing
            if key in HASHING_SETTINGS and self.settings[key] != saved:
                raise SavedSettingsError(f"bow setting {key!r} is {json.dumps(self.settings[key])} but the saved "
                                         f"n-gram rows were hashed with {json.dumps(saved)}")
        self._set_rows(np.asarray(state["seen_buckets"], dtype=np.int64))

    # --- prediction ------------------------------------------------------------------
    def decision_function(self, products: Products) -> np.ndarray:
        """Logits (n, n_classes) float32. Faster than the base's path: a bag needs no
        padding, so products are featurized and scored a slice at a time, in input order."""
        self._check_fitted()
        use_all_cores(self.settings["num_threads"])
        size = self.settings["eval_batch_size"]
        texts = products.texts
        out = np.empty((len(texts), self.n_classes), dtype=np.float32)
        network = self.network.eval()
        with torch.inference_mode():
            for start in range(0, len(texts), size):
                rows, offsets = self.rows(texts[start : start + size])
                logits = network(
                    torch.from_numpy(rows).to(self.device_), torch.from_numpy(offsets[:-1]).to(self.device_)
                )
                out[start : start + size] = logits.float().cpu().numpy()
        return out
