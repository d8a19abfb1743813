import numpy as np
import pytest

from prodcat.errors import LabelError
from prodcat.labels import (
    LabelSpace, check_path_levels, classes_spelled_apart, detect_separator, label_name, mixed_path_separators, mixed_path_separators_message, parse_labels,
    path_labels_from_columns, require_labels,
)


def test_single_labels_are_stripped():
    assert parse_labels([" Shirts ", "Shoes"], "single") == [("Shirts",), ("Shoes",)]


@pytest.mark.parametrize(
    "cell, expected",
    [
        ("a|b", ("a", "b")),
        ("b; a", ("a", "b")),
        ('["x", "y", "x"]', ("x", "y")),
        ("solo", ("solo",)),
        # a list of lists (Amazon's `categories` read as tags): every list's items, not '[["Men"'
        ('[["Clothing", "Men"], ["Sale"]]', ("Clothing", "Men", "Sale")),
    ],
)
def test_multi_label_cells(cell, expected):
    assert parse_labels([cell, "z"], "multi")[0] == expected


@pytest.mark.parametrize(
    "cell, sep, expected",
    [
        ("Apparel > Topwear > Shirts", None, ("Apparel", "Topwear", "Shirts")),
        ("Home >> Curtains >> Door", None, ("Home", "Curtains", "Door")),
        ("Home|Kitchen", None, ("Home", "Kitchen")),
        ('["Home Furnishing >> Curtains & Accessories >> Curtains >> Elegance..."]', None,
         ("Home Furnishing", "Curtains & Accessories", "Curtains", "Elegance...")),
        ("A/B/C", "/", ("A", "B", "C")),
        # a list of levels (a DataFrame's list cell reads as this JSON), not a list of paths
        ('["Apparel", "Topwear", "Shirts"]', None, ("Apparel", "Topwear", "Shirts")),
        ('["Home >> Curtains", "Home >> Rugs"]', ">>", ("Home", "Curtains")),
        # Amazon's `categories`: a list of paths, each a list of its levels; the first is the path
        ('[["Clothing", "Men", "Shirts"], ["Sale"]]', None, ("Clothing", "Men", "Shirts")),
        ('[["Home >> Curtains"]]', None, ("Home", "Curtains")),
    ],
)
def test_path_cells(cell, sep, expected):
    assert parse_labels([cell], "path", sep)[0] == expected


def test_an_empty_json_list_is_an_empty_label_in_every_format():
    for label_format in ("multi", "path"):
        with pytest.raises(LabelError, match="empty in 1 row"):
            parse_labels(["a > b", "[]"], label_format)


def test_json_list_cells_have_no_say_in_the_multi_label_separator():
    # a DataFrame column mixing Python lists and "a|b" text: the lists' commas are JSON's
    cells = ['["cotton", "men"]', '["silk", "women"]', "wool|kids"]
    assert parse_labels(cells, "multi")[2] == ("kids", "wool")


def test_null_items_of_a_json_list_are_no_labels():
    # Parquet list columns hold nulls; a pandas list holding NaN is written as JSON NaN
    assert parse_labels(['["cotton", null]', '["men", NaN, "cotton"]', "[null]", '["x", "y"]'], "multi",
                        require=False) == [("cotton",), ("cotton", "men"), (), ("x", "y")]
    assert parse_labels(['["Home", null, "Bath"]', '[null, "Home >> Curtains"]'], "path") == [
        ("Home", "Bath"), ("Home", "Curtains")]


@pytest.mark.parametrize("cell", ["Apparel > > Shirts", "> Apparel > Shirts", "Apparel > Shirts >",
                                  "Apparel >  > Shirts", "Apparel >> >> Shirts"])
def test_an_empty_level_of_a_path_cell_is_dropped(cell):
    # a spaced separator beside another, or at either end, leaves no level named "> Shirts" or "Shirts >"
    assert parse_labels([cell, "Home > Bath"], "path")[0] == ("Apparel", "Shirts")


