"""Read a catalog file (CSV, TSV, JSON Lines, Parquet) as a table of strings.

Every reader here hands back the same thing whatever the format: a
`pandas.DataFrame` whose every value is a Python `str` ("" for a missing
value), so an id like "007" never turns into the number 7 and a label list
written as JSON survives as the text '["a", "b"]'. Anything wrong with the
file becomes one `CatalogError` (or `ColumnError`) line naming the file, so
the CLI can print it instead of a pandas or pyarrow traceback.

>>> from prodcat.catalog.readers import read_columns, read_table, iter_table
>>> read_columns("styles.csv")[:3]                      # doctest: +SKIP
['id', 'gender', 'masterCategory']
>>> read_table("styles.csv", ["id", "productDisplayName"]).iloc[0].tolist()  # doctest: +SKIP
['15970', 'Turtle Check Men Navy Blue Shirt']
>>> for chunk in iter_table("big.csv", ["title"], chunk_size=50_000):  # doctest: +SKIP
...     ...
"""

from __future__ import annotations

import bz2
import codecs
import csv
import difflib
import gzip
import io
import json
import lzma
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import pandas as pd

from prodcat.errors import CatalogError, ColumnError, ConfigError, EmptyCatalogError

SUPPORTED_FORMATS = ("csv", "tsv", "jsonl", "parquet")

_SUFFIX_FORMATS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}

# Compression pandas (and we, for JSON Lines) undo by suffix.
_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".xz": "xz"}

_FORMAT_NAMES = {"csv": "CSV", "tsv": "TSV", "jsonl": "JSON Lines", "parquet": "Parquet"}

# Enough to judge the format, the separator and the first records without
# reading a large file; only this much is ever read twice.
_HEAD_BYTES = 256 * 1024
_SNIFF_BYTES = 8 * 1024

# The line Excel may write above the header to say which separator the file uses.
_EXCEL_SEPARATOR_LINE = re.compile(r'"?sep=.?"?[,;\t]*', re.IGNORECASE)

# How many JSON Lines records `read_columns` looks at for their keys.
_JSONL_KEY_SAMPLE = 1000

# How deep into nested JSON objects and Parquet structs fields get a dotted name ("a.b.c.d").
_NESTED_DEPTH = 4

# read_table reads in chunks this big; bigger than the iter_table default
# because the whole table is kept anyway.
_READ_ALL_CHUNK = 200_000

