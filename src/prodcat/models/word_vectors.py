"""Starting word vectors learned from the training texts alone (latent semantic analysis).

A word model that starts from random vectors must learn from the labels alone
that "curtain" and "eyelet" belong together. On a small catalog (a few hundred
products, a few per class) it never does. LSA gives it that from the texts: the
TF-IDF matrix of the training products (products x words), reduced by a
truncated SVD, gives each word a vector; words used in the same products get
near vectors. Nothing is downloaded, and the texts are those the model trains on.

    >>> from prodcat.models.vocab import Vocabulary
    >>> texts = ["cotton shirt", "linen shirt", "steel mug", "ceramic mug"] * 3
    >>> vocab = Vocabulary.build(texts)
    >>> vectors = lsa_word_vectors(texts, vocab, dim=2, seed=0)
    >>> vectors.shape  # one row per id; <pad> and <unk> rows are 0
    (8, 2)
    >>> import numpy as np
    >>> near = lambda a, b: float(np.dot(vectors[vocab.id(a)], vectors[vocab.id(b)]))
    >>> near("shirt", "cotton") > near("shirt", "mug")
    True
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import sparse

from prodcat.models.vocab import PAD_ID, UNK_ID, Vocabulary

#: the most products the SVD reads; a seeded sample above it keeps a catalog of
#: any size near 15 s on 2 cores (13.6 s measured), and words common enough to matter are in it
MAX_LSA_TEXTS = 100_000


def lsa_word_vectors(
    texts: Sequence[str], vocabulary: Vocabulary, *, dim: int, seed: int, max_texts: int = MAX_LSA_TEXTS,
) -> np.ndarray:
    """(len(vocabulary), k) float32 LSA vectors, k = min(dim, products - 1, words - 1).

    Rows are scaled together to a standard deviation of 1, the scale of a
    freshly initialised `nn.Embedding`. `<pad>`, `<unk>` and words absent from
    the texts read get zero rows (k may be 0 on a tiny catalog: no vectors).
    """
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfTransformer

    texts = list(texts)
    if len(texts) > max_texts:
        keep = np.sort(np.random.default_rng(seed).choice(len(texts), max_texts, replace=False))
        texts = [texts[i] for i in keep]
    encoded = vocabulary.encode_batch(texts)
    rows = np.repeat(np.arange(len(encoded)), [len(ids) for ids in encoded])
    cols = np.fromiter((i for ids in encoded for i in ids), dtype=np.int64, count=len(rows))
    counts = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(encoded), len(vocabulary)))
    # <unk> stands for many unrelated rare words: no one meaning to place.
    keep_column = np.ones(len(vocabulary), np.float32)
    keep_column[[PAD_ID, UNK_ID]] = 0
    counts = (counts @ sparse.diags(keep_column)).tocsr()
    counts.eliminate_zeros()

    vectors = np.zeros((len(vocabulary), 0), np.float32)
    seen = counts.getnnz(axis=0) > 0
    k = min(dim, len(encoded) - 1, int(seen.sum()) - 1)
    if k < 1:
        return vectors
    weighted = TfidfTransformer(sublinear_tf=True).fit_transform(counts)
    svd = TruncatedSVD(k, random_state=seed).fit(weighted)
    vectors = (svd.components_.T * svd.singular_values_).astype(np.float32)
    # The randomized SVD leaves rounding noise (~1e-7) on words it never read.
    vectors[~seen] = 0
    scale = float(vectors[seen].std())
    return vectors / scale if scale > 0 else vectors
