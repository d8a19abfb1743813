"""A word tokenizer and a vocabulary learned from training texts, saved as plain data.

The tokenizer is deterministic and needs no training: NFKC-normalise (full-width
letters and ligatures fold to their plain form), lowercase, then take runs of
letters and runs of digits as separate words. Splitting digits from letters
makes "32GB", "32 GB" and "32-gb" the same two words, and "t-shirt", "T Shirt"
and "t_shirt" the same two words; punctuation is dropped.

    >>> tokenize("Puma Men's T-Shirt, 2-pack 32GB")
    ['puma', 'men', 's', 't', 'shirt', '2', 'pack', '32', 'gb']

Chinese and Japanese are written without spaces between words: a title
would be one "word", seen once, and every product unknown to the model. So
each CJK ideograph is a word of its own (as BERT's basic tokenizer has it);
kana and Hangul runs stay words.

    >>> tokenize("纯棉男士T恤 XL")
    ['纯', '棉', '男', '士', 't', '恤', 'xl']

The vocabulary keeps words seen in training only, most frequent first, with
`<pad>` = 0 and `<unk>` = 1; it is saved as the list of its tokens in id order.

    >>> vocab = Vocabulary.build(["red cotton shirt", "blue cotton shirt", "tea mug"])
    >>> vocab.tokens[:4]
    ['<pad>', '<unk>', 'cotton', 'shirt']
    >>> vocab.encode("Green COTTON shirt")
    [1, 2, 3]
    >>> Vocabulary.from_dict(vocab.to_dict()).encode("Green COTTON shirt")
    [1, 2, 3]
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from typing import Any, Iterable, Sequence

from prodcat.errors import ConfigError, ModelDirError

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
SPECIALS = (PAD, UNK)


def _mark_ranges() -> str:
    """A regex class body of every combining mark (Unicode category M*).

    Python's `re` has no \\p{M}, and `\\w` leaves marks out, which would cut
    Hindi "हिन्दी" into three words at its vowel signs. Marks live in planes 0
    and 1 and among the variation selectors of plane 14; scanning those takes
    about 20 ms, once per process.
    """
    ranges: list[list[int]] = []
    for code in (*range(0x20000), *range(0xE0000, 0xE1000)):
        if unicodedata.category(chr(code))[0] == "M":
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])
    return "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges)


@functools.cache
def _word_pattern() -> re.Pattern[str]:
    # A word is a run of letters of any script (not digits, not "_") with their
    # combining marks, or a run of digits.
    return re.compile(rf"(?:[^\W\d_]|[{_mark_ranges()}])+|\d+")


# CJK ideographs: the unified blocks and their extensions, and the compatibility ones
_IDEOGRAPHS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"


@functools.cache
def _word_or_ideograph_pattern() -> re.Pattern[str]:
    # `_word_pattern` with each ideograph a word of its own. One findall: putting spaces
    # around each ideograph first (re.sub) made Chinese titles 7 times slower to tokenize.
    return re.compile(rf"[{_IDEOGRAPHS}]|(?:[^\W\d_{_IDEOGRAPHS}]|[{_mark_ranges()}])+|\d+")


def tokenize(text: str, *, split_ideographs: bool = True) -> list[str]:
    """The words of a text: NFKC-normalised, lowercased runs of letters or of digits,
    each CJK ideograph a word of its own (unless not split_ideographs: a model saved
    before they were keeps reading them as it was trained)."""
    if not text:
        return []
    if not text.isascii():
        # NFKC composes a letter and its combining accent into one character,
        # which the letter class then matches.
        text = unicodedata.normalize("NFKC", text)
        if split_ideographs:
            return _word_or_ideograph_pattern().findall(text.lower())
    return _word_pattern().findall(text.lower())


class Vocabulary:
    """Words to ids and back; ids 0 and 1 are `<pad>` and `<unk>`.

    tokens: every token in id order, starting with "<pad>", "<unk>".
    split_ideographs: whether `tokenize` makes each CJK ideograph a word; a
        vocabulary saved before it did keeps reading runs of them as one word.

        >>> Vocabulary.build(["a b b", "b c"], min_freq=2).tokens
        ['<pad>', '<unk>', 'b']
    """

    def __init__(self, tokens: Sequence[str], *, split_ideographs: bool = True):
        tokens = list(tokens)
        self.split_ideographs = split_ideographs
        if tokens[:2] != list(SPECIALS):
            raise ModelDirError(f"vocabulary must start with {PAD!r}, {UNK!r}, got {tokens[:2]!r}")
        if len(set(tokens)) != len(tokens):
            raise ModelDirError("vocabulary has a token twice")
        self.tokens = tokens
        self._ids = {token: i for i, token in enumerate(tokens)}

    @classmethod
    def build(cls, texts: Iterable[str], *, min_freq: int = 1, max_size: int | None = None,
              split_ideographs: bool = True) -> Vocabulary:
        """Learn the vocabulary of training texts.

        min_freq: a word must occur this many times to get an id.
        max_size: at most this many ids in all, the two special ones included;
            the most frequent words are kept (ties broken alphabetically, so
            the same texts always give the same ids).
        """
        if isinstance(min_freq, bool) or not isinstance(min_freq, int) or min_freq < 1:
            raise ConfigError(f"vocabulary min_freq must be a positive integer, got {min_freq!r}")
        if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 3):
            raise ConfigError(f"vocabulary max_size must be an integer of at least 3 (two ids are special), got {max_size!r}")
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(tokenize(text, split_ideographs=split_ideographs))
        for special in SPECIALS:
            counts.pop(special, None)
        words = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
        if max_size is not None:
            words = words[: max_size - len(SPECIALS)]
        return cls([*SPECIALS, *words], split_ideographs=split_ideographs)

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self._ids

    def tokenize(self, text: str) -> list[str]:
        """`tokenize` as this vocabulary's words were made."""
        return tokenize(text, split_ideographs=self.split_ideographs)

    def id(self, token: str) -> int:
        return self._ids.get(token, UNK_ID)

    def encode(self, text: str, max_length: int | None = None) -> list[int]:
        """Ids of a text's words (unknown words -> 1), the first `max_length` if given."""
        ids = self._ids
        words = self.tokenize(text)
        if max_length is not None:
            # Product titles lead with brand and type: the head is what to keep.
            words = words[:max_length]
        return [ids.get(w, UNK_ID) for w in words]

    def encode_batch(self, texts: Iterable[str], max_length: int | None = None) -> list[list[int]]:
        """`encode` for many texts."""
        ids, cut = self._ids, max_length
        return [[ids.get(w, UNK_ID) for w in words[:cut]] for words in map(self.tokenize, texts)]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens of ids (pad ids left out), for reading what a model saw."""
        return [self.tokens[i] for i in ids if i != PAD_ID]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able data: the tokens in id order, and how texts are cut into them."""
        return {"tokens": list(self.tokens), "split_ideographs": self.split_ideographs}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vocabulary:
        try:
            tokens = data["tokens"]
        except (KeyError, TypeError):
            raise ModelDirError("saved vocabulary lacks 'tokens'") from None
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise ModelDirError("saved vocabulary 'tokens' must be a list of strings")
        # absent: saved before ideographs were split, when a run of them was one word
        split = data.get("split_ideographs", False)
        if not isinstance(split, bool):
            raise ModelDirError(f"saved vocabulary 'split_ideographs' must be true or false, got {split!r}")
        return cls(tokens, split_ideographs=split)

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens)"
