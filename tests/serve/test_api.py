"""The HTTP API through FastAPI's TestClient: every endpoint, every bad request."""

from __future__ import annotations

import base64
import io
import tempfile
import threading
import time
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from prodcat import Categorizer
from prodcat.errors import ConfigError
from prodcat.serve import create_app
from tiny_catalogs import FORMATS, tiny_frame

TIMEOUT = 10
# TestClient calls the app in-process, with no network timeout: bound each test instead.
pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    clf = Categorizer(text_cols=["title", "description"], label_col="category", label_format="path",
                      id_cols=["sku"], quiet=True)
    clf.fit(tiny_frame())
    return clf.save(tmp_path_factory.mktemp("serve") / "model")


@pytest.fixture(scope="module")
def clf(model_dir):
    return Categorizer.load(model_dir, quiet=True)


@pytest.fixture(scope="module")
def client(model_dir):
    app = create_app(model_dir)
    with TestClient(app) as client:
        yield client
    # Nothing a test sent to this app may have reached the 500 handler.
    assert app.state.counter["internal_errors"] == 0


def expected_rows(clf, products, top_k=3, target_precision=None):
    table = clf.predict_table(products, top_k=top_k, target_precision=target_precision)
    k = min(top_k, len(clf.classes_))
    rows = [
        {
            "prediction": row["prediction"],
            "confidence": row["confidence"],
            "needs_review": bool(row["needs_review"]),
            "top_k": [{"label": row[f"label_{r}"], "probability": row[f"prob_{r}"]} for r in range(1, k + 1)],
        }
        for _, row in table.iterrows()
    ]
    if "confident_path" in table.columns:  # a path model's
        for row, (_, line) in zip(rows, table.iterrows()):
            row.update(confident_path=line["confident_path"], confident_level=int(line["confident_level"]))
    return rows


PRODUCTS = [
    {"title": "oxford cotton shirt blue", "description": "a fine shirt for every day"},
    {"title": "leather running sneaker", "sku": "X-1", "price": 40},  # no description, extra keys
    {"title": None, "description": "a fine duvet for every day"},
]


# ------------------------------------------------------------------ endpoints
def test_health_names_the_model(client):
    assert client.get("/health").json() == {"status": "ok", "model": "tfidf-linear"}


def test_model_info_describes_the_loaded_model(client, clf):
    info = client.get("/v1/model").json()
    assert info["model"]["name"] == "tfidf-linear"
    assert info["model"]["params"] == clf.manifest_["model"]["params"]
    assert info["text_fields"] == ["title", "description"]
    assert info["id_fields"] == ["sku"]
    assert info["label_format"] == "path"
    assert info["classes"] == clf.classes_ and info["n_classes"] == 4
    assert info["review"]["threshold"] == clf.review_threshold()
    assert info["review"]["target_precision"] == 0.95
    assert info["metrics"]["test"]["macro_f1"] >= 0.8
    assert info["prodcat_version"] == info["trained_with_prodcat"] == "0.1.0"
    assert info["exported"] is None


def test_predict_returns_what_the_facade_predicts(client, clf):
    response = client.post("/v1/predict", json=PRODUCTS)
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "tfidf-linear"
    assert body["review_threshold"] == clf.review_threshold()
    assert body["predictions"] == expected_rows(clf, [{k: p.get(k) or "" for k in ("title", "description")}
                                                      for p in PRODUCTS])
    assert [p["prediction"] for p in body["predictions"]] == ["Apparel > Shirts", "Apparel > Shoes", "Home > Bedding"]
    for row in body["predictions"]:
        assert len(row["top_k"]) == 3
        assert row["top_k"][0]["label"] == row["prediction"]
        assert row["needs_review"] == (row["confidence"] < body["review_threshold"])


def test_top_k_is_capped_by_the_number_of_classes(client):
    one = client.post("/v1/predict?top_k=1", json=PRODUCTS[:1]).json()["predictions"][0]
    many = client.post("/v1/predict?top_k=50", json=PRODUCTS[:1]).json()["predictions"][0]
    assert len(one["top_k"]) == 1 and len(many["top_k"]) == 4
    assert many["top_k"][0] == one["top_k"][0]
    assert sum(item["probability"] for item in many["top_k"]) == pytest.approx(1.0, abs=1e-4)


