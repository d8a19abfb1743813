"""HTML markup in product texts: read as the text it shows, decided at training and saved."""

from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pytest

from cli_runner import run
from prodcat import Categorizer
from prodcat.catalog.markup import holds_markup, markup_findings, markup_to_text
from prodcat.catalog.products import Products
from prodcat.errors import ConfigError

WORDS = {
    "shirt": ["cotton", "slim", "collar", "sleeve", "button"],
    "shoe": ["sole", "lace", "running", "leather", "heel"],
    "mug": ["ceramic", "coffee", "handle", "dishwasher", "glaze"],
}


def shop_frame(n: int = 240, html: bool = True, seed: int = 0) -> pd.DataFrame:
    """A Shopify-like export: a title and a description in HTML (or the same words as plain text)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        kind = rng.choice(list(WORDS))
        first, second = rng.sample(WORDS[kind], 2)
        body = (f"<p><strong>{first}</strong></p><ul><li>{second}</li><li>Care &amp; wash</li></ul>" if html
                else f"{first} {second} Care & wash")
        rows.append({"sku": f"s{i}", "title": f"{kind} {i}", "body": body, "category": kind})
    return pd.DataFrame(rows)


def markup_moves(clf: Categorizer) -> float:
    """How far the model's probabilities move when the same words come wrapped in HTML."""
    html = clf.predict_proba([{"title": "mug", "body": "<ul><li><b>ceramic</b></li></ul>"}]).to_numpy()
    plain = clf.predict_proba([{"title": "mug", "body": "ceramic"}]).to_numpy()
    return float(np.abs(html - plain).max())


@pytest.mark.parametrize("text, shown", [
    ("<p>Cotton&nbsp;shirt</p><ul><li>Slim fit</li><li>Blue &amp; white</li></ul>", "Cotton shirt Slim fit Blue & white"),
    ("Tom &amp; Jerry<br/>DVD", "Tom & Jerry DVD"),
    ("H<sub>2</sub>O <b>Cotton</b>-rich", "H2O Cotton-rich"),  # inline tags do not split words
    ("<style>.x{color:red}</style><script>var a = '<p>';</script>Shirt", "Shirt"),
    ("price &#8377; 499 <!-- sale -->", "price ₹ 499"),
    ('<div class="a" data-x="1>2">text</div>', "text"),
    ("size<m <br/> cotton", "size<m cotton"),  # a stray "<" before a letter is text, not a tag's start
    ("<!DOCTYPE html><?xml version='1.0'?><P>Shirt</P><BR>XL", "Shirt XL"),
])
def test_markup_reads_as_the_text_it_shows(text, shown):
    assert holds_markup(text)
    assert markup_to_text(text) == shown


@pytest.mark.parametrize("text", ["5 < 7 & 8 > 6", "R&D dept", "Shirt <3", "a<5cm", "Jack & Jones", ""])
def test_text_without_markup_is_left_as_it_is(text):
    assert not holds_markup(text)
    assert markup_to_text(text) == text


def test_fields_are_read_apart_so_two_fields_never_make_one_tag():
    # "<b" ends the title and "x>" starts the description: joined, they would look like one tag
    products = Products(texts=["Size <b | x> &amp; more"], fields={"title": ["Size <b"], "body": ["x> &amp; more"]})
    read = products.without_markup()
    assert read.fields == {"title": ["Size <b"], "body": ["x> & more"]}
    assert read.texts == ["Size <b | x> & more"]


def test_markup_findings_name_the_columns_that_hold_markup():
    found = markup_findings({"title": ["Shirt", "Tom &amp; Jerry", "Mug"], "body": ["plain", "", "text"]})
    assert list(found) == ["title"]
    assert found["title"]["cells"] == 1 and found["title"]["tags"] is False


def test_train_reads_html_texts_without_markup_and_saves_that(tmp_path, capsys):
    data = tmp_path / "shop.csv"
    shop_frame().to_csv(data, index=False)
    code, out, err = run(capsys, "train", "--data", data, "--text-cols", "title,body", "--label-col", "category",
                         "--out", tmp_path / "model")
    assert code == 0, err
    assert "column 'body' of" in err and "holds HTML markup in 100% of its texts" in err
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    assert manifest["fields"]["strip_markup"] == ["body"]

    clf = Categorizer.load(tmp_path / "model")
    # the model reads what the HTML shows: markup around the same words changes nothing
    html = clf.predict_proba([{"title": "mug", "body": "<ul><li><b>ceramic</b></li><li>glaze</li></ul>"}])
    plain = clf.predict_proba([{"title": "mug", "body": "ceramic glaze"}])
    np.testing.assert_allclose(html.to_numpy(), plain.to_numpy(), atol=1e-6)
    # a file predicted later is read the same way
    later = tmp_path / "later.csv"
    pd.DataFrame({"title": ["mug"], "body": ["<p>ceramic</p> <p>glaze</p>"]}).to_csv(later, index=False)
    np.testing.assert_allclose(clf.predict_proba(later).to_numpy(), plain.to_numpy(), atol=1e-6)


