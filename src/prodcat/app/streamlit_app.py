"""The prodcat web app: categorize a product, a catalog, check a catalog's labels, and see the model's report.

Started by `prodcat app MODEL_DIR` (see `prodcat.app.launch`), which runs

    streamlit run streamlit_app.py ... -- --model MODEL_DIR

The model directory comes from `--model` after the `--`, or else from the
PRODCAT_APP_MODEL environment variable (how tests hand it to AppTest). Every
prediction goes through the `Categorizer` facade; nothing here knows how a
model reads text or decodes labels.

Photos. The one-product form takes an optional photo. A model that reads
photos (`Categorizer.reads_images()`: an image model, or an ensemble with an
image member) gets it as the product's `image` (its bytes), and a product may
then be a photo alone, without text; a photo that is not an image this app
can decode is reported and left out. A text-only model's page shows the photo
and says it is not read.

An uploaded catalog cannot carry photos, only their paths in its image
column. Those paths are read on the server: relative ones from the model's
image_root as seen from the directory the app was started in (or that
directory itself when the model has none), and only inside that folder: an
absolute path elsewhere or one climbing out with ".." counts as not found
and is never opened; web addresses are never fetched (see
`prodcat.app.uploads`). So a photo model gets the photos of an upload only
when the app runs where the photos are, e.g. started beside the catalog's
images/ folder; the page names that folder and says how many of the named
photos were found there, and products without one are predicted as the model
predicts products without a photo. The app listens on 127.0.0.1 by default:
serve it further only to people you would let use its model.
"""

from __future__ import annotations

import io
import logging
import re
import sys
import tempfile
from pathlib import Path

import streamlit as st

from prodcat import Categorizer
from prodcat.app import model_report, uploads
from prodcat.app.launch import MODEL_ENV, model_dir_from_command_line
from prodcat.artifacts import REQUIRED_FILES
from prodcat.catalog.readers import renamed_column
from prodcat.categorizer import DEFAULT_FOLDS, IMAGE_KEY
from prodcat.errors import ProdcatError
from prodcat.models import EXPORTED_MODEL
from prodcat.evaluation.report import versus_best_part_text

IMAGE_TYPES = ["png", "jpg", "jpeg", "webp", "gif"]
MAX_TOP_K = 10
TILES_PER_ROW = 4
FORMAT_NAMES = {"csv": "CSV", "parquet": "Parquet"}

log = logging.getLogger("prodcat.app")


@st.cache_resource(show_spinner="Loading the model…", max_entries=2)
def load_categorizer(model_dir: str, signature: tuple) -> Categorizer:
    # One Categorizer per server process, shared by every browser session;
    # prediction does not change it. `signature` (the model files' times and
    # sizes) loads a model retrained into the same folder: keyed by the folder
    # alone, the Model page showed the new report beside the old model's predictions.
    return Categorizer.load(model_dir, quiet=True)


@st.cache_data(show_spinner=False)
def cached_report(model_dir: str, signature: tuple) -> model_report.ModelReport:
    return model_report.read_report(model_dir)


@st.cache_data(show_spinner="Reading the training curves…")
def cached_curves(model_dir: str, signature: tuple) -> dict:
    return model_report.training_curves(model_dir)


def files_signature(paths: list[Path]) -> tuple:
    # Part of the cache key, so a model directory rewritten in place is read again.
    return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths if p.exists())


def session_workdir() -> Path:
    # Uploads and their predictions live as long as the browser session:
    # TemporaryDirectory removes itself once the session state is dropped.
    if "workdir" not in st.session_state:
        st.session_state["workdir"] = tempfile.TemporaryDirectory(prefix="prodcat-app-")
    return Path(st.session_state["workdir"].name)


def percent(value: float) -> str:
    return f"{value:.1%}"


# What Streamlit's Markdown reads inside a line: emphasis, code, links, LaTeX
# ($...$), emoji and colour codes (:name:, :red[...]), strikethrough. Labels,
# column and file names go into messages through md(), so "$5 *sale*" shows
# as written.
_MARKDOWN_INLINE = re.compile(r"([\\`*_\[\]$~:<])")
# ... and what it reads at the start of a line: headings, quotes, lists.
_MARKDOWN_LINE_START = re.compile(r"^(\s*\d*)([#>+.)-])", re.MULTILINE)


def md(text: object) -> str:
    """Text as Streamlit Markdown that shows it as written."""
    escaped = _MARKDOWN_INLINE.sub(r"\\\1", str(text))
    return _MARKDOWN_LINE_START.sub(r"\1\\\2", escaped)


def show_labels(prediction: str) -> str:
    # Multi-label predictions come joined by "|"; a list reads better.
    return " · ".join(md(label) for label in prediction.split("|")) if prediction else "(no category)"