def test_path_truncated_to_level():
    cells = ['["A >> B >> C >> D"]', "A >> E"]
    assert parse_labels(cells, "path", level=2) == [("A", "B"), ("A", "E")]


def test_double_separator_is_not_read_as_two_single_ones():
    assert detect_separator(["A >> B", "C >> D"], "path") == " >> "


# --- one column, two separators ----------------------------------------------------
PATHS = ["Apparel > Topwear > Shirts", "Apparel > Bottomwear > Jeans", "Home > Decor", "Apparel > Topwear > Shirts"]


@pytest.mark.parametrize("sep", [">", " > ", None])
@pytest.mark.parametrize("cell, other", [("Apparel / Topwear / Shirts", " / "), ("Apparel/Topwear", "/"),
                                         ("Home | Decor", "|"), ("Home >> Decor", " >> ")])
def test_a_path_written_with_another_separator_is_found(cell, other, sep):
    cells = PATHS[:2] + [cell] + PATHS[2:]
    used = sep or detect_separator(cells, "path")
    if used == ">" and ">" in cell:
        assert mixed_path_separators(cells, sep) is None  # ">>" read with ">" gives the same levels: no mistake
        return
    found = mixed_path_separators(cells, sep)
    assert found == {"separator": used, "others": {other: 1}, "rows": 1, "first_rows": [3], "example": cell,
                     "separator_unused": False}
    # what it would cost: a class of its own, one level deep
    assert parse_labels(cells, "path", sep)[2] == (cell,)


@pytest.mark.parametrize("cells, sep", [
    (PATHS, None),
    # A level name holding a "/" inside a proper path, or alone: legit labels.
    (PATHS + ["Apparel > T-Shirts/Tops", "T-Shirts/Tops", "Accessories"], None),
    (PATHS + ["Apparel > T-Shirts/Tops", "T-Shirts/Tops"], " > "),
    # ">>" read with ">" gives the same levels
    (PATHS + ["Apparel >> Topwear >> Shirts"], ">"),
    # another separator, but not before one of the column's top levels
    (PATHS + ["Kids / Toys"], None),
    # no separator at all, or none splitting any cell into levels
    (["Shirts", "Jeans"], None), (["Shirts/Tops", "Jeans"], ">"),
    (['["Home >> Decor"]', '["Home >> Lamps"]', "Apparel >> Shirts"], None),
])
def test_legit_path_columns_raise_no_alarm(cells, sep):
    assert mixed_path_separators(cells, sep) is None


def test_mixed_separators_count_every_row_and_show_the_first():
    cells = PATHS + ["Apparel / Topwear / Shirts"] * 7 + ['["Home | Decor"]']
    found = mixed_path_separators(cells, " > ", top=5)
    assert found == {"separator": " > ", "others": {" / ": 7, "|": 1}, "rows": 8, "first_rows": [5, 6, 7, 8, 9],
                     "example": "Apparel / Topwear / Shirts", "separator_unused": False}
    assert mixed_path_separators_message(found, where="cat.csv", column="category") == (
        "cat.csv: label column 'category' is split on ' > ', but 8 row(s) use ' / ' or '|' instead "
        "(row 5, 6, 7, 8, 9 and 3 more; e.g. 'Apparel / Topwear / Shirts'): each such label is learned as a class "
        "of its own; write them with ' > '")


# --- a separator no cell holds ------------------------------------------------------
@pytest.mark.parametrize("sep, other", [(">", " / "), (" > ", ">"), (" > ", " >> "), ("/", "|"), ("|", " > ")])
def test_a_separator_that_no_cell_holds_is_found_with_the_one_they_use(sep, other):
    cells = [path.replace(" > ", other) for path in PATHS] + ["Apparel", ""]
    found = mixed_path_separators(cells, sep)
    assert found == {"separator": sep, "others": {other: 4}, "rows": 4, "first_rows": [1, 2, 3, 4],
                     "example": cells[0], "separator_unused": True}
    # what it would cost: every label one level, a class of its own
    assert parse_labels(cells[:4], "path", sep) == [(cell,) for cell in cells[:4]]
    assert mixed_path_separators_message(found, where="cat.csv", column="category") == (
        f"cat.csv: label column 'category' is split on {sep!r}, which no cell holds, but 4 row(s) use {other!r} "
        f"(row 1, 2, 3, 4; e.g. {cells[0]!r}): every label is read as a one-level path; pass --label-sep {other!r}")
    assert mixed_path_separators(cells, other) is None and mixed_path_separators(cells) is None


