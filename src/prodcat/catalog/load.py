"""From a file or a DataFrame to a validated Catalog, whole or in chunks.

Image cells become `Products.images` references here (see `image_refs`): paths
resolved against the image folder chosen once per catalog (`image_dir_for`),
raw bytes kept, URLs kept as given. No image file is opened while loading:
the image models read them, and `prodcat inspect` checks them.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd

from prodcat.catalog.fields import FieldMapping
from prodcat.catalog.products import Catalog, Products
from prodcat.catalog.readers import cell_text, iter_table, missing_columns_message, read_table
from prodcat.errors import CatalogError, ColumnError, LabelError
from prodcat.images.decode import RefusedPath
from prodcat.labels import check_multi_tags, check_path_levels, parse_labels, path_labels_from_columns, require_labels

CatalogSource = str | Path | pd.DataFrame


def _as_string_frame(frame: pd.DataFrame, columns: list[str], where: str, first_row: int = 1) -> pd.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ColumnError(missing_columns_message(missing, [str(c) for c in frame.columns], where))
    repeated = sorted({c for c in columns if list(frame.columns).count(c) > 1})
    if repeated:
        raise ColumnError(f"column {', '.join(map(repr, repeated))} appears more than once in {where}")
    picked = frame[columns]
    text = {}
    for column in columns:
        values = picked[column]
        if values.dtype == object and not all(type(v) is str for v in values.tolist()):
            # lists, dicts, numpy arrays, numbers mixed with text: read as a file's cells are
            try:
                text[column] = [cell_text(v) for v in values.tolist()]
            except CatalogError as exc:  # bytes that are not UTF-8: said with the column and row
                row = next(i for i, v in enumerate(values.tolist()) if isinstance(v, (bytes, bytearray))
                           and not _is_utf8(v))
                raise CatalogError(f"{where}: column {column!r}, row {first_row + row}: {exc}") from None
        else:
            text[column] = values.astype(object).where(values.notna(), "").astype(str)
    return pd.DataFrame(text, index=picked.index, columns=columns)


def _is_utf8(data: bytes | bytearray) -> bool:
    try:
        bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_URL_SCHEMES = ("http://", "https://")


def is_url(ref: str) -> bool:
    """Whether an image reference is a web address (kept as given, never fetched)."""
    return ref[:8].lower().startswith(_URL_SCHEMES)


def with_text_column_names(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with its column names as text, as a field mapping names them
    (`pd.read_csv(header=None)` names them 0, 1, ...)."""
    if isinstance(frame.columns, pd.MultiIndex):
        # frame["title"] would be a frame of sub-columns, failing deep inside with an AttributeError
        raise ColumnError("the DataFrame's columns have several levels (a MultiIndex): give each column one name, "
                          "e.g. frame.columns = ['_'.join(map(str, c)) for c in frame.columns]")
    if all(isinstance(c, str) for c in frame.columns):
        return frame
    return frame.rename(columns=str)


def image_dir_for(mapping: FieldMapping, catalog_file: str | Path | None = None) -> Path | None:
    """The folder a catalog's relative image paths start from (None: the current directory).

    The rule (documented on FieldMapping): an absolute image_root as is; a
    relative one from the catalog file's folder when that folder holds it,
    else from the current directory; no image_root: the catalog file's folder.
    catalog_file None (a DataFrame, dicts) reads relative roots from the
    current directory. Called once per catalog, not per row.
    """
    # os.path.expanduser leaves "~unknown" as it is, where Path.expanduser raises
    root = Path(os.path.expanduser(mapping.image_root)) if mapping.image_root else None
    if root is not None and root.is_absolute():
        return root
    folder = Path(os.path.expanduser(catalog_file)).parent if catalog_file is not None else None
    if root is None:
        return folder
    if folder is not None and (folder / root).is_dir():
        return folder / root
    return root


def served_image_folder(mapping: FieldMapping) -> Path:
    """The absolute folder that relative photo paths of a catalog sent to a
    server (`prodcat serve`'s file route, the app's upload) start from.

    An upload lands in a temporary folder with no photos beside it, so the
    rule "beside the catalog file" would find none: the mapping's image_root
    as seen from the server's current directory is used (an absolute one as
    it is), or that directory itself when it has none.
    """
    folder = image_dir_for(mapping)  # no catalog file: from the current directory
    return Path(os.path.abspath(folder if folder is not None else os.curdir))


