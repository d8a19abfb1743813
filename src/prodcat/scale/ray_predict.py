"""Batch prediction on Ray Data: `prodcat predict MODEL --data PATH --out OUT --engine ray`.

The same predictions as the local engine (`Categorizer.predict_file`), row for
row and column for column, with the products spread over a pool of Ray actors
that each load the model once:

    files (one, or a folder of them, in name order)
      -> read tasks: prodcat's own readers, every value as text,    (one task per file)
         photo cells turned into absolute image paths
      -> CategorizerPredictor actors: Categorizer.predict_table       (N workers)
      -> the driver: blocks in input order, ids or a 1-based `row`,
         one output file written atomically                          (streamed, flat memory)

>>> from prodcat.scale.ray_predict import predict_with_ray
>>> summary = predict_with_ray("models/shop", "catalog/", "predictions.parquet",
...                            num_workers=4)                    # doctest: +SKIP
>>> summary["rows"], summary["workers"]                           # doctest: +SKIP
(200000, 4)

Why the files are read by prodcat's readers inside Ray tasks rather than by
`ray.data.read_csv`: those readers decide what a catalog cell *is* (the
sniffed separator, header-less files, encodings, ids such as "007" kept as
text, Parquet numbers written as they were, a malformed row named by its line),
and pyarrow's CSV parser differs on several of those points. Reading with the
same code is what makes "exactly the local engine's predictions" true by
construction instead of by luck.

Photos. For a model that reads them (an image model, or an ensemble with an
image member), the mapping's image column is read too, and each cell becomes
the same image reference the local engine makes (`prodcat.catalog.load.
image_ref`: template applied, relative paths joined to the file's image
folder), with one difference: the image folder is resolved here, on the
driver, per file (`image_dir_for`), and made absolute. Ray workers run in
other processes, with another current directory, and on a cluster on other
machines: like the input files, the photos must be readable there at the
same absolute path. A model that reads only text never gets the column.
How reading the photos went (missing, unreadable, too large) is counted on
the workers and reported as the local engine reports it: one line on stderr
and `photos` in the summary.

Everything a user can get wrong (a bad model directory, a missing file, a
missing column, a bad option) is checked before Ray starts and raised as the
usual one-line `ProdcatError`; a fault found deeper into a file while Ray runs
is raised as the same one-line error, not as a Ray traceback.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from prodcat.artifacts import check_output_file, user_path
from prodcat.catalog.fields import FieldMapping
from prodcat.catalog.load import image_dir_for, image_ref
from prodcat.catalog.readers import iter_table, read_columns
from prodcat.console import Reporter
from prodcat.errors import CatalogError, ColumnError, ConfigError, EmptyCatalogError, ProdcatError

if TYPE_CHECKING:
    from prodcat.images.decode import ImageStats  # Pillow loads only for models that read photos

# Rows per read chunk and per prediction batch: big enough that per-batch
# overhead (a Ray task hop, one predict_proba call) is small, small enough
# that each worker holds a few MB of text at a time.
DEFAULT_BATCH_SIZE = 10_000

# File names a folder is read for (before an optional compression suffix).
# .json too: the readers take it as JSON Lines, and Spark's write.json names its parts so.
# Not .txt, which a folder of exports holds as notes more often than as CSV.
CATALOG_SUFFIXES = (".csv", ".tsv", ".tab", ".jsonl", ".ndjson", ".json", ".parquet", ".pq")
COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zst")

# Bytes per product row, to size Ray Data's blocks (which it bounds in bytes)
# in rows: Ray counted a row of an id, a title and a short description as
# about 100 bytes (a 200,000-row file came in blocks of 50,000 rows at 512),
# so a block holds a chunk or two of a batch's rows; wider rows are cut into
# more blocks, which the actors join back into batches.
BLOCK_BYTES_PER_ROW = 128

# Read tasks ask for no CPU. When the prediction actors hold every CPU (the
# default: one actor per CPU), a read task that waits for a CPU share never
# runs and the job hangs (seen with Ray 2.60 on 2 CPUs, even at 0.25 CPU);
# parsing text is light beside predicting it.
READ_TASK_CPUS = 0

# The column in which read tasks hand each product's resolved image reference
# to the actors ("" for none). Its own name: the mapping's image column may
# also be an id column (the fashion preset's `id`), which must stay as it is.
IMAGE_REF_COLUMN = "_prodcat_image_ref"

# The column in which the actors hand the driver how reading the photos went:
# each batch's ImageStats as JSON on its first row, "" on the others, so the
# counts add up the same however Ray Data cuts or joins blocks on the way.
# The driver drops it before writing.
PHOTO_STATS_COLUMN = "_prodcat_photo_stats"
#: per product, whether it had nothing the model reads (`Categorizer._reads_nothing`), for the driver's warning
BLANK_COLUMN = "_prodcat_blank"


def predict_with_ray(
    model_dir: str | Path,
    data: str | Path,
    out: str | Path,
    *,
    top_k: int = 3,
    ray_address: str | None = None,
    target_precision: float | None = None,
    quiet: bool = False,
    num_workers: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    review_out: str | Path | None = None,
    **field_options: Any,
) -> dict[str, Any]:
    """Predict a catalog file, or a folder of them, on Ray; one output file.

    data: a CSV / TSV / JSON Lines / Parquet file (compressed too), or a
        folder of such files, read in name order with numbers compared as
        numbers (part-2 before part-10). Every file of a folder must hold the
        same mapped columns.
    out: one .parquet (or .csv, .tsv, .jsonl) file, exactly what
        `Categorizer.predict_file` writes for the same input: the id columns
        (or a 1-based `row` over the whole input), prediction, confidence,
        needs_review, label_i / prob_i, in input order. It appears only when
        complete.
    ray_address: an existing cluster ("auto", "ray://head:10001",
        "10.0.0.5:6379"); None starts a local Ray on this machine, listening
        on loopback only, and stops it afterwards. A Ray already initialised
        in this process is used as it is and left running.
    num_workers: prediction actors, each loading the model once and holding
        one CPU (default: every CPU of the local Ray or the cluster).
    batch_size: rows per read chunk and per prediction batch.
    review_out: also write the rows that need review to this file.
    field_options (e.g. image_col=..., image_root=...): override the saved
        field mapping for these files, as for `Categorizer.predict_file`;
        relative image paths start from each file's own folder (see
        FieldMapping), resolved on the driver into absolute paths.

    Returns {"rows", "needs_review", "seconds", "rows_per_second", "out",
    "review_out", "workers", "files", "startup_seconds"}, and for a model
    that reads photos from the files, "photos": how reading them went (see
    `ImageStats`), as `Categorizer.predict_file` returns it; seconds and
    rows_per_second count the whole run, Ray's start-up included;
    startup_seconds is the part before prediction began (checks, Ray start).

    >>> predict_with_ray("models/shop", "catalog.csv", "pred.parquet", quiet=True)  # doctest: +SKIP
    {'rows': 630, 'needs_review': 41, 'seconds': ..., 'rows_per_second': ..., ...}
    """
    from prodcat.categorizer import (
        OUTPUT_CONTENTS, PREDICTION_FORMATS, BlankProducts, Categorizer, PredictionOutput, id_output_names, missing_ids_warning,
        renamed_ids_warning,
    )

    started = time.perf_counter()
    say = Reporter(quiet)
    # Everything below raises before Ray starts: a user's mistake costs no
    # cluster start-up and prints as one line.
    clf = Categorizer.load(model_dir, quiet=True)
    _check_whole(top_k, "--top-k", 1)
    _check_whole(batch_size, "batch size", 1)
    if num_workers is not None:
        _check_whole(num_workers, "number of workers", 1)
    clf.review_threshold(target_precision)
    # predict_file's own handling of field options: the same names, the same checks
    mapping = clf._field_options(field_options)
    clf._file_text_fields(mapping, data)  # the local engine's checks of --text-cols, before Ray starts
    if not clf.reads_images():
        # A text model ignores photos: neither read the column nor resolve paths.
        mapping = replace(mapping, image_col=None)
    # "~" as the local engine reads it; None or a DataFrame named, not a TypeError from pathlib
    data = user_path(data, "the catalog (a file or a folder of files)")
    out = user_path(out, "the predictions file")
    review_out = None if review_out is None else user_path(review_out, "the review file")
    files = input_files(data, say=say)
    outputs = [out] + ([review_out] if review_out is not None else [])
    for path, what in zip(outputs, OUTPUT_CONTENTS):
        _output_format(path, PREDICTION_FORMATS, what)  # an unknown suffix fails here, before Ray starts
    _check_outputs(outputs, Path(data), files)
    read_options = mapping.read_options()
    files = files_with_rows(files, read_options, folder=Path(data).expanduser().is_dir(), say=say,
                            columns=mapping.columns(with_labels=False))
    plan = plan_columns(files, mapping, read_options, given_text_cols=mapping.text_cols != clf.fields_.text_cols)
    id_cols, text_cols = plan.id_cols, plan.text_cols
    if clf.reads_text():
        lacking = _files_lacking_text(files, mapping.text_cols, plan)
        if len(lacking) == 1:
            say.warn(f"{lacking[0][0]} has no column {', '.join(lacking[0][1])}; those fields are read as empty")
        elif lacking:
            say.warn(f"{len(lacking):,} of {len(files):,} files lack text columns, read as empty (first: "
                     f"{lacking[0][0]} has no column {', '.join(lacking[0][1])})")
    missing_ids = missing_ids_warning(files[0], mapping.id_cols, id_cols,
                                      read_columns(files[0], wanted=mapping.id_cols, **read_options))
    if missing_ids:
        say.warn(missing_ids)
    renamed = renamed_ids_warning(files[0], id_output_names(id_cols, clf.prediction_columns(top_k)))
    if renamed:
        say.warn(renamed)
    # the local engine's rule: a warning where a text part falls back, an error where none does
    mapping = clf._photo_mapping(files[0], mapping, plan.image_col is not None, say)
    image_dirs = [image_folder(mapping, f) for f in files] if plan.image_col else None

    ray = _import_ray()
    saved_context = None
    we_started = False
    try:
        if ray.is_initialized():
            doing = "using the Ray already running in this process"
        else:
            doing = "starting a local Ray" if ray_address is None else f"connecting to Ray at {ray_address}"
        with say.step(doing):
            cpus = max(os.cpu_count() or 1, num_workers or 1)
            we_started = start_ray(ray_address, num_cpus=cpus, quiet=quiet)
        startup_seconds = time.perf_counter() - started
        cluster_cpus = int(ray.cluster_resources().get("CPU", 0))
        workers = num_workers or max(1, cluster_cpus)
        if workers > cluster_cpus:
            # Each actor holds one CPU: the extra ones wait for an autoscaler
            # to add nodes, and without one they wait for ever.
            say.warn(f"{workers} workers asked for but Ray has {cluster_cpus} CPU(s); the others wait for more nodes")
        saved_context = _configure_ray_data(ray, quiet, batch_size)
        dataset = _prediction_dataset(
            ray, files, plan, mapping, image_dirs, clf_dir=Path(model_dir).resolve(),
            top_k=top_k, target_precision=target_precision, workers=workers, batch_size=batch_size,
        )
        photos = None
        blanks = BlankProducts()
        with PredictionOutput(out, review_out) as output:
            for table in _in_order(dataset):
                photos = take_photo_stats(table, photos)
                blanks.add(table.pop(BLANK_COLUMN).to_numpy(dtype=bool), first_row=output.rows + 1)
                if not id_cols:
                    table.insert(0, "row", np.arange(output.rows + 1, output.rows + len(table) + 1))
                output.write(table)
    finally:
        if saved_context is not None:
            _restore_ray_data(ray, saved_context)
        if we_started:
            ray.shutdown()
    seconds = time.perf_counter() - started
    clf._say_photos(data, photos, say)
    if blanks.count:
        say.warn(clf._blank_products_warning(data, blanks, text_cols))
    say.note(f"predicted {output.rows:,} products with {workers} Ray worker(s) in {seconds:.1f} s")
    summary = {
        **output.summary(seconds),
        "workers": workers,
        "files": len(files),
        "startup_seconds": round(startup_seconds, 2),
    }
    if photos is not None:
        summary["photos"] = photos.to_dict()
    return summary


class CategorizerPredictor:
    """A Ray Data actor: loads a model directory once, then predicts batches.

    Each batch is a pandas DataFrame of text columns (as prodcat's readers
    give them: every value a str); the result is `Categorizer.predict_table`
    with `id_cols` copied in front (renamed as `Categorizer.predict_file`
    does, see `id_output_names`). fields: the field mapping to read batches
    with (`FieldMapping.to_dict()`; default: the model's own). Photos come
    from the mapping's image column (or an `image` column) as predict_table
    reads them: a relative path starts from the image root as seen from the
    actor's current directory, which is not yours, so give such a pipeline
    absolute paths or the images' bytes. mark_blank: add BLANK_COLUMN, whether
    each product had nothing the model reads. count_photos: add PHOTO_STATS_COLUMN,
    how reading each batch's photos went (`take_photo_stats` sums and drops
    it). Usable in a Ray pipeline of your own:

    >>> import ray                                                       # doctest: +SKIP
    >>> ds = ray.data.read_parquet("s3://shop/products/")                 # doctest: +SKIP
    >>> ds.map_batches(CategorizerPredictor, batch_format="pandas",
    ...                compute=ray.data.ActorPoolStrategy(size=4),
    ...                fn_constructor_kwargs={"model_dir": "/shared/models/shop",
    ...                                       "id_cols": ["sku"]})       # doctest: +SKIP

    (Numbers in such a pipeline are only read as text if you make them so;
    `predict_with_ray` reads files with prodcat's readers for that reason.)
    """

    def __init__(
        self,
        model_dir: str | Path,
        *,
        id_cols: Sequence[str] = (),
        top_k: int = 3,
        target_precision: float | None = None,
        fields: dict[str, Any] | None = None,
        count_photos: bool = False,
        mark_blank: bool = False,
    ):
        from prodcat.categorizer import Categorizer

        self.categorizer = Categorizer.load(model_dir, quiet=True)
        #: a batch's text columns -> the model's field names (see `Categorizer._file_text_fields`)
        self.text_renames: dict[str, str] = {}
        if fields is not None:
            # How these batches are laid out (the driver's field options, the
            # resolved image column); the fitted model itself is unchanged.
            layout = FieldMapping.from_dict(fields)
            own = self.categorizer.fields_.text_cols
            if layout.text_cols != own[:len(layout.text_cols)]:
                # --text-cols named this file's columns for the model's fields, in order
                self.text_renames = dict(zip(layout.text_cols, own))
                layout = replace(layout, text_cols=own[:len(layout.text_cols)])
            self.categorizer.fields_ = layout
        self.id_cols = list(id_cols)
        self.top_k = top_k
        self.target_precision = target_precision
        self.count_photos = count_photos
        self.mark_blank = mark_blank

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        from prodcat.categorizer import id_output_names

        missing = [c for c in self.id_cols if c not in batch.columns]
        if missing:
            raise ColumnError(f"a batch has no id column {', '.join(repr(c) for c in missing)}")
        texts = batch
        if self.text_renames:
            # only the columns read as the product, so an id column cannot take a field's name
            image_col = self.categorizer.fields_.image_col
            texts = batch[[c for c in batch.columns if c in self.text_renames or c == image_col]]
            texts = texts.rename(columns=self.text_renames)
        # numbered from 0, beside the ids numbered alike
        table, blank = self.categorizer._table_and_blank(texts, self.top_k, self.target_precision)
        if self.id_cols:
            names = id_output_names(self.id_cols, list(table.columns))
            # Ray hands string columns over as pyarrow-backed dtypes; the local
            # engine's ids are plain pandas strings, and the files must match.
            ids = batch[list(names)].astype(str).rename(columns=names).reset_index(drop=True)
            table = pd.concat([ids, table], axis=1)
        if self.count_photos:
            stats = self.categorizer._require_fitted().image_stats()
            cells = [""] * len(table)
            if stats is not None and cells:
                cells[0] = json.dumps(stats.to_dict())
            table[PHOTO_STATS_COLUMN] = cells
        if self.mark_blank:
            table[BLANK_COLUMN] = blank
        return table


def take_photo_stats(table: pd.DataFrame, photos: ImageStats | None = None) -> ImageStats | None:
    """`photos` merged with the counts in `table`'s PHOTO_STATS_COLUMN, which is dropped.

    Unchanged `photos` when the table has no such column (a model that reads no photos).
    """
    if PHOTO_STATS_COLUMN not in table.columns:
        return photos
    from prodcat.images.decode import ImageStats

    for cell in table.pop(PHOTO_STATS_COLUMN):
        if cell:
            counted = ImageStats.from_dict(json.loads(cell))
            photos = counted if photos is None else photos.merge(counted)
    return photos


# --------------------------------------------------------------------------
# Checks before Ray starts
# --------------------------------------------------------------------------


def input_files(data: str | Path, *, say: Reporter | None = None) -> list[Path]:
    """The catalog files to read: the file itself, or a folder's catalog files
    in name order (numbers compared as numbers); hidden and `_`-files are
    skipped, and so, with a warning to `say`, are subfolders and other files.

    >>> input_files("catalog/")                                   # doctest: +SKIP
    [PosixPath('catalog/part-1.csv'), PosixPath('catalog/part-2.csv'), PosixPath('catalog/part-10.csv')]
    """
    path = Path(data).expanduser()
    if path.is_dir():
        # the name itself breaks ties ("part-01", "part-1"), not the file system's listing order
        entries = sorted(path.iterdir(), key=lambda p: (_natural_key(p.name), p.name))
        read = [p.is_file() and _is_catalog_name(p.name) for p in entries]
        files = [p for p, taken in zip(entries, read) if taken]
        # Products in a subfolder or a file named otherwise are not predicted: say so, never silently.
        skipped = [p for p, taken in zip(entries, read) if not taken and not p.name.startswith((".", "_"))]
        if files and skipped and say is not None:
            names = [p.name + ("/" if p.is_dir() else "") for p in skipped]
            folders = " (subfolders are not read)" if any(p.is_dir() for p in skipped) else ""
            listed = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            say.warn(f"skipped {len(skipped):,} {'entry' if len(skipped) == 1 else 'entries'} of {path} that are "
                     f"not catalog files: {listed}{folders}")
        if not files:
            folders = [p.name for p in skipped if p.is_dir()]
            inside = f"; subfolders such as {folders[0]}/ are not read: predict each on its own" if folders else ""
            raise CatalogError(
                f"{path} holds no catalog files (names ending {', '.join(CATALOG_SUFFIXES)}, "
                f"optionally compressed){inside}"
            )
        return files
    if not path.exists():
        if any(c in path.name for c in "*?["):
            # a quoted pattern reaches us as it was typed; a folder's parts are read without one
            raise CatalogError(f"catalog file not found: {path} (patterns are not expanded: give the folder, "
                               f"{path.parent}, and its catalog files are read in name order)")
        raise CatalogError(f"catalog file not found: {path}")
    return [path]


def files_with_rows(files: list[Path], read_options: dict, *, folder: bool, say: Reporter,
                    columns: Sequence[str] = ()) -> list[Path]:
    """The files that hold at least one product, checked before Ray starts.

    A folder of part files (Spark, Hadoop, a split export) often holds empty
    ones, a header or a schema alone: they are skipped with a warning, and
    only a folder of nothing but empty files is an error. A single file with
    no rows is one, as with the local engine. Those of `columns` a file holds
    are checked as the read tasks will read them (a name twice in a header).
    """
    kept, empty = [], []
    for path in files:
        try:
            names = read_columns(path, **read_options)
            first = [c for c in names if c in columns] or names[:1]
            next(iter(iter_table(path, first, chunk_size=1, **read_options)))
        except EmptyCatalogError as exc:
            if not folder:
                raise
            empty.append((path, exc))
            continue
        kept.append(path)
    if not kept:
        raise EmptyCatalogError(f"every catalog file in {files[0].parent} is empty or holds a header alone")
    if empty:
        say.warn(f"skipped {len(empty):,} of {len(files):,} files that hold no rows (first: {empty[0][1]})")
    return kept


class ColumnPlan(NamedTuple):
    """The columns a Ray job reads from every file."""

    id_cols: list[str]
    #: the mapping's text columns that any file holds
    text_cols: list[str]
    #: the mapping's image column, or None when the mapping names none or the first file lacks it
    image_col: str | None
    #: per file, in order: the text columns it lacks, read as empty there (as the local engine reads that file)
    absent_text: tuple[tuple[str, ...], ...] = ()


def plan_columns(files: Sequence[Path], mapping: FieldMapping, read_options: dict, *,
                 given_text_cols: bool = False) -> ColumnPlan:
    """The id, text and image columns to read. The id and image columns are
    the first file's, as the local engine picks them, and every other file
    must hold the same ones; text columns are each file's own, as if the
    local engine read it alone: one it lacks reads as empty there, and a file
    must hold a text column or the image column. The mapping's image column
    is None unless the model reads photos. given_text_cols: the mapping's
    text columns were given for these files (--text-cols), which the error
    for lacking them names as such rather than as the model's.

    >>> plan_columns([Path("shop.csv")], mapping, mapping.read_options())   # doctest: +SKIP
    ColumnPlan(id_cols=['sku'], text_cols=['title', 'description'], image_col='image', absent_text=((),))
    """
    held = [set(read_columns(path, wanted=mapping.columns(with_labels=False), **read_options)) for path in files]
    present = held[0]
    id_cols = [c for c in mapping.id_cols if c in present]
    image_col = mapping.image_col if mapping.image_col in present else None
    if not mapping.text_cols and image_col is None:
        raise ColumnError(f"{files[0]} has no image column {mapping.image_col!r}, and the model reads only photos")
    shared = list(dict.fromkeys(id_cols + ([image_col] if image_col else [])))
    for path, columns in zip(files, held):
        if image_col is None and not any(c in columns for c in mapping.text_cols):
            expected = ", ".join(repr(c) for c in mapping.text_cols)
            # columns given for these files (--text-cols) are their own names, not the model's
            whose = "the text columns given for it" if given_text_cols else "the model's text columns"
            raise ColumnError(
                f"{path} has none of {whose} ({expected}); columns are: {', '.join(sorted(columns)[:30])}"
            )
        missing = [c for c in shared if c not in columns]
        if missing:
            raise ColumnError(
                f"{path} has no column {', '.join(repr(c) for c in missing)}, which {files[0].name} has; "
                "every file of a folder must hold the same id and image columns"
            )
        # The first file decides them for the whole output: this file's would be dropped.
        unplanned = [c for c in dict.fromkeys([*mapping.id_cols, *([mapping.image_col] if mapping.image_col else [])])
                     if c not in shared and c in columns]
        if unplanned:
            raise ColumnError(
                f"{path} has column {', '.join(repr(c) for c in unplanned)}, which {files[0].name} lacks; "
                "every file of a folder must hold the same id and image columns (--id-cols picks the ids)"
            )
    text_cols = [c for c in mapping.text_cols if any(c in columns for columns in held)]
    absent_text = tuple(tuple(c for c in text_cols if c not in columns) for columns in held)
    return ColumnPlan(id_cols, text_cols, image_col, absent_text)


def _files_lacking_text(files: Sequence[Path], text_cols: Sequence[str],
                        plan: ColumnPlan) -> list[tuple[Path, list[str]]]:
    """Each file that lacks some of `text_cols`, with those it lacks (none holds some: all lack them)."""
    lacking = []
    for path, absent in zip(files, plan.absent_text):
        names = [c for c in text_cols if c not in plan.text_cols or c in absent]
        if names:
            lacking.append((path, names))
    return lacking


def image_folder(mapping: FieldMapping, catalog_file: Path) -> str:
    """The absolute folder a file's relative image paths start from.

    `image_dir_for` (the local engine's rule: an absolute image_root, a
    relative one beside the file or else from the current directory, no
    image_root: the file's folder), resolved against the driver's current
    directory, because the workers reading the photos have another one.
    """
    folder = image_dir_for(mapping, catalog_file)
    return os.path.abspath(folder if folder is not None else os.curdir)


def _is_catalog_name(name: str) -> bool:
    if name.startswith((".", "_")):
        return False
    lowered = name.lower()
    for compression in COMPRESSION_SUFFIXES:
        if lowered.endswith(compression):
            lowered = lowered[: -len(compression)]
            break
    return lowered.endswith(CATALOG_SUFFIXES)


def _natural_key(name: str) -> list:
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name) if part]


def _check_whole(value: Any, what: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{what} must be a whole number, {minimum} or more; got {value!r}")


def _output_format(path: Path, formats: dict[str, str], what: str) -> str:
    fmt = formats.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(f"cannot write {what} to {path}: use a .parquet, .csv, .tsv or .jsonl file name")
    return fmt


def _check_outputs(outputs: list[Path], data: Path, files: list[Path]) -> None:
    from prodcat.categorizer import OUTPUT_CONTENTS

    resolved = [p.resolve() for p in outputs]
    if len(resolved) > 1 and resolved[0] == resolved[1]:
        raise ConfigError("--review-out must be another file than --out")
    inputs = {f.resolve() for f in files}
    for path, target, what in zip(outputs, resolved, OUTPUT_CONTENTS):
        if target in inputs:
            raise ConfigError(f"refusing to overwrite the input catalog {path} with {what}")
        check_output_file(path, what)
        if data.is_dir() and target.parent == data.resolve() and _is_catalog_name(target.name):
            # The next run over this folder would read these predictions as products.
            raise ConfigError(f"write {path} outside the input folder {data}, or the next run would read it as products")


# --------------------------------------------------------------------------
# Ray
# --------------------------------------------------------------------------


def start_ray(address: str | None = None, *, num_cpus: int | None = None, quiet: bool = False) -> bool:
    """Start a local Ray on loopback, or join the cluster at `address`.

    Returns False, doing nothing, when Ray already runs in this process (it is
    then the caller's to stop); True when this call started or joined it, so
    the caller stops it with `ray.shutdown()`. num_cpus: CPUs of a local Ray
    (default: this machine's); not used for a cluster.

    >>> started = start_ray(num_cpus=2, quiet=True)                   # doctest: +SKIP
    """
    if address is not None:
        _check_reachable(address)
    ray = _import_ray()
    if ray.is_initialized():
        return False
    options: dict[str, Any] = dict(
        include_dashboard=False,
        logging_level=logging.ERROR if quiet else logging.INFO,
        log_to_driver=not quiet,
    )
    # Ray's C++ core writes warnings straight to stderr, past Python logging
    # (e.g. about how Ray Data passes actor arguments); read when ray.init runs.
    backend_level = os.environ.get("RAY_BACKEND_LOG_LEVEL")
    if quiet and backend_level is None:
        os.environ["RAY_BACKEND_LOG_LEVEL"] = "fatal"
    try:
        if address is None:
            with _loopback_only():
                ray.init(num_cpus=num_cpus or os.cpu_count() or 1, _node_ip_address="127.0.0.1", **options)
        else:
            ray.init(address=address, **options)
    except (ConnectionError, TimeoutError, ValueError, RuntimeError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise ConfigError(f"cannot start {where}: {_first_line(exc)}") from None
    finally:
        if quiet and backend_level is None:
            os.environ.pop("RAY_BACKEND_LOG_LEVEL", None)
    return True


# What a client opens an HTTP/2 connection with: the preface, then an empty SETTINGS frame.
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
HTTP2_SETTINGS_FRAME = 4


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail in seconds on an address where Ray does not listen: Ray itself
    retries for minutes, printing a warning every few seconds.

    Nothing listening is one case. Another server on that port (the
    dashboard's 8265 instead of 6379, a web server) is the other: Ray's GCS
    and Ray Client both speak gRPC, so they answer HTTP/2's preface with a
    SETTINGS frame, and a server that answers anything else is not Ray. One
    that answers nothing is left to Ray, as is a cluster behind TLS, whose
    handshake comes first.
    """
    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", "local" or a name Ray resolves itself
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s) as connection:
            answer = b"" if _ray_uses_tls() else _first_answer(connection, HTTP2_PREFACE)
    except OSError as exc:
        raise ConfigError(
            f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}); "
            "is `ray start --head` running there, and is the port open?"
        ) from None
    if len(answer) >= 4 and answer[3] != HTTP2_SETTINGS_FRAME:
        raise ConfigError(
            f"{address} answers, but not as Ray: give the port of Ray's GCS (6379 unless `ray start --port` "
            "said otherwise) or of Ray Client (ray://HOST:10001), not the dashboard's (8265)"
        )


def _first_answer(connection: socket.socket, greeting: bytes) -> bytes:
    """The first bytes a server sends back after `greeting` (b"" when it closes or stays silent)."""
    try:
        connection.sendall(greeting)
        return connection.recv(9)
    except OSError:  # a timeout or a reset: the server's own business, Ray will say
        return b""


def _ray_uses_tls() -> bool:
    return os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true")


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401 - fails here, not mid-run, when ray[data] is missing
    except ImportError as exc:
        raise ConfigError(f"--engine ray needs Ray Data: pip install 'ray[data]' ({exc})") from None
    return ray


@contextmanager
def _loopback_only() -> Iterator[None]:
    """While a local Ray starts, keep every listener it opens on 127.0.0.1.

    By default Ray listens on every interface. RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
    turns that off: Ray's own processes (raylet, GCS, workers) read it when they
    start, and the driver read it once, when `ray` was first imported, so its
    flag is set here too. Both are put back afterwards: a later join of a real
    cluster from this process must not think it is on loopback.
    """
    from ray._private import ray_constants

    variable = ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR
    saved_env, saved_flag = os.environ.get(variable), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[variable] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        if saved_env is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = saved_env


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _configure_ray_data(ray, quiet: bool, batch_size: int = DEFAULT_BATCH_SIZE) -> dict:
    context = ray.data.DataContext.get_current()
    saved = {
        "target_max_block_size": context.target_max_block_size,
        "preserve_order": context.execution_options.preserve_order,
        "enable_progress_bars": context.enable_progress_bars,
        "print_on_execution_start": context.print_on_execution_start,
        "log_level": logging.getLogger("ray.data").level,
    }
    # Output rows must come back in input order, as the local engine writes them.
    context.execution_options.preserve_order = True
    # Ray Data joins the chunks a read task yields into blocks of up to 128 MiB
    # (its default), and a block goes to one actor whole: a file of a few
    # hundred thousand products was one block, predicted by one worker while
    # the others idled, and none of it reached the output until all of it was
    # done. Blocks of about a batch or two each spread a file over every actor.
    context.target_max_block_size = batch_size * BLOCK_BYTES_PER_ROW
    context.enable_progress_bars = not quiet
    context.print_on_execution_start = not quiet
    if quiet:
        # Even "progress bars disabled" is a warning in Ray Data, and a task's
        # failure is logged as a traceback before it reaches us as one line.
        logging.getLogger("ray.data").setLevel(logging.CRITICAL)
    return saved


def _restore_ray_data(ray, saved: dict) -> None:
    context = ray.data.DataContext.get_current()
    context.target_max_block_size = saved["target_max_block_size"]
    context.execution_options.preserve_order = saved["preserve_order"]
    context.enable_progress_bars = saved["enable_progress_bars"]
    context.print_on_execution_start = saved["print_on_execution_start"]
    logging.getLogger("ray.data").setLevel(saved["log_level"])


def _prediction_dataset(
    ray, files: list[Path], plan: ColumnPlan, mapping: FieldMapping, image_dirs: list[str] | None, *,
    clf_dir: Path, top_k: int, target_precision: float | None, workers: int, batch_size: int,
):
    dataset = _read_dataset(ray, files, plan, mapping, image_dirs, batch_size=batch_size)
    # The actors read photos from the resolved column as they are: the
    # template and the image folder were applied by the read tasks.
    actor_fields = replace(mapping, image_col=IMAGE_REF_COLUMN if plan.image_col else None,
                           image_root=None, image_template=None)
    return dataset.map_batches(
        CategorizerPredictor,
        fn_constructor_kwargs={
            "model_dir": str(clf_dir), "id_cols": plan.id_cols, "top_k": top_k, "target_precision": target_precision,
            "fields": actor_fields.to_dict(), "count_photos": plan.image_col is not None, "mark_blank": True,
        },
        batch_size=batch_size,
        batch_format="pandas",
        # `concurrency=workers` in Ray before 2.51; a fixed pool, each actor on one CPU.
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=1,
    )


def _read_dataset(ray, files: list[Path], plan: ColumnPlan, mapping: FieldMapping, image_dirs: list[str] | None, *,
                  batch_size: int):
    """The products of `files` as text: one read task per file, in blocks as `_configure_ray_data` sizes them."""
    # Absolute paths: Ray workers do not share the driver's working directory.
    items = [{"path": str(f.resolve()), "image_dir": image_dirs[i] if image_dirs else "",
              "absent": json.dumps(plan.absent_text[i] if plan.absent_text else [])}
             for i, f in enumerate(files)]
    dataset = ray.data.from_items(items, override_num_blocks=len(items))
    keep = list(dict.fromkeys(plan.id_cols + plan.text_cols))
    columns = keep + ([plan.image_col] if plan.image_col and plan.image_col not in keep else [])
    return dataset.map_batches(
        _read_files,
        batch_size=1,
        batch_format="pandas",
        fn_kwargs={"columns": columns, "keep": keep, "read_options": mapping.read_options(),
                   "chunk_size": batch_size, "image_col": plan.image_col, "image_template": mapping.image_template},
        num_cpus=READ_TASK_CPUS,
    )


def _read_files(
    batch: pd.DataFrame, *, columns: list[str], keep: list[str], read_options: dict, chunk_size: int,
    image_col: str | None = None, image_template: str | None = None,
) -> Iterator[pd.DataFrame]:
    """One Ray task per file: its rows as text, chunk by chunk, in file order.

    A text column the file lacks (the batch's `absent`, JSON) comes out empty,
    so every block has the same columns. With an image column, each chunk
    also gets IMAGE_REF_COLUMN: every cell as the local engine's `image_ref`
    makes it, from the file's absolute image folder ("" for no photo, so the
    column stays plain text).
    """
    absents = batch["absent"] if "absent" in batch.columns else [""] * len(batch)
    for path, image_dir, absent in zip(batch["path"], batch["image_dir"], absents):
        folder = Path(image_dir) if image_dir else None
        absent = json.loads(absent) if absent else []
        held = [c for c in columns if c not in absent]
        for chunk in iter_table(path, held, chunk_size=chunk_size, **read_options):
            chunk = chunk.reset_index(drop=True).assign(**{c: "" for c in absent})[columns]
            if image_col is None:
                yield chunk
                continue
            refs = [image_ref(cell, folder, image_template) for cell in chunk[image_col].tolist()]
            yield chunk[keep].assign(**{IMAGE_REF_COLUMN: ["" if ref is None else ref for ref in refs]})


def _in_order(dataset) -> Iterator[pd.DataFrame]:
    """The predicted blocks in input order; a ProdcatError raised inside a Ray
    task comes out as itself (one line), not wrapped in a Ray traceback."""
    try:
        with warnings.catch_warnings():
            # Ray Data counts one input per file and warns that a pool larger
            # than the number of files cannot be used; but each read task
            # yields a block per chunk, and every actor gets its share.
            warnings.filterwarnings("ignore", message="The minimum number of concurrent actors", category=UserWarning)
            # Arrow, then pandas' own conversion: Ray's pandas batches would carry
            # pyarrow-backed dtypes, and the file written must match the local one.
            for block in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
                yield block.to_pandas()
    except Exception as exc:
        cause = _prodcat_cause(exc)
        if cause is None:
            raise
        raise cause from None


def _prodcat_cause(exc: BaseException) -> ProdcatError | None:
    """The user error at the root of a Ray failure, as a plain one-line error.

    Ray wraps an error raised in a task in a `RayTaskError(CatalogError)`
    whose message is a remote traceback, and Ray Data appends retry advice to
    the original's message; the original class and its first line are what
    the user needs.
    """
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ProdcatError) and type(current).__module__.startswith("prodcat"):
            return type(current)(_first_line(current))
        todo.extend([getattr(current, "cause", None), current.__cause__, current.__context__])
    return None