@pytest.mark.parametrize("cells", [
    ["Shirts", "Jeans", "Home Decor"],  # a flat column
    ["T-Shirts/Tops", "Shorts/Skirts", "Jeans"],  # names with a "/", no tree: no top level is shared
    ["Apparel / Shirts", "Apparel / Jeans", "Shirts", "Jeans"],  # half the cells, not most
    ["Apparel / Shirts", "Apparel | Jeans", "Home / Bath", "Home | Decor"],  # no one other separator for most
])
def test_a_column_with_no_cell_split_by_the_separator_but_no_other_path_raises_no_alarm(cells):
    assert mixed_path_separators(cells, " > ") is None


def test_empty_labels_name_their_rows():
    with pytest.raises(LabelError, match=r"cat.csv: label column 'category' is empty in 2 row\(s\): row 2, 4"):
        parse_labels(["a", "", "b", "  "], "single", where="cat.csv", column="category")


def test_paths_from_columns_drop_empty_trailing_levels():
    labels = path_labels_from_columns([["Apparel", "Home"], ["Topwear", "Bath"], ["Shirts", ""]])
    assert labels == [("Apparel", "Topwear", "Shirts"), ("Home", "Bath")]


def test_paths_from_columns_cut_to_a_level_drop_the_levels_left_empty():
    columns = [["Apparel", "", "Home"], ["", "Bath", "Kitchen"], ["Shirts", "Mats", ""]]
    assert path_labels_from_columns(columns, 2) == [("Apparel",), ("", "Bath"), ("Home", "Kitchen")]
    assert path_labels_from_columns(columns, 1) == [("Apparel",), (), ("Home",)]
    with pytest.raises(LabelError, match="empty in 1 row"):
        require_labels(path_labels_from_columns([["Apparel", ""], ["Shirts", "Bath"]], 1), where="c.csv", column="a,b")


def test_label_space_encodes_and_decides_single():
    space = LabelSpace.from_labels([("b",), ("a",), ("b",)], "single")
    assert space.classes == ["a", "b"]
    assert space.encode([("b",), ("zzz",)]).tolist() == [1, -1]
    proba = np.array([[0.2, 0.8], [0.9, 0.1]])
    assert space.decisions_to_names(space.decide(proba)) == ["b", "a"]


def test_label_space_multi_uses_thresholds_and_never_decides_nothing():
    space = LabelSpace.from_labels([("a", "b"), ("c",)], "multi")
    y = space.encode([("a", "c"), ("unknown",)])
    assert y.tolist() == [[1, 0, 1], [0, 0, 0]]
    proba = np.array([[0.6, 0.3, 0.2], [0.1, 0.2, 0.3]])
    decided = space.decide(proba, thresholds=np.array([0.5, 0.25, 0.5]))
    assert decided.tolist() == [[1, 1, 0], [0, 0, 1]]  # row 2: none passes, the top class is kept


def test_path_space_levels():
    labels = [("Apparel", "Topwear", "Shirts"), ("Apparel", "Shoes"), ("Home", "Bath", "Towels")]
    space = LabelSpace.from_labels(labels, "path")
    assert space.depth == 3
    assert space.classes[0] == "Apparel > Shoes"
    assert LabelSpace.ancestor("Apparel > Topwear > Shirts", 2) == "Apparel > Topwear"
    assert label_name(labels[0], "path") == "Apparel > Topwear > Shirts"