# ------------------------------------------------------------------ sidebar
def sidebar(clf: Categorizer, model_dir: str) -> int:
    manifest = clf.manifest_
    st.sidebar.title("prodcat")
    st.sidebar.caption(f"Model: `{model_dir}`")
    reads = (list(clf.fields_.text_cols) if clf.reads_text() else []) + (
        ["the product photo"] if clf.reads_images() else [])
    st.sidebar.markdown(
        f"**{manifest['model']['name']}**, {len(clf.classes_)} categories "
        f"({clf.fields_.label_format} labels)  \n"
        f"Reads: {md(', '.join(reads))}"
    )
    threshold = clf.review_threshold()
    target = (manifest.get("review") or {}).get("target_precision")
    if threshold is None:
        st.sidebar.markdown("Every prediction is flagged for review: no confidence reached the target precision.")
    else:
        st.sidebar.markdown(
            f"Flagged for review below **{percent(threshold)}** confidence"
            + (f" (reaches {percent(target)} precision on validation)." if target else ".")
        )
    return top_k_input(clf, "Top categories shown for a product", "top_k", st.sidebar)


def top_k_input(clf: Categorizer, label: str, key: str, where=st) -> int:
    n_classes = len(clf.classes_)
    return int(where.number_input(label, min_value=1, max_value=min(MAX_TOP_K, n_classes), value=min(3, n_classes),
                                  key=key))


# ------------------------------------------------------------- one product
def product_page(clf: Categorizer, top_k: int) -> None:
    # A model of photos alone would ignore whatever is typed: no text fields to mislead.
    text_cols = list(clf.fields_.text_cols) if clf.reads_text() else []
    with st.form("product"):
        values = {}
        for i, column in enumerate(text_cols):
            if i == 0:
                values[column] = st.text_input(column, key=f"field_{column}")
            else:
                values[column] = st.text_area(column, key=f"field_{column}", height=100)
        image = st.file_uploader("image" if not text_cols else "image (optional)", type=IMAGE_TYPES,
                                 key="product_image")
        submitted = st.form_submit_button("Categorize", type="primary")
    if submitted:
        # Kept past this run, so changing top-k (a rerun) still shows the product.
        st.session_state["submitted_product"] = {
            "values": values,
            "image": image.getvalue() if image else None,
            "image_name": image.name if image else None,
        }
    product = st.session_state.get("submitted_product")
    if not product:
        return
    reads_images = clf.reads_images()
    photo = product["image"]
    problem = photo_problem(photo) if photo is not None else None
    photo_usable = photo is not None and problem is None
    if not any(v.strip() for v in product["values"].values()) and not (reads_images and photo_usable):
        # A photo model can categorize a photo alone; a text model needs text.
        if not text_cols:
            st.warning("Upload a photo: this model reads nothing else.")
        else:
            st.warning(f"Type at least one of: {md(', '.join(text_cols))}"
                       + (", or upload a photo." if reads_images else "."))
        if photo is not None and not photo_usable:
            st.error(unreadable_photo(product["image_name"], problem))
        return
    item = dict(product["values"])
    if reads_images and photo_usable:
        item[IMAGE_KEY] = photo
    # Recomputed on each run (cheap for one product), so a new top-k applies at once. Confined: a
    # visitor's text that the image column also reads (a text column named like it) is no path out.
    table = clf.predict_table([item], top_k=top_k, confine_photos=True)
    row = table.iloc[0]
    result, picture = st.columns([3, 1]) if product["image"] else (st.container(), None)
    with result:
        st.markdown(f"### {show_labels(row['prediction'])}")
        threshold = clf.review_threshold()
        confidence = float(row["confidence"])
        if bool(row["needs_review"]):
            why = (f"confidence {percent(confidence)} is below the review threshold {percent(threshold)}"
                   if threshold is not None else "this model flags every prediction")
            st.warning(f"**Needs review**: {why}.", icon=":material/flag:")
            if row.get("confident_level", 0):
                # a path model can still place the product at a coarser level with confidence
                st.info(f"**Confident to level {int(row['confident_level'])}**: "
                        f"{show_labels(row['confident_path'])}.", icon=":material/account_tree:")
        else:
            st.success(f"**Confident**: {percent(confidence)}, at or above the review threshold "
                       f"{percent(threshold)}.", icon=":material/check_circle:")
        shown = sum(1 for c in table.columns if c.startswith("label_"))
        st.markdown(f"**Top {shown} categories**")
        # A multi-label model gives each label at its own threshold (chosen on validation):
        # without it, a label given below one left out would look like a mistake.
        given_at = dict(zip(clf.classes_, clf.thresholds_)) if clf.thresholds_ is not None else {}
        for rank in range(1, shown + 1):
            label, probability = row[f"label_{rank}"], float(row[f"prob_{rank}"])
            threshold_note = f" (given at {percent(given_at[label])} or more)" if label in given_at else ""
            st.progress(min(max(probability, 0.0), 1.0),
                        text=f"{md(label)} — {percent(probability)}{threshold_note}")
    if picture is not None:
        with picture:
            if not photo_usable:
                st.error(unreadable_photo(product["image_name"], problem))
            elif reads_images:
                st.image(photo, caption=f"{product['image_name']} (read by the model)", width="stretch")
            else:
                st.image(photo, caption=f"{product['image_name']} (shown only: this model reads the text fields)",
                         width="stretch")