# (magic bytes, what it looks like, what to do about it)
_MAGIC = (
    (b"PAR1", "Parquet data", "pass --format parquet or name it .parquet"),
    (b"PK\x03\x04", "a ZIP archive, e.g. an Excel .xlsx workbook", "unzip it, or save the sheet as CSV"),
    (b"\xd0\xcf\x11\xe0", "an old Excel .xls / OLE document", "save the sheet as CSV"),
    (b"\x1f\x8b", "gzip-compressed data", "name it with a .gz suffix (e.g. products.csv.gz) so it is decompressed"),
    (b"BZh", "bzip2-compressed data", "name it with a .bz2 suffix so it is decompressed"),
    (b"\xfd7zXZ\x00", "xz-compressed data", "name it with a .xz suffix so it is decompressed"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed data", "name it with a .zst suffix so it is decompressed"),
    (b"\x89PNG", "a PNG image", "pass the catalog file, not an image"),
    (b"\xff\xd8\xff", "a JPEG image", "pass the catalog file, not an image"),
    (b"%PDF", "a PDF document", "export the catalog as CSV"),
)

_INDEX_COLUMN = re.compile(r"__index_level_\d+__")
_PANDAS_LINE = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_PANDAS_EOF = re.compile(r"EOF inside string starting at row (\d+)")


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def detect_format(path: str | Path, declared: str | None = None) -> str:
    """The format of a catalog file: one of SUPPORTED_FORMATS.

    `declared` wins when given. Otherwise the suffix decides (after a
    trailing .gz/.bz2/.zst/.xz), and a file with an unknown suffix is sniffed:
    Parquet magic, a first character "{" (JSON Lines), else CSV.

    >>> detect_format("products.csv.gz")
    'csv'
    >>> detect_format("export.dat", declared="tsv")
    'tsv'
    """
    if declared is not None:
        fmt = str(declared).strip().lower().lstrip(".")
        if fmt not in SUPPORTED_FORMATS:
            raise ConfigError(f"unknown file format {declared!r}; use one of {', '.join(SUPPORTED_FORMATS)}")
        return fmt
    path = Path(path)
    suffix, _compression = _split_compression(path)
    if suffix in _SUFFIX_FORMATS:
        return _SUFFIX_FORMATS[suffix]
    _check_file(path)
    head = _read_head(path, _compression, _SNIFF_BYTES)
    if head.startswith(b"PAR1"):
        return "parquet"
    text = head.lstrip(codecs.BOM_UTF8).lstrip()
    if text.startswith(b"{"):
        return "jsonl"
    return "csv"


def read_columns(
    path: str | Path,
    *,
    file_format: str | None = None,
    header: bool = True,
    column_names: Sequence[str] | None = None,
    encoding: str = "utf-8",
    wanted: Sequence[str] = (),
) -> list[str]:
    """The column names of a catalog file, read cheaply.

    CSV/TSV: the header line (or "0", "1", ... / `column_names` when
    header=False); JSON Lines: the keys of the first 1,000 records, in order of
    appearance, or of every record when one of `wanted` is not among those
    (a key left out of records where it is empty may first appear later, and
    deciding it is missing would drop it from every record); Parquet: the schema.

    >>> read_columns("styles.csv")[:2]                       # doctest: +SKIP
    ['id', 'gender']
    """
    source = _Source.open(path, file_format, header, column_names, encoding)
    names = source.names()
    if source.format == "jsonl" and any(str(c) not in names for c in wanted):
        source._jsonl_keys(None)
        names = source.names()
    return names


def read_table(
    path: str | Path,
    columns: Sequence[str] | None = None,
    *,
    file_format: str | None = None,
    header: bool = True,
    column_names: Sequence[str] | None = None,
    encoding: str = "utf-8",
) -> pd.DataFrame:
    """The whole file as strings: only `columns` (all when None), in that order.

    Every value is a Python str; a missing value is "". Numbers keep the text
    they were written with ("007", "15970"); JSON Lines/Parquet lists and
    dicts become JSON text. The index is a RangeIndex of 0-based row numbers.
    A column named twice in `columns` is returned once.

    >>> read_table("styles.csv", ["id", "articleType"]).head(1)  # doctest: +SKIP
          id articleType
    0  15970      Shirts
    """
    chunks = list(
        iter_table(
            path,
            columns,
            chunk_size=_READ_ALL_CHUNK,
            file_format=file_format,
            header=header,
            column_names=column_names,
            encoding=encoding,
        )
    )
    frame = chunks[0] if len(chunks) == 1 else pd.concat(chunks, copy=False)
    frame.index = pd.RangeIndex(len(frame))
    return frame


def iter_table(
    path: str | Path,
    columns: Sequence[str] | None = None,
    *,
    chunk_size: int = 50_000,
    file_format: str | None = None,
    header: bool = True,
    column_names: Sequence[str] | None = None,
    encoding: str = "utf-8",
) -> Iterator[pd.DataFrame]:
    """`read_table`, streamed: frames of at most `chunk_size` rows, in file order.

    Each frame's index continues the row numbering (the second chunk starts
    at `chunk_size`), so a file of millions of rows never sits in memory at
    once. The file, format and columns are checked when this is called; a
    fault further into the file is raised while iterating.

    >>> for chunk in iter_table("big.csv", ["title"], chunk_size=2):  # doctest: +SKIP
    ...     print(chunk.index)
    RangeIndex(start=0, stop=2, step=1)
    RangeIndex(start=2, stop=4, step=1)
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ConfigError(f"chunk size must be a whole number of rows, 1 or more; got {chunk_size!r}")
    source = _Source.open(path, file_format, header, column_names, encoding)
    wanted = source.select(columns)
    return source.chunks(wanted, chunk_size)


# --------------------------------------------------------------------------
# One opened catalog file
# --------------------------------------------------------------------------


class _Source:
    """A checked catalog file: its format, how to read it and its columns."""

    def __init__(self, path: Path, fmt: str, compression: str | None, encoding: str):
        self.path = path
        self.format = fmt
        self.compression = compression
        self.encoding = encoding  # as handed to decoders ("utf-8-sig" for utf-8)
        self.header = True
        self.column_names: tuple[str, ...] | None = None
        self.sep = ","
        self.columns: list[str] = []
        self.csv_names: list[str] | None = None  # names passed to pandas, or None for its own header
        self.repeated: dict[str, int] = {}  # header names given to several columns, and how many
        self.json_array = False
        #: fields inside nested objects (JSON) or structs (Parquet), named by their dotted path
        #: ("info.title"), and the keys leading to each
        self.nested: dict[str, tuple[str, ...]] = {}

    @classmethod
    def open(
        cls,
        path: str | Path,
        file_format: str | None,
        header: bool,
        column_names: Sequence[str] | None,
        encoding: str,
    ) -> _Source:
        path = Path(path).expanduser()
        encoding = _check_encoding(encoding)
        names = _check_column_names(column_names)
        _check_file(path)
        fmt = detect_format(path, file_format)
        _suffix, compression = _split_compression(path)
        source = cls(path, fmt, compression, encoding)
        source.header = bool(header)
        source.column_names = names
        if fmt == "parquet":
            source._open_parquet()
        else:
            head, complete = source._checked_head()
            if fmt == "jsonl":
                source._open_jsonl(head)
            else:
                source._open_csv(head, complete)
        return source

    # ---- checks on the raw bytes ------------------------------------------

    def _checked_head(self) -> tuple[str, bool]:
        """The decoded start of a text file, after the empty/binary/encoding checks."""
        raw = _read_head(self.path, self.compression, _HEAD_BYTES + 1)
        complete = len(raw) <= _HEAD_BYTES
        raw = raw[:_HEAD_BYTES]
        if not raw.lstrip(codecs.BOM_UTF8).strip() and complete:
            raise EmptyCatalogError(f"{self.path} is empty")
        kind = _FORMAT_NAMES[self.format]
        sniff = raw[:_SNIFF_BYTES]
        for magic, what, hint in _MAGIC:
            if sniff.startswith(magic):
                raise CatalogError(f"{self.path} is not a text {kind} file (looks like {what}); {hint}")
        wide = _is_wide_encoding(self.encoding)
        if not wide and sniff.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise CatalogError(
                f"{self.path} is UTF-16 text, not {_encoding_label(self.encoding)}; "
                "re-save it as UTF-8 or pass --encoding utf-16"
            )
        if not wide and b"\x00" in sniff:
            raise CatalogError(
                f"{self.path} is not a text {kind} file (looks like binary data: it holds NUL bytes); "
                "export the catalog as CSV, TSV or JSON Lines"
            )
        decoder = codecs.getincrementaldecoder(self.encoding)()
        try:
            text = decoder.decode(raw, final=complete)
        except UnicodeError:  # a plain UnicodeError too: utf-16 without a byte-order mark, punycode
            raise self._decode_error() from None
        return text, complete

    def _decode_error(self) -> CatalogError:
        """The not-UTF-8 error, with the first bad byte and its line.

        Only called after a decode failed, so good files never pay for the scan.
        """
        found = _find_bad_byte(self.path, self.compression, self.encoding)
        where = f": byte 0x{found[1]:02X} at line {found[0]}" if found else ""
        if _is_utf8(self.encoding):
            # cp1252 (Excel on Windows) reads every latin-1 letter the same, and its quotes, dashes and euro
            # sign too, where latin-1 would make them invisible control characters.
            return CatalogError(
                f"{self.path} is not UTF-8 text{where}; re-save it as UTF-8 or pass --encoding cp1252"
            )
        return CatalogError(
            f"{self.path} is not valid {self.encoding} text{where}; pass its real encoding with --encoding"
        )

    # ---- CSV / TSV ----------------------------------------------------------

    def _open_csv(self, head: str, complete: bool) -> None:
        first = head.lstrip("\ufeff").split("\n", 1)[0].rstrip("\r")
        if _EXCEL_SEPARATOR_LINE.fullmatch(first):
            # Read as the header, it made every column name wrong ("sep=", "Unnamed: 1", ...).
            raise CatalogError(f"{self.path}: its first line {first!r} is Excel's note of the separator, not a "
                               "header; delete that line, or save the sheet again as CSV UTF-8")
        self.sep = "\t" if self.format == "tsv" else _sniff_separator(head, self.header)
        records = _first_records(head, self.sep, complete)
        if self.header:
            try:
                file_names = [str(c) for c in self._read_csv(header=0, nrows=0).columns]
            except CatalogError:
                raise
            except Exception as exc:  # noqa: BLE001 - any pandas failure is a bad file
                raise self._csv_error(exc) from None
            if not file_names:
                raise EmptyCatalogError(f"{self.path} is empty")
            # Rows with more fields than the header (a trailing separator on
            # every row, a header short of names) would make pandas take the
            # first column as the index or silently drop the last one; name the
            # extra columns instead. A lone long first row is a malformed row.
            width = max(len(file_names), len(records[1]) if len(records) > 1 else 0)
            if width > len(file_names):
                extra = records[1][len(file_names):]
                lone = len(records) > 2 and len(records[2]) <= len(file_names)
                if any(field.strip() for field in extra) and lone:
                    raise CatalogError(
                        f"{self.path}: malformed {_FORMAT_NAMES[self.format]} at line 2: expected "
                        f"{len(file_names)} fields, saw {width}; a field holding the separator must be quoted"
                    )
            names = _unpadded(file_names) + [str(i) for i in range(len(file_names), width)]
            # pandas names a repeated header name's later columns NAME.1, ...:
            # reading NAME would then take the first one without a word.
            written = records[0] if records and len(records[0]) == len(file_names) else file_names
            written = [name.strip() or name for name in written]
            if self.column_names:
                given = list(self.column_names[:width])
                names = given + names[len(given):]
                written = given + written[len(given):]
            self.repeated = _repeated(written)
            self.csv_names = names if (names != file_names) else None
        else:
            if not records:
                # Fall back to pandas for a first record longer than the head.
                try:
                    width = self._read_csv(header=None, nrows=1).shape[1]
                except Exception as exc:  # noqa: BLE001
                    raise self._csv_error(exc) from None
            else:
                width = len(records[0])
            given = list(self.column_names or ())[:width]
            names = given + [str(i) for i in range(len(given), width)]
            self.csv_names = names
        _check_unique(self.path, names)
        self.columns = names

    def _read_csv(self, **options: Any):
        """pandas.read_csv with this file's settings: every value as text, no NA guessing."""
        return pd.read_csv(
            self.path,
            sep=self.sep,
            index_col=False,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            engine="c",
            encoding=self.encoding,
            compression=self.compression,
            **options,
        )

    def _csv_chunks(self, wanted: list[str], chunk_size: int) -> Iterator[pd.DataFrame]:
        if self.csv_names is not None:
            header = 0 if self.header else None
            names = self.csv_names
        else:
            header, names = 0, None
        start = 0
        try:
            with self._read_csv(header=header, names=names, chunksize=chunk_size) as reader:
                for frame in reader:
                    if len(frame) == 0:
                        continue
                    # Every column is read so that a row with too many fields is
                    # an error (pandas ignores them when given usecols).
                    frame = frame.loc[:, wanted] if list(frame.columns) != wanted else frame
                    frame = _as_strings(frame, start)
                    start += len(frame)
                    yield frame
        except CatalogError:
            raise
        except Exception as exc:  # noqa: BLE001 - converted to one line naming the file
            raise self._csv_error(exc) from None
        if start == 0:
            if self.header:
                raise EmptyCatalogError(f"{self.path} has a header but no rows")
            raise EmptyCatalogError(f"{self.path} is empty")

    def _csv_error(self, exc: Exception) -> CatalogError:
        if isinstance(exc, UnicodeDecodeError):
            return self._decode_error()
        if isinstance(exc, pd.errors.EmptyDataError):
            return EmptyCatalogError(f"{self.path} is empty")
        if isinstance(exc, ImportError):
            return CatalogError(f"cannot read {self.path}: {_first_line(exc)}")
        if isinstance(exc, (EOFError, OSError, lzma.LZMAError)):
            return CatalogError(f"cannot read {self.path}: {_first_line(exc)}")
        message = str(exc)
        kind = _FORMAT_NAMES[self.format]
        match = _PANDAS_LINE.search(message)
        if match:
            expected, line, saw = match.groups()
            return CatalogError(
                f"{self.path}: malformed {kind} at line {line}: expected {expected} fields, saw {saw}; "
                "a field holding the separator must be quoted"
            )
        match = _PANDAS_EOF.search(message)
        if match:
            # pandas counts rows from 0 here, lines from 1 above.
            return CatalogError(
                f"{self.path}: malformed {kind} at line {int(match.group(1)) + 1}: a quoted field is never closed"
            )
        return CatalogError(f"{self.path}: malformed {kind}: {_first_line(exc)}")

    # ---- JSON Lines ---------------------------------------------------------

    def _open_jsonl(self, head: str) -> None:
        self.json_array = head.lstrip("\ufeff \t\r\n").startswith("[")
        self._jsonl_keys(_JSONL_KEY_SAMPLE)

    def _jsonl_records(self) -> Iterator[tuple[int, Any]]:
        """(line number, parsed record) for each record, checked to be an object."""
        if self.json_array:
            with self._text() as handle:
                try:
                    data = json.load(handle)
                except json.JSONDecodeError as exc:
                    raise CatalogError(
                        f"{self.path}: invalid JSON at line {exc.lineno}: {exc.msg} (column {exc.colno})"
                    ) from None
            if not isinstance(data, list):
                raise CatalogError(f"{self.path}: expected a JSON array of objects")
            for number, record in enumerate(data, 1):
                if not isinstance(record, dict):
                    raise CatalogError(
                        f"{self.path}: item {number} of the JSON array is not an object "
                        f"(it is {_json_kind(record)})"
                    )
                yield number, record
            return
        with self._text() as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    # without its line end, which a line cut short would be blamed on (as "column 1")
                    record = json.loads(line.rstrip("\r\n"))
                except json.JSONDecodeError as exc:
                    raise CatalogError(
                        f"{self.path}: invalid JSON at line {number}: {exc.msg} (column {exc.colno}); "
                        "JSON Lines holds one object per line"
                    ) from None
                if not isinstance(record, dict):
                    raise CatalogError(
                        f"{self.path}: line {number} is not a JSON object (it is {_json_kind(record)})"
                    )
                yield number, record

    def _jsonl_keys(self, limit: int | None) -> None:
        """The columns: the keys of the first `limit` records (all: None), and the fields of their nested objects."""
        keys: dict[str, None] = {}
        nested: dict[str, tuple[str, ...]] = {}
        seen = 0
        for _number, record in self._jsonl_records():
            keys.update(dict.fromkeys(record))
            for key, value in record.items():
                if isinstance(value, dict):
                    _nested_paths(value, (key,), nested)
            seen += 1
            if limit is not None and seen >= limit:
                break
        if seen == 0:
            raise EmptyCatalogError(f"{self.path} has no rows" if self.json_array else f"{self.path} is empty")
        self.columns = list(keys)
        # a top-level key spelled with a dot is that key, not a path
        self.nested = {name: path for name, path in nested.items() if name not in keys}

    def _jsonl_chunks(self, wanted: list[str], chunk_size: int) -> Iterator[pd.DataFrame]:
        start = 0
        batch: list[dict[str, Any]] = []
        numbers: list[int] = []
        for number, record in self._jsonl_records():
            batch.append(record)
            numbers.append(number)
            if len(batch) >= chunk_size:
                yield self._jsonl_frame(batch, numbers, wanted, start)
                start += len(batch)
                batch, numbers = [], []
        if batch:
            yield self._jsonl_frame(batch, numbers, wanted, start)
            start += len(batch)
        if start == 0:
            raise CatalogError(f"{self.path} has no rows")

    def _jsonl_frame(
        self, records: list[dict[str, Any]], numbers: list[int], wanted: list[str], start: int
    ) -> pd.DataFrame:
        try:
            return _records_frame(records, wanted, start, self.nested)
        except UnicodeEncodeError:
            # JSON may escape half of a UTF-16 pair ("\ud800"), which is no character: no text
            # column can hold it. Looked for only now, so good files pay nothing.
            bad = next((n for n, r in zip(numbers, records) if not _is_text([_field(r, c, self.nested) for c in wanted])), None)
            if bad is None:
                raise
            where = f"item {bad} of the JSON array" if self.json_array else f"line {bad}"
            raise CatalogError(
                f"{self.path}: {where} holds a lone surrogate escape (such as \\ud800), which is not a character; "
                "fix the program that wrote it"
            ) from None

    def _text(self) -> _TextHandle:
        return _TextHandle(self)

    # ---- Parquet ------------------------------------------------------------

    def _parquet_file(self):
        import pyarrow.parquet as pq

        if self.compression:
            raise CatalogError(
                f"{self.path} is not a readable Parquet file (Parquet is compressed inside; "
                f"remove the {self.path.suffix} compression)"
            )
        try:
            return pq.ParquetFile(self.path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds
            raise CatalogError(f"{self.path} is not a readable Parquet file ({_first_line(exc)})") from None

    def _open_parquet(self) -> None:
        if self.path.stat().st_size == 0:
            raise EmptyCatalogError(f"{self.path} is empty")
        parquet = self._parquet_file()
        try:
            schema = parquet.schema_arrow
        finally:
            parquet.close()
        names = [n for n in schema.names if not _INDEX_COLUMN.fullmatch(n)]
        nested: dict[str, tuple[str, ...]] = {}
        for field in schema:
            if field.name in names:
                _struct_paths(field.type, (field.name,), nested)
        self.nested = {name: path for name, path in nested.items() if name not in names}
        # Arrow lets several fields share a name (Spark and polars can write them); reading one of those
        # by name would fail deep in pyarrow.
        self.repeated = _repeated(names)
        self.columns = names

    def _parquet_chunks(self, wanted: list[str], chunk_size: int) -> Iterator[pd.DataFrame]:
        parquet = self._parquet_file()
        start = 0
        try:
            if parquet.metadata.num_rows == 0:
                raise EmptyCatalogError(f"{self.path} has a schema but no rows")
            # a nested field is read with its top-level struct, then taken out of it
            read = list(dict.fromkeys(self.nested[c][0] if c in self.nested else c for c in wanted))
            batches = parquet.iter_batches(batch_size=chunk_size, columns=read, use_pandas_metadata=False)
            while True:
                try:
                    batch = next(batches)
                except StopIteration:
                    break
                except Exception as exc:  # noqa: BLE001 - corrupt pages surface here
                    raise CatalogError(
                        f"{self.path} is not a readable Parquet file ({_first_line(exc)})"
                    ) from None
                if batch.num_rows == 0:
                    continue
                data = {name: _arrow_strings(_struct_field(batch, self.nested[name]) if name in self.nested
                                             else batch.column(name)) for name in wanted}
                frame = pd.DataFrame(data, index=pd.RangeIndex(start, start + batch.num_rows), columns=wanted)
                start += batch.num_rows
                yield frame.astype(str) if wanted else frame
        finally:
            parquet.close()

    # ---- columns and chunks -------------------------------------------------

    def select(self, columns: Sequence[str] | None) -> list[str]:
        """The requested columns, checked against the file; all when None."""
        if columns is None:
            return list(self.columns)
        if isinstance(columns, str):
            columns = [columns]
        wanted = list(dict.fromkeys(str(c) for c in columns))
        missing = [c for c in wanted if c not in self.columns and c not in self.nested]
        if missing and self.format == "jsonl":
            # A key may first appear after the records read_columns looked at.
            self._jsonl_keys(None)
            missing = [c for c in wanted if c not in self.columns and c not in self.nested]
        if missing:
            raise ColumnError(_missing_columns_message(self, missing))
        for column in wanted:
            if column in self.repeated:
                where = "schema" if self.format == "parquet" else "header"
                raise ColumnError(f"{self.path}: column {column!r} appears {self.repeated[column]} times in the "
                                  f"{where}; rename all but one")
        return wanted

    def names(self) -> list[str]:
        """Every name a column can be read by: the columns, then the dotted paths of nested fields."""
        return list(self.columns) + list(self.nested)

    def chunks(self, wanted: list[str], chunk_size: int) -> Iterator[pd.DataFrame]:
        if self.format == "parquet":
            return self._parquet_chunks(wanted, chunk_size)
        if self.format == "jsonl":
            return self._jsonl_chunks(wanted, chunk_size)
        return self._csv_chunks(wanted, chunk_size)


class _TextHandle:
    """A decoded, line-iterable view of a (possibly compressed) text file.

    Turns a decoding or decompression failure into the one-line CatalogError.
    """

    def __init__(self, source: _Source):
        self.source = source
        self.raw: IO[bytes] | None = None
        self.text: io.TextIOWrapper | None = None

    def __enter__(self) -> _TextHandle:
        self.raw = _open_binary(self.source.path, self.source.compression)
        self.text = io.TextIOWrapper(self.raw, encoding=self.source.encoding, newline="")
        return self

    def __exit__(self, *exc_info) -> None:
        if self.text is not None:
            self.text.close()

    def __iter__(self) -> Iterator[str]:
        try:
            yield from self.text
        except UnicodeError:
            raise self.source._decode_error() from None
        except (OSError, EOFError, lzma.LZMAError) as exc:
            raise CatalogError(f"cannot read {self.source.path}: {_first_line(exc)}") from None

    def read(self, size: int = -1) -> str:
        try:
            return self.text.read(size)
        except UnicodeError:
            raise self.source._decode_error() from None
        except (OSError, EOFError, lzma.LZMAError) as exc:
            raise CatalogError(f"cannot read {self.source.path}: {_first_line(exc)}") from None


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def has_catalog_suffix(path: str | Path) -> bool:
    """Whether a file name ends as a catalog file's does (a compression suffix allowed).

        >>> has_catalog_suffix("new.csv.gz"), has_catalog_suffix("notes.md")
        (True, False)
    """
    return _split_compression(Path(path))[0] in _SUFFIX_FORMATS


def _split_compression(path: Path) -> tuple[str, str | None]:
    """(format suffix, compression) of a path: 'x.csv.gz' -> ('.csv', 'gzip')."""
    suffixes = [s.lower() for s in path.suffixes]
    compression = None
    if suffixes and suffixes[-1] in _COMPRESSION:
        compression = _COMPRESSION[suffixes.pop()]
    return (suffixes[-1] if suffixes else ""), compression


def _check_file(path: Path) -> None:
    if path.is_dir():
        raise CatalogError(f"{path} is a directory, not a catalog file")
    if not path.exists():
        raise CatalogError(f"catalog file not found: {path}")


def _check_encoding(encoding: str) -> str:
    try:
        name = codecs.lookup(encoding).name
    except (LookupError, TypeError):
        raise ConfigError(f"unknown encoding {encoding!r}; e.g. utf-8, latin-1, cp1252") from None
    try:
        # Python also names bytes-to-bytes and str-to-str codecs (base64, zlib, rot13), which fail
        # deep inside a reader; str.encode refuses them up front.
        "".encode(name)
    except LookupError:
        raise ConfigError(f"{encoding!r} is not a text encoding; e.g. utf-8, latin-1, cp1252") from None
    # "utf-8-sig" drops a byte-order mark that Excel puts before the header.
    return "utf-8-sig" if name == "utf-8" else name


def _check_column_names(column_names: Sequence[str] | None) -> tuple[str, ...] | None:
    if column_names is None:
        return None
    names = (column_names,) if isinstance(column_names, str) else tuple(str(c) for c in column_names)
    repeated = sorted(_repeated(names))
    if repeated:
        raise ConfigError(f"column names must differ; repeated: {', '.join(repeated)}")
    return names or None


def _repeated(names: Sequence[str]) -> dict[str, int]:
    """The names given more than once, with their counts (in linear time: a 200 KB
    upload can hold 100,000 column names)."""
    return {name: count for name, count in Counter(names).items() if count > 1}


def _check_unique(path: Path, names: list[str]) -> None:
    repeated = sorted(_repeated(names))
    if repeated:
        raise ConfigError(
            f"{path}: two columns would both be named {repeated[0]!r}; choose other column_names in the config file"
        )


def _is_utf8(encoding: str) -> bool:
    return encoding in ("utf-8", "utf-8-sig")


def _is_wide_encoding(encoding: str) -> bool:
    return encoding.startswith(("utf-16", "utf-32", "utf_16", "utf_32"))


def _encoding_label(encoding: str) -> str:
    return "UTF-8" if _is_utf8(encoding) else encoding


def _open_binary(path: Path, compression: str | None) -> IO[bytes]:
    try:
        if compression == "gzip":
            return gzip.open(path, "rb")
        if compression == "bz2":
            return bz2.open(path, "rb")
        if compression == "xz":
            return lzma.open(path, "rb")
        if compression == "zstd":
            try:
                import zstandard
            except ImportError:
                raise CatalogError(
                    f"cannot read {path}: .zst files need the zstandard package (pip install zstandard)"
                ) from None
            return zstandard.open(path, "rb")
        return open(path, "rb")
    except OSError as exc:
        raise CatalogError(f"cannot read {path}: {exc.strerror or exc}") from None


def _read_head(path: Path, compression: str | None, size: int) -> bytes:
    try:
        with _open_binary(path, compression) as handle:
            return handle.read(size)
    except CatalogError:
        raise
    except (OSError, EOFError, lzma.LZMAError, ValueError) as exc:
        raise CatalogError(f"{path} is not valid {compression or 'readable'} data ({_first_line(exc)})") from None


def _find_bad_byte(path: Path, compression: str | None, encoding: str) -> tuple[int, int] | None:
    """(line number, byte) of the first byte `encoding` cannot decode."""
    decoder = codecs.getincrementaldecoder(encoding)()
    number = 0
    try:
        with _open_binary(path, compression) as handle:
            for number, line in enumerate(handle, 1):
                try:
                    decoder.decode(line)
                except UnicodeDecodeError as exc:
                    return number, exc.object[min(max(exc.start, 0), len(exc.object) - 1)]
            decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:  # a multi-byte character cut off at the end
        return max(number, 1), exc.object[min(max(exc.start, 0), len(exc.object) - 1)]
    except (OSError, EOFError, lzma.LZMAError, CatalogError, UnicodeError):  # a UnicodeError names no byte
        return None
    return None


def _count_outside_quotes(line: str, char: str) -> int:
    count = 0
    quoted = False
    for c in line:
        if c == '"':
            quoted = not quoted
        elif c == char and not quoted:
            count += 1
    return count


def _sniff_separator(head: str, header: bool) -> str:
    """',' unless the first line clearly uses ';', '|' or a tab instead.

    A header line is trusted on its own. Without a header the first line is
    product data, which may hold a ';' in its text, so the winner must also
    appear as often on the next lines.
    """
    lines = [line for line in head.lstrip("\ufeff").splitlines() if line.strip()][:10]
    if not lines:
        return ","
    first = lines[0]
    counts = {c: _count_outside_quotes(first, c) for c in ",;|\t"}
    best = max(counts, key=lambda c: counts[c])
    if best == "," or counts[best] <= counts[","]:
        return ","
    if not header and len(lines) > 1:
        # The last line of the head may be cut off; judge the complete ones.
        if any(_count_outside_quotes(line, best) != counts[best] for line in lines[1:-1] or lines[1:]):
            return ","
    return best


def _unpadded(names: list[str]) -> list[str]:
    """Header names without the spaces around them, unless that makes one another's name.

    A header written "sku, title, category" names its columns " title" and
    " category", which no --text-cols can name (the CLI strips its names).
    """
    unpadded: list[str] = []
    # sets: a header of 100,000 names checked against lists took minutes
    given, so_far = set(names), set()
    for name in names:
        bare = name.strip()
        taken = not bare or bare in so_far or bare in given
        unpadded.append(name if bare != name and taken else bare)
        so_far.add(unpadded[-1])
    return unpadded


def _first_records(head: str, sep: str, complete: bool) -> list[list[str]]:
    """The first three complete records of the head, parsed as CSV (may be fewer)."""
    reader = csv.reader(io.StringIO(head.lstrip("\ufeff")), delimiter=sep)
    records: list[list[str]] = []
    try:
        for record in reader:
            if not record:
                continue
            records.append(record)
            if len(records) == 4:
                break
    except csv.Error:
        return records[:1]
    # The last record read may run past the head; trust it only if more followed.
    if not complete and len(records) < 4:
        records = records[:-1]
    return records[:3]


def _as_strings(frame: pd.DataFrame, start: int) -> pd.DataFrame:
    frame = frame.fillna("") if frame.isna().to_numpy().any() else frame
    frame = frame.astype(str)
    frame.index = pd.RangeIndex(start, start + len(frame))
    return frame


def _cell(value: Any) -> str:
    """One JSON value as catalog text: nulls "", numbers as written, lists as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    if isinstance(value, (list, dict, tuple)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def cell_text(value: Any) -> str:
    """One cell of a DataFrame or a product dict as catalog text, by the rules
    a file is read with (`_cell`): a missing value (None, NaN, pd.NA) is "",
    a number reads as written, a list (a numpy array too: pandas reads Parquet
    lists as arrays) or a dict as JSON, so a label list in a DataFrame reads as
    the same list in a file does.

        >>> cell_text(["cotton", "men"]), cell_text(float("nan")), cell_text(7)
        ('["cotton", "men"]', '', '7')
    """
    if type(value) is str:
        return value
    if isinstance(value, (bytes, bytearray)):
        # text as a database driver or a Parquet binary column hands it over: str() made it "b'...'",
        # a label "b'Shirts'" and a title whose first word the model never meets again
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise CatalogError(f"a text cell holds bytes that are not UTF-8 text ({bytes(value)[:12]!r}...): "
                               "decode them into text first") from None
    import numpy as np

    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if not isinstance(value, (list, tuple, dict)) and pd.isna(value):
        return ""
    return _cell(value)


def _is_text(value: Any) -> bool:
    """Whether a JSON value's strings can be written as UTF-8 (no lone surrogate)."""
    try:
        json.dumps(value, ensure_ascii=False, default=str).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _nested_paths(obj: dict, path: tuple[str, ...], found: dict[str, tuple[str, ...]]) -> None:
    """Add the dotted name and key path of every field inside a nested object, as far down as _NESTED_DEPTH."""
    for key, value in obj.items():
        inner = path + (str(key),)
        found.setdefault(".".join(inner), inner)
        if isinstance(value, dict) and len(inner) < _NESTED_DEPTH:
            _nested_paths(value, inner, found)


def _struct_paths(kind, path: tuple[str, ...], found: dict[str, tuple[str, ...]]) -> None:
    """`_nested_paths` for a Parquet column's type: the fields of its structs."""
    import pyarrow as pa

    if not pa.types.is_struct(kind) or len(path) >= _NESTED_DEPTH:
        return
    for index in range(kind.num_fields):
        child = kind.field(index)
        inner = path + (child.name,)
        found.setdefault(".".join(inner), inner)
        _struct_paths(child.type, inner, found)


def _struct_field(batch, path: tuple[str, ...]):
    """The array of a field inside struct columns; null where a struct above it is null."""
    import pyarrow.compute as pc

    array = batch.column(path[0])
    for name in path[1:]:
        array = pc.struct_field(array, name)
    return array


def _nested_value(record: dict, path: Sequence[str], missing: Any = None) -> Any:
    """The value at `path` inside a record's nested objects; `missing` where a key is absent."""
    value: Any = record
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return missing
        value = value[key]
    return value


MISSING = object()


def dict_field(item: dict, name: str, missing: Any = None) -> Any:
    """A product dict's field `name`: its own key, else, for a dotted name ("info.title", as a
    JSON Lines or Parquet file's nested fields are named), the field inside its nested objects,
    so a product is taken in the shape its catalog file has; `missing` where it has neither."""
    return item[name] if name in item else _nested_value(item, name.split("."), missing)


def _field(record: dict, name: str, nested: dict[str, tuple[str, ...]]) -> Any:
    """A record's value of column `name`: a top-level key, or a nested field by its dotted path."""
    return record.get(name) if name not in nested else _nested_value(record, nested[name])


def _records_frame(records: list[dict[str, Any]], wanted: list[str], start: int,
                   nested: dict[str, tuple[str, ...]] | None = None) -> pd.DataFrame:
    nested = nested or {}
    data = {name: [_cell(_field(r, name, nested)) for r in records] for name in wanted}
    frame = pd.DataFrame(data, index=pd.RangeIndex(start, start + len(records)), columns=wanted)
    return frame.astype(str) if wanted else frame


def _arrow_strings(array) -> list[str] | Any:
    """A pyarrow column as catalog text, same rules as `_cell`."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = array.type
    if pa.types.is_dictionary(kind):
        array = array.cast(kind.value_type)
        kind = array.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or getattr(pa.types, "is_string_view", lambda t: False)(kind):
        return pc.fill_null(array, "").to_numpy(zero_copy_only=False)
    if pa.types.is_integer(kind):
        return pc.fill_null(pc.cast(array, pa.string()), "").to_numpy(zero_copy_only=False)
    if pa.types.is_null(kind):
        return [""] * len(array)
    if pa.types.is_floating(kind):
        single = kind == pa.float32()
        return [
            "" if v is None or v != v else (str(np.float32(v)) if single else repr(v))
            for v in array.to_pylist()
        ]
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind):
        return ["" if v is None else v.decode("utf-8", "replace") for v in array.to_pylist()]
    if pa.types.is_map(kind):
        return ["" if v is None else json.dumps(dict(v), ensure_ascii=False, default=str) for v in array.to_pylist()]
    return [_cell(v) for v in array.to_pylist()]


def _missing_columns_message(source: _Source, missing: list[str]) -> str:
    message = missing_columns_message(missing, source.names(), str(source.path))
    if source.format in ("csv", "tsv") and not source.header and not source.column_names:
        message += (" (read without a header row, its columns are numbered: name them by number, or with "
                    "column_names in a config file)")
    return message


#: a reader's advice to name the file's encoding, in the CLI's words (see `reword_encoding_hint`)
_ENCODING_HINT = re.compile(r"pass --encoding (\S+)|pass its real encoding with --encoding")


def reword_encoding_hint(message: str, hint: Callable[[str | None], str]) -> str:
    """A reader's error with its --encoding advice in the words of an edge that has no such
    option (the server's query parameter, the app's choice): hint(name) replaces
    "pass --encoding NAME", hint(None) "pass its real encoding with --encoding"."""
    return _ENCODING_HINT.sub(lambda match: hint(match[1]), message)


def close_column(name: str, columns: Sequence[str]) -> str | None:
    """The column a user probably meant by `name`: the same but for case, else a close spelling."""
    lowered = {c.lower(): c for c in columns}
    match = [lowered[name.lower()]] if name.lower() in lowered else difflib.get_close_matches(name, list(columns), n=1)
    return match[0] if match else None


def renamed_column(name: str, columns: Sequence[str]) -> str | None:
    """The column of `columns` that is `name` written a little otherwise, or None.

    Stricter than `close_column`, whose guess only goes into an error's hint:
    this one is taken without asking (the app preselects it, and says so). The
    same name but for case, spaces, "_", "-" and "." ("Product Name" for
    product_name), else a typo or a plural (a close spelling at most two
    letters longer or shorter: "desciption", "titles") of a name of five
    letters or more ("age" is not "page"), and only when no other column
    matches as well. A column that only contains the name ("subtitle",
    "subCategory") is another field, not a renaming.
    """
    key = _name_key(name)
    same = [c for c in columns if _name_key(c) == key]
    if same:
        return same[0] if len(same) == 1 else None
    if len(key) < 5:
        return None
    close = [c for c in columns if abs(len(_name_key(c)) - len(key)) <= 2
             and difflib.SequenceMatcher(None, key, _name_key(c)).ratio() >= 0.85]
    return close[0] if len(close) == 1 else None


def _name_key(name: str) -> str:
    return re.sub(r"[\s_.-]+", "", str(name)).casefold()


def missing_columns_message(missing: list[str], columns: list[str], where: str) -> str:
    """One line naming the missing columns, a close name for each where there is one, and the columns there are."""
    hints = [(name, close) for name in missing if (close := close_column(name, columns)) is not None]
    shown = ", ".join(columns[:30]) + (f", ... ({len(columns)} columns)" if len(columns) > 30 else "")
    if len(missing) == 1:
        message = f"column {missing[0]!r} not found in {where}"
        message += f"; did you mean {hints[0][1]!r}?" if hints else ";"
    else:
        message = f"columns {', '.join(repr(m) for m in missing)} not found in {where}"
        if hints:
            message += "; did you mean " + ", ".join(f"{good!r} for {bad!r}" for bad, good in hints) + "?"
        else:
            message += ";"
    return message + f" columns are: {shown}"


def _json_kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
