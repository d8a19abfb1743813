import pytest

from prodcat.catalog.fields import PRESETS, FieldMapping, resolve_fields
from prodcat.errors import ConfigError


def test_options_override_config_file_which_overrides_preset(tmp_path):
    config = tmp_path / "fields.toml"
    config.write_text('text = ["name", "desc"]\nlabel = "cat"\nlabel_format = "path"\nlabel_level = 3\n')
    mapping = resolve_fields("flipkart", config, label_level=1)
    assert mapping.text_cols == ("name", "desc")
    assert mapping.label_cols == ("cat",)
    assert mapping.label_level == 1
    assert mapping.id_cols == ("uniq_id",)  # kept from the preset


def test_json_config_and_fields_table(tmp_path):
    config = tmp_path / "fields.json"
    config.write_text('{"fields": {"text": "title", "label": "category"}}')
    mapping = resolve_fields(config=config)
    assert mapping.text_cols == ("title",) and mapping.label_col == "category"


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(label_format="tree"), "unknown label format 'tree'"),
        (dict(label_level=0, label_format="path"), "label level must be 1 or more"),
        (dict(label_level=2, label_format="single"), "applies to path labels only"),
        (dict(label_cols=["a", "b"], label_format="single"), "several label columns form a path"),
        # `--label-col tags --label-sep '|'` without --label-format multi: "a|b" was learned as one class
        (dict(label_sep="|"), r"^--label-sep applies to multi-label and path labels \(--label-format multi or path\)"),
    ],
)
def test_inconsistent_options_are_refused(options, message):
    with pytest.raises(ConfigError, match=message):
        resolve_fields(text_cols=["t"], **options)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(text_cols=[None]), r"text_cols must be a column name or a list of column names, got \[None\]"),
        (dict(text_cols=b"title"), r"text_cols must be a column name or a list of column names, got b'title'"),
        (dict(text_cols=5.0), "text_cols must be a column name or a list of column names, got 5.0"),
        (dict(id_cols=["sku", ""]), "id_cols must be a column name or a list of column names"),
        (dict(label_sep=1, label_format="multi"), "label separator must be a string, got 1"),
        (dict(label_level="1", label_format="path"), "label level must be 1 or more .*got '1'"),
        (dict(label_level=True, label_format="path"), "label level must be 1 or more .*got True"),
        (dict(header="no"), "header must be true or false, got 'no'"),
    ],
)
def test_options_of_the_wrong_type_are_refused_by_name(options, message):
    # a notebook user's values: each was an AttributeError or TypeError from deep inside reading
    with pytest.raises(ConfigError, match=message):
        resolve_fields(**{"text_cols": ["t"], **options})


def test_fields_given_as_a_dict_are_refused():
    with pytest.raises(ConfigError, match="fields must be a FieldMapping, e.g. FieldMapping.*got a dict"):
        resolve_fields(base={"text_cols": ["title"]})


def test_column_names_from_any_iterable_are_kept_as_text():
    mapping = resolve_fields(text_cols=(c for c in ["title", 3]), label_cols="cat")
    assert mapping.text_cols == ("title", "3")


def test_a_label_column_read_as_text_is_refused():
    mapping = resolve_fields(text_cols=["title", "sub"], label_cols=["master", "sub"], label_format="path")
    with pytest.raises(ConfigError, match="column 'sub' is both a text and a label column"):
        mapping.require_labels()


def test_unknown_preset_and_unknown_config_keys(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset 'fashon'; presets: fashion"):
        resolve_fields("fashon")
    config = tmp_path / "bad.toml"
    config.write_text('txt = ["a"]\n')
    with pytest.raises(ConfigError, match="unknown field option"):
        resolve_fields(config=config)
    broken = tmp_path / "broken.toml"
    broken.write_text("text = [\n")
    with pytest.raises(ConfigError, match="not a valid TOML file"):
        resolve_fields(config=broken)


def test_mapping_round_trips_as_data():
    for mapping in PRESETS.values():
        assert FieldMapping.from_dict(mapping.to_dict()) == mapping


def test_text_fields_join_in_order_skipping_empty_ones():
    mapping = FieldMapping(text_cols=("title", "description"))
    assert mapping.join_text(["Shirt ", "", "  "]) == "Shirt"
    assert mapping.join_text(["Shirt", "Cotton"]) == "Shirt | Cotton"


def test_kaggle_preset_names_headerless_columns():
    mapping = PRESETS["kaggle-ecommerce"]
    assert not mapping.header and mapping.column_names == ("label", "text")


def test_a_label_separator_is_refused_for_single_labels_only_where_the_user_gave_it(tmp_path):
    config = tmp_path / "fields.toml"
    config.write_text('text = "t"\nlabel = "tags"\nlabel_sep = ";"\n')
    with pytest.raises(ConfigError, match="--label-sep applies to multi-label and path labels"):
        resolve_fields(config=config)
    assert resolve_fields(config=config, label_format="multi").label_sep == ";"
    # a preset's own separator, its format switched to single, is no mistake of the user's
    assert resolve_fields("flipkart", label_format="single").label_sep == ">>"
    # nor a saved model's mapping, loaded again (a model saved before this check may hold one)
    saved = FieldMapping(text_cols=("t",), label_cols=("tags",), label_sep="|")
    assert resolve_fields(base=saved).label_sep == "|"