def test_target_precision_moves_the_review_threshold(client, clf):
    body = client.post("/v1/predict?target_precision=0.5", json=PRODUCTS).json()
    assert body["review_threshold"] == clf.review_threshold(0.5)
    assert body["predictions"] == expected_rows(clf, [{k: p.get(k) or "" for k in ("title", "description")}
                                                      for p in PRODUCTS], target_precision=0.5)


def test_a_valid_image_is_accepted_and_ignored_by_a_text_model(client):
    image = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(100)).decode()
    with_image = client.post("/v1/predict", json=[{**PRODUCTS[0], "image": image}])
    data_url = client.post("/v1/predict", json=[{**PRODUCTS[0], "image": "data:image/png;base64," + image}])
    without = client.post("/v1/predict", json=PRODUCTS[:1])
    assert with_image.status_code == data_url.status_code == 200
    assert with_image.json() == data_url.json() == without.json()


def test_text_holding_half_a_character_is_a_422(client):
    # JSON's \ud800 escape is half a UTF-16 pair: bert's tokenizer failed on it, and so did the
    # shared model call of every request batched with it.
    response = client.post("/v1/predict", content=b'[{"title": "oxford shirt"}, {"title": "a \\ud800 shirt"}]',
                           headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"] == ("products[1].title holds an unpaired surrogate ('\\ud800' at character 2), "
                                        "which is no text")


def test_a_multi_label_model_joins_its_labels(tmp_path):
    clf = Categorizer(quiet=True, **FORMATS["multi"]).fit(tiny_frame())
    products = [{"title": "oxford cotton shirt red", "description": "a fine shirt for every day"}]
    with TestClient(create_app(clf)) as client:
        body = client.post("/v1/predict?top_k=5", json=products).json()
    assert body["predictions"] == expected_rows(clf, products, top_k=5)
    assert set(body["predictions"][0]["prediction"].split("|")) == {"apparel", "red", "shirts"}


# --------------------------------------------------------------- bad requests
LONG = "x" * 101


@pytest.mark.parametrize("path, body, status, says", [
    ("/v1/predict", b"", 400, "empty body"),
    ("/v1/predict", b"[{\"title\": ", 400, "invalid JSON"),
    ("/v1/predict", b"\xff\xfe[", 400, "invalid JSON"),
    ("/v1/predict", b"[" * 100_000, 400, "nested too deeply"),
    ("/v1/predict", b'{"title": "shirt"}', 422, "must be a JSON list of products, got an object"),
    ("/v1/predict", b'"shirt"', 422, "got a string"),
    ("/v1/predict", b"[]", 422, "the list of products is empty"),
    ("/v1/predict", b'[{"title": "a"}, 7]', 422, "products[1] is a number"),
    ("/v1/predict", b'[{"title": "a"}, {"title": 5}]', 422, "products[1].title must be a string or null, got a number"),
    ("/v1/predict", b'[{"title": "a"}, {"description": ["x"]}]', 422, "products[1].description must be a string"),
    ("/v1/predict", b'[{"title": "a"}, {"title": "b"}, {"sku": "1"}]', 422,
     "products[2] has none of the model's text fields ('title', 'description')"),
    ("/v1/predict", b'[{"title": null, "description": null}]', 422, "products[0] has none of the model's text fields"),
    ("/v1/predict", ('[{"title": "a"}, {"description": "%s"}]' % LONG).encode(), 422,
     "products[1].description has 101 characters; the limit is 100"),
    ("/v1/predict", b'[{"title": "a", "image": "not base64!"}]', 422, "products[0].image is not valid base64"),
    ("/v1/predict", b'[{"title": "a"}, {"title": "a", "image": 12}]', 422,
     "products[1].image must be a base64 string or null, got a number"),
    ("/v1/predict", b'[{"title": "a", "image": "%s"}]' % base64.b64encode(bytes(300)), 413,
     "products[0].image decodes to more than the limit of 200 bytes"),
    ("/v1/predict", b"[" + b",".join([b'{"title": "a"}'] * 6) + b"]", 413,
     "6 products in one request; the limit is 5"),
    ("/v1/predict?top_k=0", b'[{"title": "a"}]', 422, "query parameter 'top_k'"),
    ("/v1/predict?top_k=11", b'[{"title": "a"}]', 422, "query parameter 'top_k'"),
    ("/v1/predict?top_k=three", b'[{"title": "a"}]', 422, "query parameter 'top_k'"),
    ("/v1/predict?target_precision=1.5", b'[{"title": "a"}]', 422, "query parameter 'target_precision'"),
    ("/v1/nothing", b"[]", 404, "no such endpoint: /v1/nothing"),
])
def test_bad_requests_get_a_4xx_naming_the_problem(path, body, status, says, model_dir):
    app = create_app(model_dir, max_text_chars=100, max_products=5, max_image_bytes=200, max_top_k=10)
    with TestClient(app) as client:
        response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert says in response.json()["error"]
    assert app.state.counter["internal_errors"] == 0


