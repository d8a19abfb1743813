"""`prodcat` on the command line: parse options, call the facade, print.

User mistakes (ProdcatError) are caught once, in `main`, and printed as one
line with a non-zero exit; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Optional

import typer

from prodcat import __version__
from prodcat.errors import CatalogError, ConfigError, Interrupted, ProdcatError

app = typer.Typer(
    name="prodcat",
    help="Put e-commerce products into the right category: inspect a catalog, train, evaluate, predict.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    # train takes 38 options: a wide terminal shows each on one or two lines
    # instead of click's 80 columns.
    context_settings={"max_content_width": 120},
)

# --- options shared by the commands that read a catalog ---------------------
Data = Annotated[Path, typer.Option("--data", help="Catalog file: CSV, TSV, JSONL or Parquet.")]
Preset = Annotated[Optional[str], typer.Option(help="Field preset: fashion, flipkart, kaggle-ecommerce.")]
Config = Annotated[Optional[Path], typer.Option(help="Field mapping file (TOML or JSON).")]
TextCols = Annotated[Optional[str], typer.Option("--text-cols", help="Text columns, comma-separated, joined in order.")]
LabelCol = Annotated[
    Optional[str], typer.Option("--label-col", help="Label column; several comma-separated columns form a path.")
]
LabelFormat = Annotated[Optional[str], typer.Option("--label-format", help="single, multi or path.")]
LabelSep = Annotated[
    Optional[str], typer.Option("--label-sep", help="Separator inside a multi-label or path cell (default: detected).")
]
# A multi-label model keeps the separator detected at train: a holdout's tags are split alike by default.
FileLabelSep = Annotated[
    Optional[str],
    typer.Option("--label-sep", help="Separator inside this file's multi-label or path cells (default: a multi-label "
                 "model's own, kept from train; a path's is detected)."),
]
LabelLevel = Annotated[Optional[int], typer.Option("--label-level", help="Keep the first N levels of a path.")]
IdCols = Annotated[Optional[str], typer.Option("--id-cols", help="Id columns copied to prediction files.")]
Encoding = Annotated[Optional[str], typer.Option(help="Text encoding of CSV/TSV/JSONL files (default utf-8).")]
# A model does not keep its training file's encoding: each file read later says its own.
FileEncoding = Annotated[
    Optional[str],
    typer.Option(help="Text encoding of the --data file if CSV/TSV/JSONL (default utf-8, whatever the model "
                 "was trained on)."),
]
# A model keeps its training file's column names; a later file may name them otherwise.
FileTextCols = Annotated[
    Optional[str],
    typer.Option("--text-cols", help="This file's text columns, comma-separated, standing in order for the model's "
                 "own (default: the model's column names)."),
]
ImageCol = Annotated[
    Optional[str],
    typer.Option("--image-col", help="Column holding each product's photo: a file name or a path (an empty cell: none)."),
]
ImageRoot = Annotated[
    Optional[str],
    typer.Option(
        "--image-root",
        help="Folder relative photo paths start from (default: the catalog file's folder); itself relative: "
        "beside the catalog file, else in the current directory.",
    ),
]
Markup = Annotated[
    Optional[str],
    typer.Option("--markup", help="HTML in texts (<li>, &amp;): auto (default: strip it from the columns that "
                 "hold it), strip (all text columns), keep. Saved with the model."),
]
# A model keeps whether its training file had a header; a later file may differ.
FileHeader = Annotated[
    Optional[bool],
    typer.Option("--header/--no-header", help="Whether this file's first row names its columns (default: as the "
                 "model's training file; without one, columns are named 0, 1, ... unless the model names them)."),
]
MaxLength = Annotated[
    Optional[int], typer.Option("--max-length", help="Text models that tokenize (lstm, cnn, transformer, bert): "
                                "tokens per product.")
]
ImageSize = Annotated[
    Optional[int], typer.Option("--image-size", help="Image models: the side in pixels photos are resized to.")
]
Checkpoint = Annotated[
    Optional[str],
    typer.Option(
        help="A checkpoint directory or hub id: bert's text one; image-pretrained's transformers image one "
        "(default: the offline EfficientNet-Lite0 weights)."
    ),
]
FreezeLayers = Annotated[
    Optional[int],
    typer.Option(
        "--freeze-layers",
        help="bert: keep the first N encoder layers fixed; image-pretrained: the first N blocks of the backbone "
        "(-1: all of it).",
    ),
]
Members = Annotated[
    Optional[str],
    typer.Option(
        "--members",
        help="ensemble: member models, e.g. tfidf-linear,image-pretrained; --epochs and the like go to the "
        "members that have them.",
    ),
]
Method = Annotated[
    Optional[str],
    typer.Option("--method", help="ensemble: average (weights tuned on validation) or stacking (a meta-model)."),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output or warnings (errors still print).")]
SkipUnlabelled = Annotated[
    bool, typer.Option("--skip-unlabelled", help="Leave out rows with an empty label (products not yet "
                       "categorized), with a warning naming them, instead of refusing the file.")
]
Excel = Annotated[
    Optional[str],
    typer.Option("--excel", metavar="SEP", help="Write .csv files for Excel: a UTF-8 byte-order mark (accents show) "
                 "and SEP between fields: ';' for Excel in Germany, France and most of Europe (with decimal commas), "
                 "',' elsewhere."),
]
ClassWeight = Annotated[
    str, typer.Option("--class-weight", help="'balanced' (default) weighs rare classes up; 'none' turns it off.")
]


def _columns(value: str | None, option: str | None = None) -> list[str] | None:
    """The names in a comma-separated option; `option` names the option when they are models, not columns."""
    if value is None:
        return None
    columns = [c.strip() for c in value.split(",") if c.strip()]
    if not columns:
        raise ConfigError(f"{option} needs at least one model name, got {value!r}" if option
                          else f"no column names in {value!r}")
    return columns


_MARKUP_CHOICES = {"auto": None, "strip": True, "keep": False}


def _field_options(
    text_cols, label_col, label_format, label_sep, label_level, id_cols, encoding, image_col=None, image_root=None,
    markup=None,
) -> dict:
    if markup is not None and markup not in _MARKUP_CHOICES:
        raise ConfigError(f"--markup must be one of {', '.join(_MARKUP_CHOICES)}, got {markup!r}")
    return dict(
        text_cols=_columns(text_cols),
        label_cols=_columns(label_col),
        label_format=label_format,
        label_sep=label_sep,
        label_level=label_level,
        id_cols=_columns(id_cols),
        encoding=encoding,
        image_col=image_col,
        image_root=image_root,
        strip_markup=_MARKUP_CHOICES.get(markup),
    )


def _ensemble_options(models: list[str], members: str | None, method: str | None) -> dict:
    """The ensemble's `members` / `method` settings from --members / --method ({} when neither is given)."""
    given = {k: v for k, v in dict(members=_columns(members, "--members"), method=method).items() if v is not None}
    if given and "ensemble" not in models:
        flags = " and ".join(f"--{k}" for k in given)
        raise ConfigError(f"{flags} {'apply' if len(given) > 1 else 'applies'} to --model ensemble only, "
                          f"not {', '.join(models)}")
    return given