def test_one_class_is_refused():
    with pytest.raises(LabelError, match="only one class"):
        LabelSpace.from_labels([("a",), ("a",)], "single", where="x.csv")


def test_label_space_round_trips_as_data():
    space = LabelSpace.from_labels([("a", "b"), ("a", "c")], "path")
    assert LabelSpace.from_dict(space.to_dict()) == space


def test_classes_spelled_apart_compare_path_levels_and_multi_label_tags_one_by_one():
    # a path is named at the level spelled apart: the top level, whatever follows it
    paths = [("Apparel", "Shirts")] * 3 + [("apparel", "Shirts"), ("Home", "Bath")]
    assert classes_spelled_apart(paths, "path")["first"] == [[["Apparel", 3], ["apparel", 1]]]
    # "apparel > Shoes" splits the top level "Apparel" in two, however distinct the leaves are
    paths = [("Apparel", "Shirts")] * 3 + [("apparel", "Shoes")] * 2 + [("Home", "Bath"), ("Home", "bath")]
    assert classes_spelled_apart(paths, "path") == {
        "groups": 2, "rows": 3, "first": [[["Apparel", 3], ["apparel", 2]], [["Home > Bath", 1], ["Home > bath", 1]]]}
    # a tag is a class of its own, whichever products carry it
    tags = [("Blue", "Shirts"), ("blue",), ("Shirts",), ("red",)]
    found = classes_spelled_apart(tags, "multi")
    assert found == {"groups": 1, "rows": 1, "first": [[["Blue", 1], ["blue", 1]]]}
    # the same letters composed or decomposed (a file from a Mac), or full-width, look alike: one class
    nfc, nfd = "K\u00fcche", "Ku\u0308che"
    found = classes_spelled_apart([(nfc,)] * 2 + [(nfd,), ("\uff33hirts",), ("Shirts",)], "single")
    assert found["first"] == [[[nfc, 2], [nfd, 1]], [["Shirts", 1], ["\uff33hirts", 1]]]
    # a zero-width space or a BOM, pasted from a web page, shows nowhere
    found = classes_spelled_apart([("Shirts",)] * 2 + [("Shirts\u200b",), ("\ufeffShirts",)], "single")
    assert found["first"] == [[["Shirts", 2], ["Shirts\u200b", 1], ["\ufeffShirts", 1]]]
    # one spelling each, however alike the names look otherwise
    assert classes_spelled_apart([("T-Shirts",), ("T Shirts",), ("Shirts",), ()], "single") is None


def test_path_levels_that_no_class_name_can_hold_are_refused_naming_their_rows():
    # "Kids > Toys" as one level was cut into two wherever a class was scored at a level
    joined = [("Home", "Kids > Toys"), ("Home", "Bath"), ("Home", "Kids > Toys")]
    with pytest.raises(LabelError, match=r"^c.csv: label column 'cat': a level holds ' > ', which joins a path's "
                                         r"levels, in 2 row\(s\): row 1, 3 \(levels \['Home', 'Kids > Toys'\]\); "
                                         r"write it without ' > '$"):
        check_path_levels(joined, where="c.csv", column="cat")
    with pytest.raises(LabelError, match=r"a level is empty while a level after it is not, in 1 row\(s\): row 3 "):
        check_path_levels([("A", "B"), ("A",), ("A", "", "C")], where="c.csv", column="a,b,c")
    fine = [("Home", "Kids>Toys"), ("Apparel", "Shirts"), ("Apparel",)]
    assert check_path_levels(fine, where="c.csv", column="cat") == fine


def test_several_paths_in_a_cell_are_found_by_a_later_piece_naming_a_top_level():
    from prodcat.labels import several_paths_in_cells

    cells = ["Clothing > Tshirts; Clothing > Sale", "Clothing > Shirts, Tops", "Home > Bath", "Home > Bath|Clothing"]
    found = several_paths_in_cells(cells)
    assert found == {"separator": " > ", "rows": 2, "first_rows": [1, 4], "example": cells[0]}
    # the column's own separator is no list separator
    assert several_paths_in_cells(["Clothing|Tshirts", "Home|Bath"], "|") is None
    assert several_paths_in_cells(["Clothing > Shirts, Tops", "Home > Bath"]) is None



