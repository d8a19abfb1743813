"""The one object a user learns: fit, predict, evaluate, save, load.

    >>> from prodcat import Categorizer
    >>> clf = Categorizer(model="tfidf-linear", text_cols=["title", "description"],
    ...                   label_col="category", label_format="path")
    >>> clf.fit("catalog.csv")                                  # doctest: +SKIP
    >>> clf.predict(["Men's slim fit cotton shirt"])            # doctest: +SKIP
    ['Apparel > Shirts']
    >>> clf.evaluate("holdout.csv", report_dir="report")      # doctest: +SKIP
    >>> clf.save("models/shirts"); Categorizer.load("models/shirts")  # doctest: +SKIP

Everything else (the CLI, the HTTP server, the web app and the Ray job) is a
thin layer over this class.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import platform
import tempfile
import time
from dataclasses import dataclass, fields as dataclass_fields, replace
from datetime import datetime, timezone
from numbers import Real
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from prodcat import __version__
from prodcat.artifacts import (
    MANIFEST, RUN_KEPT, atomic_directory, check_output_dir, check_output_file, check_report_dir_target, checkpoint_places,
    copy_model_files, read_model_dir, user_path, write_model_dir,
)
from prodcat.catalog.fields import FieldMapping, resolve_fields
from prodcat.catalog.markup import decided_strip, markup_findings, markup_message
from prodcat.catalog.load import (
    CatalogSource,
    catalog_from_frame,
    check_catalog_source,
    image_dir_for,
    image_ref,
    iter_catalog,
    json_object_text_columns,
    json_object_text_message,
    left_out_rows_message,
    load_catalog,
    with_text_column_names,
)
from prodcat.catalog.normalize import product_keys
from prodcat.catalog.products import Catalog, Products
from prodcat.catalog.readers import MISSING, cell_text, close_column, dict_field, has_catalog_suffix, read_columns
from prodcat.catalog.split import check_fractions, split_catalog
from prodcat.console import Reporter
from prodcat.errors import (
    CatalogError, ColumnError, ConfigError, ModelDirError, NotFittedError, ProdcatError, SavedSettingsError,
)
from prodcat.evaluation import compute_metrics, versus_best_part, write_report
from prodcat.evaluation.metrics import at_level, cut_labels
from prodcat.labels import (
    LabelSpace, classes_spelled_apart_message, label_name, label_separator, mixed_path_separators_message,
    numeric_ids_message, one_tag_each_message, paths_as_single_message, placeholder_labels_message,
    several_paths_in_cells_message,
)
from prodcat.models import EXPORTED_MODEL, CategorizerModel, FitContext, create_model, get_model_class
from prodcat.thresholds import choose_multilabel_thresholds, review_threshold

if TYPE_CHECKING:
    from prodcat.images.decode import ImageStats  # Pillow loads only for models that read photos

PREDICTION_FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl"}
HEADLINE_KEYS = (
    "n", "accuracy", "macro_f1", "weighted_f1", "micro_f1", "top3_accuracy", "ece",
    "hamming_loss", "subset_accuracy", "samples_f1",
)
# Metrics on the training rows only show over-fitting; a sample says as much.
TRAIN_METRICS_SAMPLE = 20_000
#: the figures kept for each part of a model (text alone, image alone, combined)
PART_KEYS = ("accuracy", "macro_f1", "weighted_f1", "n")
#: array name prefix of a multi-label model's parts' own thresholds (then the part's name)
PART_THRESHOLDS = "prodcat.part_thresholds."
#: the key of a product dict (and DataFrame column) holding a photo when the
#: model's field mapping names no image column, or the product lacks it
IMAGE_KEY = "image"
#: the columns a prediction table starts with; `label_i` / `prob_i` follow for each rank
DECISION_COLUMNS = ("prediction", "confidence", "needs_review")
#: a path model's predictions end with these: the deepest level of the predicted path confident
#: enough for that level's review threshold, and the path cut there ("" and 0: none)
CONFIDENT_PATH_COLUMNS = ("confident_path", "confident_level")
#: put before an id column's name in a predictions file when predict writes a column of that name
ID_PREFIX = "id:"


#: what predict's --out and --review-out hold, as their errors name them
OUTPUT_CONTENTS = ("predictions", "the rows to review")


def table_file_format(path: Path, data: Path | None, what: str) -> str:
    """The format of an output table file (`PREDICTION_FORMATS`), refused before any work when it cannot
    be written: an unknown suffix, the input catalog `data` itself, a folder, a path under a file or in a
    model directory (`check_output_file`). `what` names the file's content in the message."""
    out_format = PREDICTION_FORMATS.get(path.suffix.lower())
    if out_format is None:
        raise ConfigError(f"cannot write {what} to {path}: use a .csv, .tsv, .jsonl or .parquet file name")
    if data is not None and path.exists() and data.exists() and path.resolve() == data.resolve():
        raise ConfigError(f"refusing to overwrite the input catalog {data} with {what}")
    check_output_file(path, what)
    return out_format


#: the field separators `excel` takes, and the decimal mark Excel reads beside each
EXCEL_SEPARATORS = {",": ".", ";": ","}


def check_excel(excel: str | None, outputs: Sequence[Path]) -> None:
    """A ConfigError unless `excel` is None, or a separator of `EXCEL_SEPARATORS` with a .csv file among `outputs`."""
    if excel is None:
        return
    if excel not in EXCEL_SEPARATORS:
        raise ConfigError(f"--excel takes the separator Excel expects: ',' or ';' (Germany, France and most of "
                          f"Europe), got {excel!r}")
    if not any(PREDICTION_FORMATS.get(path.suffix.lower()) == "csv" for path in outputs):
        raise ConfigError(f"--excel writes .csv files for Excel, and none of {', '.join(map(str, outputs))} is one")


def id_output_names(id_cols: Sequence[str], written: Sequence[str]) -> dict[str, str]:
    """The column each id column is copied to in a predictions file, in order, each once.

    An id column named like a column predict writes (`written`) becomes
    `id:NAME`: two `prediction` columns would make a CSV ambiguous, and
    Parquet and JSON Lines cannot hold them at all.

        >>> id_output_names(["sku", "prediction", "sku"], ["prediction", "confidence"])
        {'sku': 'sku', 'prediction': 'id:prediction'}
    """
    taken = set(written)
    names = {}
    for column in dict.fromkeys(id_cols):
        name = column
        while name in taken:
            name = ID_PREFIX + name
        taken.add(name)
        names[column] = name
    return names


def missing_ids_warning(source: str | Path, id_cols: Sequence[str], present: Sequence[str],
                        columns: Sequence[str] = ()) -> str | None:
    """The one-line warning for a catalog lacking some of the model's id columns (None: it has them all).

    `present`: those it has, which predict copies; with none, it numbers the rows.
    `columns`: the catalog's columns, to name the one probably meant ("ean" for "EAN").
    """
    missing = [c for c in dict.fromkeys(id_cols) if c not in present]
    if not missing:
        return None
    instead = (f"only {', '.join(map(repr, dict.fromkeys(present)))} is copied" if present
               else "its rows are numbered in a 'row' column instead")
    hints = [f"{close!r} for {name!r}" for name in missing
             if (close := close_column(name, [c for c in columns if c not in present])) is not None]
    meant = f" (did you mean {', '.join(hints)}? pass --id-cols)" if hints else ""
    return f"{source} has no id column {', '.join(map(repr, missing))}; {instead}{meant}"


def renamed_ids_warning(source: str | Path, names: dict[str, str]) -> str | None:
    """The one-line warning for the id columns `id_output_names` renamed (None: none was)."""
    renamed = {column: name for column, name in names.items() if column != name}
    if not renamed:
        return None
    columns, copied = ", ".join(map(repr, renamed)), ", ".join(map(repr, renamed.values()))
    return f"{source}: id column(s) {columns} copied as {copied}, since predict writes its own column(s) of that name"


def text_fingerprints(texts: Iterable[str], images: Sequence[str | bytes | None] | None = None) -> np.ndarray:
    """64-bit hashes of normalized texts (for a product without text, of its
    photo: see `product_keys`): what a model has seen, without storing them."""
    return np.array(
        [int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")
         for key in product_keys(list(texts), images)],
        dtype=np.uint64,
    )


def _files_state(folder: Path | None) -> dict[str, tuple[int, int]]:
    """Size and modification time of each file under `folder` (none when it is absent)."""
    if folder is None or not folder.is_dir():
        return {}
    return {str(f): (f.stat().st_size, f.stat().st_mtime_ns) for f in folder.rglob("*") if f.is_file()}


def _written_since(folder: Path, before: dict[str, tuple[int, int]] | None) -> tuple[list[Path], list[Path]]:
    """The files under `folder` new or changed since `before` was taken (all of them when None),
    and those it holds unchanged, from one look at the folder.

    Compared by name, size and time, not by a clock: file times may be coarse.
    """
    now = _files_state(folder)
    written = [Path(name) for name, state in now.items() if before is None or before.get(name) != state]
    unchanged = [Path(name) for name, state in now.items() if before is not None and before.get(name) == state]
    return written, unchanged


def _absent_image_folder(mapping: FieldMapping, data: Any) -> Path | None:
    """The folder a catalog file's relative photo paths start from, when it does not exist
    (None for a DataFrame, whose paths start from the current directory)."""
    if isinstance(data, pd.DataFrame):
        return None
    folder = image_dir_for(mapping, data)
    return folder if folder is not None and not folder.is_dir() else None


def _no_image_folder(folder: Path) -> str:
    return f"image folder {folder} not found: products will count as having no usable photo"


def _names_a_catalog_file(text: str) -> bool:
    """Whether a text is the name of an existing catalog file (a user passing a file as a str)."""
    if len(text) > 4096 or "\n" in text:
        return False
    path = Path(text.strip())
    try:
        return has_catalog_suffix(path) and path.is_file()
    except OSError:  # a name too long for the file system, say
        return False


#: the test share split off the training catalog when none is given (and no test data)
DEFAULT_TEST_SIZE = 0.1

#: how many models judge a catalog in find_label_issues, each leaving out its own part
DEFAULT_FOLDS = 5

#: the largest seed every model takes: scikit-learn's random_state (tfidf-linear) stops at 2**32 - 1
MAX_SEED = 2**32 - 1