def _check_named_options(options: dict, models: list[str], refusal: str) -> None:
    """One line for a named option (--checkpoint, --max-length, ...) that none of `models` takes.

    It names the models that do take it: the generic list of a model's known
    settings does not say that --freeze-embeddings is bert's. `refusal` ends
    the line ("model bow does not take it"). A plug-in model that lists no
    settings (`get_params()` of a default instance is empty) is left to take
    or refuse what it is given.
    """
    from prodcat.leaderboard import model_settings, models_taking
    from prodcat.models import get_model_class

    def takes(name: str, key: str) -> bool:
        cls = get_model_class(name)
        return key in model_settings(name) or (key not in cls.unshared_settings and not cls().get_params())

    for key in options:
        if not any(takes(name, key) for name in models):
            takers = models_taking(key)
            whose = " and ".join([", ".join(takers[:-1]), takers[-1]] if len(takers) > 1 else takers) or "no model"
            raise ConfigError(f"--{key.replace('_', '-')} is a setting of {whose}; {refusal}")


def _model_params(model: str, params: dict, options: dict, members: str | None, method: str | None) -> dict:
    """A model's settings: --param values, overridden by the named options given (--epochs, --checkpoint, ...).

    For an ensemble, --members / --method are its own settings, and each named
    option goes to the members that have that setting (in `member_params`),
    so `--model ensemble --members tfidf-linear,image-pretrained --epochs 3`
    trains the image member for 3 epochs.
    """
    params = {**params, **_ensemble_options([model], members, method)}
    options = {k: v for k, v in options.items() if v is not None}
    if not options:
        return params
    if model != "ensemble":
        _check_named_options(options, [model], f"model {model} does not take it")
        return {**params, **options}
    names = _ensemble_members(params)
    _check_named_options(options, names, f"no member of the ensemble ({', '.join(names)}) takes it")
    return _with_member_options(params, options)


def _ensemble_members(params: dict) -> list[str]:
    """The member names of an ensemble with these settings (its default members when they name none)."""
    from prodcat.models import create_model

    return create_model("ensemble", **{k: v for k, v in params.items() if k == "members"}).get_params()["members"]


def _with_member_options(params: dict, options: dict) -> dict:
    """An ensemble's settings with each named option given to the members that have that setting."""
    from prodcat.leaderboard import split_shared_params

    member_params = {name: dict(settings) for name, settings in (params.get("member_params") or {}).items()}
    own_value = """--param member_params='{"NAME": {"SETTING": VALUE}}'"""
    for name, settings in split_shared_params(list(dict.fromkeys(_ensemble_members(params))), options, own_value).items():
        if settings:
            member_params[name] = {**member_params.get(name, {}), **settings}
    return {**params, "member_params": member_params}


def _print_json(data) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _headline_line(metrics: dict, *, multi: bool | None = None) -> str:
    """multi: whether the figures are a multi-label model's (None: told by `metrics` itself; an
    ensemble part's figures do not say). Its accuracy is the share of products with every tag
    right, named so: beside top3_accuracy (one tag right) "accuracy" read as the top-1 rate."""
    multi = "subset_accuracy" in metrics if multi is None else multi
    names = {"n": "n", "accuracy": "subset_accuracy" if multi else "accuracy", "macro_f1": "macro_f1",
             "weighted_f1": "weighted_f1", "top3_accuracy": "top3_accuracy"}
    return "  ".join(
        f"{name}={metrics[k]:.4f}" if isinstance(metrics[k], float) else f"{name}={metrics[k]}"
        for k, name in names.items() if k in metrics
    )