def test_several_paths_in_a_cell_as_woocommerce_writes_them_are_found():
    from prodcat.labels import several_paths_in_cells

    base = ["Clothing > Tshirts", "Clothing > Hoodies", "Decor > Posters", "Music > Albums"]
    # a product in a category and in its parent: the parent's path comes first, in the first level
    assert several_paths_in_cells(base + ["Clothing, Clothing > Hoodies"])["first_rows"] == [5]
    # a category tree of its own ("Promo > Sale") that only ever follows other paths
    promo = ["Clothing > Tshirts, Promo > Sale", "Decor > Posters, Promo > Sale"]
    assert several_paths_in_cells(base + promo)["first_rows"] == [5, 6]
    # a flat category appended to a path, that stands alone elsewhere
    assert several_paths_in_cells(base + ["Clothing > Hoodies, Sale", "Sale"])["first_rows"] == [5]
    # product names as the last level (flipkart) hold commas after all kinds of words: no paths
    names = ["Decor > Posters > Canvas Art (18 inch, ...", "Music > Albums > Live (Pack of 2, ...",
             "Clothing > Tshirts > Polo (Pack of 1, Blue)", "Decor > Posters > Print (Matte, Blue)"]
    assert several_paths_in_cells(base + names) is None
    # a level whose name holds a comma, under several parents, is still one level
    shirts = ["Men > Shirts, Tops > Oxford", "Women > Shirts, Tops > Oxford", "Men > Shirts, Tops > Linen"]
    assert several_paths_in_cells(base + shirts) is None

def test_multi_label_tags_holding_the_prediction_joiner_are_refused_naming_their_rows():
    from prodcat.labels import check_multi_tags

    # A JSON list (or another separator) lets a tag hold "|"; prediction files, the server and
    # label-issues join a product's tags with "|", so "T-shirts|Tops" + "men" would read back as three tags.
    tags = parse_labels(['["T-shirts|Tops", "men"]', '["men"]', "T-shirts|Tops;kids"], "multi", ";")
    assert tags[0] == ("T-shirts|Tops", "men")
    with pytest.raises(LabelError, match=r"^c.csv: label column 'tags': a tag holds '\|', which joins a product's "
                                         r"tags in predictions, in 2 row\(s\): row 1, 3 \(tags \['T-shirts\|Tops', "
                                         r"'men'\]\); write it without '\|', or pass --label-sep '\|' where it parts "
                                         r"tags$"):
        check_multi_tags(tags, where="c.csv", column="tags")
    fine = [("T-shirts/Tops", "men"), ("kids",), ()]
    assert check_multi_tags(fine, where="c.csv", column="tags") == fine


def test_a_multi_label_column_of_one_tag_per_product_is_found_with_what_to_pass():
    from prodcat.labels import one_tag_each, one_tag_each_message

    # "/" is no separator detection tries: each cell is one class, combinations included
    cells = ["cotton/men", "red", "cotton/women/sale"]
    found = one_tag_each(parse_labels(cells, "multi"), cells)
    assert found == {"example": "cotton/men", "path_separator": None}
    assert one_tag_each_message(found, where="c.csv", column="tags").endswith(
        "(e.g. 'cotton/men'), so each cell is learned as one class; pass the separator its cells hold with "
        "--label-sep, or --label-format single for one class per product")
    paths = ["Apparel > Shirts", "Home > Bath", "Apparel > Shoes"]
    found = one_tag_each(parse_labels(paths, "multi"), paths)
    assert found["path_separator"] == " > "
    assert one_tag_each_message(found, where="c.csv", column="cat").endswith(
        "most cells are paths written with ' > ': pass --label-format path")
    tags = ["cotton|men", "red"]
    assert one_tag_each(parse_labels(tags, "multi"), tags) is None
