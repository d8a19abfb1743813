"""From a file or a DataFrame to a validated Catalog, whole or in chunks."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Iterator

import pandas as pd

from prodcat.catalog.fields import FieldMapping
from prodcat.catalog.products import Catalog, Products
from prodcat.catalog.readers import iter_table, read_table
from prodcat.errors import CatalogError, ColumnError
from prodcat.labels import parse_labels, path_labels_from_columns, require_labels

CatalogSource = str | Path | pd.DataFrame


def _as_string_frame(frame: pd.DataFrame, columns: list[str], where: str) -> pd.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        have = [str(c) for c in frame.columns]
        hints = [m for c in missing for m in difflib.get_close_matches(c, have, n=1)]
        hint = f"; did you mean {', '.join(repr(h) for h in hints)}?" if hints else ""
        raise ColumnError(
            f"column {', '.join(repr(c) for c in missing)} not found in {where}{hint} columns are: {', '.join(have[:30])}"
        )
    picked = frame[columns]
    return picked.astype(object).where(picked.notna(), "").astype(str)


def catalog_from_frame(
    frame: pd.DataFrame,
    mapping: FieldMapping,
    *,
    source: str = "<dataframe>",
    with_labels: bool = True,
    first_row: int = 1,
) -> Catalog:
    """Build a Catalog from a DataFrame; every mapped column is taken as text."""
    mapping.require_text()
    if with_labels:
        mapping.require_labels()
    frame = _as_string_frame(frame, mapping.columns(with_labels), source).reset_index(drop=True)
    text_columns = {col: frame[col].tolist() for col in mapping.text_cols}
    texts = [mapping.join_text(list(values)) for values in zip(*text_columns.values())]
    images = frame[mapping.image_col].tolist() if mapping.image_col else None
    labels = None
    if with_labels:
        if len(mapping.label_cols) > 1:
            labels = require_labels(
                path_labels_from_columns([frame[c].tolist() for c in mapping.label_cols], mapping.label_level),
                where=source,
                column=",".join(mapping.label_cols),
                first_row=first_row,
            )
        else:
            labels = parse_labels(
                frame[mapping.label_cols[0]].tolist(),
                mapping.label_format,
                mapping.label_sep,
                mapping.label_level,
                where=source,
                column=mapping.label_cols[0],
                first_row=first_row,
            )
    return Catalog(
        products=Products(texts=texts, fields=text_columns, images=images),
        labels=labels,
        frame=frame,
        mapping=mapping,
        source=source,
    )


def load_catalog(data: CatalogSource, mapping: FieldMapping, *, with_labels: bool = True) -> Catalog:
    """Read and validate a whole catalog.

    Raises a ProdcatError naming the file and column or row for: a missing or
    unreadable file, missing columns, empty labels, or no text at all.
    """
    if isinstance(data, pd.DataFrame):
        source, frame = "<dataframe>", data
        if frame.empty:
            raise CatalogError("the catalog DataFrame has no rows")
    else:
        source = str(data)
        frame = read_table(data, mapping.columns(with_labels), **mapping.read_options())
    catalog = catalog_from_frame(frame, mapping, source=source, with_labels=with_labels)
    if not any(catalog.products.texts):
        raise CatalogError(f"every text in column(s) {', '.join(mapping.text_cols)} of {source} is empty")
    return catalog


def iter_catalog(path: str | Path, mapping: FieldMapping, *, chunk_size: int = 50_000) -> Iterator[Catalog]:
    """Unlabelled catalog chunks in file order, for predicting files of any size."""
    columns = mapping.columns(with_labels=False)
    for chunk in iter_table(path, columns, chunk_size=chunk_size, **mapping.read_options()):
        first_row = int(chunk.index[0]) + 1 if len(chunk) else 1
        yield catalog_from_frame(chunk, mapping, source=str(path), with_labels=False, first_row=first_row)
