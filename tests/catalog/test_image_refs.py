"""Image cells become image references at load time: where relative paths
start (the root rule), templates, empty cells, URLs, bytes; no file is opened."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from prodcat.catalog.fields import PRESETS, FieldMapping, resolve_fields
from prodcat.catalog.load import catalog_from_frame, image_dir_for, image_ref, iter_catalog, load_catalog
from prodcat.errors import ColumnError, ConfigError
from prodcat.images.decode import ImageReader, RefusedPath

MAPPING = FieldMapping(text_cols=("title",), label_cols=("category",), image_col="photo")


def write_catalog(folder: Path, photos: list[str], name: str = "catalog.csv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame({
        "title": [f"product {i}" for i in range(len(photos))],
        "category": ["A", "B"] * (len(photos) // 2) + ["A"] * (len(photos) % 2),
        "photo": photos,
    })
    path = folder / name
    frame.to_csv(path, index=False)
    return path


def test_relative_root_found_beside_the_catalog_file(tmp_path, monkeypatch):
    catalog = write_catalog(tmp_path / "data", ["1.jpg", "sub/2.jpg"])
    (tmp_path / "data" / "images").mkdir()
    (tmp_path / "images").mkdir()  # also in the current directory: the file's folder wins
    monkeypatch.chdir(tmp_path)
    mapping = MAPPING.with_options(image_root="images")
    images = load_catalog(catalog, mapping).products.images
    assert images == [str(tmp_path / "data" / "images" / "1.jpg"), str(tmp_path / "data" / "images" / "sub" / "2.jpg")]


def test_relative_root_not_beside_the_file_is_taken_from_the_current_directory(tmp_path, monkeypatch):
    catalog = write_catalog(tmp_path / "data", ["1.jpg"])
    monkeypatch.chdir(tmp_path)
    images = load_catalog(catalog, MAPPING.with_options(image_root="photos")).products.images
    assert images == [str(Path("photos") / "1.jpg")]
    assert (tmp_path / images[0]) == tmp_path / "photos" / "1.jpg"


def test_an_absolute_root_is_used_as_is(tmp_path):
    catalog = write_catalog(tmp_path / "data", ["1.jpg"])
    root = tmp_path / "elsewhere"
    images = load_catalog(catalog, MAPPING.with_options(image_root=str(root))).products.images
    assert images == [str(root / "1.jpg")]


def test_without_a_root_paths_start_from_the_catalog_files_folder(tmp_path):
    catalog = write_catalog(tmp_path / "data", ["1.jpg", "pics/2.png"])
    images = load_catalog(catalog, MAPPING).products.images
    assert images == [str(tmp_path / "data" / "1.jpg"), str(tmp_path / "data" / "pics" / "2.png")]


def test_a_dataframe_reads_paths_from_the_current_directory():
    frame = pd.DataFrame({"title": ["a", "b"], "category": ["A", "B"], "photo": ["1.jpg", "x/2.jpg"]})
    assert load_catalog(frame, MAPPING).products.images == ["1.jpg", str(Path("x") / "2.jpg")]
    rooted = load_catalog(frame, MAPPING.with_options(image_root="imgs")).products.images
    assert rooted == [str(Path("imgs") / "1.jpg"), str(Path("imgs") / "x" / "2.jpg")]


def test_empty_cells_absolute_paths_urls_and_templates(tmp_path):
    absolute = str(tmp_path / "abs.jpg")
    catalog = write_catalog(tmp_path, ["", "  ", absolute, "https://cdn.example.com/1.jpg", "HTTP://x/2.jpg", "7"])
    mapping = MAPPING.with_options(image_root="images", image_template="{}.jpg")
    images = load_catalog(catalog, mapping).products.images
    root = Path("images")  # not beside the file: from the current directory
    assert images == [
        None,
        None,
        absolute + ".jpg",  # the template applies to every file cell, as the preset's ids need
        "https://cdn.example.com/1.jpg",
        "HTTP://x/2.jpg",
        str(root / "7.jpg"),
    ]


def test_an_absolute_path_stays_without_a_template(tmp_path):
    absolute = str(tmp_path / "shots" / "abs.jpg")
    catalog = write_catalog(tmp_path / "data", [absolute])
    assert load_catalog(catalog, MAPPING.with_options(image_root="images")).products.images == [absolute]


def test_bytes_and_missing_values_in_a_frame():
    frame = pd.DataFrame({
        "title": ["a", "b", "c", "d"],
        "category": ["A", "B", "A", "B"],
        "photo": [b"\x89PNG...", None, float("nan"), 1163.0],
    })
    mapping = MAPPING.with_options(image_template="{}.jpg")
    assert catalog_from_frame(frame, mapping).products.images == [b"\x89PNG...", None, None, "1163.jpg"]


def test_no_image_field_gives_no_image_list(tmp_path):
    catalog = write_catalog(tmp_path, ["1.jpg"])
    mapping = FieldMapping(text_cols=("title",), label_cols=("category",))
    assert load_catalog(catalog, mapping).products.images is None


def test_a_missing_image_column_names_it(tmp_path):
    catalog = write_catalog(tmp_path, ["1.jpg"])
    with pytest.raises(ColumnError, match="'picture'"):
        load_catalog(catalog, MAPPING.with_options(image_col="picture"))


def test_streaming_decides_the_root_like_a_whole_load(tmp_path):
    catalog = write_catalog(tmp_path / "data", [f"{i}.jpg" for i in range(7)] + [""])
    (tmp_path / "data" / "images").mkdir()
    mapping = MAPPING.with_options(image_root="images")
    whole = load_catalog(catalog, mapping, with_labels=False).products.images
    chunks = [ref for chunk in iter_catalog(catalog, mapping, chunk_size=3) for ref in chunk.products.images]
    assert chunks == whole
    assert whole[0] == str(tmp_path / "data" / "images" / "0.jpg") and whole[-1] is None


def test_loading_opens_no_image(tmp_path):
    # None of these files exist: loading still succeeds, and the references are just strings.
    catalog = write_catalog(tmp_path, ["nope.jpg", "gone/also.png"])
    images = load_catalog(catalog, MAPPING).products.images
    assert all(isinstance(ref, str) and not Path(ref).exists() for ref in images)


def test_image_dir_for_follows_the_rule(tmp_path):
    catalog = tmp_path / "shop" / "catalog.csv"
    (tmp_path / "shop" / "images").mkdir(parents=True)
    assert image_dir_for(MAPPING, catalog) == tmp_path / "shop"
    assert image_dir_for(MAPPING) is None
    assert image_dir_for(MAPPING.with_options(image_root="images"), catalog) == tmp_path / "shop" / "images"
    assert image_dir_for(MAPPING.with_options(image_root="other"), catalog) == Path("other")
    assert image_dir_for(MAPPING.with_options(image_root="images")) == Path("images")
    assert image_dir_for(MAPPING.with_options(image_root=str(tmp_path)), catalog) == tmp_path


def test_image_ref_keeps_bytes_and_drops_empty_bytes():
    assert image_ref(b"abc", Path("root")) == b"abc"
    assert image_ref(bytearray(b"abc"), None) == b"abc"
    assert image_ref(b"", Path("root")) is None
    assert image_ref("  a.jpg ", Path("root")) == str(Path("root") / "a.jpg")


@pytest.mark.parametrize("template", ["{name}.jpg", "{}{}.jpg", "no-placeholder.jpg", "{0}-{0}", "{"])
def test_a_bad_template_is_a_config_error(template):
    with pytest.raises(ConfigError, match="image template"):
        FieldMapping(text_cols=("title",), image_col="id", image_template=template)


def test_image_options_must_be_strings():
    with pytest.raises(ConfigError, match="image_root"):
        resolve_fields(text_cols=["title"], image_col="photo", image_root="")
    with pytest.raises(ConfigError, match="image_col"):
        FieldMapping(text_cols=("title",), image_col=3)


def test_the_mapping_keeps_the_root_as_given(tmp_path):
    catalog = write_catalog(tmp_path / "data", ["1.jpg"])
    (tmp_path / "data" / "images").mkdir()
    mapping = MAPPING.with_options(image_root="images")
    load_catalog(catalog, mapping)
    assert mapping.to_dict()["image_root"] == "images"


@pytest.mark.shared_data
def test_fashion_preset_finds_the_photos_beside_styles_csv(shared_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anywhere: the preset's "images" is found beside styles.csv
    catalog = load_catalog(shared_data / "fashion" / "styles.csv", PRESETS["fashion"])
    images = catalog.products.images
    assert len(images) == len(catalog) and all(isinstance(ref, str) for ref in images)
    existing = sum(Path(ref).is_file() for ref in images[:2000])
    assert existing > 200  # about a fifth of the products have a photo
    first = catalog.frame["id"][0]
    assert images[0] == str(shared_data / "fashion" / "images" / f"{first}.jpg")


def test_a_confined_reference_stays_inside_the_image_folder(tmp_path):
    # For catalogs sent by someone else (server and app uploads): names alone decide, nothing is opened.
    folder = tmp_path / "photos"
    assert image_ref("a.jpg", folder, confine=True) == str(folder / "a.jpg")
    assert image_ref("sub/../b.jpg", folder, confine=True) == str(folder / "sub/../b.jpg")
    assert image_ref(str(folder / "c.jpg"), folder, confine=True) == str(folder / "c.jpg")
    assert image_ref("https://cdn.example.com/d.jpg", folder, confine=True) == "https://cdn.example.com/d.jpg"
    for cell in ("../e.jpg", "sub/../../e.jpg", "/etc/passwd", str(tmp_path / "photos-old" / "f.jpg"), ".."):
        refused = image_ref(cell, folder, confine=True)
        assert isinstance(refused, RefusedPath) and str(refused) == cell
    # A template is applied before the check: "{}.jpg" cannot be used to climb out either.
    assert isinstance(image_ref("../../etc/secret", folder, "{}.jpg", confine=True), RefusedPath)
    # The template's own folder is the model owner's choice; only the cell is held inside it.
    assert image_ref("1163", folder, "/srv/photos/{}.jpg", confine=True) == "/srv/photos/1163.jpg"
    assert image_ref("1163", folder, "large/{}.jpg", confine=True) == str(folder / "large" / "1163.jpg")
    for cell in ("../1163", "../../etc/x"):
        assert isinstance(image_ref(cell, folder, "/srv/photos/{}.jpg", confine=True), RefusedPath)
        assert isinstance(image_ref(cell, folder, "large/{}.jpg", confine=True), RefusedPath)
    # Unconfined (the user's own catalog), absolute and ".." paths are theirs to use.
    assert image_ref("../e.jpg", folder) == str(folder / "../e.jpg")


def test_a_refused_path_counts_as_missing_and_is_never_opened(tmp_path):
    secret = tmp_path / "secret.png"
    Image.new("RGB", (8, 8)).save(secret)
    reader = ImageReader()
    assert reader.read(RefusedPath(str(secret))) is None
    assert reader.stats.missing == 1
    assert reader.stats.failures == [(str(secret), "outside the image folder: not read")]
