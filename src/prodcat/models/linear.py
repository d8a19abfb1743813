"""Word + character n-gram TF-IDF with a linear SVM, and calibrated probabilities.

The strong, cheap baseline for product titles: word n-grams catch brand and
type words, character n-grams (inside word boundaries) catch spelling variants,
plurals and glued tokens ("tshirt", "t-shirt", "T Shirts"). A linear SVM on
both blocks is fast to train and to serve.

An SVM gives margins, not probabilities, so they are calibrated on held-out
data (the `valid` split, else out-of-fold scores on train):
- single / path: temperature scaling, softmax(scores / T). One parameter, so
  it cannot overfit a small validation set, and it never changes the argmax:
  accuracy is that of the SVM, only the confidences move.
- multi: Platt scaling, sigmoid(a * score + b), with one slope and intercept
  shared by all classes; per-class decision thresholds are the caller's job.

Everything a prediction needs is plain data (vocabularies, idf vectors, float32
weights, calibration numbers), so a saved model holds no pickle.

    >>> from prodcat.catalog.products import Products
    >>> from prodcat.labels import LabelSpace
    >>> space = LabelSpace("single", ["mug", "shirt"])
    >>> texts = ["blue cotton shirt", "coffee mug", "linen shirt", "tea mug"] * 3
    >>> y = space.encode([("shirt",), ("mug",), ("shirt",), ("mug",)] * 3)
    >>> model = TfidfLinear(C=1.0).fit(Products.from_texts(texts), y, space)
    >>> model.predict_proba(Products.from_texts(["red shirt"])).argmax(axis=1)
    array([1])
"""

from __future__ import annotations

import itertools
import math
import os
import warnings
from typing import Any, Iterator

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.preprocessing import normalize
from sklearn.svm import LinearSVC

from prodcat.calibration import checked_calibration, fit_platt, fit_temperature
from prodcat.catalog.products import Products
from prodcat.errors import ConfigError, ModelDirError, SavedSettingsError
from prodcat.labels import LabelSpace
from prodcat.models import register
from prodcat.models.base import MAX_NGRAM, CategorizerModel, FitContext

STATE_VERSION = 1

# Defaults chosen on fashion articleType (grouped 80/20 split by normalised
# title, 10% of train as valid) and flipkart level 1 (stratified 80/20). C=1.0
# beat 0.25 / 0.5 / 2.0 on fashion macro-F1 on each of three splits (e.g.
# 0.905 / 0.922 / 0.855 vs 0.902 / 0.916 / 0.840 for C=0.5: the rare classes
# make macro-F1 swing by split), with equal accuracy (~0.97). min_df=2, char
# (1,4) or (2,6), word (1,3) moved macro-F1 by < 0.003. Class weighting is the
# caller's setting; the Categorizer makes it "balanced" by default (see there).
DEFAULTS: dict[str, Any] = {
    # word n-grams: unigrams + bigrams ("track pants" is not "pants")
    "word_ngrams": (1, 2),
    # character n-grams inside word boundaries (sklearn's "char_wb")
    "char_ngrams": (2, 5),
    # a term must occur in this many training products to be kept
    "min_df": 1,
    # caps on each vocabulary, so a huge catalog cannot blow memory or model size
    "word_max_features": 200_000,
    "char_max_features": 300_000,
    "lowercase": True,
    # "unicode" folds accents (café -> cafe); None keeps text as is (faster)
    "strip_accents": None,
    # 1 + log(tf): a word repeated in a long description does not dominate
    "sublinear_tf": True,
    # inverse regularisation strength of the SVM
    "C": 1.0,
    "max_iter": 5000,
    # folds for out-of-fold calibration scores when fit gets no valid split
    "calibration_folds": 3,
    # rows featurized at once in predict_proba (bounds memory)
    "batch_size": 8192,
}

# Used only when no held-out scores can be had at all (a handful of products):
# SVM margins live roughly in [-1.5, 1.5], so softmax needs them sharpened.
DEFAULT_TEMPERATURE = 0.3
DEFAULT_PLATT = (2.0, 0.0)


