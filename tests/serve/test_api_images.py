"""Photos over HTTP: the base64 `image` reaches the model as bytes."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from dummy_models import RecordingImageModel, register_dummies
from prodcat import Categorizer
from prodcat.catalog.fields import FieldMapping
from prodcat.images.decode import ImageReader, RefusedPath
from prodcat.serve import create_app
from tiny_catalogs import FORMATS, tiny_image_frame

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def photo_model(monkeypatch, tmp_path):
    register_dummies(monkeypatch)
    frame = tiny_image_frame(tmp_path / "photos", n_per_class=6).rename(columns={"image": "photo"})
    clf = Categorizer(model="image-dummy", image_col="photo", image_root=str(tmp_path / "photos"), quiet=True,
                      **FORMATS["single"]).fit(frame)
    png = next((tmp_path / "photos").glob("*.png")).read_bytes()
    return clf, png


def test_the_image_reaches_the_model_as_bytes(photo_model):
    clf, png = photo_model
    encoded = base64.b64encode(png).decode()
    with TestClient(create_app(clf)) as client:
        RecordingImageModel.seen.clear()
        response = client.post("/v1/predict", json=[
            {"title": "oxford shirt", "image": encoded},
            {"title": "chef knife", "image": "data:image/png;base64," + encoded},
            {"title": "linen duvet", "photo": encoded},  # the model's own image column
            {"title": "lace sneaker"},
        ])
        assert response.status_code == 200, response.text
        assert len(response.json()["predictions"]) == 4
        assert RecordingImageModel.seen[-1] == [png, png, png, None]


def test_an_image_only_product_is_accepted_by_a_model_that_reads_photos(photo_model):
    clf, png = photo_model
    with TestClient(create_app(clf)) as client:
        response = client.post("/v1/predict", json=[{"image": base64.b64encode(png).decode()}])
        assert response.status_code == 200, response.text
        assert client.get("/v1/model").json()["reads_images"] is True
        missing = client.post("/v1/predict", json=[{"sku": "x"}])
        assert missing.status_code == 422
        assert missing.json()["error"] == "products[0] has none of the model's text fields ('title', 'description' or an 'image')"
        schema = client.get("/openapi.json").json()
        described = str(schema["paths"]["/v1/predict"]["post"]["requestBody"])
        assert "read by this model" in described


def test_a_model_of_photos_alone_takes_products_without_text(monkeypatch, tmp_path):
    register_dummies(monkeypatch)
    monkeypatch.setattr(RecordingImageModel, "reads_text", False)
    frame = tiny_image_frame(tmp_path / "photos", n_per_class=6)[["image", "leaf"]]
    clf = Categorizer(model="image-dummy", label_col="leaf", image_col="image", image_root=str(tmp_path / "photos"),
                      quiet=True).fit(frame)
    png = next((tmp_path / "photos").glob("*.png")).read_bytes()
    with TestClient(create_app(clf)) as client:
        assert client.get("/v1/model").json()["text_fields"] == []
        response = client.post("/v1/predict", json=[{"image": base64.b64encode(png).decode()}])
        assert response.status_code == 200, response.text
        assert len(response.json()["predictions"]) == 1
        missing = client.post("/v1/predict", json=[{"sku": "x"}])
        assert missing.status_code == 422
        assert missing.json()["error"] == "products[0] has no 'image', and the model reads only photos"


def test_a_model_of_photos_alone_refuses_a_product_without_one_though_it_has_text(monkeypatch, photo_model):
    # It would ignore the text and give the product its one fallback prediction.
    clf, png = photo_model
    monkeypatch.setattr(RecordingImageModel, "reads_text", False)
    with TestClient(create_app(clf)) as client:
        response = client.post("/v1/predict", json=[{"title": "oxford shirt", "image": base64.b64encode(png).decode()},
                                                    {"title": "chef knife"}])
        assert response.status_code == 422
        assert response.json()["error"] == "products[1] has no 'image', and the model reads only photos"
        described = str(client.get("/openapi.json").json()["paths"]["/v1/predict"]["post"]["requestBody"])
        assert "reads nothing else: required" in described


def test_a_model_of_photos_alone_refuses_bytes_that_are_no_usable_photo(monkeypatch, photo_model):
    # Such a photo, too, would only get the fallback prediction, and with a 200.
    clf, png = photo_model
    monkeypatch.setattr(RecordingImageModel, "reads_text", False)
    huge = io.BytesIO()
    Image.new("1", (9000, 9000)).save(huge, format="PNG")  # a few KB, 81 megapixels once decoded
    with TestClient(create_app(clf)) as client:
        RecordingImageModel.seen.clear()
        for data, status, error in [
            (b"GIF89a but no more", 422, "cannot be used as a photo (not an image), and the model reads only photos"),
            (b"<svg xmlns='http://www.w3.org/2000/svg'/>", 422,
             "cannot be used as a photo (not an image), and the model reads only photos"),
            (huge.getvalue(), 413,
             "is too large a photo (9000x9000 pixels is over the limit of 16,000,000); send a smaller one"),
        ]:
            response = client.post("/v1/predict", json=[{"image": base64.b64encode(png).decode()},
                                                        {"photo": base64.b64encode(data).decode()}])
            assert response.status_code == status, response.text
            assert response.json()["error"] == f"products[1].photo {error}"
        assert RecordingImageModel.seen == []
        assert client.post("/v1/predict", json=[{"image": base64.b64encode(png).decode()}]).status_code == 200


def _png_claiming(side: int) -> str:
    """A base64 PNG of a few KB whose header claims side x side pixels (a decompression bomb in small)."""
    buffer = io.BytesIO()
    Image.new("1", (side, side)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_a_photo_over_the_servers_pixel_limit_is_refused_before_it_is_decoded(photo_model):
    # 5000x5000 is under training's 40 megapixels, and a product with text would have fallen
    # back to it: a request of such photos cost about half a second of decoding each.
    clf, png = photo_model
    with TestClient(create_app(clf)) as client:
        RecordingImageModel.seen.clear()
        response = client.post("/v1/predict", json=[{"title": "oxford shirt", "image": base64.b64encode(png).decode()},
                                                    {"title": "chef knife", "image": _png_claiming(5000)}])
        assert response.status_code == 413, response.text
        assert response.json()["error"] == ("products[1].image is too large a photo (5000x5000 pixels is over the "
                                            "limit of 16,000,000); send a smaller one")
        assert RecordingImageModel.seen == []
    with TestClient(create_app(clf, max_image_pixels=10)) as client:
        response = client.post("/v1/predict", json=[{"title": "oxford shirt", "image": base64.b64encode(png).decode()}])
        assert response.status_code == 413, response.text
        assert "is over the limit of 10); send a smaller one" in response.json()["error"]


def test_the_photos_of_one_request_share_a_pixel_limit(photo_model):
    clf, png = photo_model
    side = Image.open(io.BytesIO(png)).size
    limit = 2 * side[0] * side[1]
    photo = base64.b64encode(png).decode()
    with TestClient(create_app(clf, max_request_pixels=limit)) as client:
        assert client.post("/v1/predict", json=[{"image": photo}] * 2).status_code == 200
        response = client.post("/v1/predict", json=[{"image": photo}] * 3)
        assert response.status_code == 413, response.text
        assert response.json()["error"] == (f"products[2].image brings the request's photos to {3 * limit // 2:,} "
                                            f"pixels; the limit is {limit:,} per request (split the list)")


def test_a_text_model_still_needs_text(tmp_path):
    clf = Categorizer(quiet=True, **FORMATS["single"]).fit(tiny_image_frame(tmp_path / "p", n_per_class=6))
    with TestClient(create_app(clf)) as client:
        response = client.post("/v1/predict", json=[{"image": base64.b64encode(b"\x89PNG").decode()}])
        assert response.status_code == 422
        assert response.json()["error"] == "products[0] has none of the model's text fields ('title', 'description')"
        assert client.get("/v1/model").json()["reads_images"] is False


def test_an_id_image_column_is_not_read_as_base64(monkeypatch, tmp_path):
    # The fashion preset's image column is the product id: clients send ids there, not photos.
    register_dummies(monkeypatch)
    frame = tiny_image_frame(tmp_path / "p", n_per_class=6)
    fields = FieldMapping(text_cols=("title", "description"), label_cols=("leaf",), id_cols=("sku",),
                          image_col="sku", image_template="{}.png")
    clf = Categorizer(model="image-dummy", fields=fields, quiet=True).fit(frame)
    with TestClient(create_app(clf)) as client:
        RecordingImageModel.seen.clear()
        response = client.post("/v1/predict", json=[{"title": "oxford shirt", "sku": "SHI-001"}])
        assert response.status_code == 200, response.text
        assert RecordingImageModel.seen[-1] is None


def test_an_uploaded_catalog_can_name_no_photo_outside_the_image_folder(photo_model, tmp_path):
    # A client's file is data from elsewhere: "../" and absolute paths must not reach other files of the server.
    clf, png = photo_model
    secret = tmp_path / "secret.png"
    secret.write_bytes(png)
    inside = next((tmp_path / "photos").glob("*.png"))
    upload = pd.DataFrame({
        "title": ["oxford shirt", "chef knife", "linen duvet", "lace sneaker"],
        "photo": [inside.name, "../secret.png", str(secret), f"sub/../{inside.name}"],
    }).to_csv(index=False).encode()
    with TestClient(create_app(clf)) as client:
        RecordingImageModel.seen.clear()
        response = client.post("/v1/predict/file", files={"file": ("shop.csv", upload, "text/csv")})
        assert response.status_code == 200, response.text
    [refs] = RecordingImageModel.seen
    assert Path(refs[0]).resolve() == Path(refs[3]).resolve() == inside
    assert [type(ref) for ref in refs[1:3]] == [RefusedPath, RefusedPath]
    assert [str(ref) for ref in refs[1:3]] == ["../secret.png", str(secret)]
    assert ImageReader().read_result(refs[1]).reason == "outside the image folder: not read"


def test_an_uploaded_catalog_reads_relative_photos_from_the_servers_image_folder(monkeypatch, tmp_path):
    # The upload lands in a temporary folder; "beside the catalog file" would find nothing there.
    register_dummies(monkeypatch)
    frame = tiny_image_frame(tmp_path / "photos", n_per_class=6).rename(columns={"image": "photo"})
    monkeypatch.chdir(tmp_path)
    clf = Categorizer(model="image-dummy", image_col="photo", image_root="photos", quiet=True,
                      **FORMATS["single"]).fit(frame)
    upload = frame[["title", "photo"]].head(2).to_csv(index=False).encode()
    with TestClient(create_app(clf)) as client:
        RecordingImageModel.seen.clear()
        response = client.post("/v1/predict/file", files={"file": ("shop.csv", upload, "text/csv")})
        assert response.status_code == 200, response.text
    assert RecordingImageModel.seen[-1] == [str(tmp_path / "photos" / name) for name in frame["photo"].head(2)]


def test_an_exported_photo_model_serves_the_photos_as_its_source(tmp_path):
    from prodcat.export import export_model

    frame = tiny_image_frame(tmp_path / "photos", n_per_class=6)
    source = Categorizer(model="image-cnn", params={"image_size": 16, "width": 0.25, "epochs": 1, "batch_size": 8},
                         image_col="image", image_root=str(tmp_path / "photos"), quiet=True, seed=1,
                         **FORMATS["single"]).fit(frame).save(tmp_path / "source")
    exported = Categorizer.load(export_model(source, tmp_path / "onnx", quiet=True))
    photos = [base64.b64encode((tmp_path / "photos" / name).read_bytes()).decode() for name in frame["image"][:4]]
    body = [{"image": photo} for photo in photos]
    with TestClient(create_app(exported)) as client:
        info = client.get("/v1/model").json()
        assert info["reads_images"] is True
        # a client can tell the model runs on ONNX Runtime, and how closely it follows PyTorch
        assert info["model"]["name"] == "onnx" and info["exported"]["source_model"] == "image-cnn"
        assert info["exported"]["quantize"] is None and info["exported"]["check"]["label_agreement"] == 1.0
        assert "source_dir" not in info["exported"] and "libraries" not in info["exported"]
        response = client.post("/v1/predict", json=body)
        assert response.status_code == 200, response.text
        got = response.json()["predictions"]
        no_photo = client.post("/v1/predict", json=[{"title": "oxford shirt"}])
    with TestClient(create_app(Categorizer.load(source))) as client:
        expected = client.post("/v1/predict", json=body).json()["predictions"]
    assert [p["prediction"] for p in got] == [p["prediction"] for p in expected]
    assert all(abs(a["confidence"] - b["confidence"]) < 1e-4 for a, b in zip(got, expected))
    # a model of photos alone: a product without one is refused, as by the source
    assert no_photo.status_code == 422 and "the model reads only photos" in no_photo.json()["error"]


def test_an_image_column_that_is_also_a_text_column_opens_no_file_outside_the_image_folder(monkeypatch, tmp_path):
    # Its value comes as text; read as the catalog's photo column it was a path, joined to the image
    # folder and opened unconfined: "../../etc/passwd" or any absolute path on the server. Inside the
    # folder, as for an uploaded catalog, a photo of the model owner's is read.
    register_dummies(monkeypatch)
    frame = tiny_image_frame(tmp_path / "photos", n_per_class=6)
    clf = Categorizer(model="image-dummy", text_cols=["title", "image"], label_col="leaf", image_col="image",
                      image_root=str(tmp_path / "photos"), quiet=True).fit(frame)
    png = next((tmp_path / "photos").glob("*.png"))
    with TestClient(create_app(clf)) as client:
        RecordingImageModel.seen.clear()
        response = client.post("/v1/predict", json=[{"title": "oxford shirt", "image": str(png)},
                                                     {"title": "chef knife", "image": "../" * 20 + "etc/passwd"}])
        assert response.status_code == 200, response.text
        inside, outside = RecordingImageModel.seen[-1]
        assert inside == str(png) and isinstance(outside, RefusedPath)