def test_only_the_columns_holding_markup_are_read_without_it():
    # a title's "<NEW>" is a word of the shop's, not a tag, when only the descriptions are HTML
    frame = shop_frame()
    frame["title"] = "<NEW> " + frame["title"]
    frame.loc[:1, "title"] = frame.loc[:1, "title"] + " &amp; more"  # markup in under 1% of the titles (2 of 240)
    clf = Categorizer(text_cols=["title", "body"], label_col="category", quiet=True).fit(frame)
    assert clf.fields_.strip_markup == ("body",)
    read = clf._fitted  # what the model reads of a product: its title as written
    seen = []
    predict = read.predict_proba
    read.predict_proba = lambda products: seen.append(products) or predict(products)
    clf.predict_proba([{"title": "<NEW> mug &amp; co", "body": "<p>ceramic</p>"}])
    assert seen[0].fields == {"title": ["<NEW> mug &amp; co"], "body": ["ceramic"]}
    assert seen[0].texts == ["<NEW> mug &amp; co | ceramic"]
    # strip_markup=True reads every text column without it
    every = Categorizer(text_cols=["title", "body"], label_col="category", strip_markup=True, quiet=True).fit(frame)
    assert every.fields_.strip_markup is True


def test_markup_keep_reads_texts_as_written(tmp_path, capsys):
    data = tmp_path / "shop.csv"
    shop_frame().to_csv(data, index=False)
    code, _, err = run(capsys, "train", "--data", data, "--text-cols", "title,body", "--label-col", "category",
                       "--out", tmp_path / "model", "--markup", "keep")
    assert code == 0, err
    assert "HTML markup" not in err
    clf = Categorizer.load(tmp_path / "model")
    assert clf.fields_.strip_markup is False
    assert markup_moves(clf) > 1e-3


def test_a_catalog_without_markup_saves_that_its_texts_are_read_as_written(tmp_path):
    clf = Categorizer(text_cols=["title", "body"], label_col="category", quiet=True).fit(shop_frame(html=False))
    assert clf.fields_.strip_markup is False
    clf.save(tmp_path / "model")
    assert json.loads((tmp_path / "model" / "manifest.json").read_text())["fields"]["strip_markup"] is False


def test_strip_markup_true_strips_even_when_training_texts_hold_none(tmp_path):
    clf = Categorizer(text_cols=["title", "body"], label_col="category", strip_markup=True, quiet=True)
    clf.fit(shop_frame(html=False))
    assert clf.fields_.strip_markup is True
    assert markup_moves(clf) < 1e-6


def test_a_model_saved_before_the_option_reads_texts_as_written(tmp_path):
    clf = Categorizer(text_cols=["title", "body"], label_col="category", quiet=True).fit(shop_frame())
    clf.save(tmp_path / "model")
    manifest_path = tmp_path / "model" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["fields"]["strip_markup"]
    manifest_path.write_text(json.dumps(manifest))
    old = Categorizer.load(tmp_path / "model")
    assert old.fields_.strip_markup is None
    assert markup_moves(old) > 1e-3


def test_evaluate_scores_html_texts_as_the_model_reads_them(tmp_path):
    clf = Categorizer(text_cols=["title", "body"], label_col="category", quiet=True).fit(shop_frame())
    test_html, test_plain = shop_frame(60, seed=1), shop_frame(60, html=False, seed=1)
    np.testing.assert_allclose(clf.predict_proba(test_html).to_numpy(), clf.predict_proba(test_plain).to_numpy(),
                               atol=1e-6)
    assert clf.evaluate(test_html)["macro_f1"] == clf.evaluate(test_plain)["macro_f1"]