def photo_problem(data: bytes) -> str | None:
    """Why the bytes are no photo this app reads (None: they are one), checked without decoding the pixels.

    A visitor's photo over CLIENT_MAX_PIXELS is refused, as by the server: a PNG of a few KB can
    claim 40 megapixels, which the model would spend about a second decoding on every rerun.
    """
    from PIL import Image, UnidentifiedImageError

    from prodcat.images.decode import CLIENT_MAX_PIXELS, header_problem

    problem = header_problem(data, max_pixels=CLIENT_MAX_PIXELS)
    if problem is not None:
        return problem.reason
    try:
        Image.open(io.BytesIO(data)).verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return "not an image"
    return None


def unreadable_photo(name: str, reason: str | None) -> str:
    return f"{md(name)} is not an image this app can read ({md(reason or 'not an image')}; use PNG, JPEG, WebP or GIF)."


# ----------------------------------------------------------------- catalog
def forget_upload(page: str) -> None:
    """Drop what `once_per_upload` kept for `page` (a new file, or the file removed)."""
    for name in ("result", "key", "error"):
        st.session_state.pop(f"{page}_{name}", None)


def catalog_page(clf: Categorizer) -> None:
    fields = clf.fields_
    ids = (f" Id columns copied to the output: {md(', '.join(fields.id_cols))} (or others you choose)." if fields.id_cols
           else " Choose its id columns to copy them to the output; otherwise its rows are numbered.")
    # A model of photos alone reads its image column only, whatever text columns its training file had.
    text_cols = list(fields.text_cols) if clf.reads_text() else []
    read = [*text_cols, *([fields.image_col] if clf.reads_images() and fields.image_col else [])]
    renamed = " (named otherwise, you choose its columns once it is uploaded)" if read else ""
    st.markdown(
        f"Upload a catalog (CSV, TSV, JSON Lines or Parquet) with the column{'s' if len(read) > 1 else ''} "
        f"**{md(', '.join(read))}**"
        f"{renamed}.{ids} "
        f"A file up to {st.get_option('server.maxUploadSize'):,} MB (this server's upload limit; a larger catalog: "
        "`prodcat predict`) is predicted in chunks, the page previews the first "
        f"{uploads.PREVIEW_ROWS:,} rows and the download holds them all."
    )
    image_folder = uploads.upload_image_folder(clf)
    if image_folder is not None:
        st.info(
            f"Photos: this model reads them from the column **{md(fields.image_col)}**, as paths of files **on "
            f"this server** (an upload cannot carry photos). Relative paths start from {md(image_folder)} (the model's "
            "image folder, from where the app was started), and only files inside that folder are read: an "
            "absolute path elsewhere or one climbing out with `..` is not, web addresses not at all. A product "
            "whose photo is not there is predicted as the model predicts products without a photo.",
            icon=":material/photo_library:",
        )
    out_format = st.radio("Download as", uploads.OUTPUT_FORMATS, format_func=FORMAT_NAMES.get, horizontal=True,
                          key="out_format")
    # The catalog's own, not the sidebar's: trying another top-k for one product would
    # predict a whole uploaded catalog again.
    top_k = top_k_input(clf, "Top categories in the predictions", "catalog_top_k")
    encoding = st.selectbox("Text encoding (CSV, TSV, JSONL)", uploads.ENCODINGS, format_func=uploads.ENCODINGS.get,
                            key="encoding", help="UTF-8 unless the file says otherwise: a CSV saved by Excel on "
                            "Windows is often Windows-1252.")
    header = header_input(clf, "header")
    upload = st.file_uploader("Catalog file", key="catalog_upload", on_change=forget_upload, args=("catalog",))
    if upload is not None:
        mapping = column_mapping(clf, upload, encoding, header, "catalog")
        if mapping is None:
            return
        # Not the download format: the predictions are converted to it (`show_catalog_result`).
        once_per_upload("catalog", (upload.file_id, top_k, encoding, header, *mapping.values()),
                        f"Categorizing {upload.name}…", f"categorize {upload.name}",
                        lambda: uploads.predict_upload(clf, upload.name, upload, session_workdir(), top_k=top_k,
                                                       out_format=out_format, encoding=encoding, header=header,
                                                       **mapping))
    result = shown_result("catalog")
    if result is not None:
        show_catalog_result(result, out_format)


