"""Categorize an uploaded catalog: the web app's upload path, without Streamlit.

The upload is written to a work folder and streamed through
`Categorizer.predict_file`, so a large catalog never sits in memory as a
table; only the first `preview_rows` predictions (and needs-review rows) are
read back for display.

    >>> from prodcat import Categorizer
    >>> from prodcat.app.uploads import predict_upload
    >>> clf = Categorizer.load("models/demo")                       # doctest: +SKIP
    >>> result = predict_upload(clf, "catalog.csv", data, workdir)  # doctest: +SKIP
    >>> result.rows, result.needs_review, result.preview.columns[:3].tolist()  # doctest: +SKIP
    (630, 12, ['sku', 'prediction', 'confidence'])

Photos. A browser upload carries the catalog file only, never the photos it
names, and it is stored in a temporary folder with nothing beside it: the
usual rule (relative image paths start from the catalog file's folder) would
find no photo at all. For a model that reads photos, the paths in an
uploaded catalog's image column are therefore read on the server, from
`upload_image_folder(clf)`: the model's image_root as seen from the server's
current directory (or that directory itself when the model has no
image_root). Only files inside that folder are read: an absolute path
elsewhere, or one climbing out with "..", counts as not found (an upload
comes from a browser, not from the server's owner); web addresses are never
fetched. How
many of the named photos exist there is counted (`UploadPhotos`), so the page
can say when none were found rather than quietly predicting without them.
"""

from __future__ import annotations

import copy
import io
import os
import re
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Sequence

import pandas as pd

from prodcat.catalog.fields import FieldMapping
from prodcat.catalog.load import image_refs, is_url, served_image_folder
from prodcat.catalog.readers import iter_table, read_columns, reword_encoding_hint
from prodcat.categorizer import DEFAULT_FOLDS
from prodcat.errors import CatalogError, ConfigError, ProdcatError
from prodcat.models import EXPORTED_MODEL

if TYPE_CHECKING:
    from prodcat import Categorizer

#: the formats an upload may have, by suffix (after a compression suffix)
UPLOAD_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zst")
#: what the predictions can be downloaded as
OUTPUT_FORMATS = ("csv", "parquet")
#: rows shown in the browser; the download holds them all
PREVIEW_ROWS = 1_000
MIME_TYPES = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}
#: text encodings an upload may be read with (the app's choice), and their names
ENCODINGS = {"utf-8": "UTF-8", "cp1252": "Windows-1252 (Excel on Windows)", "latin-1": "Latin-1 (ISO-8859-1)",
             "utf-16": "UTF-16"}


@dataclass
class UploadPhotos:
    """The photos an uploaded catalog names, as found on the server.

    column: the image column read; folder: where its relative paths were read
    from. found: products whose photo is a file there; not_found: a path with
    no file there, or a web address (never fetched); without: empty cells.
    A found file may still be unreadable: the model then treats the product
    as having no photo.
    """

    column: str
    folder: Path
    found: int = 0
    not_found: int = 0
    without: int = 0


@dataclass
class CatalogPrediction:
    """The predictions for one uploaded catalog.

    preview / review_preview: the first rows of all predictions and of those
        needing review (at most `preview_rows` each).
    out_path / review_path: the complete files, for download.
    photos: for a model that reads photos, those the upload names (None: the
        model reads none); image_column_missing: the model reads photos but
        the upload has no image column, so it was predicted without them.
    warnings: what predicting found amiss in the upload, one line each
        (products without text, no id column, ...), naming it as uploaded.
    """

    source_name: str
    rows: int
    needs_review: int
    seconds: float
    rows_per_second: int
    preview: pd.DataFrame
    review_preview: pd.DataFrame
    out_path: Path
    review_path: Path
    out_format: str
    photos: UploadPhotos | None = None
    image_column_missing: str | None = None
    warnings: list[str] = field(default_factory=list)

    def download_name(self, review_only: bool = False, out_format: str | None = None) -> str:
        """The download's file name, in `out_format` (None: the format predicted into)."""
        stem = _strip_suffixes(self.source_name)
        return f"{stem}.{'needs_review' if review_only else 'predictions'}.{out_format or self.out_format}"


