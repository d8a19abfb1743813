"""Which columns of a user's catalog hold the text, the labels, the ids.

A `FieldMapping` is resolved once from (in rising priority) a preset, a config
file and explicit options, validated before any work starts, and saved with
the model so `evaluate` and `predict` read new files the same way.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from numbers import Integral
from pathlib import Path
from typing import Any, Sequence

from prodcat.errors import ConfigError

LABEL_FORMATS = ("single", "multi", "path")

# What a CSV / TSV / JSONL file is read as unless told otherwise.
DEFAULT_ENCODING = "utf-8"

# Joins a product's text fields into the one text that bag-of-words models
# read. A visible separator keeps a title's last word and a description's first
# word from fusing into one character n-gram.
TEXT_JOINER = " | "


@dataclass(frozen=True)
class FieldMapping:
    """How to read one catalog layout.

    text_cols: columns joined (in this order, empty ones skipped) into the text;
        none for a catalog of photos alone, read by a model that reads only photos.
    label_cols: the label column; several columns form a path, top level first.
    label_format: "single", "multi" (several labels per product) or "path".
    label_sep: separator inside a label cell (None: detected from the data).
    label_level: for paths, keep only the first N levels.
    id_cols: columns copied to prediction files to identify each product.
    image_col: the column holding each product's photo: a file name, a
        relative or absolute path, or an http(s) URL (kept as given; prodcat
        never fetches it, and counts it as unusable). An empty cell: no photo.
    image_template: turns a cell into a file name, "{}" standing for the
        cell: "{}.jpg" maps the id 1163 to 1163.jpg.
    image_root: the folder relative image paths start from. Kept as the user
        wrote it (a model directory never holds a training machine's absolute
        path), and resolved each time a catalog is read:
          - an absolute image_root is used as is;
          - a relative one is taken from the catalog file's folder when that
            folder holds it (the fashion preset's "images" beside
            styles.csv), else from the current directory;
          - with no image_root, relative paths start from the catalog file's
            folder (for a DataFrame or dicts: the current directory).
        So `evaluate` and `predict` on another file look beside THAT file.
    header: False for files without a header row; columns are then named by
        `column_names` (or "0", "1", ...).
    file_format: "csv", "tsv", "jsonl" or "parquet"; None means from the suffix.
    encoding: the text encoding of the file being read. It belongs to one
        file, not to a layout: a model does not keep the one it was trained
        with, and later files are read as UTF-8 unless told otherwise.
    strip_markup: which text columns the model reads without HTML markup
        (`prodcat.catalog.markup`): True (all), False (none), a list of
        columns, or None: decided when the model is trained (the columns
        holding markup in 1% of their cells or more, so a title's "<NEW>"
        stays when only the description is HTML) and saved as the list, or
        False. The catalog keeps its texts as written; only what the model
        reads changes. A model saved before this option reads texts as written.
    """

    text_cols: tuple[str, ...] = ()
    label_cols: tuple[str, ...] = ()
    label_format: str = "single"
    label_sep: str | None = None
    label_level: int | None = None
    id_cols: tuple[str, ...] = ()
    image_col: str | None = None
    image_root: str | None = None
    image_template: str | None = None
    header: bool = True
    column_names: tuple[str, ...] | None = None
    file_format: str | None = None
    encoding: str = DEFAULT_ENCODING
    strip_markup: bool | tuple[str, ...] | None = None

    def __post_init__(self):
        # Column names are text, as a file's header and a saved manifest hold
        # them: a DataFrame's column 0 is read as "0".
        for name in ("text_cols", "label_cols", "id_cols", "column_names"):
            value = getattr(self, name)
            if isinstance(value, (str, int)) and not isinstance(value, bool):
                object.__setattr__(self, name, (str(value),))
            elif value is not None:
                # bytes would be read as a list of numbers, b"title" as columns "116", "105", ...
                names = None if isinstance(value, (bytes, dict)) else _column_names(value)
                if names is None or not all(isinstance(v, str) and v for v in names):
                    raise ConfigError(f"{name} must be a column name or a list of column names, got {value!r}")
                object.__setattr__(self, name, names)
        if self.label_format not in LABEL_FORMATS:
            raise ConfigError(
                f"unknown label format {self.label_format!r}; use one of {', '.join(LABEL_FORMATS)}"
            )
        if self.label_level is not None and (
            not isinstance(self.label_level, Integral) or isinstance(self.label_level, bool) or self.label_level < 1
        ):
            raise ConfigError(f"label level must be 1 or more (a whole number), got {self.label_level!r}")
        if self.label_sep is not None and not isinstance(self.label_sep, str):
            raise ConfigError(f"label separator must be a string, got {self.label_sep!r}")
        if self.label_level is not None and self.label_format != "path":
            raise ConfigError("--label-level applies to path labels only (--label-format path)")
        if len(self.label_cols) > 1 and self.label_format != "path":
            raise ConfigError("several label columns form a path: add --label-format path")
        if self.label_sep == "":
            raise ConfigError("label separator must not be empty")
        for name in ("image_col", "image_root", "image_template"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ConfigError(f"{name} must be a non-empty string, got {value!r}")
        if self.image_template is not None:
            check_image_template(self.image_template)
        if not isinstance(self.header, bool):
            # header="no" is a true string: the file's first row was read as its column names, unsaid
            raise ConfigError(f"header must be true or false, got {self.header!r}")
        markup = self.strip_markup
        if isinstance(markup, (list, tuple)) and all(isinstance(c, (str, int)) and not isinstance(c, bool)
                                                     for c in markup):
            object.__setattr__(self, "strip_markup", tuple(_column_name(c) for c in markup))
        elif markup is not None and not isinstance(markup, bool):
            raise ConfigError(f"strip_markup must be true, false or a list of text columns, got {markup!r}")

    @property
    def label_col(self) -> str | None:
        return self.label_cols[0] if len(self.label_cols) == 1 else None

    def require_text(self) -> FieldMapping:
        if not self.text_cols:
            raise ConfigError("no text column: pass --text-cols (e.g. title,description) or a --preset")
        return self

    def require_labels(self) -> FieldMapping:
        if not self.label_cols:
            raise ConfigError("no label column: pass --label-col or a --preset")
        # A model that reads the label among its text scores perfectly on every split and learns nothing.
        both = [c for c in self.label_cols if c in self.text_cols]
        if both:
            raise ConfigError(f"column {both[0]!r} is both a text and a label column: the model would read each "
                              "product's answer; leave it out of --text-cols")
        return self

    def columns(self, with_labels: bool = True) -> list[str]:
        """Every column this mapping reads, each once, in a stable order."""
        wanted = list(self.id_cols) + list(self.text_cols)
        if with_labels:
            wanted += list(self.label_cols)
        if self.image_col:
            wanted.append(self.image_col)
        return list(dict.fromkeys(wanted))

    def read_options(self) -> dict[str, Any]:
        """How the catalog readers must read files of this layout (keyword arguments)."""
        return dict(
            file_format=self.file_format,
            header=self.header,
            column_names=self.column_names,
            encoding=self.encoding,
        )

    def join_text(self, values: list[str]) -> str:
        return join_text(values)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FieldMapping:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown field option(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**data)

    def for_model(self) -> FieldMapping:
        """This mapping as a model keeps it: without the training file's own encoding."""
        return replace(self, encoding=DEFAULT_ENCODING)

    def with_options(self, **options: Any) -> FieldMapping:
        """This mapping with every option that is not None replaced."""
        given = {k: v for k, v in options.items() if v is not None}
        return replace(self, **given) if given else self