def test_inspect_reports_markup(tmp_path, capsys):
    data = tmp_path / "shop.csv"
    shop_frame(50).to_csv(data, index=False)
    code, out, err = run(capsys, "inspect", "--data", data, "--text-cols", "title,body", "--label-col", "category",
                         "--json")
    assert code == 0, err
    assert json.loads(out)["markup"] == {"body": {"share": 1.0, "cells": 50, "tags": True}}


def test_bad_markup_choices_are_one_line_errors(tmp_path, capsys):
    data = tmp_path / "shop.csv"
    shop_frame(30).to_csv(data, index=False)
    code, _, err = run(capsys, "train", "--data", data, "--text-cols", "title,body", "--label-col", "category",
                       "--out", tmp_path / "model", "--markup", "remove")
    assert code != 0 and "--markup must be one of auto, strip, keep, got 'remove'" in err
    assert "Traceback" not in err
    config = tmp_path / "fields.toml"
    config.write_text('strip_markup = "yes"\n')
    code, _, err = run(capsys, "train", "--data", data, "--config", config, "--text-cols", "title,body",
                       "--label-col", "category", "--out", tmp_path / "model")
    assert code != 0 and "strip_markup must be true, false or a list of text columns, got 'yes'" in err
    with pytest.raises(ConfigError):
        Categorizer(text_cols=["title"], label_col="category", strip_markup="auto").fit(shop_frame(30))


def test_products_that_differ_only_in_markup_are_the_same_product_to_the_split_and_evaluate():
    frame = shop_frame()
    clf = Categorizer(text_cols=["title", "body"], label_col="category", quiet=True).fit(frame)
    # the same listings exported again with other markup: the model reads the same texts
    again = frame.assign(body=frame["body"].str.replace("<p>", "<div>").str.replace("</p>", "</div>")
                         .str.replace("<strong>", "<b>").str.replace("</strong>", "</b>"))
    scored = clf.evaluate(again)
    assert scored["excluded_seen_in_training"] == len(frame) - clf.test_metrics_["n"]
    assert scored["n"] == clf.test_metrics_["n"]
    # a model reading texts as written sees other texts
    keep = Categorizer(text_cols=["title", "body"], label_col="category", strip_markup=False, quiet=True).fit(frame)
    assert keep.evaluate(again)["excluded_seen_in_training"] == 0


@pytest.mark.parametrize("text, shown", [
    ("<p><![CDATA[Cotton shirt]]></p>", "Cotton shirt"),
    ("<![CDATA[<p>Cotton &amp; linen</p><ul><li>Slim fit</li></ul>]]>", "Cotton & linen Slim fit"),
    ("<![CDATA[Cotton shirt, slim fit]]>", "Cotton shirt, slim fit"),
    ("<![CDATA[left <b>open</b>", "left open"),
])
def test_cdata_sections_of_xml_feeds_keep_their_text(text, shown):
    # html.parser drops a CDATA section whole: a feed's description read as nothing
    assert holds_markup(text)
    assert markup_to_text(text) == shown


def test_a_column_of_cdata_descriptions_is_found_as_markup():
    found = markup_findings({"title": ["Shirt"] * 10, "body": ["<![CDATA[Cotton shirt]]>"] * 10})
    assert list(found) == ["body"] and found["body"]["tags"]


def test_reading_markup_otherwise_than_the_model_was_trained_is_refused(tmp_path):
    # the local engine ignored strip_markup given for a file, and the Ray engine followed it
    clf = Categorizer(text_cols=["title", "body"], label_col="category", quiet=True).fit(shop_frame())
    shop_frame(20, seed=1).to_csv(tmp_path / "more.csv", index=False)
    with pytest.raises(ConfigError, match="strip_markup is decided when the model is trained"):
        clf.predict_file(tmp_path / "more.csv", tmp_path / "out.csv", strip_markup=False)
    assert not (tmp_path / "out.csv").exists()


def test_inspect_counts_listings_that_differ_only_in_markup_as_duplicates(tmp_path, capsys):
    # as train groups them: one product exported twice with other HTML
    frame = shop_frame(50)
    again = frame.assign(body=frame["body"].str.replace("<p>", "<div>").str.replace("</p>", "</div>"))
    data = tmp_path / "twice.csv"
    pd.concat([frame, again], ignore_index=True).to_csv(data, index=False)
    code, out, err = run(capsys, "inspect", "--data", data, "--text-cols", "title,body", "--label-col", "category",
                         "--json")
    assert code == 0, err
    assert json.loads(out)["duplicates"]["normalized"] == 50