def upload_format(name: str) -> str:
    """The catalog format of an uploaded file name, or a CatalogError naming it."""
    suffix = _catalog_suffix(name)
    if suffix not in UPLOAD_FORMATS:
        raise CatalogError(
            f"{name} is not a catalog file this app reads: upload a .csv or .parquet file (.tsv and .jsonl work too)"
        )
    return UPLOAD_FORMATS[suffix]


def upload_image_folder(clf: Categorizer) -> Path | None:
    """The absolute folder on this server that relative photo paths of an
    uploaded catalog start from; None when the model reads no photos.

    The model's image_root as seen from the server's current directory (an
    absolute image_root as it is), or that directory itself when it has none.

    >>> upload_image_folder(Categorizer.load("models/fashion"))   # doctest: +SKIP
    PosixPath('/srv/shop/images')
    """
    if not clf.reads_images() or not clf.fields_.image_col:
        return None
    return served_image_folder(clf.fields_)


def predict_upload(
    clf: Categorizer,
    name: str,
    data: bytes | BinaryIO,
    workdir: str | Path,
    *,
    top_k: int = 3,
    out_format: str = "csv",
    preview_rows: int = PREVIEW_ROWS,
    chunk_size: int = 50_000,
    encoding: str = "utf-8",
    text_cols: Sequence[str] | None = None,
    header: bool | None = None,
    id_cols: Sequence[str] | None = None,
    image_col: str | None = None,
) -> CatalogPrediction:
    """Predict an uploaded catalog (its original file name and its bytes).

    Raises a `ProdcatError` with one line naming the uploaded file (not the
    work folder) when the file is not a catalog, is not UTF-8, or has none of
    the model's text columns. Files are written under `workdir`, which the
    caller owns; a later upload replaces the earlier files. Photo paths in
    the upload are read from `upload_image_folder(clf)` (see the module).
    encoding: of a CSV, TSV or JSONL upload (a key of ENCODINGS or any
    Python codec name). text_cols: the upload's columns that stand for the
    model's text fields, in order (None: the model's own names; see
    `upload_columns`). header: whether the upload's first row names its
    columns (None: as the model's training file). id_cols: the upload's
    columns copied to the predictions (None: the model's id columns; none:
    rows are numbered). image_col: the upload's column naming the photos, for
    a model that reads them (None: the model's own).
    """
    if out_format not in OUTPUT_FORMATS:
        raise ConfigError(f"predictions can be downloaded as {' or '.join(OUTPUT_FORMATS)}, not {out_format!r}")
    upload_format(name)
    source = _save_upload(name, data, Path(workdir) / "upload")
    upload_dir = source.parent
    out_path = upload_dir / f"predictions.{out_format}"
    review_path = upload_dir / f"needs_review.{out_format}"
    image_folder = upload_image_folder(clf)
    # An absolute image_root: the rule "beside the catalog file" would look in the temporary folder.
    file_options = {"image_root": str(image_folder)} if image_folder is not None else {}
    if text_cols is not None:
        file_options["text_cols"] = list(text_cols)
    if header is not None:
        file_options["header"] = header
    if id_cols is not None:
        file_options["id_cols"] = list(id_cols)
    if image_col is not None and image_folder is not None:
        file_options["image_col"] = image_col
    photos = image_column_missing = None
    # The app's model is quiet (no terminal to print to) and shared by every
    # session: a copy of it collects this upload's warnings for the page.
    reader = copy.copy(clf)
    reader._collected_warnings = warnings = []
    try:
        # The page says itself when an upload's photos are not on the server
        # (show_upload_photos), where "pass --image-root" would mean nothing.
        summary = reader.predict_file(source, out_path, top_k=top_k, chunk_size=chunk_size, review_out=review_path,
                                     allow_no_photos=True, confine_photos=True, encoding=encoding, **file_options)
        if image_folder is not None:
            photos = count_photos(source, clf, image_folder, chunk_size=chunk_size, encoding=encoding, header=header,
                                  image_col=image_col)
            image_column_missing = (image_col or clf.fields_.image_col) if photos is None else None
    except ProdcatError as exc:
        raise _as_uploaded(exc, source, name) from None
    return CatalogPrediction(
        source_name=name,
        rows=summary["rows"],
        needs_review=summary["needs_review"],
        seconds=summary["seconds"],
        rows_per_second=summary["rows_per_second"],
        preview=read_head(out_path, preview_rows),
        review_preview=read_head(review_path, preview_rows),
        out_path=out_path,
        review_path=review_path,
        out_format=out_format,
        photos=photos,
        image_column_missing=image_column_missing,
        warnings=[_as_the_app_says_it(w.replace(str(source), name)) for w in warnings],
    )