NO_COLUMN = "(none)"


def header_input(clf: Categorizer, key: str) -> bool:
    # a model trained on a file without a header reads uploads without one, unless told
    header = clf.fields_.header
    return st.checkbox("First row names the columns (CSV, TSV)", value=header, key=key,
                       help="The model's training file " + ("had" if header else "had no") + " header row.")


def column_mapping(clf: Categorizer, upload, encoding: str, header: bool, page: str, *,
                   labels: bool = False) -> dict | None:
    """The upload's columns for the model's fields, as chosen on `page` (None: yet to be chosen).

    Keys text_cols, id_cols, and label_cols with `labels` or else image_col,
    each None where the model's own names are read. Columns named a little otherwise than the
    model's ("Title" for title) are preselected, and the page says so.
    """
    close: list[tuple[str, str]] = []
    text_cols = chosen_text_columns(clf, upload, encoding, header, page, close, labels=labels)
    label_cols = chosen_label_columns(clf, upload, encoding, header, page, close) if labels else None
    # the labels page refuses a model that reads photos
    image_col = None if labels else chosen_image_column(clf, upload, encoding, header, page, close)
    # drawn while the text columns are yet to be chosen too: a widget left out of a run forgets its choice
    id_cols = chosen_id_columns(clf, upload, encoding, header, page, close, labels=labels)
    if close:
        st.info("Read by a name close to the model's: " + "; ".join(
            f"**{md(column)}** for {md(field)}" for field, column in close)
            + ". Choose other columns above if they do not hold the same.", icon=":material/join_inner:")
    if text_cols is False or label_cols is False:
        return None
    mapping = {"text_cols": text_cols, "id_cols": id_cols}
    return {**mapping, "label_cols": label_cols} if labels else {**mapping, "image_col": image_col}


def close_matches(clf: Categorizer, wanted, columns: list[str]) -> dict[str, str]:
    """For each of `wanted` (the model's column names) the upload lacks, its column named a
    little otherwise (`renamed_column`); never a column the model reads under its own name."""
    taken = set(clf.fields_.columns()) & set(columns)
    matches: dict[str, str] = {}
    for name in wanted:
        if name not in columns:
            free = [c for c in columns if c not in taken and c not in matches.values()]
            if (match := renamed_column(name, free)) is not None:
                matches[name] = match
    return matches


def keep_choice(key: str, columns: list[str], default) -> None:
    """Set the widget `key`, about to be drawn, to the user's last choice in it as far as it
    names `columns`; else to `default`.

    A widget keeps its state by its key alone: a choice that the header or
    encoding setting made name no column (read as 0, 1, 2) was dropped, and
    stayed dropped once the setting was turned back. The choice itself is
    kept apart (`remember_choice`), so turning the header off and on again
    gives it back.
    """
    chosen = st.session_state.get(f"{key}:chosen")
    if isinstance(chosen, list):
        value = [c for c in chosen if c in columns]
    elif chosen is not None and (chosen == NO_COLUMN or chosen in columns):
        value = chosen
    else:
        value = default
    st.session_state[key] = value


def remember_choice(key: str) -> None:
    st.session_state[f"{key}:chosen"] = st.session_state[key]


def column_select(label: str, columns: list[str], default: str, key: str) -> str:
    keep_choice(key, columns, default)
    return st.selectbox(label, [NO_COLUMN, *columns], key=key, on_change=remember_choice, args=(key,))