@app.command()
def train(
    data: Data,
    out: Annotated[Path, typer.Option("--out", help="Model directory to write (replaced atomically).")],
    model: Annotated[str, typer.Option(help="Registered model name (see `prodcat models`).")] = "tfidf-linear",
    preset: Preset = None,
    config: Config = None,
    text_cols: TextCols = None,
    label_col: LabelCol = None,
    label_format: LabelFormat = None,
    label_sep: LabelSep = None,
    label_level: LabelLevel = None,
    id_cols: IdCols = None,
    encoding: Encoding = None,
    image_col: ImageCol = None,
    image_root: ImageRoot = None,
    markup: Markup = None,
    members: Members = None,
    method: Method = None,
    param: Annotated[
        Optional[list[str]], typer.Option("--param", help="Model setting KEY=VALUE (JSON value), repeatable.")
    ] = None,
    valid_size: Annotated[float, typer.Option(help="Share held out for calibration and tuning.")] = 0.1,
    test_size: Annotated[
        Optional[float], typer.Option(help="Share held out for the test report (default 0.1; not with --test-data).")
    ] = None,
    test_data: Annotated[
        Optional[Path],
        typer.Option("--test-data", help="Score this file instead of a test split, leaving out products the model "
                     "trains on."),
    ] = None,
    class_weight: ClassWeight = "balanced",
    skip_unlabelled: SkipUnlabelled = False,
    target_precision: Annotated[
        float, typer.Option("--target-precision", help="Flag predictions below the confidence reaching this precision.")
    ] = 0.95,
    seed: Annotated[int, typer.Option(help="Seed for the split and the model.")] = 0,
    epochs: Annotated[Optional[int], typer.Option(help="Neural models: most epochs (early stopping may end sooner).")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Neural models: products per step.")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Neural models: peak learning rate.")] = None,
    max_length: MaxLength = None,
    image_size: ImageSize = None,
    checkpoint: Checkpoint = None,
    freeze_embeddings: Annotated[
        Optional[bool], typer.Option("--freeze-embeddings", help="bert: keep the embeddings fixed.")
    ] = None,
    freeze_layers: FreezeLayers = None,
    device: Annotated[str, typer.Option(help="auto (a GPU when there is one), cpu or cuda.")] = "auto",
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run from its last checkpoint.")] = False,
    logdir: Annotated[
        # str, not Path: Path("") is ".", and an empty --logdir must be refused, not log into the current folder
        Optional[str], typer.Option("--logdir", help="TensorBoard event files (default MODEL_DIR/tensorboard; inside "
                     "MODEL_DIR only under tensorboard/, the one folder saving keeps).")
    ] = None,
    quiet: Quiet = False,
):
    """Train a categorizer on a labelled catalog and save it with its test report."""
    from prodcat.artifacts import check_logdir_target, check_model_dir_target, user_path
    from prodcat.catalog.fields import resolve_fields
    from prodcat.categorizer import Categorizer

    # Before anything else: training writes checkpoints and logs into OUT, so a
    # folder that saving would refuse must be refused before it gets them.
    check_model_dir_target(out)
    if logdir is not None:
        logdir = user_path(logdir, "--logdir")
        check_logdir_target(logdir, out)
    checkpoints = out / "checkpoints"
    if not resume and _holds_a_checkpoint(checkpoints):
        # A fresh run would delete it: hours of an interrupted run lost to a missing flag.
        raise ConfigError(f"{out} holds the checkpoint of an interrupted run: add --resume to continue it, or "
                          f"delete {checkpoints} to train from the start")
    options = _field_options(text_cols, label_col, label_format, label_sep, label_level, id_cols, encoding,
                             image_col, image_root, markup)
    mapping = resolve_fields(preset, config, **options)
    given = dict(epochs=epochs, batch_size=batch_size, lr=lr, max_length=max_length, image_size=image_size,
                 checkpoint=checkpoint, freeze_embeddings=freeze_embeddings, freeze_layers=freeze_layers)
    params = _model_params(model, parse_params(param), given, members, method)
    clf = Categorizer(
        model=model,
        fields=mapping,
        params=params,
        valid_size=valid_size,
        test_size=test_size,
        seed=seed,
        class_weight=class_weight,
        target_precision=target_precision,
        device=device,
        quiet=quiet,
    )
    # A run trains into MODEL_DIR: TensorBoard logs stay there, checkpoints
    # are dropped once the model is saved (see prodcat.artifacts).
    logdir = logdir or out / "tensorboard"
    footprint = _RunFootprint([out, logdir], checkpoints)
    try:
        clf.fit(data, test_data=test_data, logdir=logdir, checkpoint_dir=checkpoints, resume=resume,
                skip_unlabelled=skip_unlabelled)
        clf.save(out)
    except KeyboardInterrupt:
        if _holds_a_checkpoint(checkpoints):
            raise Interrupted(f"its last checkpoint is in {checkpoints}: run the same command with --resume "
                               "to continue from there") from None
        footprint.undo()
        raise
    except Exception as exc:
        if footprint.wrote_checkpoint():
            # A mistake found late (an ensemble's image member after its text member trained, a full
            # disk at saving) must not cost the training done: the checkpoint is what goes on from it.
            exc.prodcat_hint = (f"the training done so far is kept in {checkpoints}: once that is fixed, add "
                                f"--resume to go on from there (or delete {checkpoints} to start over)")
        elif not _holds_a_checkpoint(checkpoints):
            # Nothing worth resuming: a checkpoint left would refuse the corrected rerun
            # ("add --resume or delete"), and logs of a failed run are no model's.
            footprint.undo()
        raise
    test = clf.metrics_.get("test")
    typer.echo(f"saved {out}")
    if test:
        typer.echo(f"test: {_headline_line(test)}")
        typer.echo(f"report: {out / 'report' / 'report.md'}")