def _check_ngrams(key: str, value: Any) -> tuple[int, int]:
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        or not 1 <= value[0] <= value[1] <= MAX_NGRAM
    ):
        raise ConfigError(f"tfidf-linear: {key} must be two integers [low, high] with 1 <= low <= high <= "
                          f"{MAX_NGRAM}, got {value!r}")
    return (int(value[0]), int(value[1]))


def _check_positive_int(key: str, value: Any, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"tfidf-linear: {key} must be a positive integer, got {value!r}")
    return int(value)


def resolve_params(params: dict[str, Any]) -> dict[str, Any]:
    """Defaults filled in and every value checked; ConfigError names the fault."""
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise ConfigError(
            f"tfidf-linear: unknown setting(s) {', '.join(map(repr, unknown))}; known: {', '.join(DEFAULTS)}"
        )
    p = {**DEFAULTS, **params}
    p["word_ngrams"] = _check_ngrams("word_ngrams", p["word_ngrams"])
    p["char_ngrams"] = _check_ngrams("char_ngrams", p["char_ngrams"])
    for key in ("min_df", "max_iter", "calibration_folds", "batch_size"):
        p[key] = _check_positive_int(key, p[key])
    for key in ("word_max_features", "char_max_features"):
        p[key] = _check_positive_int(key, p[key], allow_none=True)
    if p["calibration_folds"] < 2:
        raise ConfigError(f"tfidf-linear: calibration_folds must be at least 2, got {p['calibration_folds']}")
    for key in ("lowercase", "sublinear_tf"):
        if not isinstance(p[key], bool):
            raise ConfigError(f"tfidf-linear: {key} must be true or false, got {p[key]!r}")
    if p["strip_accents"] not in (None, "unicode", "ascii"):
        raise ConfigError(f"tfidf-linear: strip_accents must be null, 'unicode' or 'ascii', got {p['strip_accents']!r}")
    c = p["C"]
    if isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c) or c <= 0:
        raise ConfigError(f"tfidf-linear: C must be a positive number, got {c!r}")
    p["C"] = float(c)
    return p


# --- features -------------------------------------------------------------


def _check_ngrams_fit_terms(analyzer: str, ngrams: tuple[int, int], terms: list[str]) -> None:
    """A SavedSettingsError unless every saved term is an n-gram the setting makes.

    Terms the setting cannot make would never be counted again: a model loaded
    with a hand-edited range would predict from part of its features, silently.
    """
    if analyzer == "word":
        key, unit, lengths = "word_ngrams", "words", [term.count(" ") + 1 for term in terms]
    else:
        # char_wb keeps a padded word shorter than the lowest n whole (" a "): no
        # lower bound can be read from those
        key, unit = "char_ngrams", "characters"
        lengths = [len(term) for term in terms if len(term) >= ngrams[0] or not (term[:1] == term[-1:] == " ")]
    if lengths and not ngrams[0] <= min(lengths) <= max(lengths) <= ngrams[1]:
        raise SavedSettingsError(f"tfidf-linear setting {key!r} is {list(ngrams)} but the saved vocabulary holds "
                                 f"terms of {min(lengths)} to {max(lengths)} {unit}")