def chosen_text_columns(clf: Categorizer, upload, encoding: str, header: bool, page: str,
                        close: list[tuple[str, str]], *, labels: bool = False) -> tuple[str, ...] | None | bool:
    """The upload's columns for the model's text fields, in order, when it names them otherwise.

    None: read the upload by the model's own column names (it has them all,
    some of them as chosen, or cannot be read: predicting it says why).
    False: the user has yet to choose. When the upload lacks one of the
    model's text columns, the page offers one choice per field among the
    upload's columns: up front when it has none of them, folded away when
    it has some, one named a little otherwise (added to `close`), or photos
    the model reads (the missing ones then read as empty).
    """
    own = clf.fields_.text_cols if clf.reads_text() else ()
    if not own:
        return None
    columns = readable_columns(clf, upload, encoding, header, page, labels)
    if columns is None or all(c in columns for c in own):
        return None
    as_named = [field if field in columns else NO_COLUMN for field in own]
    matches = close_matches(clf, own, columns)
    defaults = [field if field in columns else matches.get(field, NO_COLUMN) for field in own]
    some = any(c != NO_COLUMN for c in defaults)
    # a model that reads photos too decides a product without text from its photo, as predict does
    photos = clf.reads_images() and clf.fields_.image_col in columns
    if NO_COLUMN not in defaults:
        note = (f"{md(upload.name)} names some of the model's text columns **{md(', '.join(own))}** a little "
                "otherwise: those columns are read for them, unless you choose others.")
    elif some:
        note = (f"{md(upload.name)} lacks some of the model's text columns **{md(', '.join(own))}**: they read as "
                "empty, unless you choose the columns that hold them.")
    elif photos:
        note = (f"{md(upload.name)} has none of the model's text columns **{md(', '.join(own))}**: its products are "
                "categorized from their photos, unless you choose the columns that hold them.")
    else:
        note = (f"{md(upload.name)} has none of the model's text columns **{md(', '.join(own))}**: choose which of "
                "its columns holds each.")
    readable = some or photos
    with st.expander("Text columns") if readable else st.container():
        # filled once the choices are read: a warning to choose stays only while nothing is chosen
        slot = st.empty()
        chosen = [column_select(f"Column for {md(field)}", columns, default,
                                f"{page}_column_for_{index}_{upload.file_id}")
                  for index, (field, default) in enumerate(zip(own, defaults))]
        if readable:
            slot.caption(note)
        elif all(c == NO_COLUMN for c in chosen):
            slot.warning(note)
    close += [(field, column) for field, column in matches.items() if column in chosen]
    if chosen == as_named:
        return None if any(c != NO_COLUMN for c in as_named) or photos else False
    given = [c for c in chosen if c != NO_COLUMN]
    if not given:
        return False
    if NO_COLUMN in chosen[:len(given)]:
        # the columns stand for the model's fields in order: only the last ones may go without
        st.error(f"choose a column for {md(own[chosen.index(NO_COLUMN)])} as well, or none for the fields after it")
        return False
    return tuple(given)


def chosen_label_columns(clf: Categorizer, upload, encoding: str, header: bool, page: str,
                         close: list[tuple[str, str]]) -> tuple[str, ...] | None | bool:
    """The upload's columns for the model's label columns (None: the model's own; False: yet to be chosen)."""
    columns = readable_columns(clf, upload, encoding, header, page, True)
    if columns is None:
        return None
    own = clf.fields_.label_cols
    matches = close_matches(clf, own, columns)
    defaults = [field if field in columns else matches.get(field, NO_COLUMN) for field in own]
    lacking = NO_COLUMN in defaults
    with st.expander("Label column" if len(own) == 1 else "Label columns", expanded=lacking):
        slot = st.empty()
        chosen = [column_select(f"Column for the labels of {md(field)}", columns, default,
                                f"{page}_label_column_for_{index}_{upload.file_id}")
                  for index, (field, default) in enumerate(zip(own, defaults))]
        if NO_COLUMN in chosen:
            unchosen = [field for field, column in zip(own, chosen) if column == NO_COLUMN]
            slot.warning(f"{md(upload.name)} has no column **{md(', '.join(unchosen))}** of the model's labels: "
                         "choose the column that holds them.")
    close += [(field, column) for field, column in matches.items() if column in chosen]
    if NO_COLUMN in chosen:
        return False
    return None if chosen == list(own) else tuple(chosen)


def chosen_image_column(clf: Categorizer, upload, encoding: str, header: bool, page: str,
                        close: list[tuple[str, str]]) -> str | None:
    """The upload's column naming the photos, for a model that reads them and an upload
    lacking its image column (None: the model's own; without it, predicted without photos)."""
    own = clf.fields_.image_col if clf.reads_images() else None
    columns = readable_columns(clf, upload, encoding, header, page)
    if not own or columns is None or own in columns:
        return None
    matches = close_matches(clf, [own], columns)
    with st.expander("Photo column", expanded=own not in matches):
        chosen = column_select(f"Column for the photos ({md(own)})", columns, matches.get(own, NO_COLUMN),
                               f"{page}_image_column_{upload.file_id}")
    close += [(own, column) for column in matches.values() if column == chosen]
    return None if chosen == NO_COLUMN else chosen


def readable_columns(clf: Categorizer, upload, encoding: str, header: bool, page: str,
                     labels: bool = False) -> list[str] | None:
    """The upload's columns, read once per file and reading settings (None: it cannot be read;
    predicting it says why)."""
    key = (upload.file_id, encoding, header)
    if st.session_state.get(f"{page}_columns_key") != key:
        try:
            columns = uploads.upload_columns(clf, upload.name, upload, session_workdir(), encoding=encoding,
                                             header=header, with_labels=labels)
        except ProdcatError:
            columns = None
        st.session_state[f"{page}_columns_key"], st.session_state[f"{page}_columns"] = key, columns
    return st.session_state[f"{page}_columns"]