def upload_columns(clf: Categorizer, name: str, data: bytes | BinaryIO, workdir: str | Path, *,
                   encoding: str = "utf-8", header: bool | None = None, with_labels: bool = False) -> list[str]:
    """The columns of an uploaded catalog, read as `predict_upload` (with_labels:
    `check_labels_upload`) reads it, for the page to ask which hold the model's
    fields when the upload names them otherwise."""
    upload_format(name)
    source = _save_upload(name, data, Path(workdir) / "columns")
    try:
        mapping = _upload_mapping(clf, encoding, header)
        return read_columns(source, wanted=mapping.columns(with_labels=with_labels), **mapping.read_options())
    except ProdcatError as exc:
        raise _as_uploaded(exc, source, name) from None
    finally:
        shutil.rmtree(source.parent, ignore_errors=True)


def _save_upload(name: str, data: bytes | BinaryIO, upload_dir: Path) -> Path:
    """The uploaded bytes as a file under its own name in `upload_dir`, emptied first."""
    # A fresh folder per upload: outputs of an earlier catalog never mix with these.
    shutil.rmtree(upload_dir, ignore_errors=True)
    upload_dir.mkdir(parents=True)
    source = upload_dir / _safe_file_name(name)
    with open(source, "wb") as handle:
        if isinstance(data, bytes):
            handle.write(data)
        else:
            data.seek(0)
            shutil.copyfileobj(data, handle)
    return source


@dataclass
class LabelCheck:
    """The products of an uploaded labelled catalog whose label is probably wrong.

    flagged: those products, the most doubtful label first (at most
    `preview_rows`); out_path: all of them, as CSV, for download.
    """

    source_name: str
    rows: int
    issues: int
    not_judged: int
    folds: int
    seconds: float
    flagged: pd.DataFrame
    out_path: Path
    #: what the judges found amiss in the upload (rows left out, labels written two ways), one line each
    warnings: list[str] = field(default_factory=list)

    def download_name(self) -> str:
        return f"{_strip_suffixes(self.source_name)}.label_issues.csv"


def check_labels_upload(clf: Categorizer, name: str, data: bytes | BinaryIO, workdir: str | Path, *,
                        encoding: str = "utf-8", header: bool | None = None,
                        text_cols: Sequence[str] | None = None, label_cols: Sequence[str] | None = None,
                        id_cols: Sequence[str] | None = None, folds: int = DEFAULT_FOLDS,
                        preview_rows: int = PREVIEW_ROWS) -> LabelCheck:
    """Find the probably mislabeled products of an uploaded labelled catalog (`Categorizer.find_label_issues`).

    The judges are models of the app's model's kind and settings (an ONNX
    export's: those of the model it was exported from, see `judge_model`), on its
    columns, trained on the upload itself (`folds` of them): the app's model
    does not judge, since it may have learned the very products uploaded.
    A model that reads photos is refused: its judges would read the photos an
    upload names, and the server's photos are `prodcat label-issues`'s job.
    Errors name the uploaded file, as `predict_upload`'s do.

    The upload's columns, as `predict_upload` takes them: text_cols stand for
    the model's text fields in order (None: those of the model's the upload
    has), label_cols for its label columns (None: the model's), id_cols are
    copied to the list (None: those of the model's the upload has; none: rows
    are numbered); header and encoding as there.
    """
    from prodcat import Categorizer
    from prodcat.label_issues import worst_first, write_issues

    upload_format(name)
    model, params = judge_model(clf)
    if clf.reads_images():
        raise ConfigError(f"this model reads photos; check the labels of a catalog with photos where the photos are: "
                          f"prodcat label-issues --model {model} --image-col ...")
    source = _save_upload(name, data, Path(workdir) / "labels")
    started = time.perf_counter()
    try:
        fields = _judge_fields(clf, source, encoding=encoding, header=header, text_cols=text_cols,
                               label_cols=label_cols, id_cols=id_cols)
        judge = Categorizer(model=model, params=params, fields=fields, quiet=True)
        judge._collected_warnings = warnings = []
        # A shop's catalog is often partly categorized: the products without a label have none to check.
        table = judge.find_label_issues(source, folds=folds, skip_unlabelled=True)
    except ProdcatError as exc:
        raise _as_uploaded(exc, source, name) from None
    flagged = worst_first(table)
    out_path = source.parent / "label_issues.csv"
    write_issues(flagged, out_path, "csv")
    return LabelCheck(source_name=name, rows=len(table), issues=len(flagged), not_judged=table.attrs["not_judged"],
                      folds=table.attrs["folds"], seconds=round(time.perf_counter() - started, 2),
                      flagged=flagged.head(preview_rows), out_path=out_path,
                      warnings=[_as_the_app_says_it(w.replace(str(source), name)) for w in warnings])


