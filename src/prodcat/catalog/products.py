"""The in-memory form of a catalog that models and reports work on."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
import pandas as pd

from prodcat.catalog.fields import FieldMapping, join_text
from prodcat.catalog.markup import markup_to_text
from prodcat.labels import (
    Label, classes_spelled_apart, mixed_path_separators, numeric_ids, one_tag_each, paths_as_single,
    placeholder_labels, several_paths_in_cells,
)


@dataclass
class Products:
    """What a model sees of each product.

    texts: the mapped text fields joined into one string per product.
    fields: each text field on its own (for models that read title and
        description separately), keyed by column name.
    images: per product, a photo: a file path, the bytes of an encoded image,
        or None (no photo); None as a whole when the mapping has no image field.
    """

    texts: list[str]
    fields: dict[str, list[str]] = field(default_factory=dict)
    images: list[str | bytes | None] | None = None

    def __len__(self) -> int:
        return len(self.texts)

    @classmethod
    def from_texts(cls, texts: Sequence[str]) -> Products:
        return cls(texts=[str(t) for t in texts])

    def reads_nothing(self, *, text: bool, images: bool) -> np.ndarray:
        """Per product, whether it has nothing a model reads: no text (for a model of text,
        `text`) and no photo (for a model of photos, `images`).

        The model still answers, from its biases alone: tfidf-linear on a catalog
        where one class is most products gives that class at confidence 1.0, which
        would pass any review threshold (a Shopify export's variant rows have no title).
        """
        texts = self.texts if text else [""] * len(self)
        photos = self.images if images and self.images is not None else [None] * len(self)
        return np.array([not t.strip() and photo is None for t, photo in zip(texts, photos)], dtype=bool)

    def without_markup(self, columns: Sequence[str] | None = None) -> Products:
        """These products as they read without HTML markup (`prodcat.catalog.markup`)
        in the text fields `columns` (None: all of them).

        Each field is read on its own and the text joined again from them, so
        a "<" ending a title and a ">" in the description are never one tag.
        Products given as texts alone (no fields) are read whole.
        """
        if not self.fields:
            return replace(self, texts=[markup_to_text(t) for t in self.texts])
        fields = {name: [markup_to_text(v) for v in values] if columns is None or name in columns else values
                  for name, values in self.fields.items()}
        texts = [join_text(values) for values in zip(*fields.values())]
        return replace(self, texts=texts, fields=fields)

    def read_with(self, strip_markup: bool | Sequence[str] | None) -> Products:
        """These products as a model whose mapping's `strip_markup` is this reads them:
        without markup in every text field (True), in the fields named, or as written
        (None, False, no field)."""
        if not strip_markup:
            return self
        return self.without_markup(None if strip_markup is True else strip_markup)

    def take(self, indices: Sequence[int] | np.ndarray) -> Products:
        idx = np.asarray(indices, dtype=np.int64)
        return Products(
            texts=[self.texts[i] for i in idx],
            fields={k: [v[i] for i in idx] for k, v in self.fields.items()},
            images=None if self.images is None else [self.images[i] for i in idx],
        )


@dataclass
class Catalog:
    """Products with their labels (None for an unlabelled file) and ids.

    frame holds the mapped columns as read (all strings), in file order;
    rows are numbered from 1 in messages, as a spreadsheet user counts them.
    rows: each product's row in the file, when rows were left out while
    loading (None: product i is row i + 1); left_out: those rows (see
    `prodcat.catalog.load.catalog_from_frame`), left_out_readable: how many
    of them had text or a photo (left out by skip_unlabelled).
    """

    products: Products
    labels: list[Label] | None
    frame: pd.DataFrame
    mapping: FieldMapping
    source: str
    rows: list[int] | None = None
    left_out: list[int] = field(default_factory=list)
    left_out_readable: int = 0

    def __len__(self) -> int:
        return len(self.products)

    def row_numbers(self) -> list[int]:
        """Each product's row in the file, numbered from 1."""
        return list(self.rows) if self.rows is not None else list(range(1, len(self) + 1))

    def mixed_path_separators(self, top: int = 5) -> dict | None:
        """Rows of a path label column written with another separator than the
        column's, or most rows when no cell holds the separator given (see
        `prodcat.labels.mixed_path_separators`), with "column"; None when
        there are none, or the labels are no path of one column."""
        return self._path_column_finding(mixed_path_separators, top)

    def several_paths_in_cells(self, top: int = 5) -> dict | None:
        """Rows of a path label column holding several paths in one cell (see
        `prodcat.labels.several_paths_in_cells`), with "column"; None when there
        are none, or the labels are no path of one column."""
        return self._path_column_finding(several_paths_in_cells, top)

    def _path_column_finding(self, find, top: int) -> dict | None:
        """`find(cells, label_sep, top=top)` on the path label column's cells, with "column"."""
        mapping = self.mapping
        if self.labels is None or mapping.label_format != "path" or len(mapping.label_cols) != 1:
            return None
        column = mapping.label_cols[0]
        found = find(self.frame[column].tolist(), mapping.label_sep, top=top)
        if not found:
            return None
        if self.rows is not None:  # rows named as the file numbers them, not as they sit here
            found = {**found, "first_rows": [self.rows[row - 1] for row in found["first_rows"]]}
        return {"column": column, **found}

    def one_tag_each(self) -> dict | None:
        """A multi-label column of which no product holds more than one tag (`prodcat.labels.one_tag_each`),
        with "column"; None otherwise, or for labels of another format."""
        mapping = self.mapping
        if self.labels is None or mapping.label_format != "multi" or len(mapping.label_cols) != 1:
            return None
        column = mapping.label_cols[0]
        found = one_tag_each(self.labels, self.frame[column].tolist())
        return {"column": column, **found} if found else None

    def classes_spelled_apart(self, top: int = 5) -> dict | None:
        """Classes differing only in case, spacing or Unicode form (`prodcat.labels.classes_spelled_apart`),
        with "column"; None when there are none or the catalog has no labels."""
        if self.labels is None:
            return None
        found = classes_spelled_apart(self.labels, self.mapping.label_format, top=top)
        return {"column": ",".join(self.mapping.label_cols), **found} if found else None

    def placeholder_labels(self, top: int = 5) -> dict | None:
        """Labels that mean no category ("Uncategorized", "N/A"; `prodcat.labels.placeholder_labels`),
        as {"column", "labels"}; None when there are none or the catalog has no labels."""
        if self.labels is None:
            return None
        found = placeholder_labels(self.labels, top=top)
        return {"column": ",".join(self.mapping.label_cols), "labels": found} if found else None

    def paths_as_single(self) -> dict | None:
        """A single-label column holding paths or JSON lists (`prodcat.labels.paths_as_single`),
        with "column"; None otherwise, or for labels of another format or several columns."""
        mapping = self.mapping
        if self.labels is None or mapping.label_format != "single" or len(mapping.label_cols) != 1:
            return None
        found = paths_as_single(self.frame[mapping.label_cols[0]].tolist())
        return {"column": mapping.label_cols[0], **found} if found else None

    def numeric_ids(self) -> dict | None:
        """Labels that are numeric ids (a taxonomy's, "1604"; `prodcat.labels.numeric_ids`), with
        "column"; None when there are none to speak of, or the labels are tags or none."""
        if self.labels is None:
            return None
        found = numeric_ids(self.labels, self.mapping.label_format)
        return {"column": ",".join(self.mapping.label_cols), **found} if found else None

    def take(self, indices: Sequence[int] | np.ndarray) -> Catalog:
        idx = np.asarray(indices, dtype=np.int64)
        return Catalog(
            products=self.products.take(idx),
            labels=None if self.labels is None else [self.labels[i] for i in idx],
            frame=self.frame.iloc[idx].reset_index(drop=True),
            mapping=self.mapping,
            source=self.source,
            rows=None if self.rows is None else [self.rows[i] for i in idx],
        )