def chosen_id_columns(clf: Categorizer, upload, encoding: str, header: bool, page: str,
                      close: list[tuple[str, str]], *, labels: bool = False) -> tuple[str, ...] | None:
    """The upload's columns copied to the download, when chosen otherwise than the model's id columns
    (None: the model's, those of them the upload has; an empty tuple: rows are numbered)."""
    columns = readable_columns(clf, upload, encoding, header, page, labels)
    if columns is None:
        return None
    own = list(clf.fields_.id_cols)
    as_named = [c for c in own if c in columns]
    matches = close_matches(clf, own, columns)
    defaults = [c if c in columns else matches[c] for c in own if c in columns or c in matches]
    key = f"{page}_id_columns_{upload.file_id}"
    # open when the model's ids are missing: the download would otherwise hold row numbers alone
    with st.expander("Id columns", expanded=len(defaults) < len(own)):
        keep_choice(key, columns, defaults)
        chosen = st.multiselect("Columns copied to the download (none: its rows are numbered)", columns, key=key,
                                on_change=remember_choice, args=(key,))
    close += [(field, column) for field, column in matches.items() if column in chosen]
    return None if chosen == as_named else tuple(chosen)


def once_per_upload(page: str, key: tuple, spinner: str, doing: str, work) -> None:
    """Run `work` once per upload and settings (`key`); its result, or its error as one line,
    stays in the session state under `page`_result / `page`_error for the reruns that follow."""
    if st.session_state.get(f"{page}_key") == key:
        return
    forget_upload(page)
    st.session_state[f"{page}_key"] = key
    try:
        with st.spinner(spinner):
            st.session_state[f"{page}_result"] = work()
    except ProdcatError as exc:
        st.session_state[f"{page}_error"] = str(exc)
    except Exception as exc:  # a bug, but the page shows a line, not a traceback
        log.exception("could not %s", doing)
        st.session_state[f"{page}_error"] = f"could not {doing}: {exc}"


def shown_result(page: str):
    """The error line of `page`'s upload, drawn; its result, or None."""
    if st.session_state.get(f"{page}_error"):
        st.error(md(st.session_state[f"{page}_error"]))
    return st.session_state.get(f"{page}_result")


def show_catalog_result(result: uploads.CatalogPrediction, out_format: str) -> None:
    products = "product" if result.rows == 1 else "products"
    st.success(
        f"{result.rows:,} {products} from {md(result.source_name)} categorized in {result.seconds:.2f} s "
        f"({result.rows_per_second:,} per second); **{result.needs_review:,} {'needs' if result.needs_review == 1 else 'need'} review**."
    )
    for warning in result.warnings:
        st.warning(md(warning))
    show_upload_photos(result)
    only_review = st.checkbox("Only the products that need review", key="only_review")
    table, total = (result.review_preview, result.needs_review) if only_review else (result.preview, result.rows)
    if len(table) < total:
        st.caption(f"Showing the first {len(table):,} of {total:,}; the download holds them all.")
    percent_columns = [c for c in table.columns if c == "confidence" or c.startswith("prob_")]
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={c: st.column_config.ProgressColumn(c, min_value=0.0, max_value=1.0, format="percent")
                       for c in percent_columns},
    )
    everything, review = st.columns(2)
    mime = uploads.MIME_TYPES[out_format]
    with everything:
        # Deferred: the file is read (and converted) only when the button is clicked.
        st.download_button(
            f"Download all {result.rows:,} predictions ({FORMAT_NAMES[out_format]})",
            data=lambda: uploads.predictions_bytes(result.out_path, out_format),
            file_name=result.download_name(out_format=out_format), mime=mime, key="download_all", on_click="ignore",
        )
    with review:
        st.download_button(
            f"Download the {result.needs_review:,} needing review ({FORMAT_NAMES[out_format]})",
            data=lambda: uploads.predictions_bytes(result.review_path, out_format),
            file_name=result.download_name(review_only=True, out_format=out_format),
            mime=mime, key="download_review", on_click="ignore", disabled=result.needs_review == 0,
        )


def show_upload_photos(result: uploads.CatalogPrediction) -> None:
    """How many of the photos the upload names were found on the server."""
    if result.image_column_missing:
        st.warning(f"{md(result.source_name)} has no column **{md(result.image_column_missing)}**: every product was "
                   "categorized without its photo.")
        return
    photos = result.photos
    if photos is None:
        return
    named = photos.found + photos.not_found
    if named and not photos.found:
        st.warning(f"None of the {named:,} photos named in **{md(photos.column)}** was found under {md(photos.folder)} "
                   "on this server: every product was categorized without its photo.")
    elif named:
        missing = f"; {photos.not_found:,} not found there" if photos.not_found else ""
        st.caption(f"Photos: {photos.found:,} of {result.rows:,} products have theirs under {md(photos.folder)}"
                   f"{missing}; {photos.without:,} name none.")
    else:
        st.caption(f"No product names a photo in **{md(photos.column)}**.")