def _holds_a_checkpoint(folder: Path) -> bool:
    from prodcat.artifacts import holds_checkpoint

    return holds_checkpoint(folder)


class _RunFootprint:
    """What a training run adds to the folders it writes into, so that a run that
    ends with no checkpoint to go on from can leave them as they were.

    Only what the run added is removed (files it wrote, folders it made and left
    empty): a model or logs that were there before the run stay.
    """

    def __init__(self, roots: list[Path], checkpoints: Path):
        self.roots, self.checkpoints = roots, checkpoints
        self.before = {path for root in roots for path in self._entries(root)}
        self.made = [folder for root in roots for folder in (root, *root.parents) if not os.path.lexists(folder)]
        self.checkpoints_before = self._checkpoint_states()

    @staticmethod
    def _entries(root: Path) -> list[Path]:
        entries = []
        # os.walk does not follow links: a link the run did not make is not looked into, let alone emptied
        for folder, dirs, files in os.walk(root):
            entries.extend(Path(folder) / name for name in dirs + files)
        return entries

    def _checkpoint_states(self) -> dict[Path, tuple[int, int]]:
        from prodcat.artifacts import CHECKPOINT_STATE_FILE

        states = {}
        for path in self._entries(self.checkpoints):
            if path.name == CHECKPOINT_STATE_FILE and path.is_file():
                stat = path.stat()
                states[path] = (stat.st_size, stat.st_mtime_ns)
        return states

    def wrote_checkpoint(self) -> bool:
        now = self._checkpoint_states()
        return any(self.checkpoints_before.get(path) != state for path, state in now.items())

    def undo(self) -> None:
        added = [path for root in self.roots for path in self._entries(root) if path not in self.before]
        # deepest first, so that a folder the run made is empty when its turn comes
        for path in sorted(set(added) | set(self.made), key=lambda p: len(p.parts), reverse=True):
            try:
                if path.is_dir() and not path.is_symlink():
                    path.rmdir()  # only when empty: never a file the run did not write
                else:
                    path.unlink()
            except OSError:
                pass  # gone already, a folder holding something else, an unwritable place: left as it is