class _Block:
    """One TF-IDF block: a fixed vocabulary, its idf, and the transform.

    Training counts terms while it learns the vocabulary, prediction with a
    CountVectorizer fixed to it; both counts are weighted by `_weighted`, so the
    features of a reloaded model are those it was trained on, bit for bit.
    """

    def __init__(self, analyzer: str, ngrams: tuple[int, int], p: dict[str, Any], terms: list[str], idf: np.ndarray):
        self.analyzer, self.ngrams, self.terms = analyzer, ngrams, terms
        self.sublinear_tf = p["sublinear_tf"]
        self.idf = np.asarray(idf, dtype=np.float32)
        self._counter = CountVectorizer(**self._vectorizer_args(analyzer, ngrams, p), vocabulary=terms)
        self._index: dict[str, int] | None = None  # term -> column, made when first counting
        # scikit-learn's own text steps, so a text is cut into the same words and n-grams
        self._preprocess = self._counter.build_preprocessor()
        self._tokenize = self._counter.build_tokenizer()

    @staticmethod
    def _vectorizer_args(analyzer: str, ngrams: tuple[int, int], p: dict[str, Any]) -> dict[str, Any]:
        args: dict[str, Any] = dict(
            analyzer=analyzer,
            ngram_range=ngrams,
            lowercase=p["lowercase"],
            strip_accents=p["strip_accents"],
            dtype=np.float32,
        )
        if analyzer == "word":
            # keep one-character tokens: sizes ("S", "XL" vs "L") and "3" in "3 pack"
            args["token_pattern"] = r"(?u)\b\w+\b"
        return args

    @classmethod
    def learn(cls, analyzer: str, texts: list[str], p: dict[str, Any]) -> tuple[_Block, sp.csr_matrix] | None:
        """The block learned from `texts`, and their features (counted once: analysing
        long descriptions again is most of a fit's featurizing)."""
        ngrams = p["word_ngrams"] if analyzer == "word" else p["char_ngrams"]
        cap = p["word_max_features"] if analyzer == "word" else p["char_max_features"]
        min_df = min(p["min_df"], max(1, len(texts)))
        counter = CountVectorizer(**cls._vectorizer_args(analyzer, ngrams, p), min_df=min_df, max_features=cap)
        try:
            counts = counter.fit_transform(texts)
        except ValueError:  # empty vocabulary: no text had a term of this kind
            return None
        terms = [""] * len(counter.vocabulary_)
        for term, j in counter.vocabulary_.items():
            terms[j] = term
        counts = counts.tocsr()
        df = np.bincount(counts.indices, minlength=len(terms)).astype(np.float64)
        n = counts.shape[0]
        idf = np.log((1.0 + n) / (1.0 + df)) + 1.0  # sklearn's smooth idf
        block = cls(analyzer, ngrams, p, terms, idf)
        return block, block._weighted(counts)

    def transform(self, texts: list[str]) -> sp.csr_matrix:
        return self._weighted(self.counts(texts))

    def counts(self, texts: list[str]) -> sp.csr_matrix:
        """Term counts of `texts`, float32, the very matrix `CountVectorizer.transform` gives.

        CountVectorizer counts each text's n-grams in a Python dict, one lookup
        per n-gram: 9 tenths of predicting on long descriptions. Here the
        lookups run in C loops and the counting in scipy. A word's char_wb
        n-grams depend on that word alone, so they are looked up once per
        distinct word of the batch, not once per occurrence (a description
        repeats its words, a catalog its brands).
        """
        if self._index is None:
            # made once, by whichever thread of a server gets here first: the same dict each time
            self._index = {term: j for j, term in enumerate(self.terms)}
        if self.analyzer == "char_wb":
            return self._char_wb_counts(texts)
        return self._word_counts(texts)

    def _word_counts(self, texts: list[str]) -> sp.csr_matrix:
        """`counts` for words: each text's tokens as scikit-learn's tokenizer finds
        them, and its n-grams (the runs of n tokens, joined by a space) looked up
        once per distinct n-gram of the batch."""
        numbers = _Numbering()
        token_ids: list[int] = []
        ends = np.empty(len(texts), dtype=np.int64)
        for i, text in enumerate(texts):
            token_ids.extend(map(numbers.__getitem__, self._tokenize(self._preprocess(text))))
            ends[i] = len(token_ids)
        ids = np.asarray(token_ids, dtype=np.int64)
        text_of = np.repeat(np.arange(len(texts)), np.diff(ends, prepend=0))
        low, high = self.ngrams
        tokens = list(numbers)
        # gram[k]: the number of the n-gram starting at token starts[k] (an (n-1)-gram
        # and the token after it), names[number]: its text, as scikit-learn joins it
        gram, names, starts = ids, tokens, np.arange(len(ids))
        rows, cols = [], []
        for n in range(1, high + 1):
            if n > 1:
                last = starts + n - 1
                fits = last < len(ids)
                fits[fits] = text_of[last[fits]] == text_of[starts[fits]]  # inside one text
                starts, gram = starts[fits], gram[fits]
                distinct, gram = np.unique(gram * len(tokens) + ids[starts + n - 1], return_inverse=True)
                shorter = names
                names = [f"{shorter[k // len(tokens)]} {tokens[k % len(tokens)]}" for k in distinct.tolist()]
            if n >= low:
                known = np.fromiter(map(self._index.get, names, itertools.repeat(_UNKNOWN)), dtype=np.int64,
                                    count=len(names))
                found = known[gram]
                keep = found >= 0
                rows.append(text_of[starts[keep]])
                cols.append(found[keep])
        return self._tally(np.concatenate(rows), np.concatenate(cols), (len(texts), len(self.terms)))

    def _char_wb_counts(self, texts: list[str]) -> sp.csr_matrix:
        """`counts` for char_wb: each text split into words as scikit-learn
        splits its preprocessed text, then (texts x words) @ (words x n-grams)."""
        numbers = _Numbering()
        word_ids: list[int] = []
        ends = np.empty(len(texts), dtype=np.int64)
        for i, text in enumerate(texts):
            word_ids.extend(map(numbers.__getitem__, self._preprocess(text).split()))
            ends[i] = len(word_ids)
        rows = np.repeat(np.arange(len(texts)), np.diff(ends, prepend=0))
        in_texts = self._tally(rows, np.asarray(word_ids, dtype=np.int64), (len(texts), len(numbers)))
        # Counts are whole numbers, exact in float32 up to 2**24 (16 million of one
        # n-gram in one text), so these float32 sums and products are exact.
        x = (in_texts @ self._word_grams(list(numbers))).tocsr()
        x.sort_indices()
        return x

    def _word_grams(self, words: list[str]) -> sp.csr_matrix:
        """(words x terms) counts of each word's char_wb n-grams, as scikit-learn's
        analyzer makes them: the word padded with a space each side, its every
        window of each length shorter than that; and the padded word itself, once,
        when it is no longer than the longest length."""
        low, high = self.ngrams
        padded = [f" {word} " for word in words]
        sizes = np.fromiter(map(len, padded), dtype=np.int64, count=len(padded))
        grams: list[str] = []
        rows = []
        # A window as long as the padded word is the padded word itself: it comes
        # from the length equal to the word's, if the range holds that length...
        for n in range(low, high + 1):
            grams += [p[i : i + n] for p in padded for i in range(len(p) - n + 1)]
            rows.append(np.repeat(np.arange(len(padded)), np.maximum(sizes - n + 1, 0)))
        # ... else, for a padded word shorter than the lowest length, from here.
        short = np.flatnonzero(sizes < low)
        grams += [padded[k] for k in short]
        rows.append(short)
        cols = np.fromiter(map(self._index.get, grams, itertools.repeat(_UNKNOWN)), dtype=np.int64, count=len(grams))
        rows_all = np.concatenate(rows)
        keep = cols >= 0
        return self._tally(rows_all[keep], cols[keep], (len(words), len(self.terms)))

    @staticmethod
    def _tally(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
        """How often each (row, column) pair occurs, as a canonical float32 CSR matrix."""
        x = sp.csr_matrix((np.ones(len(cols), dtype=np.float32), (rows, cols)), shape=shape, dtype=np.float32)
        x.sum_duplicates()
        return x

    def _weighted(self, x: sp.csr_matrix) -> sp.csr_matrix:
        """Term counts (columns in `terms` order) as L2-normalised TF-IDF."""
        x.sort_indices()
        if self.sublinear_tf:
            np.log(x.data, out=x.data)
            x.data += 1.0
        x.data *= self.idf[x.indices]
        # Rows without any known term (a text of unseen words) stay all-zero.
        return normalize(x, norm="l2", copy=False)


_UNKNOWN = -1  # the column of an n-gram outside the vocabulary


class _Numbering(dict):
    """Numbers each new key it is asked for 0, 1, 2, ... in order of first asking."""

    def __missing__(self, key: str) -> int:
        number = self[key] = len(self)
        return number


class _Features:
    """The word block and the char_wb block side by side (each L2-normalised)."""

    def __init__(self, blocks: list[_Block]):
        self.blocks = blocks
        self.n_features = sum(len(b.terms) for b in blocks)

    def transform(self, texts: list[str]) -> sp.csr_matrix:
        texts = [t if isinstance(t, str) else "" for t in texts]
        if not self.blocks:
            return sp.csr_matrix((len(texts), 0), dtype=np.float32)
        return self.stack([b.transform(texts) for b in self.blocks])

    @staticmethod
    def stack(parts: list[sp.csr_matrix]) -> sp.csr_matrix:
        return sp.hstack(parts, format="csr", dtype=np.float32)


# --- the linear part --------------------------------------------------------


def _svm(p: dict[str, Any], seed: int, class_weight: str | None) -> LinearSVC:
    return LinearSVC(C=p["C"], class_weight=class_weight, max_iter=p["max_iter"], random_state=seed, dual="auto")


# liblinear copies the features it is given (16 bytes per stored value): the
# one-vs-rest fits share the cores only as far as their copies fit in this.
PARALLEL_COPIES_BYTES = 4 * 2**30
# Below this much work (stored values x binary problems) starting worker
# processes costs more than it saves: a small catalog fits in one process.
PARALLEL_MIN_WORK = 100_000_000


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _fit_quietly(svm: LinearSVC, x: sp.csr_matrix, y: np.ndarray) -> LinearSVC:
    # Hitting max_iter leaves a usable model; the warning would only alarm users.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return svm.fit(x, y)


def _fit_binary_svms(x, problems: Iterator[tuple[np.ndarray, Any]], n_problems: int, p, seed) -> list[LinearSVC]:
    """One binary linear SVM per (0/1 target column, class weight) of `problems`,
    on as many cores as the copies allow. The columns are made as they are fitted:
    a catalog of a million products and thousands of classes would not hold them all.

    In processes, not threads: liblinear draws its coordinate order from one
    generator per process, which threads would share, and then the same seed
    would not give the same model. Each fit reseeds it, so the result does not
    depend on how many run at once.
    """
    from joblib import Parallel, delayed

    x = x.astype(np.float64)  # what liblinear reads: converted once, not in every fit
    copy_bytes = 16 * (x.nnz + 2 * x.shape[0]) + 1
    jobs = max(1, min(_cores(), n_problems, PARALLEL_COPIES_BYTES // copy_bytes))
    if jobs == 1 or x.nnz * n_problems < PARALLEL_MIN_WORK:
        return [_fit_quietly(_svm(p, seed, weight), x, column) for column, weight in problems]
    return Parallel(n_jobs=jobs, backend="loky")(
        delayed(_fit_quietly)(_svm(p, seed, weight), x, column) for column, weight in problems
    )


def _fit_multiclass(x, y, n_classes, p, seed, class_weight):
    """OvR linear SVM over the classes present in y: one binary SVM per class, as
    liblinear's own one-vs-rest does (with balanced weights, a class's products
    weighted by its weight, the rest by 1), but on every core.

    Returns coef (K, F) float32, intercept (K,) float32 and the mask of classes
    that were learned; a class absent from y gets probability 0 at prediction.
    """
    n_features = x.shape[1]
    coef = np.zeros((n_classes, n_features), dtype=np.float32)
    intercept = np.zeros(n_classes, dtype=np.float32)
    present = np.unique(y)
    active = np.zeros(n_classes, dtype=bool)
    active[present] = True
    if len(present) == 1:
        return coef, intercept, active
    if len(present) == 2:
        # One binary model: give the two classes opposite margins, so softmax
        # of (-s, s) is the sigmoid of 2s.
        svm = _fit_quietly(_svm(p, seed, class_weight), x, y)
        coef[present[1]], coef[present[0]] = svm.coef_[0], -svm.coef_[0]
        intercept[present[1]], intercept[present[0]] = svm.intercept_[0], -svm.intercept_[0]
        return coef, intercept, active
    if class_weight == "balanced":
        counts = np.bincount(y)[present]
        weights = [{1: len(y) / (len(present) * count), 0: 1.0} for count in counts]
    else:
        weights = [None] * len(present)
    problems = (((y == k).astype(np.int64), weight) for k, weight in zip(present, weights))
    svms = _fit_binary_svms(x, problems, len(present), p, seed)
    for k, svm in zip(present, svms):
        coef[k], intercept[k] = svm.coef_[0], svm.intercept_[0]
    return coef, intercept, active


def _fit_multilabel(x, y, p, seed, class_weight):
    """One binary linear SVM per label. A label that is always (or never) on in
    training is not learned: its probability is that constant."""
    n_classes = y.shape[1]
    coef = np.zeros((n_classes, x.shape[1]), dtype=np.float32)
    intercept = np.zeros(n_classes, dtype=np.float32)
    active = np.zeros(n_classes, dtype=bool)
    constant = np.zeros(n_classes, dtype=np.float32)
    learned = []
    for k in range(n_classes):
        col = y[:, k].astype(np.int64)
        if col.min() == col.max():
            constant[k] = float(col[0]) if len(col) else 0.0
        else:
            learned.append(k)
    problems = ((y[:, k].astype(np.int64), class_weight) for k in learned)
    svms = _fit_binary_svms(x, problems, len(learned), p, seed)
    for k, svm in zip(learned, svms):
        coef[k], intercept[k], active[k] = svm.coef_[0], svm.intercept_[0], True
    return coef, intercept, active, constant


def _scores(x: sp.csr_matrix, coef_t: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    return np.asarray(x @ coef_t, dtype=np.float32) + intercept


# --- calibration (fitted by prodcat.calibration) ----------------------------


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


# --- the model ----------------------------------------------------------------


@register("tfidf-linear")
class TfidfLinear(CategorizerModel):
    """Word + char_wb TF-IDF, linear SVM, calibrated probabilities.

    Settings (all optional, see DEFAULTS): word_ngrams, char_ngrams, min_df,
    word_max_features, char_max_features, lowercase, strip_accents,
    sublinear_tf, C, max_iter, calibration_folds, batch_size.

        >>> TfidfLinear(C=0.5, char_ngrams=[2, 4]).get_params()["char_ngrams"]
        [2, 4]
    """

    label_formats = ("single", "multi", "path")
    # its batch_size is the rows featurized at once when predicting, not --batch-size's products per step
    unshared_settings = frozenset({"batch_size"})

    def __init__(self, **params: Any):
        super().__init__(**params)
        # Checking the names and values here costs nothing and fails a bad
        # config before any data is read.
        resolve_params(self.params)
        self._features: _Features | None = None
        self._coef_t: np.ndarray | None = None  # (F, K) float32, contiguous for X @ W
        self._intercept: np.ndarray | None = None
        self._active: np.ndarray | None = None
        self._constant: np.ndarray | None = None  # multi: probability of unlearned labels
        self._calibration: dict[str, Any] = {}

    def get_params(self) -> dict[str, Any]:
        p = resolve_params(self.params)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in p.items()}

    # --- training ---------------------------------------------------------
    def fit(
        self,
        products: Products,
        y: np.ndarray,
        label_space: LabelSpace,
        valid: tuple[Products, np.ndarray] | None = None,
        *,
        seed: int = 0,
        class_weight: str | None = None,
        context: FitContext | None = None,  # trains in one pass: nothing to log or resume
    ) -> TfidfLinear:
        p = resolve_params(self.params)
        if class_weight not in (None, "balanced"):
            raise ConfigError(f"tfidf-linear: class_weight must be None or 'balanced', got {class_weight!r}")
        multi = label_space.is_multi
        texts, y = self._usable(products, y, label_space)
        if len(texts) == 0:
            raise ConfigError("tfidf-linear: no training products with a known label")
        self.label_space = label_space

        learned = [b for b in (_Block.learn("word", texts, p), _Block.learn("char_wb", texts, p)) if b is not None]
        blocks = [block for block, _ in learned]
        if not blocks:
            # scikit-learn would stop on "0 feature(s)", naming neither the setting nor the fix
            raise ConfigError(f"tfidf-linear: no word or character n-gram is in at least min_df={p['min_df']} of the "
                              f"{len(texts):,} training texts; lower min_df")
        self._features = _Features(blocks)
        x = self._features.stack([features for _, features in learned])

        if multi:
            coef, intercept, active, constant = _fit_multilabel(x, y, p, seed, class_weight)
            self._constant = constant
        else:
            coef, intercept, active = _fit_multiclass(x, y, label_space.n_classes, p, seed, class_weight)
        self._coef_t = np.ascontiguousarray(coef.T)
        self._intercept, self._active = intercept, active

        held = None
        if valid is not None and len(valid[0]):
            v_texts, v_y = self._usable(valid[0], valid[1], label_space)
            if len(v_texts):
                held = (self._raw_scores(v_texts), v_y)
        if held is None:
            held = self._out_of_fold(x, y, label_space, p, seed, class_weight)
        self._calibration = self._calibrate(held, multi)
        return self

    @staticmethod
    def _usable(products: Products, y: np.ndarray, label_space: LabelSpace) -> tuple[list[str], np.ndarray]:
        y = np.asarray(y)
        if len(y) != len(products):
            raise ConfigError(f"tfidf-linear: {len(products)} products but {len(y)} targets")
        if label_space.is_multi:
            if y.ndim != 2 or y.shape[1] != label_space.n_classes:
                raise ConfigError(f"tfidf-linear: multi-label targets must be (n, {label_space.n_classes})")
            return list(products.texts), y.astype(np.uint8)
        keep = y >= 0  # -1: a class the label space does not know
        idx = np.flatnonzero(keep)
        return [products.texts[i] for i in idx], y[keep].astype(np.int64)

    def _out_of_fold(self, x, y, label_space, p, seed, class_weight):
        """Held-out scores from k-fold refits on train, for calibration without
        a valid split. Vocabulary and idf come from all of train (as when scores
        are computed on precomputed features); the SVM weights do not."""
        n = x.shape[0]
        folds = min(p["calibration_folds"], n)
        if folds < 2:
            return None
        if label_space.is_multi:
            splitter = KFold(folds, shuffle=True, random_state=seed).split(np.zeros(n))
        else:
            counts = np.bincount(y)
            if counts[counts > 0].max() < folds:
                return None
            # StratifiedKFold warns when some class has fewer members than
            # folds; those classes just miss some folds, handled below.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                splitter = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(n), y))
        scores = np.zeros((n, label_space.n_classes), dtype=np.float32)
        usable = np.zeros(y.shape, dtype=bool)
        for train_idx, test_idx in splitter:
            if label_space.is_multi:
                coef, intercept, active, _ = _fit_multilabel(x[train_idx], y[train_idx], p, seed, class_weight)
                scores[test_idx] = _scores(x[test_idx], coef.T, intercept)
                usable[test_idx] = active[None, :]
            else:
                coef, intercept, active = _fit_multiclass(
                    x[train_idx], y[train_idx], label_space.n_classes, p, seed, class_weight
                )
                if active.sum() < 2:
                    continue
                s = _scores(x[test_idx], coef.T, intercept)
                s[:, ~active] = -np.inf
                scores[test_idx] = s
                usable[test_idx] = active[y[test_idx]]
        # multi: 1-D (score, target) pairs of labels the fold model learned;
        # single/path: rows whose true class the fold model could predict.
        return (scores[usable], y[usable]) if usable.any() else None

    def _calibrate(self, held, multi: bool) -> dict[str, Any]:
        if multi:
            if held is None or held[1].min() == held[1].max():
                a, b = DEFAULT_PLATT
                return {"kind": "platt", "slope": a, "intercept": b, "fitted_on": "default"}
            scores, y = held
            if scores.ndim == 2:  # valid split: every learned label's column
                scores, y = scores[:, self._active].ravel(), y[:, self._active].ravel()
            a, b = fit_platt(scores, y)
            return {"kind": "platt", "slope": a, "intercept": b, "fitted_on": f"{len(y)} pairs"}
        if held is None or len(held[1]) == 0:
            return {"kind": "temperature", "temperature": DEFAULT_TEMPERATURE, "fitted_on": "default"}
        scores, y = held
        keep = np.isfinite(scores[np.arange(len(y)), y])
        if not keep.any():
            return {"kind": "temperature", "temperature": DEFAULT_TEMPERATURE, "fitted_on": "default"}
        t = fit_temperature(scores[keep], y[keep])
        return {"kind": "temperature", "temperature": t, "fitted_on": f"{int(keep.sum())} products"}

    # --- prediction -------------------------------------------------------
    def _raw_scores(self, texts: list[str]) -> np.ndarray:
        """Decision scores, -inf for classes never seen in training (single/path)."""
        s = _scores(self._features.transform(texts), self._coef_t, self._intercept)
        if not self.label_space.is_multi:
            s[:, ~self._active] = -np.inf
        return s

    def decision_function(self, products: Products) -> np.ndarray:
        """Uncalibrated SVM margins, (n, n_classes) float32."""
        self._check_fitted()
        size = resolve_params(self.params)["batch_size"]
        texts = products.texts
        out = np.empty((len(texts), self.label_space.n_classes), dtype=np.float32)
        for start in range(0, len(texts), size):
            out[start : start + size] = self._raw_scores(texts[start : start + size])
        return out

    def scores_to_proba(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities from `decision_function` output."""
        cal = self._calibration
        if cal["kind"] == "temperature":
            return _softmax(scores.astype(np.float64) / cal["temperature"]).astype(np.float32)
        z = cal["slope"] * scores.astype(np.float64) + cal["intercept"]
        proba = expit(z).astype(np.float32)
        proba[:, ~self._active] = self._constant[~self._active]
        return proba

    def predict_proba(self, products: Products) -> np.ndarray:
        self._check_fitted()
        size = resolve_params(self.params)["batch_size"]
        texts = products.texts
        out = np.empty((len(texts), self.label_space.n_classes), dtype=np.float32)
        # Featurize and score a slice at a time: memory stays bounded by
        # batch_size whatever the number of products.
        for start in range(0, len(texts), size):
            out[start : start + size] = self.scores_to_proba(self._raw_scores(texts[start : start + size]))
        return out

    def _check_fitted(self) -> None:
        if self._features is None or self.label_space is None:
            raise RuntimeError("TfidfLinear is not fitted; call fit or from_state first")

    # --- persistence --------------------------------------------------------
    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        self._check_fitted()
        state: dict[str, Any] = {
            "version": STATE_VERSION,
            "blocks": [{"analyzer": b.analyzer, "terms": list(b.terms)} for b in self._features.blocks],
            "calibration": dict(self._calibration),
            "n_classes": int(self.label_space.n_classes),
            "n_features": int(self._features.n_features),
        }
        arrays = {f"idf_{i}": b.idf for i, b in enumerate(self._features.blocks)}
        # (K, F) as documented for readers of the file; transposed back on load
        arrays["coef"] = np.ascontiguousarray(self._coef_t.T, dtype=np.float32)
        arrays["intercept"] = self._intercept.astype(np.float32)
        arrays["active"] = self._active.astype(np.uint8)
        if self._constant is not None:
            arrays["constant"] = self._constant.astype(np.float32)
        return state, arrays

    @classmethod
    def from_state(
        cls, params: dict[str, Any], state: dict[str, Any], arrays: dict[str, np.ndarray], label_space: LabelSpace
    ) -> TfidfLinear:
        try:
            model = cls(**params)
            p = resolve_params(model.params)
        except ConfigError as exc:
            raise SavedSettingsError(str(exc)) from None
        try:
            if state.get("version") != STATE_VERSION:
                raise ModelDirError(f"tfidf-linear: state version {state.get('version')!r} is not {STATE_VERSION}")
            blocks = []
            for i, block in enumerate(state["blocks"]):
                analyzer = block["analyzer"]
                ngrams = p["word_ngrams"] if analyzer == "word" else p["char_ngrams"]
                _check_ngrams_fit_terms(analyzer, ngrams, block["terms"])
                idf = np.asarray(arrays[f"idf_{i}"], dtype=np.float32)
                if len(idf) != len(block["terms"]):
                    raise ModelDirError(f"tfidf-linear: block {i} has {len(block['terms'])} terms but {len(idf)} idf")
                blocks.append(_Block(analyzer, ngrams, p, list(block["terms"]), idf))
            model._features = _Features(blocks)
            coef = np.asarray(arrays["coef"], dtype=np.float32)
            expected = (label_space.n_classes, model._features.n_features)
            if coef.shape != expected:
                raise ModelDirError(f"tfidf-linear: coef has shape {coef.shape}, expected {expected}")
            model._coef_t = np.ascontiguousarray(coef.T)
            model._intercept = np.asarray(arrays["intercept"], dtype=np.float32)
            model._active = np.asarray(arrays["active"]).astype(bool)
            if label_space.is_multi:
                model._constant = np.asarray(arrays["constant"], dtype=np.float32)
            model._calibration = checked_calibration(state["calibration"], label_space.is_multi)
        except KeyError as exc:
            raise ModelDirError(f"tfidf-linear: saved state lacks {exc.args[0]!r}") from None
        model.label_space = label_space
        return model