def image_ref(
    value: Any, image_dir: Path | None, template: str | None = None, *, confine: bool = False
) -> str | bytes | RefusedPath | None:
    """One cell as an image reference: None (no photo), bytes, a URL, or a path.

    Empty cells, None and NaN give None; bytes stay bytes (an encoded image
    given through the Python API or HTTP); a template turns the cell into a
    file name; a relative path is joined to `image_dir`. confine: the
    catalog came from someone else (an upload), so a path that ends outside
    `image_dir` (absolute elsewhere, or climbing out with "..") is a
    `RefusedPath`, never opened.
    """
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value) or None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():  # an id column with gaps arrives as floats: 1163.0 is file 1163
            value = int(value)
    text = str(value).strip()
    if not text:
        return None
    if is_url(text):
        return text
    if template:
        text = template.format(text)
        if is_url(text):
            return text
    path = Path(text)  # a cell is data: no "~" expansion
    if not path.is_absolute() and image_dir is not None:
        path = image_dir / path
    if confine and not _inside(path, _confining_folder(image_dir, template)):
        return RefusedPath(text)
    return str(path)


def _confining_folder(image_dir: Path | None, template: str | None) -> Path | None:
    """The folder a confined cell must stay in: the image folder, or the
    folder the template's own fixed part names ("/srv/photos/{}.jpg" is the
    model owner's choice; only the cell comes from the client)."""
    fixed = os.path.dirname(template.format("\0").split("\0")[0]) if template else ""
    if not fixed:
        return image_dir
    folder = Path(fixed)
    return folder if folder.is_absolute() or image_dir is None else image_dir / folder


def _inside(path: Path, folder: Path | None) -> bool:
    """Whether `path` names a file inside `folder` (None: the current directory).

    Judged on the names alone, as a web server does: a symbolic link the
    folder's owner put there is followed, "../" written by a client is not.
    """
    base = os.path.abspath(folder if folder is not None else os.curdir)
    return os.path.abspath(path).startswith(base.rstrip(os.sep) + os.sep)


def image_refs(
    values: Sequence[Any], mapping: FieldMapping, image_dir: Path | None, *, confine: bool = False
) -> list[str | bytes | RefusedPath | None]:
    """`image_ref` of each cell of the mapping's image column."""
    template = mapping.image_template
    return [image_ref(value, image_dir, template, confine=confine) for value in values]


def catalog_from_frame(
    frame: pd.DataFrame,
    mapping: FieldMapping,
    *,
    source: str = "<dataframe>",
    with_labels: bool = True,
    first_row: int = 1,
    image_dir: Path | None = None,
    allow_empty_labels: bool = False,
    confine_photos: bool = False,
    skip_unlabelled: bool = False,
) -> Catalog:
    """Build a Catalog from a DataFrame; every mapped column is taken as text.

    image_dir: the folder relative image paths start from, from
    `image_dir_for` (None: `image_dir_for(mapping)`, i.e. from the current
    directory, as for a DataFrame). Image cells that are bytes stay bytes.
    allow_empty_labels: keep an empty label cell as the empty label () rather
    than refuse the catalog (for `inspect`, which reports them).
    Rows with an empty label are refused, except those with no text or photo
    either (a shop export's variant rows), which are left out; skip_unlabelled
    leaves out every row with an empty label. The Catalog keeps the file's
    row numbers of the rest (`Catalog.rows`) and of those (`Catalog.left_out`).
    confine_photos: photo paths outside image_dir are refused (see `image_ref`).
    """
    if not mapping.image_col:  # a catalog of photos alone has no text column
        mapping.require_text()
    frame = with_text_column_names(frame)
    if with_labels:
        mapping.require_labels()
    images = None
    if mapping.image_col and mapping.image_col in frame.columns:
        # Read before the frame is turned into text, so bytes cells keep their bytes.
        if image_dir is None:
            image_dir = image_dir_for(mapping)
        cells = frame[mapping.image_col].tolist()
        images = image_refs(cells, mapping, image_dir, confine=confine_photos)
        if any(isinstance(cell, (bytes, bytearray, memoryview)) for cell in cells):
            # The text frame shows an encoded image by its size: pandas would try to decode it as text.
            shown = [f"<{len(cell):,} bytes>" if isinstance(cell, (bytes, bytearray, memoryview)) else cell
                     for cell in cells]
            frame = frame.assign(**{mapping.image_col: shown})
    frame = _as_string_frame(frame, mapping.columns(with_labels), source, first_row).reset_index(drop=True)
    text_columns = {col: frame[col].tolist() for col in mapping.text_cols}
    texts = ([mapping.join_text(list(values)) for values in zip(*text_columns.values())] if text_columns
             else [""] * len(frame))
    products = Products(texts=texts, fields=text_columns, images=images)
    labels = None
    if with_labels:
        for column in mapping.label_cols:
            _refuse_object_labels(frame[column].tolist(), where=source, column=column, first_row=first_row)
        if len(mapping.label_cols) > 1:
            labels = path_labels_from_columns([frame[c].tolist() for c in mapping.label_cols], mapping.label_level)
        else:
            labels = parse_labels(
                frame[mapping.label_cols[0]].tolist(),
                mapping.label_format,
                mapping.label_sep,
                mapping.label_level,
                where=source,
                column=mapping.label_cols[0],
                first_row=first_row,
                require=False,
            )
        bare: list[int] = []
        if not allow_empty_labels:
            nothing = products.reads_nothing(text=True, images=True)
            variants = _variant_rows(labels, nothing)
            if skip_unlabelled:
                bare = [i for i, label in enumerate(labels) if not label]
            else:
                bare = variants
                _refuse_empty_labels(labels, variants, where=source, column=",".join(mapping.label_cols),
                                     first_row=first_row)
        if mapping.label_format == "path":
            labels = check_path_levels(labels, where=source, column=",".join(mapping.label_cols), first_row=first_row)
        elif mapping.label_format == "multi":
            labels = check_multi_tags(labels, where=source, column=mapping.label_cols[0], first_row=first_row)
        if bare:
            # Checked above on every row, so each error names the file's rows; the catalog keeps them too.
            kept = np.flatnonzero(~np.isin(np.arange(len(labels)), bare))
            catalog = Catalog(products=products, labels=labels, frame=frame, mapping=mapping,
                              source=source).take(kept)
            return replace(catalog, rows=[first_row + int(i) for i in kept],
                           left_out=[first_row + i for i in bare],
                           left_out_readable=len(bare) - len(variants))
    return Catalog(
        products=products,
        labels=labels,
        frame=frame,
        mapping=mapping,
        source=source,
    )