def parse_params(items: list[str] | None, option: str = "--param") -> dict:
    """Model settings from KEY=VALUE strings; a VALUE is JSON where it parses as JSON, text otherwise.

        >>> parse_params(["lr=1e-3", "pooling=last", "max_length=null"])
        {'lr': 0.001, 'pooling': 'last', 'max_length': None}
    """
    params = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{option} needs KEY=VALUE, got {item!r}")
        try:
            params[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            params[key.strip()] = raw
    return params


@app.command()
def evaluate(
    model_dir: Annotated[Path, typer.Argument(help="A model directory from `prodcat train`.")],
    data: Data,
    out: Annotated[
        Path,
        typer.Option("--out", help="Report directory: metrics.json, report.md, plots. A new or empty folder, or an "
                     "earlier report, which is replaced."),
    ],
    text_cols: FileTextCols = None,
    label_col: LabelCol = None,
    label_format: LabelFormat = None,
    label_sep: FileLabelSep = None,
    label_level: Annotated[
        Optional[int],
        typer.Option(
            "--label-level",
            help="Score a path model at its first N levels: true labels and predicted paths are both cut there.",
        ),
    ] = None,
    encoding: FileEncoding = None,
    header: FileHeader = None,
    image_col: ImageCol = None,
    image_root: ImageRoot = None,
    keep_seen: Annotated[
        bool, typer.Option("--keep-seen", help="Also score products whose text the model saw in training.")
    ] = False,
    skip_unlabelled: SkipUnlabelled = False,
    quiet: Quiet = False,
):
    """Score a model on a labelled catalog; field options default to the model's.

    --label-format must be the model's own (it is refused otherwise); a path model
    can be scored at a coarser --label-level, never a deeper one.
    """
    from prodcat.artifacts import check_report_dir_target
    from prodcat.categorizer import Categorizer

    check_report_dir_target(out)  # before loading the model and scoring: a refusal then costs nothing
    clf = Categorizer.load(model_dir, quiet=quiet)
    options = _field_options(text_cols, label_col, label_format, label_sep, label_level, None, encoding,
                             image_col, image_root)
    metrics = clf.evaluate(data, report_dir=out, keep_seen=keep_seen, skip_unlabelled=skip_unlabelled, header=header,
                           **options)
    for name, part in metrics.get("components", {}).items():
        typer.echo(f"  {name}: {_headline_line(part, multi=metrics['label_format'] == 'multi')}")
    if "versus_best_part" in metrics:
        v = metrics["versus_best_part"]
        lo, hi = v["gain_interval"]
        typer.echo(f"  combined vs {v['best_part']}: {v['changed']} of {v['n']} decisions changed "
                   f"({v['fixed']} fixed, {v['broken']} broken), macro_f1 {v['macro_f1_gain']:+.4f} "
                   f"(95% bootstrap [{lo:+.4f}, {hi:+.4f}])")
    typer.echo(_headline_line(metrics))
    typer.echo(f"report: {out / 'report.md'}")


@app.command()
def predict(
    model_dir: Annotated[Path, typer.Argument(help="A model directory from `prodcat train`.")],
    data: Data,
    out: Annotated[
        Path,
        typer.Option("--out", help="Predictions file: .csv, .tsv, .jsonl or .parquet. It holds the model's id "
                     "columns (or a 1-based `row`), then prediction, confidence, needs_review, label_1, prob_1, ...; "
                     "an id column named like one of those is copied as id:NAME (e.g. id:prediction)."),
    ],
    top_k: Annotated[int, typer.Option("--top-k", help="How many ranked labels to write per product.")] = 3,
    chunk_size: Annotated[
        Optional[int],
        typer.Option("--chunk-size", help="Rows per streamed chunk (default 50,000); with --engine ray, rows per "
                     "read chunk and per prediction batch (default 10,000)."),
    ] = None,
    review_out: Annotated[
        Optional[Path], typer.Option("--review-out", help="Also write the rows that need review to this file.")
    ] = None,
    target_precision: Annotated[
        Optional[float], typer.Option("--target-precision", help="Override the model's review precision target.")
    ] = None,
    text_cols: FileTextCols = None,
    id_cols: Annotated[
        Optional[str],
        typer.Option("--id-cols", help="Id columns copied to the predictions (default: the model's)."),
    ] = None,
    encoding: FileEncoding = None,
    header: FileHeader = None,
    engine: Annotated[str, typer.Option(help="local (default) or ray: Ray Data over a file or a folder of files.")] = "local",
    ray_address: Annotated[
        Optional[str], typer.Option("--ray-address", help="An existing Ray cluster (default: a local Ray).")
    ] = None,
    image_col: ImageCol = None,
    image_root: ImageRoot = None,
    excel: Excel = None,
    quiet: Quiet = False,
):
    """Predict every product of a catalog file, streaming, in input order."""
    from prodcat.categorizer import Categorizer

    if chunk_size is not None and chunk_size < 1:
        raise ConfigError(f"--chunk-size must be 1 or more, got {chunk_size}")
    if engine not in ("local", "ray"):
        raise ConfigError(f"--engine must be local or ray, got {engine!r}")
    field_options = {k: v for k, v in dict(text_cols=_columns(text_cols), id_cols=_columns(id_cols),
                                           image_col=image_col, image_root=image_root, encoding=encoding,
                                           header=header).items()
                     if v is not None}
    if engine == "ray":
        from prodcat.scale.ray_predict import predict_with_ray

        if excel is not None:
            raise ConfigError("--excel needs the local engine: predict a file, then open it in Excel")
        # each worker holds a batch's features at a time: --chunk-size is how a user bounds that memory
        batching = {} if chunk_size is None else {"batch_size": chunk_size}
        summary = predict_with_ray(model_dir, data, out, top_k=top_k, ray_address=ray_address,
                                   target_precision=target_precision, review_out=review_out, quiet=quiet,
                                   **batching, **field_options)
        typer.echo(f"wrote {summary['rows']:,} predictions to {out} with Ray ({summary['rows_per_second']:,} products/s)")
        typer.echo(f"{summary['needs_review']:,} need review" + (f": {review_out}" if review_out else ""))
        return
    if ray_address is not None:
        raise ConfigError("--ray-address needs --engine ray")
    if data.expanduser().is_dir():
        raise CatalogError(f"{data} is a folder; the local engine predicts one file: --engine ray predicts a "
                           "folder of files")
    clf = Categorizer.load(model_dir, quiet=quiet)
    chunking = {} if chunk_size is None else {"chunk_size": chunk_size}
    summary = clf.predict_file(data, out, top_k=top_k, review_out=review_out, target_precision=target_precision,
                               excel=excel, **chunking, **field_options)
    typer.echo(f"wrote {summary['rows']:,} predictions to {out} ({summary['rows_per_second']:,} products/s)")
    typer.echo(f"{summary['needs_review']:,} need review" + (f": {review_out}" if review_out else ""))


@app.command()
def inspect(
    data: Data,
    preset: Preset = None,
    config: Config = None,
    text_cols: TextCols = None,
    label_col: LabelCol = None,
    label_format: LabelFormat = None,
    label_sep: LabelSep = None,
    label_level: LabelLevel = None,
    encoding: Encoding = None,
    image_col: ImageCol = None,
    image_root: ImageRoot = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the inspection as JSON.")] = False,
    top: Annotated[int, typer.Option(help="How many classes and examples to list.")] = 10,
):
    """Classes, long tail, duplicates, conflicting labels, empty fields and labels, text lengths, readable images."""
    from rich.console import Console

    from prodcat.catalog.fields import resolve_fields
    from prodcat.catalog.inspect import inspect_catalog, render_inspection
    from prodcat.catalog.load import load_catalog

    if top < 1:
        raise ConfigError(f"--top must be 1 or more, got {top}")
    options = _field_options(text_cols, label_col, label_format, label_sep, label_level, None, encoding,
                             image_col, image_root)
    mapping = resolve_fields(preset, config, **options)
    if not mapping.image_col:  # a catalog of photos alone has no text column
        mapping.require_text()
    # finding empty labels is part of inspecting: reported, not refused
    catalog = load_catalog(data, mapping, with_labels=bool(mapping.label_cols), allow_empty_labels=True)
    report = inspect_catalog(catalog, top=top)
    if as_json:
        _print_json(report)
    else:
        render_inspection(report, Console())


@app.command("label-issues")
def label_issues(
    data: Data,
    out: Annotated[
        Path, typer.Option("--out", help="File of the flagged products, most doubtful first: .csv, .tsv, .jsonl or "
                           ".parquet. It holds the catalog's id columns, row, text, (photo,) label, suggested, "
                           "suggested_probability, label_quality, judged and label_issue.")
    ],
    model: Annotated[str, typer.Option(help="The model that judges each product out of fold.")] = "tfidf-linear",
    preset: Preset = None,
    config: Config = None,
    text_cols: TextCols = None,
    label_col: LabelCol = None,
    label_format: LabelFormat = None,
    label_sep: LabelSep = None,
    label_level: LabelLevel = None,
    id_cols: Annotated[Optional[str], typer.Option("--id-cols", help="Id columns copied to the --out file.")] = None,
    encoding: Encoding = None,
    image_col: ImageCol = None,
    image_root: ImageRoot = None,
    markup: Markup = None,
    members: Members = None,
    method: Method = None,
    param: Annotated[
        Optional[list[str]], typer.Option("--param", help="Model setting KEY=VALUE (JSON value), repeatable.")
    ] = None,
    folds: Annotated[int, typer.Option(help="Parts of the catalog: each is judged by a model trained on the others.")] = 5,
    valid_size: Annotated[float, typer.Option(help="Share of each model's training part held out to calibrate it.")] = 0.1,
    class_weight: ClassWeight = "balanced",
    seed: Annotated[int, typer.Option(help="Seed for the folds and the models.")] = 0,
    device: Annotated[str, typer.Option(help="auto (a GPU when there is one), cpu or cuda.")] = "auto",
    all_products: Annotated[
        bool, typer.Option("--all", help="Write every product, not only the flagged ones (still most doubtful first).")
    ] = False,
    show: Annotated[int, typer.Option(help="How many flagged products to print.")] = 10,
    skip_unlabelled: SkipUnlabelled = False,
    excel: Excel = None,
    quiet: Quiet = False,
):
    """Products whose label is probably wrong: each judged out of fold, then confident learning (cleanlab)."""
    from prodcat.catalog.fields import resolve_fields
    from prodcat.categorizer import Categorizer, check_excel
    from prodcat.label_issues import check_issues_out, worst_first, write_issues

    out_format = check_issues_out(out, data)
    check_excel(excel, [out])
    if show < 0:
        raise ConfigError(f"--show must be 0 or more, got {show}")
    options = _field_options(text_cols, label_col, label_format, label_sep, label_level, id_cols, encoding,
                             image_col, image_root, markup)
    mapping = resolve_fields(preset, config, **options)
    params = _model_params(model, parse_params(param), {}, members, method)
    clf = Categorizer(model=model, fields=mapping, params=params, valid_size=valid_size, seed=seed,
                      class_weight=class_weight, device=device, quiet=quiet)
    table = clf.find_label_issues(data, folds=folds, skip_unlabelled=skip_unlabelled)
    flagged = worst_first(table)
    write_issues(flagged if not all_products else worst_first(table, flagged_only=False), out, out_format,
                 excel=excel)
    not_judged = table.attrs["not_judged"]
    typer.echo(f"{len(flagged):,} of {len(table):,} products are probably mislabeled"
               + (f" ({not_judged:,} not judged: no other product of their class to learn it from, "
                  "or nothing the model reads)"
                  if not_judged else ""))
    for _, row in flagged.head(show).iterrows():
        text = row["text"] if len(row["text"]) <= 60 else row["text"][:57] + "..."
        typer.echo(f"  row {row['row']}: {row['label']!r} -> {row['suggested']!r} "
                   f"(label quality {row['label_quality']:.3f})  {text}")
    typer.echo(f"wrote {out}")


@app.command()
def serve(
    model_dir: Annotated[Path, typer.Argument(help="A model directory from `prodcat train`.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Server processes (each loads the model once).")] = 1,
    max_image_pixels: Annotated[Optional[int], typer.Option(
        help="Photo models: the most pixels one photo a client sends may have (default 16,000,000); "
             "larger ones are refused with a 413 naming the product.")] = None,
    max_request_pixels: Annotated[Optional[int], typer.Option(
        help="Photo models: the most pixels the photos of one request may have together (default 250,000,000).")
    ] = None,
):
    """Serve a model over HTTP (FastAPI): POST /v1/predict, /v1/predict/file, GET /health, /v1/model."""
    from prodcat.serve.server import serve as run_server
    from prodcat.serve.validation import ServeLimits

    chosen = {name: value for name, value in (("max_image_pixels", max_image_pixels),
                                              ("max_request_pixels", max_request_pixels)) if value is not None}
    run_server(model_dir, host=host, port=port, workers=workers, limits=ServeLimits(**chosen) if chosen else None)


@app.command("app")
def web_app(
    model_dir: Annotated[Path, typer.Argument(help="A model directory from `prodcat train`.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8501,
):
    """A web app (Streamlit) to categorize products, review a catalog and see the model's report."""
    from prodcat.app.launch import launch

    launch(model_dir, host=host, port=port)


@app.command()
def export(
    model_dir: Annotated[Path, typer.Argument(help="A model directory from `prodcat train`.")],
    out: Annotated[Path, typer.Option("--out", help="The exported model directory.")],
    format: Annotated[str, typer.Option("--format", help="onnx.")] = "onnx",
    quantize: Annotated[Optional[str], typer.Option(
        help="int8: dynamic int8 quantization of text models (an ensemble's text members; photo models stay fp32)."
    )] = None,
    quiet: Quiet = False,
):
    """Export a neural model (bow, lstm, cnn, transformer, bert, image-cnn, image-resnet, image-pretrained, or an ensemble's neural members) for fast CPU inference; the result is itself a model directory."""
    from prodcat.export import export_model

    exported = export_model(model_dir, out, format=format, quantize=quantize, quiet=quiet)
    typer.echo(f"exported {model_dir} to {exported}")


@app.command()
def tune(
    data: Data,
    out: Annotated[Path, typer.Option("--out", help="Model directory for the best model, with tuning/ trial logs.")],
    model: Annotated[str, typer.Option(help="Registered model name (see `prodcat models`).")] = "tfidf-linear",
    trials: Annotated[Optional[int], typer.Option(help="Most trials (default 20 when no --timeout is given).")] = None,
    timeout: Annotated[
        Optional[float], typer.Option(help="Start no new trial after this many seconds.")
    ] = None,
    preset: Preset = None,
    config: Config = None,
    text_cols: TextCols = None,
    label_col: LabelCol = None,
    label_format: LabelFormat = None,
    label_sep: LabelSep = None,
    label_level: LabelLevel = None,
    id_cols: IdCols = None,
    encoding: Encoding = None,
    image_col: ImageCol = None,
    image_root: ImageRoot = None,
    markup: Markup = None,
    members: Members = None,
    method: Method = None,
    param: Annotated[
        Optional[list[str]], typer.Option("--param", help="Setting KEY=VALUE fixed for every trial, repeatable.")
    ] = None,
    valid_size: Annotated[float, typer.Option(help="Share held out to score the trials on.")] = 0.1,
    test_size: Annotated[float, typer.Option(help="Share held out for the best model's test report.")] = 0.1,
    class_weight: Annotated[
        Optional[str],
        typer.Option("--class-weight", help="'balanced' or 'none' for every trial (default: searched where the "
                     "model's space searches it, as tfidf-linear's does, else 'balanced')."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for the split, the models and the sampler.")] = 0,
    epochs: Annotated[Optional[int], typer.Option(help="Neural models: most epochs per trial.")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Neural models: products per step.")] = None,
    max_length: MaxLength = None,
    image_size: ImageSize = None,
    checkpoint: Checkpoint = None,
    device: Annotated[str, typer.Option(help="auto (a GPU when there is one), cpu or cuda.")] = "auto",
    quiet: Quiet = False,
):
    """Search a model's settings with Optuna on the validation split; save the best model."""
    from prodcat.catalog.fields import resolve_fields
    from prodcat.tuning import TRIAL_COLUMNS, tune as run_tune

    options = _field_options(text_cols, label_col, label_format, label_sep, label_level, id_cols, encoding,
                             image_col, image_root, markup)
    mapping = resolve_fields(preset, config, **options)
    given = dict(epochs=epochs, batch_size=batch_size, max_length=max_length, image_size=image_size,
                 checkpoint=checkpoint)
    params = _model_params(model, parse_params(param), given, members, method)
    header_shown = []

    def show(row: dict) -> None:
        # the trial table goes to stdout as trials finish: it is the result, not progress
        if not header_shown:
            typer.echo("  ".join(TRIAL_COLUMNS))
            header_shown.append(True)
        typer.echo("  ".join(str(row[c]) for c in TRIAL_COLUMNS))

    chosen = {} if class_weight is None else {"class_weight": class_weight}
    _, summary = run_tune(
        data, model=model, trials=trials, timeout=timeout, seed=seed, params=params, out=out, on_trial=show,
        quiet=quiet, fields=mapping, valid_size=valid_size, test_size=test_size, device=device, **chosen,
    )
    best = summary["best"]
    typer.echo(f"best trial {best['trial']} of {summary['trials']}: validation {_headline_line(best['validation'])}")
    if best["test"]:
        typer.echo(f"test: {_headline_line(best['test'])}")
    typer.echo(f"saved {out}  (trials: {out / 'tuning' / 'trials.csv'}, best: {out / 'tuning' / 'best.json'})")


@app.command()
def leaderboard(
    data: Data,
    models: Annotated[
        str, typer.Option("--models", help="Registered model names, comma-separated.")
    ] = "tfidf-linear,bow",
    out: Annotated[
        Optional[Path], typer.Option("--out", help="Save each model to OUT/NAME (default: not kept).")
    ] = None,
    preset: Preset = None,
    config: Config = None,
    text_cols: TextCols = None,
    label_col: LabelCol = None,
    label_format: LabelFormat = None,
    label_sep: LabelSep = None,
    label_level: LabelLevel = None,
    id_cols: IdCols = None,
    encoding: Encoding = None,
    image_col: ImageCol = None,
    image_root: ImageRoot = None,
    markup: Markup = None,
    members: Members = None,
    method: Method = None,
    param: Annotated[
        Optional[list[str]],
        typer.Option("--param", help="KEY=VALUE for every model that has KEY, or NAME.KEY=VALUE for one; repeatable."),
    ] = None,
    valid_size: Annotated[float, typer.Option(help="Share held out for calibration and tuning.")] = 0.1,
    test_size: Annotated[float, typer.Option(help="Share held out to score every model on.")] = 0.1,
    class_weight: ClassWeight = "balanced",
    seed: Annotated[int, typer.Option(help="Seed for the split (shared by every model) and the models.")] = 0,
    epochs: Annotated[Optional[int], typer.Option(help="Neural models: most epochs.")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Neural models: products per step.")] = None,
    max_length: MaxLength = None,
    image_size: ImageSize = None,
    checkpoint: Checkpoint = None,
    device: Annotated[str, typer.Option(help="auto (a GPU when there is one), cpu or cuda.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the table as JSON.")] = False,
    quiet: Quiet = False,
):
    """Train several models on one split and compare them: macro-F1, accuracy, speed, size."""
    from prodcat.catalog.fields import resolve_fields
    from prodcat.leaderboard import leaderboard as run_leaderboard, model_settings, render, split_shared_params

    names = _columns(models, "--models")
    options = _field_options(text_cols, label_col, label_format, label_sep, label_level, id_cols, encoding,
                             image_col, image_root, markup)
    mapping = resolve_fields(preset, config, **options)
    shared, own = {}, {}
    ensemble = _ensemble_options(names, members, method)
    if ensemble:
        own["ensemble"] = dict(ensemble)
    for key, value in parse_params(param).items():
        model_name, dot, setting = key.partition(".")
        if dot and model_name in names:
            own.setdefault(model_name, {})[setting] = value
        else:
            shared[key] = value
    given = {k: v for k, v in dict(epochs=epochs, batch_size=batch_size, max_length=max_length, image_size=image_size,
                                   checkpoint=checkpoint).items() if v is not None}
    # As with train, a named option also goes to the ensemble's members that have it.
    members_of_ensemble = _ensemble_members(own.get("ensemble", {})) if "ensemble" in names and given else []
    _check_named_options(given, names + members_of_ensemble, f"none of {', '.join(names)} takes it")
    to_members = {k: v for k, v in given.items() if any(k in model_settings(m) for m in members_of_ensemble)}
    if to_members:
        # a checkpoint for a listed bert and an image-pretrained member would be read two ways
        split_shared_params(list(dict.fromkeys([n for n in names if n != "ensemble"] + members_of_ensemble)), given)
        own["ensemble"] = _with_member_options(own.get("ensemble", {}), to_members)
    shared.update({k: v for k, v in given.items() if k not in to_members or any(k in model_settings(n) for n in names)})
    params_by_model = {name: {**p, **own.get(name, {})} for name, p in split_shared_params(names, shared).items()}

    def show(board) -> None:
        if as_json:
            _print_json(json.loads(board.to_json(orient="records")))
        else:
            typer.echo(render(board))

    try:
        board = run_leaderboard(
            data, names, params_by_model=params_by_model, seed=seed, out=out, quiet=quiet, fields=mapping,
            valid_size=valid_size, test_size=test_size, class_weight=class_weight, device=device,
        )
    except Interrupted as stop:
        show(stop.result)  # the models finished before Ctrl-C; the exit status says the board is not whole
        raise
    show(board)
    failed = board.attrs.get("failed", {})
    for name, message in failed.items():
        typer.echo(f"prodcat: error: {name} failed and is not on the board: {message}", err=True)
    if failed:
        raise typer.Exit(1)  # a script must not take a partial board for a complete one


@app.command()
def models():
    """List the registered model names."""
    from prodcat.models import available_models

    for name in available_models():
        typer.echo(name)


def _version(value: bool):
    if value:
        typer.echo(f"prodcat {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
):
    pass


#: exit status of a run stopped by SIGTERM (128 + 15, as a shell reports it)
TERMINATED_EXIT = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the run is, so that it stops as after Ctrl-C: output files
    unwritten rather than half-written, the temporary ones removed, a checkpoint offered."""


def _on_sigterm(signum: int, frame) -> None:
    raise Terminated()


def _say_interrupted(exc: BaseException, terminated: bool) -> None:
    hint = f"; {exc}" if isinstance(exc, Interrupted) else ""
    typer.echo(f"prodcat: {'stopped by SIGTERM' if terminated else 'interrupted'}{hint}", err=True)


def _was_terminated(exc: BaseException | None) -> bool:
    """Whether SIGTERM started what `exc` ends (an Interrupted raised while handling it included)."""
    while exc is not None:
        if isinstance(exc, Terminated):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _hint(exc: BaseException) -> str:
    """What a command adds to an error about what it kept (`prodcat_hint`), on the same line."""
    hint = getattr(exc, "prodcat_hint", None)
    return f"; {hint}" if hint else ""


def main(argv: list[str] | None = None) -> None:
    # A job scheduler or `kill` stops a run with SIGTERM: by default Python dies at once,
    # leaving hidden temporary files beside the output and no word of a checkpoint.
    previous = (signal.signal(signal.SIGTERM, _on_sigterm)
                if threading.current_thread() is threading.main_thread() else None)
    try:
        _main(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str] | None) -> None:
    try:
        app(args=argv, prog_name="prodcat")
    except ProdcatError as exc:
        typer.echo(f"prodcat: error: {exc}{_hint(exc)}", err=True)
        sys.exit(exc.exit_code)
    except OSError as exc:
        # Unwritable output folders, full disks: the user's environment, not a bug.
        where = f": {exc.filename}" if exc.filename else ""
        typer.echo(f"prodcat: error: {exc.strerror or exc}{where}{_hint(exc)}", err=True)
        sys.exit(1)
    except KeyboardInterrupt as exc:
        terminated = _was_terminated(exc)
        _say_interrupted(exc, terminated)
        sys.exit(TERMINATED_EXIT if terminated else 130)
    except SystemExit as exc:
        # typer turns Ctrl-C into a silent exit 130 (Exit raised from the KeyboardInterrupt)
        interrupt = getattr(exc.__context__, "__cause__", None)
        if isinstance(interrupt, KeyboardInterrupt):
            terminated = _was_terminated(interrupt)
            _say_interrupted(interrupt, terminated)
            if terminated:
                sys.exit(TERMINATED_EXIT)
        raise


if __name__ == "__main__":
    main()