def test_wrong_method_is_a_405(client):
    response = client.get("/v1/predict")
    assert response.status_code == 405
    assert response.json() == {"error": "GET is not allowed on /v1/predict"}


@pytest.fixture(scope="module")
def small_client(model_dir):
    app = create_app(model_dir, max_body_bytes=1000, max_upload_bytes=5000)
    with TestClient(app) as client:
        yield client
    assert app.state.counter["internal_errors"] == 0


def test_an_oversized_body_is_a_413(small_client):
    body = b'[{"title": "%s"}]' % (b"x" * 2000)
    response = small_client.post("/v1/predict", content=body)
    assert response.status_code == 413
    assert response.json() == {"error": "request body over the limit of 1,000 bytes"}


def test_an_oversized_chunked_body_without_content_length_is_a_413(small_client):
    def chunks():
        # No Content-Length to check up front: the server counts the bytes as they come.
        for _ in range(100):
            yield b"x" * 500

    response = small_client.post("/v1/predict", content=chunks())
    assert response.status_code == 413
    assert "over the limit of 1,000 bytes" in response.json()["error"]


def test_an_oversized_upload_is_a_413(small_client):
    upload = b"title,description\n" + b"shirt,cotton\n" * 1000
    response = small_client.post("/v1/predict/file", files={"file": ("big.csv", upload, "text/csv")})
    assert response.status_code == 413
    assert "over the limit of 5,000 bytes" in response.json()["error"]


def test_a_bug_is_a_logged_json_500(model_dir, monkeypatch, caplog):
    app = create_app(model_dir)
    with TestClient(app) as client:
        def broken(*args, **kwargs):
            raise RuntimeError("a bug")

        monkeypatch.setattr(app.state.clf, "predict_table", broken)
        response = client.post("/v1/predict", json=PRODUCTS)
    assert response.status_code == 500
    assert "internal error" in response.json()["error"]
    assert app.state.counter["internal_errors"] == 1
    assert "a bug" in caplog.text


def test_unknown_limit_names_the_known_ones(model_dir):
    with pytest.raises(ConfigError, match="unknown server limit.*max_prodcuts.*known: .*max_products"):
        create_app(model_dir, max_prodcuts=5)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(max_products="10"), "server limit max_products must be a whole number, 1 or more; got '10'"),
        (dict(max_top_k=0), "server limit max_top_k must be a whole number, 1 or more; got 0"),
        (dict(batch_wait_ms=-1), "server limit batch_wait_ms must be a number of milliseconds, 0 or more; got -1"),
        (dict(limits={"max_products": 5}), "limits must be a ServeLimits .*got a dict"),
    ],
)
def test_a_limit_of_the_wrong_type_or_value_is_refused_when_the_app_is_made(model_dir, options, message):
    # max_products="10" answered every request with a 500, max_products=0 refused every product,
    # and a dict for limits was a TypeError from dataclasses.replace
    with pytest.raises(ConfigError, match=message):
        create_app(model_dir, **options)


def test_a_model_that_is_no_path_is_refused_when_the_app_is_made():
    with pytest.raises(ConfigError, match="the model directory must be a path .*got None"):
        create_app(None)