def _judge_fields(clf: Categorizer, source: Path, *, encoding: str, header: bool | None,
                  text_cols: Sequence[str] | None, label_cols: Sequence[str] | None,
                  id_cols: Sequence[str] | None) -> FieldMapping:
    """The field mapping the judges of an upload read it by: the model's, with the upload's own columns."""
    mapping = _upload_mapping(clf, encoding, header)
    own_text, own_ids = mapping.text_cols, mapping.id_cols
    renamed = dict(zip(own_text, text_cols if text_cols is not None else own_text))
    if text_cols is None or id_cols is None:
        columns = read_columns(source, wanted=mapping.columns(), **mapping.read_options())
        # as predicting an upload does: a text or id column it lacks is left out, not an error
        # (the judges are trained on the upload, so they learn from the text columns it has)
        if text_cols is None:
            text_cols = [c for c in own_text if c in columns] or own_text
        if id_cols is None:
            id_cols = [c for c in own_ids if c in columns]
    strip_markup = mapping.strip_markup
    if isinstance(strip_markup, tuple):
        # the model's choice of columns read without markup, followed to the upload's names for them
        strip_markup = tuple(renamed[c] for c in strip_markup if c in renamed)
    return replace(mapping, text_cols=tuple(text_cols), label_cols=tuple(label_cols or mapping.label_cols),
                   id_cols=tuple(id_cols), strip_markup=strip_markup)


def judge_model(clf: Categorizer) -> tuple[str, dict | None]:
    """The kind and settings of the models that judge an upload's labels for `clf`: its own,
    or for an ONNX export (which cannot be trained) those of the model it was exported from."""
    params = clf.params or {}
    if clf.model == EXPORTED_MODEL and params.get("source_model"):
        return params["source_model"], params.get("source_params")
    return clf.model, clf.params


def _as_uploaded(exc: ProdcatError, source: Path, name: str) -> ProdcatError:
    """The error in the app's words, naming the file as uploaded: the user knows it by that name, not by our work path."""
    return type(exc)(_as_the_app_says_it(str(exc).replace(str(source), name)))


def _as_the_app_says_it(message: str) -> str:
    """A reader's error or warning in the app's words: it has choices of encoding, header and id
    columns, not --encoding, --header or --id-cols options."""
    message = message.replace("needs --header", "needs \"First row names the columns\" ticked above").replace(
        "pass --id-cols", "choose its id columns above")
    return reword_encoding_hint(message, lambda name: "choose its real encoding above" if name is None
                                else f"choose {ENCODINGS.get(name, name)} as its encoding above")


def _upload_mapping(clf: Categorizer, encoding: str, header: bool | None) -> FieldMapping:
    """The model's field mapping as an upload is read: its encoding, and its header if the page says."""
    return clf._field_options({"encoding": encoding, "header": header})