# ------------------------------------------------------------------ labels
def labels_page(clf: Categorizer) -> None:
    fields = clf.fields_
    judge, _ = uploads.judge_model(clf)
    st.markdown(
        f"Upload a labelled catalog (CSV, TSV, JSON Lines or Parquet) with the columns "
        f"**{md(', '.join(fields.text_cols))}** and the "
        f"labels in **{md(', '.join(fields.label_cols))}** (named otherwise, you choose its columns once it is "
        f"uploaded). Each product is judged by a {md(judge)} model trained "
        f"on the rest of the upload ({DEFAULT_FOLDS} models, each leaving out its own part, copies of a product kept "
        "together), so no model vouches for a label it learned. cleanlab then flags the labels those models doubt "
        "beyond what their own classes' products show, with the class they would give instead: a list for a "
        "person to review, not to apply."
    )
    if clf.reads_images():
        st.info("This model reads photos, which an upload cannot carry: check such a catalog's labels where its "
                "photos are, with `prodcat label-issues`.", icon=":material/photo_library:")
        return
    encoding = st.selectbox("Text encoding (CSV, TSV, JSONL)", uploads.ENCODINGS, format_func=uploads.ENCODINGS.get,
                            key="labels_encoding")
    header = header_input(clf, "labels_header")
    upload = st.file_uploader("Catalog with labels", key="labels_upload", on_change=forget_upload, args=("labels",))
    if upload is not None:
        mapping = column_mapping(clf, upload, encoding, header, "labels", labels=True)
        if mapping is None:
            return
        key = (upload.file_id, encoding, header, *mapping.values())
        # Training the judges takes minutes for a neural model: they start on a click, once the
        # columns are as wanted, rather than again at each choice made on the way (another id
        # column would train them all again, the page waiting meanwhile).
        if st.button(f"Check the labels ({DEFAULT_FOLDS} {judge} models)", type="primary", key="check_labels"):
            once_per_upload("labels", key, f"Training {DEFAULT_FOLDS} {judge} models on {upload.name}…",
                            f"check the labels of {upload.name}",
                            lambda: uploads.check_labels_upload(clf, upload.name, upload, session_workdir(),
                                                                encoding=encoding, header=header, **mapping))
        elif st.session_state.get("labels_key") not in (None, key):
            st.caption("The columns or settings changed since the check below: check again to follow them.")
    result = shown_result("labels")
    if result is not None:
        show_label_check(result)


def show_label_check(result: uploads.LabelCheck) -> None:
    not_judged = (f" {result.not_judged:,} {'was' if result.not_judged == 1 else 'were'} not judged: no other product of their class to learn it from."
                  if result.not_judged else "")
    st.success(f"**{result.issues:,} of {result.rows:,} products** from {md(result.source_name)} are probably "
               f"mislabeled ({result.folds} models, {result.seconds:.1f} s).{not_judged}")
    for warning in result.warnings:
        st.warning(md(warning))
    if not result.issues:
        return
    if len(result.flagged) < result.issues:
        st.caption(f"Showing the {len(result.flagged):,} most doubtful; the download holds all {result.issues:,}.")
    shown_columns = [c for c in result.flagged.columns if c not in ("judged", "label_issue")]
    st.dataframe(
        result.flagged[shown_columns],
        hide_index=True,
        width="stretch",
        column_config={c: st.column_config.ProgressColumn(c, min_value=0.0, max_value=1.0, format="percent")
                       for c in ("label_quality", "suggested_probability")},
    )
    st.download_button(f"Download the {result.issues:,} flagged products (CSV)",
                       data=lambda: result.out_path.read_bytes(), file_name=result.download_name(),
                       mime=uploads.MIME_TYPES["csv"], key="download_label_issues", on_click="ignore")