# ------------------------------------------------------------------- batching
def test_concurrent_requests_share_model_calls_and_match_unbatched(model_dir, clf):
    app = create_app(model_dir, batch_wait_ms=20)
    frame = tiny_frame(n_per_class=6, seed=3)
    requests = [
        ([{"title": t, "description": d}], top_k, target)
        for (t, d), top_k, target in zip(
            zip(frame["title"], frame["description"]), [1, 2, 3, 4] * 6, [None, None, 0.5] * 8
        )
    ]
    with TestClient(app) as client:
        model = app.state.clf
        calls = []
        real = model.predict_table

        def counted(products, *args, **kwargs):
            calls.append(len(products))
            # A slow model, as under load: requests pile up behind each call.
            time.sleep(0.05)
            return real(products, *args, **kwargs)

        model.predict_table = counted
        barrier = threading.Barrier(len(requests), timeout=TIMEOUT)

        def send(request):
            products, top_k, target = request
            barrier.wait()
            query = f"?top_k={top_k}" + (f"&target_precision={target}" if target else "")
            return client.post("/v1/predict" + query, json=products)

        with ThreadPoolExecutor(len(requests)) as pool:
            responses = list(pool.map(send, requests))

    assert all(r.status_code == 200 for r in responses)
    assert len(calls) < len(requests) / 2
    assert sum(calls) == len(requests)
    assert max(calls) > 1
    for (products, top_k, target), response in zip(requests, responses):
        assert response.json()["predictions"] == expected_rows(clf, products, top_k, target)
    assert app.state.counter["internal_errors"] == 0


# ---------------------------------------------------------------------- files
@pytest.fixture
def temp_root(tmp_path, monkeypatch):
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def catalog_frame():
    return tiny_frame(n_per_class=5, seed=7)[["sku", "title", "description"]]


def test_a_csv_upload_comes_back_as_csv_predictions(client, clf, temp_root):
    frame = catalog_frame()
    response = client.post("/v1/predict/file?top_k=2",
                           files={"file": ("shop.csv", frame.to_csv(index=False).encode(), "text/csv")})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="shop.predictions.csv"' in response.headers["content-disposition"]
    assert response.headers["x-prodcat-rows"] == str(len(frame))
    out = pd.read_csv(io.BytesIO(response.content), dtype={"sku": str})
    assert out["sku"].tolist() == frame["sku"].tolist()
    assert list(out.columns) == ["sku", "prediction", "confidence", "needs_review", "label_1", "prob_1",
                                 "label_2", "prob_2", "confident_path", "confident_level"]
    expected = clf.predict_table(frame, top_k=2)
    assert out["prediction"].tolist() == expected["prediction"].tolist()
    assert out["confidence"].tolist() == pytest.approx(expected["confidence"].tolist(), abs=1e-6)
    assert list(temp_root.iterdir()) == []


def test_a_header_less_upload_is_read_with_header_false(client, clf, temp_root):
    frame = catalog_frame()
    bare = frame.to_csv(index=False, header=False).encode()
    # read with the model's header, its first product is a header and its columns are not the model's
    response = client.post("/v1/predict/file", files={"file": ("bare.csv", bare, "text/csv")})
    assert response.status_code == 422
    response = client.post("/v1/predict/file", files={"file": ("bare.csv", bare, "text/csv")},
                           params={"header": "false"})
    assert response.status_code == 422
    assert "without a header the columns are numbered: pass ?text_cols= with" in response.json()["error"]
    response = client.post("/v1/predict/file", files={"file": ("bare.csv", bare, "text/csv")},
                           params={"header": "false", "text_cols": "1,2"})
    assert response.status_code == 200, response.text
    out = pd.read_csv(io.BytesIO(response.content))
    assert len(out) == len(frame)
    assert out["prediction"].tolist() == clf.predict_table(frame)["prediction"].tolist()
    assert list(temp_root.iterdir()) == []


def test_a_parquet_upload_comes_back_as_parquet(client, clf, temp_root):
    frame = catalog_frame()
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    response = client.post("/v1/predict/file?target_precision=0.5",
                           files={"file": ("shop.parquet", buffer.getvalue(), "application/octet-stream")})
    assert response.status_code == 200
    out = pd.read_parquet(io.BytesIO(response.content))
    expected = clf.predict_table(frame, target_precision=0.5)
    assert out["prediction"].tolist() == expected["prediction"].tolist()
    assert out["needs_review"].tolist() == expected["needs_review"].tolist()
    assert list(temp_root.iterdir()) == []


