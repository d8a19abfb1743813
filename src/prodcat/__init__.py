"""prodcat: put e-commerce products into the right category.

    >>> from prodcat import Categorizer
    >>> clf = Categorizer(model="tfidf-linear", text_cols=["title"], label_col="category")
    >>> clf.fit("catalog.csv")                       # doctest: +SKIP
    >>> clf.predict([{"title": "Slim fit cotton shirt"}])   # doctest: +SKIP
"""

__version__ = "0.1.0"

from prodcat.errors import ProdcatError  # noqa: E402


def __getattr__(name):
    # The facade pulls in scikit-learn and pandas; importing it lazily keeps
    # `import prodcat` and `prodcat --help` fast.
    if name == "Categorizer":
        from prodcat.categorizer import Categorizer

        return Categorizer
    raise AttributeError(name)


__all__ = ["Categorizer", "ProdcatError", "__version__"]