def join_text(values: Sequence[str]) -> str:
    """A product's text fields as the one text bag-of-words models read (empty ones skipped)."""
    return TEXT_JOINER.join(v.strip() for v in values if v and v.strip())


def _column_name(value: Any) -> Any:
    """A column name as text; anything else is left for the checks to refuse."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _column_names(value: Any) -> tuple[Any, ...] | None:
    """Column names as text, from any iterable (None: not one, e.g. a number)."""
    try:
        return tuple(_column_name(v) for v in value)
    except TypeError:
        return None


def check_image_template(template: str) -> None:
    """A ConfigError unless `template` has exactly one "{}" for the cell value."""
    try:
        filled = template.format("\0")
    except (AttributeError, IndexError, KeyError, ValueError):  # not a str, "{name}", "{1}", "{"
        filled = None
    if filled is None or filled.count("\0") != 1:
        raise ConfigError(
            f"image template {template!r} must hold one {{}} where the cell value goes, e.g. '{{}}.jpg'"
        )


# Short names for options, as a user writes them in a config file.
_CONFIG_ALIASES = {
    "text": "text_cols",
    "label": "label_cols",
    "label_col": "label_cols",
    "id": "id_cols",
    "id_col": "id_cols",
    "image": "image_col",
    "format": "file_format",
}


PRESETS: dict[str, FieldMapping] = {
    # Myntra "Fashion Product Images": the three category columns form a path.
    "fashion": FieldMapping(
        text_cols=("productDisplayName",),
        label_cols=("masterCategory", "subCategory", "articleType"),
        label_format="path",
        id_cols=("id",),
        image_col="id",
        image_root="images",
        image_template="{}.jpg",
    ),
    # Flipkart sample: a JSON-ish list holding one ">>" path. The deepest
    # levels are mostly product names, so two levels is the useful default.
    "flipkart": FieldMapping(
        text_cols=("product_name", "description"),
        label_cols=("product_category_tree",),
        label_format="path",
        label_sep=">>",
        label_level=2,
        id_cols=("uniq_id",),
        image_col="image",
        image_root="images",
    ),
    # Kaggle "E-commerce Text Classification": no header; label, then text.
    "kaggle-ecommerce": FieldMapping(
        text_cols=("text",),
        label_cols=("label",),
        label_format="single",
        header=False,
        column_names=("label", "text"),
        file_format="csv",
    ),
}


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a field config (TOML or JSON) into FieldMapping keyword arguments."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not a valid {'JSON' if path.suffix.lower() == '.json' else 'TOML'} file ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a table of field options")
    data = dict(data.get("fields", data))
    options = {}
    for key, value in data.items():
        options[_CONFIG_ALIASES.get(key, key)] = value
    return options


def resolve_fields(
    preset: str | None = None,
    config: str | Path | None = None,
    base: FieldMapping | None = None,
    **options: Any,
) -> FieldMapping:
    """Merge base/preset < config file < explicit options into one mapping."""
    if base is not None and not isinstance(base, FieldMapping):
        # a dict of options read as a mapping failed deep inside, on its missing to_dict
        raise ConfigError(f"fields must be a FieldMapping, e.g. FieldMapping(text_cols=...), got a {type(base).__name__}")
    mapping = base or FieldMapping()
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; presets: {', '.join(sorted(PRESETS))}")
        mapping = PRESETS[preset]
    merged = {}
    if config is not None:
        merged.update(load_config_file(config))
    merged.update({k: v for k, v in options.items() if v is not None})
    try:
        data = {**mapping.to_dict(), **merged}
        # A path needs no level cut-off when the user switches format away from it.
        if data.get("label_format") != "path":
            data["label_level"] = None if "label_level" not in merged else data["label_level"]
        mapping = FieldMapping.from_dict(data)
    except TypeError as exc:  # a wrong value type in a config file
        raise ConfigError(f"invalid field option: {exc}") from None
    # Refused only where the user gave it: `--label-sep '|'` without --label-format multi would learn
    # "a|b" as one class, silently; a preset's separator or a saved model's mapping is no such mistake.
    if merged.get("label_sep") is not None and mapping.label_format == "single":
        raise ConfigError("--label-sep applies to multi-label and path labels (--label-format multi or path)")
    return mapping