def count_photos(
    source: Path, clf: Categorizer, folder: Path, *, chunk_size: int = 50_000, encoding: str = "utf-8",
    header: bool | None = None, image_col: str | None = None,
) -> UploadPhotos | None:
    """How many of the photos a catalog file names are files in `folder` (None: it has no image column).

    Reads the image column alone, in chunks, and makes each cell's reference
    as prediction does (template, folder); looks files up without opening them.
    """
    mapping = replace(_upload_mapping(clf, encoding, header), image_root=str(folder))
    if image_col is not None:
        mapping = replace(mapping, image_col=image_col)
    column = mapping.image_col
    # wanted: a JSON Lines key left out of the first records (empty there) is still the column
    if column is None or column not in read_columns(source, wanted=[column], **mapping.read_options()):
        return None
    photos = UploadPhotos(column=column, folder=folder)
    for chunk in iter_table(source, [column], chunk_size=chunk_size, **mapping.read_options()):
        for ref in image_refs(chunk[column].tolist(), mapping, folder, confine=True):
            if ref is None:
                photos.without += 1
            elif isinstance(ref, str) and not is_url(ref) and os.path.isfile(ref):
                photos.found += 1
            else:
                photos.not_found += 1
    return photos


def read_head(path: str | Path, n_rows: int | None) -> pd.DataFrame:
    """The first `n_rows` (None: all) of a predictions file written by `predict_file`.

    Ids stay text ("007" is not 7), probabilities are numbers, needs_review
    is a boolean and confident_level a whole number, whichever format the
    file is in.
    """
    path = Path(path)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        if n_rows is None:
            return pq.read_table(path).to_pandas()
        parquet = pq.ParquetFile(path)
        batches = parquet.iter_batches(batch_size=max(n_rows, 1))
        first = next(batches, None)
        frame = first.to_pandas() if first is not None else parquet.schema_arrow.empty_table().to_pandas()
        return frame.head(n_rows)
    frame = pd.read_csv(path, nrows=n_rows, dtype=str, keep_default_na=False)
    for column in frame.columns:
        if column == "confidence" or column.startswith("prob_"):
            frame[column] = pd.to_numeric(frame[column]).astype("float64")
    if "needs_review" in frame.columns:
        frame["needs_review"] = frame["needs_review"] == "True"
    if "confident_level" in frame.columns:
        frame["confident_level"] = pd.to_numeric(frame["confident_level"]).astype("int64")
    return frame


def predictions_bytes(path: str | Path, out_format: str) -> bytes:
    """A predictions file of `predict_upload` as a download in `out_format`, converted
    when it was predicted into the other one (choosing another format predicts nothing again).

    A CSV's ids are text, so converted to Parquet they are text too; they were
    text in the upload as well, unless it was JSON Lines or Parquet.
    """
    path = Path(path)
    if path.suffix == f".{out_format}":
        return path.read_bytes()
    frame = read_head(path, None)
    buffer = io.BytesIO()
    if out_format == "parquet":
        frame.to_parquet(buffer, index=False)
    else:
        frame.to_csv(buffer, index=False)
    return buffer.getvalue()


def _catalog_suffix(name: str) -> str:
    suffixes = [s.lower() for s in Path(name).suffixes]
    if suffixes and suffixes[-1] in COMPRESSION_SUFFIXES:
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _strip_suffixes(name: str) -> str:
    base = Path(name).name
    for _ in range(2):
        stem, dot, suffix = base.rpartition(".")
        if dot and ("." + suffix.lower() in UPLOAD_FORMATS or "." + suffix.lower() in COMPRESSION_SUFFIXES):
            base = stem
    return base or "catalog"


# The longest name an upload is saved under (file systems allow 255 bytes).
_MAX_SAVED_NAME = 200


def _safe_file_name(name: str) -> str:
    # Only the base name, and no characters a file system could object to;
    # the suffixes survive because they tell the reader the format.
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).name).lstrip(".")
    if len(cleaned) > _MAX_SAVED_NAME:
        # file systems refuse names over 255 bytes; the stem is what can go
        suffixes = "".join(Path(cleaned).suffixes[-2:])[-_MAX_SAVED_NAME // 2:]
        cleaned = cleaned[:_MAX_SAVED_NAME - len(suffixes)] + suffixes
    return cleaned or "catalog.csv"