def json_objects(cells: Sequence[str], first_row: int = 1) -> tuple[int, str, list[str]] | None:
    """When every filled cell is a JSON object (a nested object of a JSON Lines or Parquet
    file named by its parent, '"title": {"en": ...}'): the first one's row, text and keys;
    else None."""
    first_filled = None
    for row, cell in enumerate(cells, first_row):
        stripped = cell.lstrip()
        if not stripped:
            continue
        if not stripped.startswith("{"):
            return None  # most text columns: at their first filled cell, not after listing them all
        if first_filled is None:
            first_filled = row, cell
    if first_filled is None:
        return None
    row, first = first_filled
    try:
        fields = json.loads(first)
    except ValueError:
        return None
    if not isinstance(fields, dict) or not fields:
        return None
    return row, first, list(fields)


def _dotted(column: str, keys: list[str]) -> str:
    return ", ".join(f"{column}.{key}" for key in keys[:5])


def json_object_text_columns(products: Products) -> dict[str, list[str]]:
    """The text columns whose every filled cell is a JSON object, with its keys."""
    found = {column: json_objects(values) for column, values in (products.fields or {}).items()}
    return {column: objects[2] for column, objects in found.items() if objects}


def json_object_text_message(column: str, keys: list[str], where: str) -> str:
    """One line on a text column of JSON objects, for a warning."""
    return (f"text column {column!r} of {where} holds JSON objects: models read each as its JSON text, keys and "
            "nulls included; name the field that holds the text: in JSON Lines and Parquet by its dotted path "
            f"({_dotted(column, keys)})")


def _refuse_object_labels(cells: list[str], *, where: str, column: str, first_row: int) -> None:
    """A LabelError when every label cell is a JSON object (an API's '"category": {"path": [...],
    "id": 7}' named by its object): each object's JSON text would be a class of its own."""
    objects = json_objects(cells, first_row)
    if objects is None:
        return
    row, first, keys = objects
    shown = first if len(first) <= 80 else first[:77] + "..."
    raise LabelError(f"{where}: label column {column!r} holds JSON objects, not labels (row {row}: {shown!r}); "
                     f"name the field that holds the label: in JSON Lines and Parquet by its dotted path "
                     f"({_dotted(column, keys)})")


def empty_labels_with_nothing_to_read(labels: Sequence[tuple], products: Products) -> int:
    """How many products have an empty label and no text or photo either: not products
    at all, most likely, but a shop export's variant rows (Shopify writes a product's
    title, description and category on its first row only)."""
    return len(_variant_rows(labels, products.reads_nothing(text=True, images=True)))


def _variant_rows(labels: Sequence[tuple], nothing: np.ndarray) -> list[int]:
    """The positions of the products with an empty label and nothing to read (`nothing`:
    `Products.reads_nothing`, no text or photo): a shop export's variant rows
    (`empty_labels_with_nothing_to_read`), left out of a labelled catalog. A model could
    learn nothing from them, and they have nothing to predict a category from."""
    return [i for i, (label, empty) in enumerate(zip(labels, nothing)) if not label and empty]