def check_seed(seed: Any) -> None:
    """ConfigError unless `seed` is a whole number every model and the split can be seeded with.

    numpy's split generator refuses a negative seed and scikit-learn one above
    MAX_SEED; found there, either was a traceback after the catalog was read.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"seed must be a whole number from 0 to {MAX_SEED}, got {seed!r}")


def check_categorizer_options(options: dict[str, Any], caller: str) -> None:
    """ConfigError for an option `Categorizer` does not take, passed on to it by `caller` (tune, leaderboard).

    Python's TypeError for it came from the first model's construction: in tune,
    inside Optuna's first trial, which logged a traceback of its own.
    """
    # model, params, seed and quiet: the callers' own arguments
    known = set(inspect.signature(Categorizer.__init__).parameters) - {"self", "model", "params", "seed", "quiet"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"{caller}: unknown Categorizer option(s) {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(known))}")


def check_target_precision(target_precision: Any) -> None:
    """ConfigError unless `target_precision` is a number above 0 and at most 1 (NaN is not)."""
    if (isinstance(target_precision, bool) or not isinstance(target_precision, Real)
            or not 0 < target_precision <= 1):
        raise ConfigError(f"target precision must be above 0 and at most 1, got {target_precision!r}")


def no_validation_reason(valid_size: float | None) -> str:
    """Why a split left no validation product, in the words of the warning that says so."""
    return "valid size 0" if not valid_size else f"too few products for a validation share of {valid_size}"


def _is_missing(value: Any) -> bool:
    """Whether a product in a list of texts is a gap (None, NaN, pd.NA)."""
    return value is None or (not isinstance(value, (str, list, tuple, dict, np.ndarray)) and bool(pd.isna(value)))


def _is_dict_of_columns(product: dict) -> bool:
    """Whether a dict given as a product holds columns instead: every value a list (or Series, array)
    of one length."""
    values = list(product.values())
    if not values or not all(isinstance(v, (list, tuple, pd.Series)) or (isinstance(v, np.ndarray) and v.ndim == 1)
                             for v in values):
        return False
    return len({len(v) for v in values}) == 1


def headline(metrics: dict) -> dict:
    """The figures worth keeping in a manifest: no per-class tables."""
    out = {k: metrics[k] for k in HEADLINE_KEYS if k in metrics}
    if "levels" in metrics:
        out["levels"] = [
            {k: level[k] for k in ("level", "n_classes", "accuracy", "macro_f1", "weighted_f1") if k in level}
            for level in metrics["levels"]
        ]
    for key in ("components", "versus_best_part", "images"):
        if key in metrics:
            out[key] = metrics[key]
    return out


@dataclass
class BlankProducts:
    """How many products of a file had nothing the model reads, and the row of the first (from 1)."""

    count: int = 0
    first_row: int | None = None

    def add(self, blank: np.ndarray, *, first_row: int) -> None:
        """Count a chunk's `blank` mask; `first_row`: the file row of the chunk's first product."""
        if blank.any() and self.first_row is None:
            self.first_row = first_row + int(np.argmax(blank))
        self.count += int(blank.sum())


class Categorizer:
    """A product categorizer: a registered model plus how to read catalogs.

    Name the columns, fit on a DataFrame or a catalog file (CSV, TSV, JSON
    Lines, Parquet), then predict texts, dicts, a DataFrame or a Path:

        >>> clf = Categorizer(text_cols=["title", "description"], label_col="category")
        >>> clf.fit(frame)                           # doctest: +SKIP
        >>> clf.predict(["Slim fit cotton shirt"])   # doctest: +SKIP
        ['Shirts']
        >>> clf.predict_table(frame)                 # doctest: +SKIP
        >>> clf.evaluate()["macro_f1"]               # doctest: +SKIP
        >>> clf.save("models/shirts")                # doctest: +SKIP
        >>> clf = Categorizer.load("models/shirts")  # doctest: +SKIP

    `predict_table` adds confidence, needs_review and the top 3 labels (a
    DataFrame's index kept); `evaluate()` scores the test split fit held out;
    `find_label_issues(frame)` lists the labels that look wrong. Settings
    follow scikit-learn: `get_params`, `set_params`, `sklearn.base.clone`;
    what fit learns ends in `_` (`classes_`, `metrics_`).

    model: a registered model name (see `prodcat.models.available_models()`).
    fields: a ready FieldMapping; the field options below override it.
    preset / config / text_cols / label_col / label_format / label_sep /
    label_level / id_cols / image_col / image_root: how to read the catalog
        (see `FieldMapping`); `label_col` may list several columns, top level
        first, forming a path; `image_col` holds each product's photo (a path,
        relative to `image_root`, see FieldMapping for where that is found).
    strip_markup: which text columns the model reads without HTML markup (True:
        all, False: none, a list; None: those of the training catalog that hold
        some, see FieldMapping).
    params: the model's own settings, e.g. {"C": 0.5}.
    valid_size / test_size: fractions held out, grouped by normalized text so
        duplicates never straddle two parts. test_size None: 0.1, or no test
        share when `fit` is given test_data (a test_size given with it is refused).
    seed: makes the split and the model reproducible.
    class_weight: "balanced" (default: catalogs are long-tailed, and on the
        fashion catalog it lifts macro-F1 at equal accuracy) or None.
    target_precision: predictions less confident than the threshold that
        reached this precision on validation are flagged `needs_review`.
    device: "auto", "cpu" or "cuda", for models that train on a device.
    quiet: no progress output or warnings (errors still raise).
    """

    def __init__(
        self,
        model: str = "tfidf-linear",
        *,
        fields: FieldMapping | None = None,
        preset: str | None = None,
        config: str | Path | None = None,
        text_cols: Sequence[str] | str | None = None,
        label_col: Sequence[str] | str | None = None,
        label_format: str | None = None,
        label_sep: str | None = None,
        label_level: int | None = None,
        id_cols: Sequence[str] | str | None = None,
        image_col: str | None = None,
        image_root: str | Path | None = None,
        strip_markup: bool | Sequence[str] | None = None,
        params: dict[str, Any] | None = None,
        valid_size: float = 0.1,
        test_size: float | None = None,
        seed: int = 0,
        class_weight: str | None = "balanced",
        target_precision: float = 0.95,
        device: str = "auto",
        quiet: bool = False,
    ):
        self.model = model
        self.fields = fields
        self.preset = preset
        self.config = config
        self.text_cols = text_cols
        self.label_col = label_col
        self.label_format = label_format
        self.label_sep = label_sep
        self.label_level = label_level
        self.id_cols = id_cols
        self.image_col = image_col
        self.image_root = image_root
        self.strip_markup = strip_markup
        self.params = params
        self.valid_size = valid_size
        self.test_size = test_size
        self.seed = seed
        self.class_weight = class_weight
        self.target_precision = target_precision
        self.device = device
        self.quiet = quiet
        self._fitted: CategorizerModel | None = None

    @classmethod
    def _param_names(cls) -> list[str]:
        return [name for name in inspect.signature(cls.__init__).parameters if name != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's arguments, as scikit-learn's estimators give theirs
        (so `sklearn.base.clone` makes an unfitted copy). `deep` is taken for
        scikit-learn's sake: no argument is itself an estimator."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Categorizer:
        """Change constructor arguments (checked by the next `fit`); the fitted model stays as it is."""
        known = self._param_names()
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ConfigError(f"unknown Categorizer option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        for name, value in params.items():
            setattr(self, name, value)
        return self

    # ------------------------------------------------------------------ fit
    def resolve_fields(self) -> FieldMapping:
        return resolve_fields(
            self.preset,
            self.config,
            base=self.fields,
            text_cols=self.text_cols,
            label_cols=self.label_col,
            label_format=self.label_format,
            label_sep=self.label_sep,
            label_level=self.label_level,
            id_cols=self.id_cols,
            image_col=self.image_col,
            # kept as the user wrote it: a saved model must not hold this machine's absolute path
            image_root=None if self.image_root is None else str(self.image_root),
            strip_markup=self.strip_markup,
        )

    def fit(
        self,
        data: CatalogSource,
        *,
        test_data: CatalogSource | None = None,
        logdir: str | Path | None = None,
        checkpoint_dir: str | Path | None = None,
        resume: bool = False,
        skip_unlabelled: bool = False,
    ) -> Categorizer:
        """Split the catalog (grouped by text), train on train, calibrate and tune
        on validation, and score the held-out test part (or `test_data`).

        skip_unlabelled: leave out the rows with an empty label (a shop's products
        not yet categorized), with a warning naming them, rather than refuse the
        catalog; rows with no text or photo either are always left out.

        logdir: TensorBoard event files, for models trained in epochs.
        checkpoint_dir / resume: where such models checkpoint, and whether to
        continue an interrupted run from there (a model trained in one go,
        tfidf-linear, warns that it has nothing to continue).
        """
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device must be auto, cpu or cuda, got {self.device!r}")
        check_target_precision(self.target_precision)
        class_weight = self._checked_class_weight()
        if logdir is not None:
            logdir = user_path(logdir, "the TensorBoard log directory")
            check_output_dir(logdir, "TensorBoard log directory")
        if checkpoint_dir is not None:
            checkpoint_dir = user_path(checkpoint_dir, "the checkpoint directory")
            check_output_dir(checkpoint_dir, "checkpoint directory")
        started = time.perf_counter()
        say = self._reporter()
        # where this fit may log its curves, and what was there before it: saving keeps
        # a model directory's logs only if this fit wrote some (tfidf-linear writes none).
        # Kept on self only once the model is replaced: a fit refused on the way leaves a
        # loaded model saving its own report and curves, as it did before it.
        tensorboard_dir = Path(logdir).resolve() if logdir is not None else None
        tensorboard_before = _files_state(tensorboard_dir)
        mapping, model = self.check_setup()
        if test_data is not None and self.test_size is not None:
            # it would be ignored: the test products are test_data's, and no test share is split off
            raise ConfigError("test_size splits a test share off the training catalog; with test data the test "
                              "products are that file's: give one or the other")
        test_size = 0.0 if test_data is not None else DEFAULT_TEST_SIZE if self.test_size is None else self.test_size
        check_fractions(self.valid_size, test_size)  # before the catalog is read, not at the split
        if resume and checkpoint_dir is not None:
            # A checkpoint this model would not look for belongs to another run (another model, other
            # ensemble members): this fit would start fresh, and saving drops the checkpoint folder with it.
            expected = set(model.checkpoint_folders())
            stray = [place for place in checkpoint_places(checkpoint_dir) if place not in expected]
            if stray:
                where = Path(checkpoint_dir) / stray[0] if stray[0] != "." else Path(checkpoint_dir)
                why = ("it trains in one go" if not model.resumable
                       else "its checkpoints go elsewhere: another model or other members")
                raise ConfigError(f"{where} holds the checkpoint of an interrupted run, which {self.model} "
                                  f"cannot continue ({why}): resume with the interrupted run's model, "
                                  f"or delete {checkpoint_dir} to train {self.model}")
        if resume and not model.resumable:
            say.warn(f"{self.model} trains in one go: resume has nothing to continue; training from the start")
        if self.device == "cuda":
            # A model trained in one go (tfidf-linear) runs on the CPU whatever the device. One trained in
            # epochs is refused here, not after the catalog is read and its vocabulary or LSA vectors built.
            if not model.resumable:
                say.warn(f"{self.model} trains on the CPU: device 'cuda' means nothing for it")
            else:
                from prodcat.training.trainer import resolve_device

                resolve_device(self.device)
        reads_images = model.reads_images

        with say.step(f"reading {data if not isinstance(data, pd.DataFrame) else 'DataFrame'}"):
            catalog = load_catalog(data, mapping, skip_unlabelled=skip_unlabelled)
            LabelSpace.from_labels(catalog.labels, mapping.label_format, where=catalog.source)
            # read as the training file's labels were split, as `evaluate` will read it
            test_catalog = (load_catalog(test_data, _with_label_sep(mapping, catalog), skip_unlabelled=skip_unlabelled)
                            if test_data is not None else None)
        for part in (p for p in (catalog, test_catalog) if p is not None):
            _warn_about_labels(part, say)
            _warn_about_object_texts(part, say)
        mapping = _markup_decided(catalog, mapping, say)
        if reads_images:
            absent = _absent_image_folder(mapping, data)
            if absent is not None:
                say.warn(_no_image_folder(absent))
        # Products are "the same" as the model reads them: two listings that differ only
        # in their HTML would otherwise sit on both sides of the split.
        # (read once: the model trains on these too)
        read = _model_view(catalog.products, mapping)
        with say.step("splitting (grouped by normalized text)"):
            split = split_catalog(
                read.texts,
                catalog.labels,
                mapping.label_format,
                images=catalog.products.images,
                valid_size=self.valid_size,
                test_size=test_size,
                seed=self.seed,
            )
        train, valid = catalog.take(split.train), catalog.take(split.valid)
        seen = np.unique(text_fingerprints(
            [read.texts[i] for i in split.train] + [read.texts[i] for i in split.valid],
            None if train.products.images is None else train.products.images + valid.products.images,
        ))
        excluded = 0
        if test_catalog is not None:
            # A test file sharing products with the catalog would flatter the model, as evaluate knows.
            test, excluded = self._leave_out_seen(
                test_catalog, seen, say, mapping, hint="pass a test file of other products, or no --test-data "
                "for a held-out split", warning="the model trains on",
            )
        else:
            test = catalog.take(split.test)
        if split.train_only_classes:
            names = ", ".join(list(split.train_only_classes)[:5])
            more = len(split.train_only_classes) - 5
            say.warn(
                f"{len(split.train_only_classes)} class(es) too small to split were kept in training only "
                f"and are not scored: {names}{f' and {more} more' if more > 0 else ''}"
            )

        space = LabelSpace.from_labels(train.labels, mapping.label_format, where=catalog.source)
        y_train = space.encode(train.labels)
        known, y_valid = self._known_rows(valid, space)
        valid_pair = (read.take(np.asarray(split.valid)[known]), y_valid[known]) if known.any() else None
        if valid_pair is None:
            # Said before training: a small catalog's default split leaves no validation
            # product, and a neural model then ran its whole epoch budget (300 on a few
            # dozen products) with nothing to say so.
            why = no_validation_reason(self.valid_size)
            # (tfidf-linear calibrates on out-of-fold scores instead; the neural models stay uncalibrated)
            lost = (f"{self.model} trains every epoch of its budget without early stopping and is not calibrated; "
                    if model.resumable else "")
            thresholds = "no review threshold nor per-label thresholds are" if space.is_multi else "no review threshold is"
            say.warn(f"no validation products ({why}): {lost}{thresholds} chosen")
        with say.step(f"training {self.model} on {len(train):,} products, {space.n_classes} classes"):
            context = FitContext(
                device=self.device,
                logdir=Path(logdir) if logdir else None,
                checkpoint_dir=Path(checkpoint_dir) if checkpoint_dir else None,
                resume=resume,
                quiet=self.quiet,
            )
            model.fit(read.take(split.train), y_train, space, valid=valid_pair, seed=self.seed,
                      class_weight=class_weight, context=context)
        # A latin-1 training file says nothing of the files predicted later.
        self._fitted, self.label_space_, self.fields_ = model, space, _with_label_sep(mapping, catalog).for_model()
        self._tensorboard_dir, self._tensorboard_before = tensorboard_dir, tensorboard_before
        # a resumed run's curves go on from the interrupted run's files; a fresh one replaces them
        self._tensorboard_resumed = resume
        self._loaded_report = None  # a loaded model's test report describes the model this fit replaces
        # as do its manifest and directory (which the server describes and messages name), and an
        # earlier path model's level reviews
        for replaced in ("manifest_", "model_dir_", "review_level_confidence_", "review_level_correct_"):
            self.__dict__.pop(replaced, None)

        self.thresholds_ = None
        self.part_thresholds_ = {}
        self.review_confidence_ = np.zeros(0, np.float32)
        self.review_correct_ = np.zeros(0, np.uint8)
        # Each held-out part is predicted once: thresholds, metrics and the
        # saved report all reuse these probabilities.
        valid_proba, valid_parts = self._proba_and_parts(valid.products) if len(valid) else (None, {})
        if valid_pair is not None:
            if space.is_multi:
                self.thresholds_ = choose_multilabel_thresholds(valid_pair[1], valid_proba[known])
                # A part alone is judged as it would be as the model: with cuts tuned for it. Cut at 0.5
                # against the combination's tuned cuts, the tuning's gain passed for the combining's.
                self.part_thresholds_ = {
                    name: choose_multilabel_thresholds(valid_pair[1], np.asarray(part, np.float32)[known])
                    for name, part in valid_parts.items()
                }
            self.review_confidence_, self.review_correct_ = self._confidence_and_correctness(
                valid_proba[known], valid_pair[1]
            )
        self.review_ = review_threshold(self.review_confidence_, self.review_correct_, self.target_precision)
        if space.label_format == "path":
            # coarser levels get their own thresholds, for the confident path of a product whose leaf is unsure;
            # a one-level hierarchy has none, but its predictions end with the same columns as any path model's
            shape = (space.depth - 1, 0)
            self.review_level_confidence_, self.review_level_correct_ = (
                self._level_confidence_and_correctness(valid_proba[known], valid_pair[1]) if valid_pair is not None
                else (np.zeros(shape, np.float32), np.zeros(shape, np.uint8)))
            self.review_["levels"] = self._level_reviews(self.target_precision)

        with say.step("scoring"):
            sample = np.random.default_rng(self.seed).permutation(len(train))[:TRAIN_METRICS_SAMPLE]
            self.metrics_ = {"train": headline(self._score(train.take(np.sort(sample))))}
            if len(valid):
                self.metrics_["validation"] = headline(self._score(valid, valid_proba))
            self._test_catalog = test
            # The classes kept in training only have no test product: figures of the other classes
            # alone must say so in the report itself, not only in a warning at training time.
            self._test_uncovered = len(split.train_only_classes) if test_catalog is None else 0
            self._test_proba, self._test_parts = self._proba_and_parts(test.products) if len(test) else (None, {})
            self._test_photos = model.image_stats() if len(test) and mapping.image_col else None
            self.test_metrics_ = self._score(test, self._test_proba) if len(test) else None
            if self.test_metrics_ is not None and "levels" in self.review_:
                self.test_metrics_["confident_paths"] = self._confident_path_figures(test, self._test_proba)
            if self.test_metrics_ is not None:
                self._add_part_metrics(self.test_metrics_, test, self._test_proba, self._test_parts,
                                       self._test_photos)
                if test_catalog is not None:
                    self.test_metrics_["excluded_seen_in_training"] = excluded
                elif self._test_uncovered:
                    self.test_metrics_["train_only_classes"] = self._test_uncovered
                self.metrics_["test"] = headline(self.test_metrics_)

        self.seen_fingerprints_ = seen
        self.training_ = {
            "source": catalog.source,
            "test_source": test_catalog.source if test_catalog is not None else None,
            "rows": len(catalog),
            "split": split.to_dict(),
            "seed": self.seed,
            "class_weight": class_weight,
            "fit_seconds": round(time.perf_counter() - started, 2),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        return self

    def find_label_issues(self, data: CatalogSource, *, folds: int = DEFAULT_FOLDS,
                          skip_unlabelled: bool = False) -> pd.DataFrame:
        """Products whose label is probably wrong, across the whole catalog (see `prodcat.label_issues`).

        Each product is judged by a model of this Categorizer's kind and
        settings that never saw it: `folds` models, each trained on the other
        parts of the catalog (grouped by text, as the split is), then
        cleanlab's confident learning on their out-of-fold probabilities.
        This Categorizer is not fitted by it. Returns one row per product in
        catalog order: its id columns, `row` (1-based), `text`, `label`,
        `suggested` (the out-of-fold decision) and `suggested_probability`,
        `label_quality` (the out-of-fold probability of the label; for
        multi-label, cleanlab's score of its tags; lowest is most
        doubtful), `judged` (False for a product whose class its fold's
        model never saw: a class of one distinct text; or with nothing the
        model reads) and
        `label_issue`; a DataFrame's index is kept. `attrs` holds folds, source, issues and not_judged.
        """
        from prodcat.label_issues import (
            check_folds, check_valid_size, confident_learning, issues_table, out_of_fold_proba,
        )

        folds = check_folds(folds)
        check_valid_size(self.valid_size)
        class_weight = self._checked_class_weight()
        mapping, _ = self.check_setup()
        say = self._reporter()
        with say.step(f"reading {data if not isinstance(data, pd.DataFrame) else 'DataFrame'}"):
            catalog = load_catalog(data, mapping, skip_unlabelled=skip_unlabelled)
            space = LabelSpace.from_labels(catalog.labels, mapping.label_format, where=catalog.source)
        # a class written two ways would flag each spelling's products as the other's
        _warn_about_labels(catalog, say)
        _warn_about_object_texts(catalog, say)
        # the judges read what a model trained with these settings would read; the table shows texts as written
        read = replace(catalog, products=_model_view(catalog.products, _markup_decided(catalog, mapping, say)))
        oof = out_of_fold_proba(self, read, space, folds=folds, class_weight=class_weight, say=say)
        with say.step("confident learning (cleanlab)"):
            issue, quality = confident_learning(space, space.encode(catalog.labels), oof)
        table = issues_table(catalog, space, oof, issue, quality)
        if isinstance(data, pd.DataFrame):
            # as predict_table keeps it: numbered from 0, with unlabelled rows left out,
            # data.loc[table.index] picked other products than those judged
            table.index = data.index[table["row"].to_numpy() - 1]
        return table

    def _checked_class_weight(self) -> str | None:
        if self.class_weight not in (None, "none", "balanced"):
            raise ConfigError(f"class weight must be 'balanced' or 'none', got {self.class_weight!r}")
        return None if self.class_weight in (None, "none") else self.class_weight

    @staticmethod
    def _known_rows(part: Catalog, space: LabelSpace) -> tuple[np.ndarray, np.ndarray]:
        """(mask of the rows whose class the model knows, targets of every row) of a held-out part."""
        y = space.encode(part.labels)
        known = np.ones(len(part), bool) if space.is_multi else y >= 0
        return known, y

    def _confidence_and_correctness(self, proba: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per product, the confidence of the decision and whether it was right."""
        decided = self.label_space_.decide(proba, self.thresholds_)
        confidence = self._confidence(proba, decided)
        if self.label_space_.is_multi:
            correct = (decided == y).all(axis=1)
        else:
            correct = decided == y
        return confidence.astype(np.float32), correct.astype(np.uint8)

    def _confidence(self, proba: np.ndarray, decided: np.ndarray) -> np.ndarray:
        if self.label_space_.is_multi:
            return np.where(decided.astype(bool), proba, np.inf).min(axis=1)
        return proba[np.arange(len(proba)), decided]

    def _level_confidence_and_correctness(self, proba: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For a path model, per coarser level (1 to depth - 1) and product: the confidence
        that the true path starts with the decided class's first levels, and whether it does.
        The confidence is -1 where the decided class has no more levels than that: a level
        never places it (see `_confident_paths`), so it has no say in the level's threshold."""
        space = self.label_space_
        decided = space.decide(proba)
        depth_of = space.class_depths()
        confidence, correct = [], []
        for level in range(1, space.depth):
            level_confidence, ancestors = space.ancestor_confidence(proba, decided, level)
            _, to_coarse = space.coarsen(level)
            confidence.append(np.where(depth_of[decided] > level, level_confidence, -1.0))
            correct.append(ancestors == to_coarse[y])
        shape = (space.depth - 1, len(proba))  # (0, n) for a one-level hierarchy
        return np.array(confidence, np.float32).reshape(shape), np.array(correct, np.uint8).reshape(shape)

    def _level_reviews(self, target_precision: float) -> list[dict]:
        """The review threshold of each coarser level, chosen on validation as the leaf's is,
        deepest first, among the validation products no deeper level placed.

        Chosen among all of them, a level's threshold would reach the target over the easy
        products the leaf already places, and miss it on the ones that fall back to it:
        on fashion at 0.99, level 2 placed the leaf's doubtful products at 0.90 precision.
        Its coverage is a share of those left to it.
        """
        leaf = review_threshold(self.review_confidence_, self.review_correct_, target_precision)["threshold"]
        placed = (self.review_confidence_ >= leaf if leaf is not None
                  else np.zeros(len(self.review_confidence_), bool))
        reviews = []
        for level in range(len(self.review_level_confidence_), 0, -1):
            confidence, correct = self.review_level_confidence_[level - 1], self.review_level_correct_[level - 1]
            left = ~placed & (confidence >= 0)  # -1: a class too short for this level
            review = review_threshold(confidence[left], correct[left], target_precision)
            reviews.append({"level": level, **review})
            if review["threshold"] is not None:
                placed |= left & (confidence >= review["threshold"])
        return reviews[::-1]

    def _level_thresholds(self, target_precision: float | None) -> list[float | None] | None:
        """Per coarser level, its review threshold (None: no level confident enough); None for a
        model without them (no path labels, or saved before they were chosen)."""
        levels = self.review_.get("levels")
        if levels is None:
            return None
        if target_precision is not None and target_precision != self.review_.get("target_precision"):
            levels = self._level_reviews(target_precision)
        return [level["threshold"] for level in levels]

    def _confident_paths(self, proba: np.ndarray, review_below: float | None,
                         level_thresholds: list[float | None], blank: np.ndarray | None = None,
                         ) -> tuple[np.ndarray, list[str]]:
        """Per product, the deepest level of its decided path that is confident enough (its
        confidence at or above that level's review threshold; the leaf's is `review_below`),
        and the path cut there; 0 and "" where no level is, or the product has nothing to read.

        A shirt the model cannot tell from a t-shirt at 0.55 each may still be Apparel >
        Topwear at 0.99: placed there, it needs no one to review it to that depth.
        Levels are tried deepest first, as their thresholds were chosen (`_level_reviews`).
        """
        space = self.label_space_
        decided = space.decide(proba)
        depth_of = space.class_depths()
        placed = np.zeros(len(proba), dtype=np.int64)
        if review_below is not None:
            leaf_sure = proba[np.arange(len(proba)), decided] >= review_below
            placed[leaf_sure] = depth_of[decided[leaf_sure]]
        for level in range(len(level_thresholds), 0, -1):
            threshold = level_thresholds[level - 1]
            if threshold is None:
                continue
            level_confidence, _ = space.ancestor_confidence(proba, decided, level)
            # A class of `level` levels or fewer is its own ancestor there: it is the leaf, whose
            # threshold alone says whether it is sure ("Gifts" is no level-2 path)
            placed[(placed == 0) & (depth_of[decided] > level) & (level_confidence >= threshold)] = level
        if blank is not None:
            placed[blank] = 0
        paths = [space.ancestor(space.classes[c], k) if k else "" for c, k in zip(decided, placed)]
        return placed, paths

    def _confident_path_figures(self, part: Catalog, proba: np.ndarray) -> dict:
        """How the test products were placed by their confident paths: per level, how many
        and how often the placed path starts their true path; and how many were not placed."""
        placed, paths = self._confident_paths(proba, self.review_threshold(), self._level_thresholds(None),
                                              self._reads_nothing(part.products))
        truth = self.label_space_.names(part.labels)
        figures: dict[str, Any] = {"products": len(placed), "not_placed": int((placed == 0).sum()), "levels": []}
        for level in range(1, self.label_space_.depth + 1):
            rows = np.flatnonzero(placed == level)
            if not len(rows):
                continue
            right = sum(LabelSpace.ancestor(truth[i], level) == paths[i] for i in rows)
            figures["levels"].append({"level": level, "products": len(rows),
                                      "precision": round(right / len(rows), 6)})
        return figures

    def review_threshold(self, target_precision: float | None = None) -> float | None:
        """Confidence below which a prediction needs review (None: all need review).

        Chosen on validation for the target precision given at training time,
        or for another one given here.
        """
        self._require_fitted()
        if target_precision is None or target_precision == self.review_.get("target_precision"):
            return self.review_["threshold"]
        check_target_precision(target_precision)
        return review_threshold(self.review_confidence_, self.review_correct_, target_precision)["threshold"]

    def _score(self, part: Catalog, proba: np.ndarray | None = None) -> dict:
        if proba is None:
            proba = self._proba(part.products)
        return compute_metrics(self.label_space_, part.labels, proba, self.thresholds_)

    def _proba_and_parts(self, products: Products) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Probabilities and those of the model's parts (see `_add_part_metrics`), each part predicted once."""
        proba, parts = self._require_fitted().predict_proba_with_components(_model_view(products, self.fields_))
        return proba.astype(np.float32, copy=False), parts

    def _add_part_metrics(self, metrics: dict, part: Catalog, proba: np.ndarray,
                          parts: dict[str, np.ndarray], photos: ImageStats | None = None,
                          level: int | None = None) -> None:
        """Add to `metrics` (of the combined model on `part`, `proba` its
        probabilities) what a model with parts (`parts`: their probabilities)
        and products with photos need reported.

        components: for a model with parts (an ensemble's members), the
            headline figures of each part alone and "combined", all on the
            same products, so text alone / image alone / both compare fairly.
        versus_best_part: how many decisions the combination changed against
            its best part, and the bootstrap interval of its macro-F1 gain
            (`prodcat.evaluation.compare`).
        images: how many of the products have a photo reference at all, and
            for a model that reads photos (`photos`: how reading them went),
            how many could be used and why the others could not.
        level: the path level `metrics` were scored at (see `compute_metrics`).
        """
        if parts:
            components = {}
            part_thresholds = self.part_thresholds_
            for name, part_proba in parts.items():
                # Multi-label: each part with the cuts tuned for it on validation (a model saved
                # before they were kept: the default 0.5).
                scored = compute_metrics(self.label_space_, part.labels, np.asarray(part_proba, np.float32),
                                         part_thresholds.get(name), level=level)
                components[name] = {k: scored[k] for k in (*PART_KEYS, "label_cuts") if k in scored}
            components["combined"] = {k: metrics[k] for k in (*PART_KEYS, "label_cuts") if k in metrics}
            metrics["components"] = components
            metrics["versus_best_part"] = versus_best_part(self.label_space_, part.labels, parts, proba,
                                                           self.thresholds_, part_thresholds=part_thresholds,
                                                           level=level, seed=self.seed)
        images = part.products.images
        if images is not None:
            with_image = sum(ref is not None for ref in images)
            metrics["images"] = {"with_image": with_image, "without_image": len(images) - with_image}
            if photos is not None:
                metrics["images"].update(usable=photos.read, missing=photos.missing, unreadable=photos.unreadable,
                                         too_large=photos.too_large)

    # -------------------------------------------------------------- predict
    def check_setup(self) -> tuple[FieldMapping, CategorizerModel]:
        """The field mapping and the untrained model `fit` would use, checked
        without reading any data: the model's settings, its label formats
        (focal loss on multi-label, an ensemble's every member) and the fields
        it needs. Raises the error `fit` would raise before its first minute.
        """
        check_seed(self.seed)
        if self.params is not None and not isinstance(self.params, dict):
            raise ConfigError(f"params must be a dict of the model's settings, e.g. {{'C': 0.5}}; got {self.params!r}")
        mapping = self.resolve_fields().require_labels()
        model = create_model(self.model, **(self.params or {}))
        if model.reads_text:
            mapping.require_text()
        if not model.label_formats:
            raise ConfigError(f"model {self.model!r} cannot be trained: train its source model and export that again")
        if mapping.label_format not in model.label_formats:
            raise ConfigError(f"model {self.model!r} does not support {mapping.label_format} labels")
        model.check_before_fit(mapping.label_format)
        if model.reads_images and not mapping.image_col:
            raise ConfigError(f"model {self.model!r} learns from product photos: pass --image-col (and --image-root)")
        return mapping, model

    def _reporter(self) -> Reporter:
        # _warnings_when_quiet: set by leaderboard and tune on their first fit, whose
        # progress they keep quiet but whose findings about the catalog they show;
        # _collected_warnings: a list the web app gives a copy of its quiet model, to show them on the page
        return Reporter(self.quiet, warnings=getattr(self, "_warnings_when_quiet", None),
                        collect=getattr(self, "_collected_warnings", None))

    def _require_fitted(self) -> CategorizerModel:
        if self._fitted is None:
            raise NotFittedError("this Categorizer is not fitted yet: call fit() or Categorizer.load()")
        return self._fitted

    @property
    def classes_(self) -> list[str]:
        self._require_fitted()
        return list(self.label_space_.classes)

    def _proba(self, products: Products) -> np.ndarray:
        model = self._require_fitted()
        return model.predict_proba(_model_view(products, self.fields_)).astype(np.float32, copy=False)

    def _model_named(self) -> str:
        """The model as messages name it: an export says what it was exported from."""
        source = (self.params or {}).get("source_model") if self.model == EXPORTED_MODEL else None
        return f"{self.model!r} (an exported {source})" if source else repr(self.model)

    def reads_images(self) -> bool:
        """Whether the fitted model reads product photos (an image model, or an ensemble with one)."""
        return bool(self._require_fitted().reads_images)

    def reads_text(self) -> bool:
        """Whether the fitted model reads product texts (False: it reads only photos)."""
        return bool(self._require_fitted().reads_text)

    def _readable_mapping(
        self, data: CatalogSource, mapping: FieldMapping, present: set[str] | None = None, *,
        allow_no_photos: bool = False,
    ) -> FieldMapping:
        """`mapping`, less the id columns and the image column `data` lacks.

        Ids only name the rows of a predictions file, and scoring or
        predicting a list needs none (`predict_file` says when it numbers the
        rows instead). For the image column, see `_photo_mapping`.
        """
        if present is None and isinstance(data, pd.DataFrame):
            present = {str(c) for c in data.columns}
        elif present is None:
            check_catalog_source(data)
            present = set(read_columns(data, wanted=mapping.columns(), **mapping.read_options()))
        ids = tuple(c for c in mapping.id_cols if c in present)
        if ids != mapping.id_cols:
            mapping = replace(mapping, id_cols=ids)
        has_column = bool(mapping.image_col) and mapping.image_col in present
        return self._photo_mapping(data, mapping, has_column, allow_no_photos=allow_no_photos)

    def reads_only_images(self) -> bool:
        """Whether the fitted model reads nothing but product photos (an image model, or an ensemble of them)."""
        return self.reads_images() and not self.reads_text()

    def _photo_mapping(
        self, data: CatalogSource, mapping: FieldMapping, has_column: bool, say: Reporter | None = None, *,
        allow_no_photos: bool = False,
    ) -> FieldMapping:
        """`mapping` for reading the photos of `data` (has_column: whether it has the image column).

        A model with a text part still predicts products without photos: its
        image part falls back (an ensemble leans on its text part), said as a
        warning. A model that reads only photos would give every product the
        same fallback prediction, so there a missing image column or image
        folder is an error, unless allow_no_photos (then a warning too).
        """
        if not mapping.image_col or not self.reads_images():
            return mapping if has_column else replace(mapping, image_col=None)
        say = say or self._reporter()
        where = "the DataFrame" if isinstance(data, pd.DataFrame) else str(data)
        refuse = self.reads_only_images() and not allow_no_photos
        if not has_column:
            # With no text column either, nothing would be left to read.
            if refuse or (not mapping.text_cols and not allow_no_photos):
                raise ColumnError(
                    f"{where} has no image column {mapping.image_col!r}, and model {self._model_named()} reads nothing "
                    "but photos: pass --image-col with the column that names them"
                )
            fallback = ("the model's image part falls back to the text" if self.reads_text()
                        else "every product gets the model's one fallback prediction")
            say.warn(f"{where} has no image column {mapping.image_col!r}; {fallback}")
            return replace(mapping, image_col=None)
        folder = _absent_image_folder(mapping, data) if mapping.image_root else None
        if folder is not None:
            if refuse:
                raise ConfigError(
                    f"image folder {folder} not found, and model {self._model_named()} reads nothing but photos: "
                    "pass --image-root with the folder that holds them"
                )
            say.warn(_no_image_folder(folder))
        return mapping

    def _say_photos(self, where: str | Path, stats: ImageStats | None, say: Reporter | None = None) -> None:
        """One line on how many products of `where` had no usable photo, for a model that reads them."""
        if stats is None:
            return
        say = say or self._reporter()
        unusable = stats.failed + stats.absent
        if not unusable:
            say.note(f"photos of {where}: {stats.summary()}")
            return
        fallback = ("decided by the model's text part" if self.reads_text()
                    else "all given the model's one fallback prediction")
        say.warn(f"photos of {where}: {stats.summary()}; the {unusable:,} product(s) without a usable photo "
                 f"are {fallback}")

    def _field_options(self, options: dict[str, Any]) -> FieldMapping:
        """The saved field mapping with `options` (e.g. image_root=...) overriding it."""
        # the facade's own names for two mapping fields
        options = {{"label_col": "label_cols", "id_col": "id_cols"}.get(k, k): v for k, v in options.items()}
        known = {f.name for f in dataclass_fields(FieldMapping)}
        unknown = sorted(k for k, v in options.items() if v is not None and k not in known)
        if unknown:
            raise ConfigError(f"unknown field option(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        if options.get("strip_markup") is not None:
            # the model learned its texts with or without markup: read otherwise, they are other words
            # (the local engine ignored this option and the Ray engine followed it)
            raise ConfigError("strip_markup is decided when the model is trained and saved with it; "
                              "it cannot be changed for one file")
        if options.get("image_root") is not None:
            options = {**options, "image_root": str(options["image_root"])}
        mapping = self.fields_.with_options(**options)
        header = options.get("header")
        if header is not None and options.get("column_names") is None and header != self.fields_.header:
            # The model's names for its header-less training file's columns say nothing
            # of a file with a header, nor its renaming of a header's of a file without one.
            mapping = replace(mapping, column_names=None)
        return mapping

    def _file_text_fields(self, mapping: FieldMapping, source: str | Path) -> dict[str, str]:
        """A file's text columns (`text_cols` given for this file) -> the model's field names.

        They stand for the model's fields in order (`--text-cols name,details`
        for a model of title,description), so a model that reads its fields
        apart (bert's text pairs) finds each under its own name; a field left
        without a column reads as empty. {} when the file's columns are the
        model's.
        """
        given, own = mapping.text_cols, self.fields_.text_cols
        if given == own:
            return {}
        twice = sorted({c for c in given if given.count(c) > 1})
        if twice:
            raise ConfigError(f"the text columns given for {source} name {twice[0]!r} twice")
        if len(given) > len(own):
            reads = (f"{len(own)} text field(s) ({', '.join(own)})" if own else "no text, only photos")
            raise ConfigError(f"{len(given)} text columns given for {source}, but model {self._model_named()} reads "
                              f"{reads}: name one column of this file for each, in that order")
        unfilled = own[len(given):]
        if unfilled and self.reads_text():
            self._reporter().warn(f"no text column of {source} given for the model's field(s) "
                                  f"{', '.join(unfilled)}; read as empty")
        return {col: name for col, name in zip(given, own) if col != name}

    @staticmethod
    def _as_model_fields(products: Products, renames: dict[str, str]) -> Products:
        if not renames:
            return products
        return replace(products, fields={renames.get(k, k): v for k, v in products.fields.items()})

    def _products(self, data: Any, *, confine_photos: bool = False) -> Products:
        """Products from a text, a list of texts, a dict or list of dicts, a DataFrame or a Path.

        A pandas Series or 1-d array of texts is a list of texts; a missing
        value (None, NaN) among texts, in a dict or in a DataFrame is empty.

        Photos come along for every form but plain texts: a DataFrame's image
        column (the mapping's, else `image`), a dict's image key (the
        mapping's image column, else `image`; a path or the bytes of an
        encoded image), a file's image column. Paths in a DataFrame or dicts
        start from the mapping's image_root as seen from the current
        directory (or from the current directory itself). confine_photos: the
        products came from someone else (the server's clients), so a photo
        path outside that folder is refused, never opened (see `image_ref`).
        """
        self._require_fitted()
        if isinstance(data, Path):
            # read as predict_file reads it: a text column the file lacks is empty
            check_catalog_source(data)
            present = set(read_columns(data, wanted=self.fields_.columns(with_labels=False),
                                       **self.fields_.read_options()))
            text_cols = self._present_text_cols(data, self.fields_, present, self._reporter())
            mapping = self._readable_mapping(data, self.fields_, present)
            return load_catalog(data, replace(mapping, text_cols=tuple(text_cols)), with_labels=False).products
        if isinstance(data, str):
            if _names_a_catalog_file(data):
                # The text is classified as asked; the likelier intent gets one line.
                self._reporter().warn(
                    f"{data!r} is classified as a product's text; it names a file: "
                    f"pass Path({data!r}) to predict its products")
            return Products.from_texts([data])
        if isinstance(data, dict):
            if _is_dict_of_columns(data):
                # It was read as one product whose fields are JSON lists: one prediction for many products.
                raise ProdcatError("products given as a dict of lists (columns) would read as one product: "
                                   "pass pandas.DataFrame(that dict), or a list of dicts, one per product")
            data = [data]
        if isinstance(data, (pd.Series, np.ndarray)) and data.ndim == 1:
            # a column of titles, read as the same column of a DataFrame is: pandas reads a
            # column of EANs as int64, and a number is a title as written
            data = [x if isinstance(x, (str, dict)) else cell_text(x) for x in data.tolist()]
        if isinstance(data, pd.DataFrame):
            frame = with_text_column_names(data)
        elif isinstance(data, Sequence) and all(isinstance(x, str) or _is_missing(x) for x in data):
            # a gap (None, NaN) is a product without text, as an empty cell of a DataFrame is
            return Products.from_texts(["" if _is_missing(x) else x for x in data])
        elif isinstance(data, Sequence) and all(isinstance(x, dict) for x in data):
            return self._products_from_dicts(data, confine_photos=confine_photos)
        else:
            raise ProdcatError("products must be a text, a list (or Series) of texts, a dict or list of dicts, "
                               "a DataFrame or a Path")
        mapping = self.fields_
        if mapping.image_col and mapping.image_col in frame.columns:
            image_fields = dict(image_col=mapping.image_col, image_root=mapping.image_root,
                                image_template=mapping.image_template)
        elif IMAGE_KEY in frame.columns:
            # The generic column holds paths (from the current directory) or bytes, as given.
            image_fields = dict(image_col=IMAGE_KEY)
        else:
            image_fields = {}
            if self.reads_only_images() or not mapping.text_cols:
                columns = " or ".join(repr(c) for c in dict.fromkeys([mapping.image_col, IMAGE_KEY]) if c)
                raise ColumnError(f"the products have no image column {columns}, and model {self._model_named()} "
                                  "reads nothing but photos")
        missing = [c for c in mapping.text_cols if c not in frame.columns]
        image_only = bool(image_fields) and self.reads_images()
        if missing and (len(missing) < len(mapping.text_cols) or image_only):
            # Some text fields may be absent (a product without description);
            # the ones present (or the photo, for a model that reads it) still
            # carry the signal.
            frame = frame.assign(**{c: "" for c in missing})
        read_as = FieldMapping(text_cols=mapping.text_cols, label_format=mapping.label_format, **image_fields)
        return catalog_from_frame(frame, read_as, source="input", with_labels=False,
                                  confine_photos=confine_photos).products

    def _present_text_cols(self, data: Path, mapping: FieldMapping, present: set[str], say: Reporter) -> list[str]:
        """The model's text columns that file `data` has (`present`: its columns).

        A missing one (a catalog without descriptions) reads as empty, with a
        warning; none at all, with no photos to read instead, is an error.
        """
        text_cols = [c for c in mapping.text_cols if c in present]
        photos = bool(mapping.image_col) and mapping.image_col in present and self.reads_images()
        if mapping.text_cols and not text_cols and not photos:
            missing = ", ".join(repr(c) for c in mapping.text_cols)
            layout = ""
            if not mapping.header and mapping.column_names:
                # Without a header, columns are named by position: a file of texts
                # alone puts its texts under the model's first name (the label's).
                layout = (f"; a file without a header is read as the model's columns {', '.join(mapping.column_names)} "
                          "in that order (leave a column you lack empty, but keep it), and one whose first row "
                          "names its columns needs --header")
            elif not mapping.header:
                layout = "; without a header the columns are numbered: pass --text-cols with the text columns' numbers"
            # columns given for this file (--text-cols) are its own names, not the model's
            whose = ("the model's text columns" if mapping.text_cols == self.fields_.text_cols
                     else "the text columns given for it")
            raise ColumnError(f"{data} has none of {whose} ({missing}); columns are: "
                              f"{', '.join(sorted(present)[:30])}{layout}")
        if len(text_cols) < len(mapping.text_cols) and self.reads_text():
            absent = ", ".join(c for c in mapping.text_cols if c not in present)
            say.warn(f"{data} has no column {absent}; those fields are read as empty")
        return text_cols

    def _products_from_dicts(self, items: Sequence[dict], *, confine_photos: bool = False) -> Products:
        """Products from dicts without a DataFrame: the server's hot path, where
        building frames cost more than the model."""
        text_cols = self.fields_.text_cols
        images = self._dict_images(items, confine_photos=confine_photos)
        if not any(dict_field(item, c, MISSING) is not MISSING for item in items for c in text_cols):
            photos = images is not None and self.reads_images() and any(ref is not None for ref in images)
            if not photos and not text_cols:
                key = self.fields_.image_col or IMAGE_KEY
                raise ColumnError(f"no product has a photo ({key!r}), and the model reads only photos")
            if not photos:
                raise ColumnError(f"no product has any of the model's text fields ({', '.join(text_cols)})")
        # read as a DataFrame's cells are: NaN is empty, a list is JSON
        fields = {c: [cell_text(dict_field(item, c)) for item in items] for c in text_cols}
        texts = ([self.fields_.join_text(list(values)) for values in zip(*fields.values())] if text_cols
                 else [""] * len(items))
        return Products(texts=texts, fields=fields, images=images)

    def _dict_images(self, items: Sequence[dict], *, confine_photos: bool = False) -> list[str | bytes | None] | None:
        """Each dict's photo (None: it has none), or None when no dict has an image key.

        The mapping's image column is read as in a catalog (template, image
        root); the generic `image` key is a path or bytes, as given.
        """
        mapping = self.fields_
        column = mapping.image_col
        if not any((column and column in item) or IMAGE_KEY in item for item in items):
            return None
        root = image_dir_for(mapping)  # no catalog file: the image root as seen from here
        images: list[str | bytes | None] = []
        for item in items:
            value = item.get(column) if column else None
            if value is not None:
                images.append(image_ref(value, root, mapping.image_template, confine=confine_photos))
            else:
                images.append(image_ref(item.get(IMAGE_KEY), None, confine=confine_photos))
        return images

    def _say_unusable_photos(self, products: Any) -> None:
        """After predicting `products` in memory: one warning when photos they name could not be used
        (a moved image folder), whose products got the fallback without a word from predict.
        Nothing when all were read: a note on every call would be noise in a notebook."""
        stats = self._fitted.image_stats() if self._fitted is not None else None
        if stats is not None and stats.failed:
            self._say_photos("the DataFrame" if isinstance(products, pd.DataFrame) else "the products", stats)

    def predict_proba(self, products: Any) -> pd.DataFrame:
        """One row per product, one column per class."""
        proba = self._proba(self._products(products))
        self._say_unusable_photos(products)
        index = products.index if isinstance(products, (pd.DataFrame, pd.Series)) else None
        return pd.DataFrame(proba, columns=self.classes_, index=index)

    def predict(self, products: Any) -> list:
        """The category of each product (a list of labels each, for multi-label models).

        products: a text, a list (or Series) of texts, a dict or list of dicts
        keyed by the model's text columns, a DataFrame, or a Path to a file
        (a str is always a text; one that names a file gets a warning).
        """
        proba = self._proba(self._products(products))
        self._say_unusable_photos(products)
        decided = self.label_space_.decide(proba, self.thresholds_)
        if self.label_space_.is_multi:
            return [[self.label_space_.classes[j] for j in np.flatnonzero(row)] for row in decided]
        return [self.label_space_.classes[i] for i in decided]

    def predict_table(self, products: Any, top_k: int = 3, *, target_precision: float | None = None,
                      confine_photos: bool = False) -> pd.DataFrame:
        """prediction, confidence, needs_review and the top-k labels with
        probabilities, one row per product (a DataFrame's or Series' index kept, as in predict_proba).

        confine_photos: the products came from someone else (the server's
        clients): a photo path outside the image folder is never opened.
        """
        table, _ = self._table_and_blank(products, top_k, target_precision, confine_photos=confine_photos)
        self._say_unusable_photos(products)
        if isinstance(products, (pd.DataFrame, pd.Series)):
            table.index = products.index
        return table

    def _table_and_blank(self, products: Any, top_k: int, target_precision: float | None, *,
                         confine_photos: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
        """`predict_table`'s table (numbered from 0) and which products had nothing the model reads."""
        read = self._products(products, confine_photos=confine_photos)
        blank = self._reads_nothing(read)
        return self._table(self._proba(read), top_k, self.review_threshold(target_precision), blank,
                           self._level_thresholds(target_precision)), blank

    def _table(self, proba: np.ndarray, top_k: int, review_below: float | None = None,
               blank: np.ndarray | None = None, level_thresholds: list[float | None] | None = None) -> pd.DataFrame:
        """blank: the products with nothing the model reads (`_reads_nothing`), which always need review.
        level_thresholds: a path model's coarser levels' review thresholds (`_level_thresholds`), which
        add the confident_path and confident_level columns (see `_confident_paths`)."""
        space = self.label_space_
        decided = space.decide(proba, self.thresholds_)
        confidence = self._confidence(proba, decided)
        review = np.ones(len(proba), bool) if review_below is None else confidence < review_below
        if blank is not None:
            review |= blank
        columns: dict[str, Any] = dict(zip(DECISION_COLUMNS, (
            space.decisions_to_names(decided),
            np.round(confidence.astype(np.float64), 6),
            review,
        )))
        k = self._ranks(top_k)
        top = np.argsort(-proba, axis=1, kind="stable")[:, :k]
        classes = np.asarray(space.classes, dtype=object)
        for rank in range(k):
            columns[f"label_{rank + 1}"] = classes[top[:, rank]]
            columns[f"prob_{rank + 1}"] = np.round(proba[np.arange(len(proba)), top[:, rank]].astype(np.float64), 6)
        if level_thresholds is not None:
            placed, paths = self._confident_paths(proba, review_below, level_thresholds, blank)
            columns[CONFIDENT_PATH_COLUMNS[0]] = paths
            columns[CONFIDENT_PATH_COLUMNS[1]] = placed
        return pd.DataFrame(columns)

    def _blank_products_warning(self, source: str | Path, blanks: BlankProducts, text_cols: Sequence[str]) -> str:
        """The one line for the products of `source` with nothing the model reads."""
        read_fields = ", ".join(text_cols) if self.reads_text() else ""
        nothing = " nor ".join(filter(None, (read_fields and f"text in {read_fields}", self.reads_images() and "photo")))
        return (f"{blanks.count:,} product(s) of {source} have no {nothing} (first: row {blanks.first_row}): "
                "predicted from nothing, each marked needs_review")

    def _reads_nothing(self, products: Products) -> np.ndarray:
        return products.reads_nothing(text=self.reads_text(), images=self.reads_images())

    def _ranks(self, top_k: int) -> int:
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
            raise ConfigError(f"top-k must be a whole number, 1 or more; got {top_k!r}")
        return min(int(top_k), self.label_space_.n_classes)

    def prediction_columns(self, top_k: int = 3) -> list[str]:
        """The columns of `predict_table(..., top_k)`, which predictions files write after the ids."""
        self._require_fitted()
        ranked = [f"{kind}_{rank}" for rank in range(1, self._ranks(top_k) + 1) for kind in ("label", "prob")]
        confident = list(CONFIDENT_PATH_COLUMNS) if "levels" in self.review_ else []
        return [*DECISION_COLUMNS, *ranked, *confident]

    def predict_file(
        self,
        data: str | Path,
        out: str | Path,
        *,
        top_k: int = 3,
        chunk_size: int = 50_000,
        review_out: str | Path | None = None,
        target_precision: float | None = None,
        allow_no_photos: bool = False,
        confine_photos: bool = False,
        excel: str | None = None,
        **field_options: Any,
    ) -> dict[str, Any]:
        """Predict a catalog file of any size into CSV, TSV, JSONL or Parquet.

        Streams in chunks (memory stays flat however long the file), keeps the
        input's row order, and copies its id columns (or a 1-based `row`); an
        id column named like a column predict writes (`prediction`,
        `confidence`, ...) is copied as `id:prediction` (see `id_output_names`).
        review_out also writes the rows that need review to their own file.
        Outputs appear only when complete. field_options (e.g. image_root=...,
        encoding="latin-1") override the saved field mapping for this file;
        relative image paths start from this file's folder (see FieldMapping),
        and the file is read as UTF-8 unless `encoding` says otherwise.

        For a model that reads only photos, a file without the image column
        or with an image folder that does not exist is an error (every
        product would get the same fallback prediction), unless
        allow_no_photos, for a caller that reports that itself. `photos` in
        the summary counts how reading them went (see `ImageStats`).

        confine_photos: the file came from someone else (the server's and the
        app's uploads), so its photo paths are read only inside the image
        folder; an absolute path elsewhere or one climbing out with ".."
        counts as a missing photo and is never opened.

        excel: "," or ";": the .csv outputs are written for Excel, which shows
        accents of a UTF-8 file only after a byte-order mark, and in Germany,
        France and most of Europe parts fields with ";" and reads decimal commas
        (";" writes "0,93"). Other readers may keep the mark in the first
        column's name: it is for files a person opens.
        """
        self._require_fitted()
        if isinstance(data, pd.DataFrame):
            raise CatalogError("predict_file reads a catalog file, not a DataFrame: use predict_table(frame)")
        check_catalog_source(data)
        data, out = Path(data), user_path(out, "the predictions file")
        review_out = None if review_out is None else user_path(review_out, "the review file")
        outputs = [out] + ([review_out] if review_out is not None else [])
        for path, what in zip(outputs, OUTPUT_CONTENTS):
            table_file_format(path, data, what)
        if review_out is not None and review_out.resolve() == out.resolve():
            raise ConfigError("--review-out must be another file than --out")
        check_excel(excel, outputs)
        review_below = self.review_threshold(target_precision)
        level_thresholds = self._level_thresholds(target_precision)
        self._ranks(top_k)  # checked as predict_table checks it: "2" or None failed on a comparison
        mapping = self._field_options(field_options)
        renames = self._file_text_fields(mapping, data)
        present = set(read_columns(data, wanted=mapping.columns(with_labels=False), **mapping.read_options()))
        say = self._reporter()
        text_cols = self._present_text_cols(data, mapping, present, say)
        wanted_ids = mapping.id_cols
        mapping = self._readable_mapping(data, mapping, present, allow_no_photos=allow_no_photos)
        ids = list(mapping.id_cols)
        missing_ids = missing_ids_warning(data, wanted_ids, ids, sorted(present))
        if missing_ids:
            say.warn(missing_ids)
        read_as = FieldMapping(
            text_cols=tuple(text_cols), id_cols=tuple(ids), label_format=mapping.label_format,
            image_col=mapping.image_col, image_root=mapping.image_root, image_template=mapping.image_template,
            header=mapping.header, column_names=mapping.column_names,
            file_format=mapping.file_format, encoding=mapping.encoding,
        )
        id_names = id_output_names(ids, self.prediction_columns(top_k))
        renamed = renamed_ids_warning(data, id_names)
        if renamed:
            say.warn(renamed)
        photos: ImageStats | None = None
        started = time.perf_counter()
        bar, task = say.progress(f"predicting {data.name}")
        blanks = BlankProducts()
        with PredictionOutput(out, review_out, excel=excel) as output, bar:
            for chunk in iter_catalog(data, read_as, chunk_size=chunk_size, confine_photos=confine_photos):
                read = self._as_model_fields(chunk.products, renames)
                blank = self._reads_nothing(read)
                table = self._table(self._proba(read), top_k, review_below, blank, level_thresholds)
                blanks.add(blank, first_row=output.rows + 1)
                if read_as.image_col and (counted := self._fitted.image_stats()) is not None:
                    photos = counted if photos is None else photos.merge(counted)
                first = output.rows + 1
                if ids:
                    front = chunk.frame[list(id_names)].rename(columns=id_names)
                else:
                    front = pd.DataFrame({"row": np.arange(first, first + len(chunk))})
                output.write(pd.concat([front.reset_index(drop=True), table], axis=1))
                bar.update(task, advance=len(chunk))
        self._say_photos(data, photos, say)
        if blanks.count:
            say.warn(self._blank_products_warning(data, blanks, text_cols))
        summary = output.summary(time.perf_counter() - started)
        if photos is not None:
            summary["photos"] = photos.to_dict()
        return summary

    # ------------------------------------------------------------- evaluate
    def evaluate(
        self,
        data: CatalogSource | None = None,
        *,
        report_dir: str | Path | None = None,
        keep_seen: bool = False,
        skip_unlabelled: bool = False,
        **field_options: Any,
    ) -> dict:
        """Metrics on a labelled catalog (by default the test split held out by fit).

        Products whose normalized text the model saw in training are left out
        (their count is reported) unless keep_seen=True, which scores them
        and reports how many were kept: scoring them flatters the model.
        field_options (e.g. label_col=..., encoding="cp1252") override the saved field mapping for this catalog (read as UTF-8
        unless `encoding` says otherwise); a label_level coarser than a path
        model's scores it at that level (its predicted paths cut there), and a
        label_format other than the model's is refused. Scoring the held-out
        split (no data), label_level is the one field option taken. report_dir gets
        metrics.json, report.md and the figures: a new or empty folder, or an
        earlier report, which is replaced whole (see `check_report_dir_target`).
        skip_unlabelled: leave out the rows with an empty label (see `fit`).
        """
        self._require_fitted()
        if report_dir is not None:
            report_dir = user_path(report_dir, "the report directory")
            check_report_dir_target(report_dir)
        level = None
        if data is None:
            if getattr(self, "_test_catalog", None) is None or not len(self._test_catalog):
                raise ConfigError("no held-out test split to score: pass a labelled catalog")
            # The split is read already: an option on how to read a catalog would be ignored without a word.
            reading = sorted(k for k, v in field_options.items() if v is not None and k != "label_level")
            if reading:
                raise ConfigError(f"{', '.join(reading)}: an option for reading a catalog, but the held-out test "
                                  "split is read already; pass the catalog to score, or leave it out")
            level = self._scoring_level(self._field_options(field_options))
            catalog, excluded, kept_seen = self._test_catalog, 0, 0
            proba, parts = self._test_proba, self._test_parts
            photos = self._test_photos
        else:
            mapping = self._field_options(field_options).require_labels()
            level = self._scoring_level(mapping)
            renames = self._file_text_fields(mapping, data if isinstance(data, (str, Path)) else "the DataFrame")
            catalog = load_catalog(data, self._readable_mapping(data, mapping), skip_unlabelled=skip_unlabelled)
            if (left_out := left_out_rows_message(catalog)) is not None:
                self._reporter().warn(left_out)
            catalog = replace(catalog, products=self._as_model_fields(catalog.products, renames))
            excluded = kept_seen = 0
            if keep_seen:
                # Scored in-sample: the figures and the confident mistakes must say so.
                kept_seen = int(self._seen(catalog, self.seen_fingerprints_, self.fields_).sum())
                if kept_seen:
                    self._reporter().warn(
                        f"{kept_seen:,} of {len(catalog):,} products were seen in training and are scored anyway: "
                        "the figures flatter the model"
                    )
            else:
                catalog, excluded = self._leave_out_seen(
                    catalog, self.seen_fingerprints_, self._reporter(), self.fields_,
                    hint="use --keep-seen to score them anyway",
                )
            proba, parts = self._proba_and_parts(catalog.products)
            photos = self._fitted.image_stats() if catalog.mapping.image_col else None
            self._say_photos(catalog.source, photos)
        metrics = compute_metrics(self.label_space_, catalog.labels, proba, self.thresholds_, level=level)
        self._say_unseen(catalog, metrics.get("unseen_classes") or {})
        self._add_part_metrics(metrics, catalog, proba, parts, photos, level)
        if "levels" in self.review_ and level is None:
            metrics["confident_paths"] = self._confident_path_figures(catalog, proba)
        if data is None and self._test_uncovered:
            metrics["train_only_classes"] = self._test_uncovered
        metrics["source"] = catalog.source
        metrics["excluded_seen_in_training"] = excluded
        metrics["kept_seen_in_training"] = kept_seen
        metrics["model"] = self.model
        if report_dir is not None:
            # Replaced whole: an earlier report's figures must not sit beside these metrics.
            with atomic_directory(report_dir, check=check_report_dir_target) as staging:
                write_report(metrics, staging, title=f"{self.model} on {Path(catalog.source).name}",
                             warn=self._reporter().warn,
                             examples=self._examples(catalog, proba, level))
        return metrics

    @staticmethod
    def _leave_out_seen(catalog: Catalog, seen_fingerprints: np.ndarray, say: Reporter, mapping: FieldMapping, *,
                        hint: str, warning: str = "the model saw in training") -> tuple[Catalog, int]:
        """`catalog` without the products whose text (a product without text: photo) is
        among `seen_fingerprints`, and how many were left out; an error when that is all of them."""
        seen = Categorizer._seen(catalog, seen_fingerprints, mapping)
        excluded = int(seen.sum())
        if excluded == len(catalog):
            raise CatalogError(
                f"every product in {catalog.source} was seen in training; scoring them would flatter the model "
                f"({hint})"
            )
        if excluded:
            say.warn(f"left out {excluded:,} of {len(catalog):,} products whose text {warning}")
            catalog = catalog.take(np.flatnonzero(~seen))
        return catalog, excluded

    @staticmethod
    def _seen(catalog: Catalog, seen_fingerprints: np.ndarray, mapping: FieldMapping) -> np.ndarray:
        """Which products of `catalog` the model saw in training (by text as the model
        reads it, see `_model_view`; without text, by photo)."""
        read = _model_view(catalog.products, mapping)
        return np.isin(text_fingerprints(read.texts, read.images), seen_fingerprints)

    def _say_unseen(self, catalog: Catalog, unseen: dict[str, int]) -> None:
        """Warn when true labels are classes the model never learned: each is scored
        as an error, and when none is known, the labels are read wrong (another
        column, "1.0" for "1") far more often than the model is that bad."""
        if not unseen:
            return
        labels = sum(len(label) for label in catalog.labels) if self.label_space_.is_multi else len(catalog)
        count = sum(unseen.values())
        names = ", ".join(repr(name) for name in list(unseen)[:3]) + (", ..." if len(unseen) > 3 else "")
        classes = self.label_space_.classes
        known = ", ".join(repr(name) for name in classes[:3]) + (", ..." if len(classes) > 3 else "")
        if count >= labels:
            message = (f"no label in {catalog.source} is a class this model knows ({names}; the model's: {known}), "
                       "so every product is scored as wrong: check the label column and how its labels are written")
        else:
            message = (f"{count:,} of {labels:,} labels in {catalog.source} are classes this model never learned "
                       f"({names}): each is counted as an error")
        self._reporter().warn(message)

    def _scoring_level(self, mapping: FieldMapping) -> int | None:
        """The path level labels read with `mapping` are scored at (None: the model's own classes).

        Labels read another way than the model's would be scored against
        classes it cannot predict: every product wrong, or `a|b` taken as one
        class. A coarser level is well defined (cut the predicted paths); a
        deeper one is not.
        """
        space = self.label_space_
        model = f"model {self.model_dir_}" if getattr(self, "model_dir_", None) else f"this {self.model} model"
        if mapping.label_format != space.label_format:
            raise ConfigError(
                f"{model} predicts {space.label_format} labels; --label-format {mapping.label_format} cannot "
                f"score it (leave --label-format out to read the labels as {space.label_format})"
            )
        if space.label_format != "path" or mapping.label_level is None:
            return None
        if mapping.label_level > space.depth:
            raise ConfigError(
                f"{model} predicts paths of at most {space.depth} level(s); "
                f"--label-level {mapping.label_level} asks for deeper ones"
            )
        return mapping.label_level if mapping.label_level < space.depth else None

    def _examples(self, catalog: Catalog, proba: np.ndarray, level: int | None = None) -> pd.DataFrame:
        """The products the report's confident mistakes are drawn from, with their decisions.

        A product whose label holds a class the model never learned is wrong whatever it
        predicts, so it says nothing about being mislabeled: it is left out (the report
        lists those classes on their own), else a class new in the file fills the list.
        """
        space = self.label_space_
        table = self._table(proba, 1, self.review_threshold())
        predicted, confidence = table["prediction"], table["confidence"]
        if level is not None:
            decided = space.decide(proba, self.thresholds_)
            space, coarse_proba, decided = at_level(space, proba, decided, level)
            predicted = [space.classes[i] for i in decided]
            confidence = np.round(coarse_proba[np.arange(len(decided)), decided].astype(np.float64), 6)
        labels = catalog.labels if level is None else cut_labels(catalog.labels, level)
        examples = pd.DataFrame({
            "text": catalog.products.texts,
            "true": [label_name(lab, space.label_format) for lab in labels],
            "predicted": predicted,
            "confidence": confidence,
        })
        return examples[space.knows(labels)].reset_index(drop=True)

    # ------------------------------------------------------------ save/load
    def save(self, path: str | Path, *, also_write: Callable[[Path], None] | None = None) -> Path:
        """Write the model directory atomically (see `prodcat.artifacts`).

        also_write: called with the folder being saved, before it becomes
        `path`, to add files of one's own (tune's trial log): they appear
        with the model or, if writing them fails, neither does.
        """
        model = self._require_fitted()
        path = user_path(path, "the model directory")
        state, arrays = model.get_state()
        all_arrays = {f"model.{k}": v for k, v in arrays.items()}
        all_arrays["prodcat.seen_fingerprints"] = self.seen_fingerprints_
        if self.thresholds_ is not None:
            all_arrays["prodcat.thresholds"] = self.thresholds_
        for name, cuts in self.part_thresholds_.items():
            all_arrays[PART_THRESHOLDS + name] = cuts
        all_arrays["prodcat.review_confidence"] = self.review_confidence_
        all_arrays["prodcat.review_correct"] = self.review_correct_
        if "levels" in self.review_:
            all_arrays["prodcat.review_level_confidence"] = self.review_level_confidence_
            all_arrays["prodcat.review_level_correct"] = self.review_level_correct_
        manifest = {
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "model": {"name": self.model, "params": model.get_params()},
            "fields": self.fields_.to_dict(),
            "labels": self.label_space_.to_dict(),
            "review": self.review_,
            "training": getattr(self, "training_", {}),
            "metrics": getattr(self, "metrics_", {}),
            "libraries": _library_versions(),
        }
        # The target's TensorBoard folder stays only when it holds this model's
        # curves: the logs of a replaced model would pass for this one's.
        logs = Path(path).resolve() / RUN_KEPT[0]
        ours = getattr(self, "_tensorboard_dir", None)
        before = getattr(self, "_tensorboard_before", None)
        in_model_dir = ours is not None and (ours == logs or logs in ours.parents)
        written, unchanged = _written_since(ours, before) if in_model_dir else ([], [])
        keep_logs = bool(written)
        # A fresh run's folder keeps none of the files it did not write: a replaced
        # ensemble's member folders would otherwise sit beside this one's.
        replaced = [] if not keep_logs or getattr(self, "_tensorboard_resumed", False) else unchanged
        with atomic_directory(path, keep_run_logs=keep_logs, run_logs_left_out=replaced) as staging:
            write_model_dir(staging, manifest, state, all_arrays)
            if getattr(self, "test_metrics_", None) is not None:
                write_report(self.test_metrics_, staging / "report", title=f"{self.model}: held-out test split",
                             warn=self._reporter().warn,
                             examples=self._examples(self._test_catalog, self._test_proba))
            elif getattr(self, "_loaded_report", None) is not None and self._loaded_report.is_dir():
                # A loaded model saved again (or exported) is the model its test report describes.
                copy_model_files(self._loaded_report, staging / "report")
            if also_write is not None:
                also_write(staging)
        return path

    @classmethod
    def load(cls, path: str | Path, *, quiet: bool = False) -> Categorizer:
        """Load a model directory. Reads JSON and safetensors only; never runs code from it."""
        path = user_path(path, "the model directory")
        manifest, state, arrays = read_model_dir(path)
        name = manifest["model"]["name"]
        try:
            model_cls = get_model_class(name)
        except ConfigError:
            raise ModelDirError(f"{path} needs model {name!r}, which this prodcat does not provide") from None
        try:
            space = LabelSpace.from_dict(manifest["labels"])
            # older models kept their training file's encoding
            fields = FieldMapping.from_dict(manifest["fields"]).for_model()
            model_arrays = {k[len("model."):]: v for k, v in arrays.items() if k.startswith("model.")}
            model = model_cls.from_state(manifest["model"]["params"], state, model_arrays, space)
            thresholds = arrays.get("prodcat.thresholds")
            part_thresholds = {k[len(PART_THRESHOLDS):]: v for k, v in arrays.items() if k.startswith(PART_THRESHOLDS)}
            for cuts in (thresholds, *part_thresholds.values()):
                if cuts is not None and cuts.shape != (space.n_classes,):
                    raise ModelDirError(f"thresholds have shape {cuts.shape}, expected ({space.n_classes},)")
            review_confidence = arrays.get("prodcat.review_confidence", np.zeros(0, np.float32))
            review_correct = arrays.get("prodcat.review_correct", np.zeros(0, np.uint8))
            # read pairwise by review_threshold whenever predict is given another target precision
            if review_confidence.ndim != 1 or review_confidence.shape != review_correct.shape:
                raise ModelDirError(f"review confidences have shape {review_confidence.shape} and their correctness "
                                    f"{review_correct.shape}, expected one length for both")
            _check_saved_review(manifest.get("review"))
            level_review = _saved_level_review(manifest.get("review"), arrays, space)
        except SavedSettingsError as exc:
            # the settings a model was built with are the manifest's model.params
            raise ModelDirError(f"{Path(path) / MANIFEST}: {exc}") from None
        except ProdcatError as exc:
            # a model's own message (a weight of the wrong shape for the
            # manifest's classes, ...) does not know which directory it reads
            raise ModelDirError(f"{path} has an inconsistent manifest or model state: {exc}") from None
        except (LookupError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
            # a state entry of the wrong JSON type or range (a list for an object, a huge number)
            raise ModelDirError(f"{path} has an inconsistent manifest or model state ({exc!r})") from None
        # Trained settings, so that a loaded model fits again (new data, `sklearn.base.clone`) as it was
        # trained: without its field mapping that fit was refused for want of a label column.
        training, review = manifest.get("training") or {}, manifest.get("review") or {}
        self = cls(model=name, params=manifest["model"]["params"], fields=fields, seed=training.get("seed", 0),
                   class_weight=training.get("class_weight", "balanced"),
                   target_precision=review.get("target_precision", 0.95), quiet=quiet)
        self._fitted, self.label_space_, self.fields_ = model, space, fields
        self.thresholds_ = thresholds
        self.part_thresholds_ = part_thresholds
        self.seen_fingerprints_ = arrays.get("prodcat.seen_fingerprints", np.zeros(0, np.uint64))
        self.review_confidence_, self.review_correct_ = review_confidence, review_correct
        self.review_ = manifest.get("review") or review_threshold(
            self.review_confidence_, self.review_correct_, 0.95
        )
        if level_review is not None:
            self.review_level_confidence_, self.review_level_correct_ = level_review
        self.metrics_ = manifest.get("metrics", {})
        self.training_ = manifest.get("training", {})
        self.manifest_ = manifest
        self.model_dir_ = Path(path)
        self._loaded_report = Path(path) / "report"
        self._tensorboard_dir = Path(path).resolve() / RUN_KEPT[0]
        self._tensorboard_before = None  # whatever is there: the curves of the run that trained it
        self.test_metrics_ = None
        self._test_catalog = None
        self._test_proba = None
        self._test_parts = {}
        self._test_photos = None
        return self

    def __repr__(self) -> str:
        state = f"{self.label_space_.n_classes} classes" if self._fitted is not None else "not fitted"
        return f"Categorizer(model={self.model!r}, {state})"


class PredictionOutput:
    """Where a batch prediction goes: the predictions file and, optionally, a
    file of the rows that need review. Used as a context manager, both appear
    complete when the block ends, or not at all when it raises."""

    def __init__(self, out: str | Path, review_out: str | Path | None = None, *, excel: str | None = None):
        self.paths = [Path(out)] + ([Path(review_out)] if review_out is not None else [])
        self.sinks: list[PredictionSink] = []
        try:
            for path in self.paths:
                self.sinks.append(PredictionSink(path, PREDICTION_FORMATS[path.suffix.lower()], excel=excel))
        except BaseException:
            # the review file's folder refused: the predictions file's part goes too
            for sink in self.sinks:
                sink.discard()
            raise
        self.rows = self.needs_review = 0

    def write(self, table: pd.DataFrame) -> None:
        """Append one chunk of predictions (with a `needs_review` column), in order."""
        self.sinks[0].write(table)
        if len(self.sinks) > 1:
            self.sinks[1].write(table[table["needs_review"]])
        self.rows += len(table)
        self.needs_review += int(table["needs_review"].sum())

    def summary(self, seconds: float) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "needs_review": self.needs_review,
            "seconds": round(seconds, 2),
            "rows_per_second": round(self.rows / max(seconds, 1e-9)),
            "out": str(self.paths[0]),
            "review_out": str(self.paths[1]) if len(self.paths) > 1 else None,
        }

    def __enter__(self) -> PredictionOutput:
        return self

    def __exit__(self, exc_type, exc, traceback) -> bool:
        for sink in self.sinks:
            if exc_type is None:
                sink.commit()
            else:
                sink.discard()
        return False


def _file_mode() -> int:
    """The mode a file created by this process gets: 0666 less the umask (read once, at import)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _file_mode()


class PredictionSink:
    """A predictions file written chunk by chunk beside its target, renamed into
    place only when complete. excel: a CSV file's separator for Excel (see
    `Categorizer.predict_file`); other formats ignore it."""

    def __init__(self, path: Path, out_format: str, *, excel: str | None = None):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        except OSError as exc:
            # named as the user wrote it, not as the hidden part file beside it
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        os.close(handle)
        # mkstemp makes it its owner's alone (0600): the file the user gets has the usual mode
        os.chmod(name, FILE_MODE)
        self.path, self.tmp, self.format = path, Path(name), out_format
        self.excel = excel if out_format == "csv" else None
        self.parquet = None
        self.started = False
        self.empty: pd.DataFrame | None = None

    def write(self, table: pd.DataFrame) -> None:
        if table.empty:
            # An empty chunk would fix a Parquet schema of null columns; keep
            # its columns in case nothing else ever comes (a review file with
            # no row to review still gets its header).
            self.empty = table
            return
        if self.format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            batch = pa.Table.from_pandas(table, preserve_index=False)
            if self.parquet is None:
                self.parquet = pq.ParquetWriter(self.tmp, batch.schema)
            self.parquet.write_table(batch.cast(self.parquet.schema))
        elif self.format == "jsonl":
            with open(self.tmp, "a", encoding="utf-8") as handle:
                table.to_json(handle, orient="records", lines=True, force_ascii=False)
        else:
            table.to_csv(self.tmp, mode="a" if self.started else "w", header=not self.started, index=False,
                         **self._csv_options())
        self.started = True

    def _csv_options(self) -> dict[str, str]:
        if self.format == "tsv":
            return {"sep": "\t"}
        if self.excel is None:
            return {"sep": ","}
        # the byte-order mark once, at the start: "utf-8-sig" would write one before every chunk appended
        return {"sep": self.excel, "decimal": EXCEL_SEPARATORS[self.excel],
                "encoding": "utf-8" if self.started else "utf-8-sig"}

    def commit(self) -> None:
        if not self.started and self.empty is not None:
            # Text columns as text: an empty object column would get Parquet's null type. The others keep
            # theirs, so a week with no row has the schema of a week with some.
            self.empty = self.empty.astype({c: str for c in self.empty.columns if self.empty[c].dtype == object})
            table, self.empty = self.empty, None
            self._write_empty(table)
        if self.parquet is not None:
            self.parquet.close()
        os.replace(self.tmp, self.path)

    def _write_empty(self, table: pd.DataFrame) -> None:
        if self.format == "parquet":
            table.to_parquet(self.tmp, index=False)
        elif self.format in ("csv", "tsv"):
            table.to_csv(self.tmp, index=False, **self._csv_options())

    def discard(self) -> None:
        if self.parquet is not None:
            self.parquet.close()
        self.tmp.unlink(missing_ok=True)


def _saved_level_review(review: Any, arrays: dict[str, np.ndarray],
                        space: LabelSpace) -> tuple[np.ndarray, np.ndarray] | None:
    """A path model's validation confidences and correctness per coarser level (see
    `Categorizer._confident_paths`); None for a model without them (saved before them)."""
    if not isinstance(review, dict) or "levels" not in review:
        return None
    # read at every prediction: a hand-edited entry must fail here, not as a traceback in predict
    levels = space.depth - 1 if space.label_format == "path" else None
    saved = review["levels"]
    if (levels is None or not isinstance(saved, list) or len(saved) != levels
            or not all(isinstance(level, dict) and _is_threshold(level.get("threshold", "")) for level in saved)):
        raise ModelDirError(f"review 'levels' must list, for each of the {levels} coarser level(s) of the path "
                            f"labels, a dict with a threshold (a number from 0 to 1, or null); got {saved!r:.200}")
    confidence = arrays.get("prodcat.review_level_confidence", np.zeros((levels, 0), np.float32))
    correct = arrays.get("prodcat.review_level_correct", np.zeros((levels, 0), np.uint8))
    if confidence.ndim != 2 or confidence.shape != correct.shape or confidence.shape[0] != levels:
        raise ModelDirError(f"review confidences per level have shape {confidence.shape} and their correctness "
                            f"{correct.shape}, expected ({levels}, n) for both")
    return confidence, correct


def _check_saved_review(review: Any) -> None:
    """A ModelDirError unless the manifest's review (absent: chosen again at load) holds a
    threshold and the target precision it was chosen for, as predict reads them."""
    if review is None:
        return
    target = review.get("target_precision") if isinstance(review, dict) else None
    if (not isinstance(review, dict) or "threshold" not in review or not _is_threshold(review["threshold"])
            or not _is_threshold(target) or not target):
        raise ModelDirError(f"review must hold a threshold (a number from 0 to 1, or null) and the target_precision "
                            f"it was chosen for; got {review!r:.200}")


def _is_threshold(value: Any) -> bool:
    """A saved review threshold: None (nothing confident enough) or a number from 0 to 1."""
    if value is None:
        return True
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1


def _markup_decided(catalog: Catalog, mapping: FieldMapping, say: Reporter) -> FieldMapping:
    """`mapping` with `strip_markup` decided from the training catalog when it is None: the
    text columns found holding HTML markup, or False (see FieldMapping); a note on each."""
    if mapping.strip_markup is False:
        return mapping
    found = markup_findings(catalog.products.fields)
    for column, finding in found.items():
        if mapping.strip_markup is None or mapping.strip_markup is True or column in mapping.strip_markup:
            say.note(markup_message(column, finding, catalog.source))
    return replace(mapping, strip_markup=decided_strip(mapping.strip_markup, found))


def _model_view(products: Products, mapping: FieldMapping) -> Products:
    """`products` as the model reads them: without HTML markup when its mapping says so."""
    return products.read_with(mapping.strip_markup)


def _with_label_sep(mapping: FieldMapping, catalog: Catalog) -> FieldMapping:
    """`mapping` with the separator its multi-label training labels were split on, when it was detected.

    Detected again on each file `evaluate` reads, it could differ: on a holdout of one tag each,
    the comma in a tag "Sale, Clearance" would outnumber the "|" that no cell holds. A path's
    separators are not so ambiguous, and a holdout exported by another system writes its
    paths its own way ("Apparel >> Shirts" for "Apparel > Shirts"): paths are detected per file.
    """
    if mapping.label_sep is not None or mapping.label_format != "multi" or len(mapping.label_cols) != 1:
        return mapping
    found = label_separator(catalog.frame[mapping.label_cols[0]].tolist(), mapping.label_format)
    return mapping if found is None else replace(mapping, label_sep=found)


def _warn_about_labels(catalog: Catalog, say: Reporter) -> None:
    """Warn of a path column written with two separators or several paths in a cell, paths read as single
    labels, classes spelled apart, labels that mean no category, or a multi-label column of one tag per product;
    and say which rows were left out, having no label, text or photo."""
    left_out = left_out_rows_message(catalog)
    if left_out:
        say.warn(left_out)
    ids = catalog.numeric_ids()
    if ids and ids["paths"]:  # ids alone may be meant (inspect tells of them); beside paths, one class is two
        say.warn(numeric_ids_message(ids, where=catalog.source, column=ids["column"]))
    for finding, message in (
        (catalog.mixed_path_separators(), mixed_path_separators_message),
        (catalog.several_paths_in_cells(), several_paths_in_cells_message),
        (catalog.classes_spelled_apart(), classes_spelled_apart_message),
        (catalog.paths_as_single(), paths_as_single_message),
        (catalog.placeholder_labels(), placeholder_labels_message),
        (catalog.one_tag_each(), one_tag_each_message),
    ):
        if finding:
            say.warn(message(finding, where=catalog.source, column=finding["column"]))


def _warn_about_object_texts(catalog: Catalog, say: Reporter) -> None:
    """Warn of a text column named by a nested object rather than the field inside it that holds the text."""
    for column, keys in json_object_text_columns(catalog.products).items():
        say.warn(json_object_text_message(column, keys, catalog.source))


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version(), "prodcat": __version__}
    for package in ("numpy", "scipy", "scikit-learn", "pandas", "pyarrow", "safetensors", "torch", "transformers"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            pass
    return versions