# ------------------------------------------------------------------- model
def model_page(clf: Categorizer, model_dir: str) -> None:
    directory = Path(model_dir)
    report_files = [directory / "report" / "metrics.json",
                    *(directory / "report" / f"{n}.png" for n in model_report.FIGURES)]
    report = cached_report(model_dir, files_signature(report_files))
    manifest = clf.manifest_

    st.subheader("Headline metrics (held-out test split)")
    if report.metrics is None:
        st.info(report.problem)
    else:
        tiles = [("Test products", f"{report.metrics.get('n', 0):,}")]
        tiles += [(model_report.HEADLINE_NAMES[k], f"{v:.3f}") for k, v in report.headline().items()]
        for start in range(0, len(tiles), TILES_PER_ROW):
            for column, (name, value) in zip(st.columns(TILES_PER_ROW), tiles[start:start + TILES_PER_ROW]):
                column.metric(name, value)
    splits = model_report.split_metrics(manifest)
    if not splits.empty:
        st.caption("Every part of the split (train is a sample; a gap to test shows over-fitting):")
        st.dataframe(splits, hide_index=True, column_config=scores_format(splits))

    if report.metrics is not None:
        st.subheader("Per-class F1 (weakest first)")
        per_class = report.per_class()
        if per_class.empty:
            st.info("metrics.json holds no per-class scores.")
        else:
            st.dataframe(per_class, hide_index=True, column_config={
                **scores_format(per_class),
                "f1": st.column_config.ProgressColumn("f1", min_value=0.0, max_value=1.0, format="%.3f")})
        figure(report, "per_class_f1")

        st.subheader("Most confused pairs")
        confusions = report.confusions()
        if confusions.empty:
            # The confusion figure would only repeat this, so it is left out.
            if clf.fields_.label_format == "multi":
                st.info("No confusion pairs: a multi-label model's mistakes are per label (see per-class F1).")
            else:
                st.info("No confusion pairs: no test product was put in a wrong category.")
        else:
            st.dataframe(confusions, hide_index=True, column_config=scores_format(confusions))
            figure(report, "confusion_matrix")

        parts = report.parts()
        if not parts.empty:
            st.subheader("Each part alone, and combined")
            st.caption("Each member scored alone on the same test products, then the ensemble.")
            st.dataframe(parts, hide_index=True, column_config=scores_format(parts))
            if report.metrics.get("versus_best_part"):
                st.caption(md(versus_best_part_text(report.metrics["versus_best_part"])))

        levels = report.levels()
        if not levels.empty:
            st.subheader("Each level of the category path")
            st.dataframe(levels, hide_index=True, column_config=scores_format(levels))
            figure(report, "levels")

        if report.metrics.get("precision_coverage"):
            st.subheader("Precision against coverage")
            st.caption("How many products can be categorized automatically at each precision; "
                       "the rest go to review.")
            figure(report, "precision_coverage")

    st.subheader("Training curves")
    runs = model_report.event_runs(model_dir)
    event_files = sorted(p for run in runs for p in run.glob("events.out.tfevents.*"))
    curves = cached_curves(model_dir, files_signature(event_files)) if runs else {}
    if not curves:
        where = directory / "tensorboard"
        name = manifest["model"]["name"]
        source = (manifest["model"].get("params") or {}).get("source_model") if name == EXPORTED_MODEL else None
        if runs:
            reason = ""
        elif source:
            # an export is made from a saved model; the curves stay in the folder its source was trained in
            reason = f" (an export of a {source} model: its curves are in the tensorboard folder of the model it was exported from)"
        else:
            reason = f" ({name} logged none; models trained in epochs do)"
        st.info(f"No training curves: {where} holds no TensorBoard scalars{reason}.")
    for quantity, points in model_report.curve_charts(curves).items():
        st.markdown(f"**{quantity}**")
        if quantity == "macro_f1" and clf.fields_.label_format == "multi":
            # The trainer early-stops on this figure, which tuned cuts would flatter (training/trainer.py).
            st.caption("Each label decided at probability 0.5, as early stopping judges epochs; the scores "
                       "above decide at per-label cuts tuned on validation, so they differ.")
        st.line_chart(points, x="step", y="value", color="series", x_label="step", y_label=quantity)

    with st.expander("Model settings and training run"):
        st.json({"model": manifest.get("model"), "fields": manifest.get("fields"),
                 "training": manifest.get("training"), "libraries": manifest.get("libraries")}, expanded=False)


def scores_format(frame) -> dict:
    # Three decimals for scores; counts stay whole numbers.
    return {c: st.column_config.NumberColumn(c, format="%.3f")
            for c in frame.columns if frame[c].dtype.kind == "f"}


def figure(report: model_report.ModelReport, name: str) -> None:
    if name in report.figures:
        st.image(str(report.figures[name]), width="content")
    else:
        st.info(f"{name}.png is absent from {report.directory}.")


# -------------------------------------------------------------------- main
def main() -> None:
    st.set_page_config(page_title="prodcat", page_icon=":material/sell:", layout="wide")
    model_dir = model_dir_from_command_line(sys.argv[1:])
    if not model_dir:
        st.error(f"No model directory: start the app with `prodcat app MODEL_DIR` (or set {MODEL_ENV}).")
        st.stop()
    try:
        clf = load_categorizer(model_dir, files_signature([Path(model_dir).expanduser() / name for name in REQUIRED_FILES]))
    except ProdcatError as exc:
        st.error(md(exc))
        st.stop()
    top_k = sidebar(clf, model_dir)
    st.title("Product categorizer")
    product, catalog, labels, model = st.tabs(["Categorize a product", "Categorize a catalog", "Check labels",
                                               "Model"])
    with product:
        product_page(clf, top_k)
    with catalog:
        catalog_page(clf)
    with labels:
        labels_page(clf)
    with model:
        model_page(clf, model_dir)


# Streamlit runs this file as __main__; importing it (a test, a doc tool) draws nothing.
if __name__ == "__main__":
    main()