def test_an_upload_in_another_encoding_is_read_with_the_encoding_parameter(client, clf, temp_root):
    data = "title,description\nCafé crème mug,porcelaine – 30 cl\n".encode("cp1252")
    refused = client.post("/v1/predict/file", files={"file": ("excel.csv", data, "text/csv")})
    assert refused.status_code == 422
    # A client of the API has no --encoding option: the hint names the query parameter.
    assert "add ?encoding=cp1252 to the URL" in refused.json()["error"]
    assert "--encoding" not in refused.json()["error"]
    response = client.post("/v1/predict/file?encoding=cp1252", files={"file": ("excel.csv", data, "text/csv")})
    assert response.status_code == 200, response.text
    out = pd.read_csv(io.BytesIO(response.content))
    assert out["prediction"].tolist() == clf.predict_table(
        [{"title": "Café crème mug", "description": "porcelaine – 30 cl"}])["prediction"].tolist()
    unknown = client.post("/v1/predict/file?encoding=klingon", files={"file": ("excel.csv", data, "text/csv")})
    assert unknown.status_code == 422 and "unknown encoding 'klingon'" in unknown.json()["error"]
    assert list(temp_root.iterdir()) == []


@pytest.mark.parametrize("encoding", ["base64", "hex", "rot13", "zlib_codec"])
def test_a_codec_that_is_not_a_text_encoding_is_a_422(client, temp_root, encoding):
    data = b"title,description\nshirt,cotton\n"
    response = client.post(f"/v1/predict/file?encoding={encoding}", files={"file": ("shop.csv", data, "text/csv")})
    assert response.status_code == 422
    assert response.json()["error"] == f"{encoding!r} is not a text encoding; e.g. utf-8, latin-1, cp1252"
    assert list(temp_root.iterdir()) == []


@pytest.mark.parametrize("name, content, status, says", [
    ("shop.csv", b"name,price\nshirt,3\n", 422,
     "shop.csv has none of the model's text columns ('title', 'description')"),
    ("shop.csv", b"", 422, "shop.csv is empty"),
    ("shop.parquet", b"not parquet at all", 422, "shop.parquet is not a readable Parquet file"),
    ("shop.jsonl", b'{"title": "shirt"}\n{"title": "half a pair: \\ud800"}\n', 422,
     "shop.jsonl: line 2 holds a lone surrogate escape (such as \\ud800), which is not a character"),
    ("shop.xlsx", b"PK\x03\x04", 415, "cannot read upload 'shop.xlsx': send a .csv, .tsv, .jsonl or .parquet file"),
])
def test_bad_uploads_get_a_4xx_and_leave_no_files(client, temp_root, name, content, status, says):
    response = client.post("/v1/predict/file", files={"file": (name, content, "application/octet-stream")})
    assert response.status_code == status
    assert says in response.json()["error"]
    assert list(temp_root.iterdir()) == []


def test_an_upload_without_a_file_names_the_field(client):
    response = client.post("/v1/predict/file", data={"other": "x"})
    assert response.status_code == 422
    assert response.json()["error"] == "form field 'file': Field required"