def _refuse_empty_labels(labels: list[tuple], variants: list[int], *, where: str, column: str,
                         first_row: int) -> None:
    """`require_labels`' error on the rows with an empty label that have text or a photo
    (the others, `variants`, are left out, see `_variant_rows`), which says how many were left out."""
    left_out = set(variants)
    # the left-out rows count as labelled here, so the error names only the rows to fill in
    filled = [label if label or i not in left_out else ("",) for i, label in enumerate(labels)]
    try:
        require_labels(filled, where=where, column=column, first_row=first_row)
    except LabelError as error:
        if not variants:
            raise LabelError(f"{error}; fill them in, or pass --skip-unlabelled to leave them out") from None
        raise LabelError(f"{error} (and {len(variants)} with no text or photo either, a shop export's variant "
                         "rows, which are left out); fill them in, or pass --skip-unlabelled to leave them out "
                         "too") from None


def left_out_rows_message(catalog: Catalog) -> str | None:
    """One line on the rows of `catalog` left out while loading (see `_variant_rows`), for a
    warning; None when there are none."""
    rows = catalog.left_out
    if not rows:
        return None
    shown = ", ".join(str(row) for row in rows[:5])
    more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
    bare = len(rows) - catalog.left_out_readable
    if catalog.left_out_readable:
        variants = (f"; {bare} of them have no text or photo either (a shop export's variant rows?)" if bare
                    else "")
        return (f"{catalog.source}: {len(rows)} row(s) with an empty label are left out: products not yet "
                f"categorized (row {shown}{more}){variants}")
    return (f"{catalog.source}: {len(rows)} row(s) with an empty label and no text or photo are left out (row "
            f"{shown}{more}): a shop export's variant rows, most likely (Shopify writes a product's title, "
            "description and category on its first row only)")


def check_catalog_source(data: Any) -> None:
    """A CatalogError unless `data` is a file path or a DataFrame (what `load_catalog` reads)."""
    if not isinstance(data, (str, os.PathLike, pd.DataFrame)):
        hint = " (pandas.DataFrame(records) makes one of a list of dicts)" if isinstance(data, (list, tuple)) else ""
        raise CatalogError(f"a catalog is a file path or a pandas DataFrame, not a {type(data).__name__}{hint}")


def load_catalog(
    data: CatalogSource, mapping: FieldMapping, *, with_labels: bool = True, allow_empty_labels: bool = False,
    skip_unlabelled: bool = False,
) -> Catalog:
    """Read and validate a whole catalog.

    Raises a ProdcatError naming the file and column or row for: a missing or
    unreadable file, missing columns, empty labels (unless allow_empty_labels:
    then they are kept as (); skip_unlabelled: those rows are left out, see
    `catalog_from_frame`), or no text at all.
    """
    if isinstance(data, pd.DataFrame):
        source, frame = "<dataframe>", data
        if frame.empty:
            raise CatalogError("the catalog DataFrame has no rows")
    else:
        check_catalog_source(data)
        source = str(data)
        frame = read_table(data, mapping.columns(with_labels), **mapping.read_options())
    image_dir = image_dir_for(mapping, None if isinstance(data, pd.DataFrame) else data)
    catalog = catalog_from_frame(frame, mapping, source=source, with_labels=with_labels, image_dir=image_dir,
                                 allow_empty_labels=allow_empty_labels, skip_unlabelled=skip_unlabelled)
    images = catalog.products.images
    if not any(catalog.products.texts) and not (images and any(ref is not None for ref in images)):
        if not mapping.text_cols:
            raise CatalogError(f"no product of {source} has a photo in column {mapping.image_col!r}")
        raise CatalogError(f"every text in column(s) {', '.join(mapping.text_cols)} of {source} is empty")
    return catalog


def iter_catalog(
    path: str | Path, mapping: FieldMapping, *, chunk_size: int = 50_000, confine_photos: bool = False
) -> Iterator[Catalog]:
    """Unlabelled catalog chunks in file order, for predicting files of any size
    (confine_photos: see `image_ref`'s confine)."""
    columns = mapping.columns(with_labels=False)
    image_dir = image_dir_for(mapping, path)
    for chunk in iter_table(path, columns, chunk_size=chunk_size, **mapping.read_options()):
        first_row = int(chunk.index[0]) + 1 if len(chunk) else 1
        yield catalog_from_frame(chunk, mapping, source=str(path), with_labels=False, first_row=first_row,
                                 image_dir=image_dir, confine_photos=confine_photos)