# -------------------------------------------------------------------- openapi
def test_openapi_describes_requests_and_responses(client):
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/health", "/v1/model", "/v1/predict", "/v1/predict/file"} <= set(schema["paths"])
    predict = schema["paths"]["/v1/predict"]["post"]
    product = predict["requestBody"]["content"]["application/json"]["schema"]["items"]
    assert {"title", "description", "image"} == set(product["properties"])
    assert predict["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("PredictResponse")
    assert predict["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("ErrorBody")
    prediction = schema["components"]["schemas"]["Prediction"]["properties"]
    assert {"prediction", "confidence", "needs_review", "top_k", "confident_path", "confident_level"} == set(prediction)
    assert all(field.get("description") for field in prediction.values())


def test_two_files_in_one_upload_are_refused_not_half_predicted(client, temp_root):
    # The last one was predicted and the first dropped, with a 200.
    files = [("file", ("a.csv", b"title\noxford shirt\n", "text/csv")),
             ("file", ("b.csv", b"title\nchef knife\n", "text/csv"))]
    response = client.post("/v1/predict/file", files=files)
    assert response.status_code == 422
    assert response.json()["error"] == "form field 'file' came 2 times: send one catalog per request"
    assert list(temp_root.iterdir()) == []


def test_an_upload_naming_its_text_columns_otherwise_says_which_they_are(client, clf, temp_root):
    frame = catalog_frame()
    upload = frame.rename(columns={"title": "name", "description": "details"}).to_csv(index=False).encode()
    refused = client.post("/v1/predict/file", files={"file": ("export.csv", upload, "text/csv")})
    assert refused.status_code == 422 and "has none of the model's text columns" in refused.json()["error"]
    response = client.post("/v1/predict/file?text_cols=name,details", files={"file": ("export.csv", upload, "text/csv")})
    assert response.status_code == 200
    out = pd.read_csv(io.BytesIO(response.content), dtype={"sku": str})
    assert out["prediction"].tolist() == clf.predict(frame)
    twice = client.post("/v1/predict/file?text_cols=name,name", files={"file": ("export.csv", upload, "text/csv")})
    assert twice.status_code == 422 and twice.json()["error"] == "the text columns given for export.csv name 'name' twice"
    assert client.post("/v1/predict/file?text_cols=,", files={"file": ("e.csv", upload, "text/csv")}).status_code == 422
    assert list(temp_root.iterdir()) == []


def test_an_upload_part_without_a_file_name_is_named_as_text_not_a_file(client):
    # The 422 quoted pydantic: "Value error, Expected UploadFile, received: <class 'str'>".
    response = client.post("/v1/predict/file", data={"file": "new_products.csv"})
    assert response.status_code == 422
    assert response.json()["error"] == ("form field 'file': text, not a file: send the catalog as a file part with "
                                        "a file name (curl -F file=@catalog.csv)")


def test_a_model_of_nested_fields_takes_products_as_nested_as_its_training_file(tmp_path):
    # Trained on a JSON Lines feed's "info.title", it took only the flat key "info.title": the same
    # records the feed holds ({"info": {"title": ...}}) were refused, with none of the model's fields.
    frame = tiny_frame()
    feed = tmp_path / "feed.jsonl"
    pd.DataFrame({"info": [{"title": t, "lang": "en"} for t in frame["title"]],
                  "category": frame["category"]}).to_json(feed, orient="records", lines=True)
    clf = Categorizer(text_cols=["info.title"], label_col="category", label_format="path", quiet=True)
    clf.fit(str(feed))
    model_dir = clf.save(tmp_path / "model")
    title = frame["title"].iloc[0]
    with TestClient(create_app(model_dir)) as client:
        nested = client.post("/v1/predict", json=[{"info": {"title": title}}], timeout=TIMEOUT)
        dotted = client.post("/v1/predict", json=[{"info.title": title}], timeout=TIMEOUT)
        wrong = client.post("/v1/predict", json=[{"info": {"title": 7}}], timeout=TIMEOUT)
    assert nested.status_code == 200, nested.text
    assert nested.json()["predictions"] == dotted.json()["predictions"]
    assert nested.json()["predictions"][0]["prediction"] == frame["category"].iloc[0]
    assert wrong.status_code == 422
    assert wrong.json()["error"] == "products[0].info.title must be a string or null, got a number"
    assert clf.predict_table([{"info": {"title": title}}])["prediction"].tolist() == [frame["category"].iloc[0]]


def test_model_info_names_a_checkpoint_directory_by_its_last_name_only(tmp_path):
    # Its full path is the training machine's file layout, no business of a client's.
    from tiny_bert import tiny_checkpoint

    checkpoint = tiny_checkpoint()
    params = {"checkpoint": checkpoint, "epochs": 1, "batch_size": 16, "num_threads": 1}
    model_dir = Categorizer(model="bert", params=params, quiet=True, **FORMATS["single"]).fit(
        tiny_frame(4)).save(tmp_path / "bert")
    with TestClient(create_app(model_dir)) as client:
        shown = client.get("/v1/model").json()["model"]["params"]
    assert shown["checkpoint"] == Path(checkpoint).name and shown["epochs"] == 1
    assert Categorizer.load(model_dir).manifest_["model"]["params"]["checkpoint"] == checkpoint
    # an ensemble's members and an export's source alike; a hub id is no one's file
    from prodcat.serve.server import _client_params

    assert _client_params({"members": [{"checkpoint": "google/bert_uncased"}, {"checkpoint": None}],
                           "source_params": {"checkpoint": "C:\\Users\\ann\\ckpt\\minilm", "lr": 0.1},
                           "other": {"checkpoint": "../ckpt/minilm/"}}) == {
        "members": [{"checkpoint": "google/bert_uncased"}, {"checkpoint": None}],
        "source_params": {"checkpoint": "minilm", "lr": 0.1}, "other": {"checkpoint": "minilm"}}
