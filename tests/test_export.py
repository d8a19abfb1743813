"""ONNX export: the exported directory is a model directory that predicts like its source."""

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli_runner import run_ok
from prodcat import Categorizer
from prodcat.cli import main
from prodcat.errors import ColumnError, ConfigError, ModelDirError
from prodcat.export import export_model
from tiny_catalogs import FORMATS, tiny_frame, tiny_image_frame

NEURAL = ["bow", "lstm", "cnn", "transformer", "bert"]
# Products a graph must handle like PyTorch: no text at all, only unknown
# words, and longer than any training product (truncated by the source's encode).
ODD_TEXTS = ["", "qzxv wkpj", " ".join(["cotton shirt blue collar leather sneaker pan duvet"] * 40)]


def _fast_params() -> dict:
    """The contract test's tiny settings (one source of truth for fast training)."""
    module = sys.modules.get("test_contract")
    if module is None:
        path = Path(__file__).parent / "models" / "test_contract.py"
        spec = importlib.util.spec_from_file_location("test_contract", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["test_contract"] = module
        spec.loader.exec_module(module)
    return module.FAST_PARAMS


def _products() -> pd.DataFrame:
    return tiny_frame().drop(columns=["category", "leaf", "tags"])


def _train(name: str, label_format: str, where: Path) -> Path:
    clf = Categorizer(model=name, params=_fast_params().get(name), quiet=True, seed=1, **FORMATS[label_format])
    clf.fit(tiny_frame())
    return clf.save(where / f"{name}-{label_format}")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """Each neural model trained once on the tiny single-label catalog, saved."""
    where = tmp_path_factory.mktemp("sources")
    return {name: _train(name, "single", where) for name in NEURAL}


def _compare(source_dir: Path, exported_dir: Path, products) -> tuple[np.ndarray, np.ndarray, list, list]:
    source, exported = Categorizer.load(source_dir), Categorizer.load(exported_dir)
    return (source.predict_proba(products).to_numpy(), exported.predict_proba(products).to_numpy(),
            source.predict(products), exported.predict(products))


@pytest.mark.parametrize("name", NEURAL)
def test_fp32_export_predicts_like_pytorch(name, trained, tmp_path):
    out = export_model(trained[name], tmp_path / "onnx", quiet=True)

    exported = Categorizer.load(out)
    assert exported.model == "onnx"
    assert type(exported._fitted).__name__ == "OnnxModel"
    products = pd.concat([_products(), pd.DataFrame({"title": ODD_TEXTS, "description": ""})], ignore_index=True)
    torch_proba, onnx_proba, torch_labels, onnx_labels = _compare(trained[name], out, products)
    np.testing.assert_allclose(onnx_proba, torch_proba, atol=1e-4)
    assert onnx_labels == torch_labels

    manifest = json.loads((out / "manifest.json").read_text())
    source_manifest = json.loads((trained[name] / "manifest.json").read_text())
    assert manifest["model"]["params"]["source_model"] == name
    assert manifest["model"]["params"]["quantize"] is None
    assert manifest["metrics"] == source_manifest["metrics"]
    assert manifest["labels"] == source_manifest["labels"]
    check = manifest["training"]["export"]["check"]
    assert check["label_agreement"] == 1.0 and check["max_abs_probability_difference"] <= 1e-4
    # plain data only: the graph travels as bytes inside safetensors; the source's report is saved with it
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "model_state.json", "report", "weights.safetensors"]
    assert (out / "report" / "report.md").is_file()


@pytest.mark.parametrize("label_format", ["path", "multi"])
def test_export_keeps_path_and_multi_label_models(label_format, tmp_path):
    source = _train("lstm", label_format, tmp_path)
    out = export_model(source, tmp_path / "onnx", quiet=True)
    torch_proba, onnx_proba, torch_labels, onnx_labels = _compare(source, out, _products())
    np.testing.assert_allclose(onnx_proba, torch_proba, atol=1e-4)
    if label_format == "path":
        assert onnx_labels == torch_labels
    else:
        # Multi-label thresholds sit exactly on a validation probability, so a
        # product at the cut may flip with a 1e-7 difference; nearly all agree.
        agree = np.mean([a == b for a, b in zip(onnx_labels, torch_labels)])
        assert agree >= 0.9


def test_int8_export_is_smaller_and_records_its_agreement(trained, tmp_path):
    fp32 = export_model(trained["bert"], tmp_path / "fp32", quiet=True)
    int8 = export_model(trained["bert"], tmp_path / "int8", quantize="int8", quiet=True)

    manifest = json.loads((int8 / "manifest.json").read_text())
    assert manifest["model"]["params"]["quantize"] == "int8"
    export = manifest["training"]["export"]
    assert export["quantize"] == "int8"
    assert 0.5 <= export["check"]["label_agreement"] <= 1.0
    assert export["check"]["max_abs_probability_difference"] > 0  # int8 does move probabilities
    assert (int8 / "weights.safetensors").stat().st_size < (fp32 / "weights.safetensors").stat().st_size
    torch_proba, onnx_proba, torch_labels, onnx_labels = _compare(trained["bert"], int8, _products())
    assert np.mean([a == b for a, b in zip(onnx_labels, torch_labels)]) >= 0.9


def test_cli_exports_then_predicts_and_evaluates_the_exported_dir(trained, tmp_path, capsys):
    catalog = tmp_path / "catalog.csv"
    tiny_frame().to_csv(catalog, index=False)
    exported = tmp_path / "lstm-onnx"

    run_ok("export", trained["lstm"], "--format", "onnx", "--out", exported, "--quiet")
    assert f"exported {trained['lstm']} to {exported}" in capsys.readouterr().out

    run_ok("predict", exported, "--data", catalog, "--out", tmp_path / "onnx.csv", "--quiet")
    run_ok("predict", trained["lstm"], "--data", catalog, "--out", tmp_path / "torch.csv", "--quiet")
    onnx_rows = pd.read_csv(tmp_path / "onnx.csv", dtype=str)
    torch_rows = pd.read_csv(tmp_path / "torch.csv", dtype=str)
    assert len(onnx_rows) == len(tiny_frame())
    assert onnx_rows["prediction"].tolist() == torch_rows["prediction"].tolist()

    run_ok("evaluate", exported, "--data", catalog, "--out", tmp_path / "report", "--keep-seen", "--quiet")
    assert "macro_f1=" in capsys.readouterr().out
    onnx_metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    torch_metrics = Categorizer.load(trained["lstm"]).evaluate(catalog, keep_seen=True)
    assert onnx_metrics["model"] == "onnx"
    assert onnx_metrics["n"] == len(tiny_frame())
    assert onnx_metrics["macro_f1"] == pytest.approx(torch_metrics["macro_f1"])


def test_tfidf_linear_is_refused_with_one_line(tmp_path, capsys):
    source = _train("tfidf-linear", "single", tmp_path)
    with pytest.raises(ConfigError, match="tfidf-linear model.*already fast on CPU"):
        export_model(source, tmp_path / "onnx", quiet=True)

    capsys.readouterr()  # importing the contract test's settings may build the tiny BERT and print progress
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(source), "--out", str(tmp_path / "onnx2")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("prodcat: error:") and "tfidf-linear" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "onnx").exists() and not (tmp_path / "onnx2").exists()


def test_existing_folder_that_is_not_a_model_is_never_replaced(trained, tmp_path):
    folder = tmp_path / "holiday-photos"
    folder.mkdir()
    (folder / "beach.jpg").write_bytes(b"not a model")
    with pytest.raises(ModelDirError, match="not a prodcat model directory"):
        export_model(trained["cnn"], folder, quiet=True)
    assert (folder / "beach.jpg").read_bytes() == b"not a model"


def test_an_exported_model_directory_can_be_exported_over(trained, tmp_path):
    out = export_model(trained["cnn"], tmp_path / "onnx", quiet=True)
    export_model(trained["cnn"], out, quantize="int8", quiet=True)
    assert Categorizer.load(out).manifest_["model"]["params"]["quantize"] == "int8"


@pytest.mark.parametrize(
    "options, message",
    [
        ({"format": "tflite"}, "unknown export format 'tflite'"),
        ({"quantize": "int4"}, "unknown quantization 'int4'"),
    ],
)
def test_bad_options_are_refused(options, message, trained, tmp_path):
    with pytest.raises(ConfigError, match=message):
        export_model(trained["cnn"], tmp_path / "onnx", quiet=True, **options)


def test_exporting_onto_itself_or_an_export_is_refused(trained, tmp_path):
    with pytest.raises(ConfigError, match="another directory than the model"):
        export_model(trained["cnn"], trained["cnn"], quiet=True)
    out = export_model(trained["cnn"], tmp_path / "onnx", quiet=True)
    with pytest.raises(ConfigError, match="already an exported ONNX model"):
        export_model(out, tmp_path / "again", quiet=True)


def test_an_out_inside_the_model_or_holding_it_is_refused(trained, tmp_path):
    # Saving the export, or retraining the source, would replace the folder
    # holding the other model whole and delete it without a word.
    source = trained["cnn"]
    before = sorted(p.name for p in source.iterdir())
    with pytest.raises(ConfigError, match="neither inside it nor holding it"):
        export_model(source, source / "onnx", quiet=True)
    assert sorted(p.name for p in source.iterdir()) == before
    outer = export_model(source, tmp_path / "outer", quiet=True)
    inner = Path(shutil.copytree(source, outer / "inner"))
    with pytest.raises(ConfigError, match="neither inside it nor holding it"):
        export_model(inner, outer, quiet=True)
    assert Categorizer.load(inner).model == "cnn"


def test_an_exported_model_cannot_be_trained(trained, tmp_path):
    out = export_model(trained["cnn"], tmp_path / "onnx", quiet=True)
    model = Categorizer.load(out)._fitted
    with pytest.raises(ConfigError, match="cannot be trained: train its source model \\(cnn\\)"):
        model.fit(None, None, None)
    with pytest.raises(ConfigError):
        Categorizer(model="onnx", **FORMATS["single"], quiet=True).fit(tiny_frame())


def test_given_check_texts_are_used(trained, tmp_path):
    texts = ["red cotton shirt", "steel chef knife", "linen duvet"]
    out = export_model(trained["bow"], tmp_path / "onnx", check_texts=texts, quiet=True)
    check = Categorizer.load(out).manifest_["training"]["export"]["check"]
    assert check["products"] == 3 and check["texts"] == "given"


def test_a_graph_that_does_not_reproduce_pytorch_is_not_saved(trained, tmp_path, monkeypatch):
    import prodcat.export

    def doubled_logits(network):
        wrapped = prodcat.export._padded_mean_bag(network)
        forward = wrapped.forward
        wrapped.forward = lambda ids, mask: forward(ids, mask) * 2
        return wrapped

    monkeypatch.setitem(prodcat.export.EXPORT_FORMS, "bow", ("padded_bag", doubled_logits))
    with pytest.raises(RuntimeError, match="does not reproduce PyTorch"):
        export_model(trained["bow"], tmp_path / "onnx", quiet=True)
    assert not (tmp_path / "onnx").exists()


def _photo_model(where: Path, model: str, params: dict) -> Path:
    frame = tiny_image_frame(where / "photos", n_per_class=8)
    clf = Categorizer(model=model, params=params, quiet=True, seed=1, image_col="image",
                      image_root=str(where / "photos"), **FORMATS["single"])
    return clf.fit(frame).save(where / model)


PHOTO_MODELS = {
    "image-cnn": {"epochs": 2},
    "image-resnet": {"epochs": 2},
    "image-pretrained": {"epochs": 1},  # fine-tuned: batch norms in eval mode must match PyTorch's
    "image-pretrained probe": {"freeze_layers": -1},
}


@pytest.fixture(scope="module")
def photo_catalog(tmp_path_factory):
    """The tiny photo catalog, one product's photo missing and one's not an image."""
    where = tmp_path_factory.mktemp("photo-catalog")
    frame = tiny_image_frame(where / "photos", n_per_class=8)
    (where / "photos" / "broken.png").write_bytes(b"not a png")
    frame.loc[0, "image"], frame.loc[1, "image"] = "absent.png", "broken.png"
    return frame, where / "photos"


@pytest.mark.parametrize("name", PHOTO_MODELS)
def test_photo_models_export_and_predict_like_pytorch(name, photo_catalog, tmp_path):
    frame, photos = photo_catalog
    model = name.split()[0]
    params = {**_fast_params()[model], **PHOTO_MODELS[name]}
    clf = Categorizer(model=model, params=params, quiet=True, seed=1, image_col="image", image_root=str(photos),
                      **FORMATS["single"])
    source = clf.fit(frame).save(tmp_path / "source")
    out = export_model(source, tmp_path / "onnx", quiet=True)

    torch_clf, onnx_clf = Categorizer.load(source), Categorizer.load(out)
    assert onnx_clf.model == "onnx" and onnx_clf.reads_images() and not onnx_clf.reads_text()
    products = frame.drop(columns=["category", "leaf", "tags"])
    expected, got = torch_clf.predict_proba(products).to_numpy(), onnx_clf.predict_proba(products).to_numpy()
    assert np.abs(expected - got).max() < 1e-4
    assert onnx_clf.predict(products) == torch_clf.predict(products)
    # the products without a usable photo are counted as the source counts them
    stats = onnx_clf._fitted.image_stats()
    assert stats is not None and stats.to_dict() == torch_clf._fitted.image_stats().to_dict()
    check = onnx_clf.manifest_["training"]["export"]["check"]
    assert check["photos"] == "synthetic" and check["products"] == 64 and check["label_agreement"] == 1.0
    assert check["max_abs_probability_difference"] < 1e-4


def test_an_exported_photo_model_marks_the_products_it_could_not_read(photo_catalog, tmp_path):
    from prodcat.catalog.products import Products

    frame, photos = photo_catalog
    source = _photo_model(tmp_path, "image-cnn", {**_fast_params()["image-cnn"], "epochs": 1})
    exported = Categorizer.load(export_model(source, tmp_path / "onnx", quiet=True))._fitted
    original = Categorizer.load(source)._fitted
    refs = [str(photos / name) for name in frame["image"][:6]]
    products = Products(texts=[""] * 6, images=refs)
    (proba, mask), (expected, expected_mask) = exported.predict_proba_masked(products), \
        original.predict_proba_masked(products)
    assert list(mask) == list(expected_mask) == [False, False, True, True, True, True]
    assert np.abs(proba - expected).max() < 1e-4
    # the fallback is the source's learned row, not the graph run on blank pixels
    assert np.allclose(proba[0], expected[0]) and np.allclose(proba[0], proba[1])
    # no usable photo at all: nothing is run through the graph
    none = Products(texts=["", ""], images=[None, b"junk"])
    assert np.allclose(exported.predict_proba(none), original.predict_proba(none), atol=1e-6)


def test_cli_exports_a_photo_model_then_predicts_with_its_photos(photo_catalog, tmp_path):
    frame, photos = photo_catalog
    source = _photo_model(tmp_path, "image-cnn", {**_fast_params()["image-cnn"], "epochs": 1})
    catalog = tmp_path / "catalog.csv"
    frame.drop(columns=["category", "leaf", "tags"]).to_csv(catalog, index=False)
    run_ok("export", source, "--out", tmp_path / "onnx", "--quiet")
    for model_dir, written in ((source, tmp_path / "torch.csv"), (tmp_path / "onnx", tmp_path / "onnx.csv")):
        run_ok("predict", model_dir, "--data", catalog, "--image-root", photos, "--out", written, "--quiet")
    torch_rows, onnx_rows = pd.read_csv(tmp_path / "torch.csv"), pd.read_csv(tmp_path / "onnx.csv")
    assert list(onnx_rows["prediction"]) == list(torch_rows["prediction"])
    assert np.allclose(onnx_rows["confidence"], torch_rows["confidence"], atol=1e-4)


def test_a_photo_model_is_exported_in_fp32_only_and_checked_on_photos(tmp_path, capsys):
    # Dynamic int8 turns convolutions into ConvInteger, slower than fp32 on CPU
    # (docs/benchmarks.md); given texts would check a photo model on nothing it reads.
    source = _photo_model(tmp_path, "image-cnn", {**_fast_params()["image-cnn"], "epochs": 1})
    capsys.readouterr()  # building the test models may print progress
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(source), "--quantize", "int8", "--out", str(tmp_path / "onnx")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"prodcat: error: {source} holds an image-cnn model, which reads photos: export it without "
                   "--quantize. ONNX Runtime's int8 convolutions run slower than fp32 on CPU")
    with pytest.raises(ConfigError, match="which reads photos, not texts: it is checked on synthetic photos"):
        export_model(source, tmp_path / "onnx", check_texts=["oxford shirt"])
    assert not (tmp_path / "onnx").exists()


def test_an_exported_photo_model_without_its_fallback_row_is_refused_when_it_loads(tmp_path):
    from safetensors.numpy import load_file, save_file

    source = _photo_model(tmp_path, "image-cnn", {**_fast_params()["image-cnn"], "epochs": 1})
    out = export_model(source, tmp_path / "onnx", quiet=True)
    arrays = load_file(str(out / "weights.safetensors"))
    assert arrays["model.missing_logits"].shape == (4,)
    for edit, message in ((lambda a: a.pop("model.missing_logits"), "lacks 'missing_logits'"),
                          (lambda a: a.update({"model.missing_logits": np.zeros(3, np.float32)}),
                           "fallback logits of products without a photo must be 4 numbers")):
        damaged = Path(shutil.copytree(out, tmp_path / f"damaged-{len(message)}"))
        edited = dict(arrays)
        edit(edited)
        save_file(edited, str(damaged / "weights.safetensors"))
        with pytest.raises(ModelDirError, match=message):
            Categorizer.load(_with_checksums_matching(damaged))



def test_an_exported_photo_models_fallback_row_of_nan_or_not_numbers_is_refused_when_it_loads(tmp_path):
    # A NaN fallback loaded and gave every product without a usable photo a NaN confidence;
    # a row of flags (bool) or counts (int) is no row of logits the export writes.
    from safetensors.numpy import load_file, save_file

    source = _photo_model(tmp_path, "image-cnn", {**_fast_params()["image-cnn"], "epochs": 1})
    out = export_model(source, tmp_path / "onnx", quiet=True)
    arrays = load_file(str(out / "weights.safetensors"))
    for name, row, message in (
        ("nan", np.array([np.nan, 0, 0, 0], np.float32), "fallback logits .* must be finite, got nan"),
        ("inf", np.array([0, 0, np.inf, 0], np.float32), "fallback logits .* must be finite, got inf"),
        ("bool", np.ones(4, bool), "fallback logits .* must be floating-point numbers, got bool"),
        ("int", np.ones(4, np.int64), "fallback logits .* must be floating-point numbers, got int64"),
    ):
        damaged = Path(shutil.copytree(out, tmp_path / name))
        save_file({**arrays, "model.missing_logits": row}, str(damaged / "weights.safetensors"))
        with pytest.raises(ModelDirError, match=message):
            Categorizer.load(_with_checksums_matching(damaged))


def test_an_exported_photo_model_whose_image_size_is_not_its_graphs_is_refused_when_it_loads(tmp_path):
    # The graph's photo sides are fixed at export; an image_size edited in both the settings and
    # the preprocessing loaded and failed inside ONNX Runtime on the first photo, with a traceback.
    source = _photo_model(tmp_path, "image-cnn", {**_fast_params()["image-cnn"], "epochs": 1})
    out = export_model(source, tmp_path / "onnx", quiet=True)
    state = json.loads((out / "model_state.json").read_text())
    state["source"]["preprocessor"]["image_size"] = 24
    (out / "model_state.json").write_text(json.dumps(state))
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["model"]["params"]["source_params"]["image_size"] = 24
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelDirError, match=r"the graph takes 'pixels' of shape \(batch, 3, 16, 16\), "
                                            r"but input layout 'image' gives \(n, 3, 24, 24\)"):
        Categorizer.load(_with_checksums_matching(out))

def test_an_ensemble_without_a_neural_member_is_refused_with_a_message_that_fits_it(dummies, tmp_path):
    with_photos = _photo_model(tmp_path, "ensemble", {"members": ["tfidf-linear", "image-dummy"]})
    with pytest.raises(ConfigError, match=r"holds an ensemble model \(tfidf-linear, image-dummy\), "
                                          r"none of whose members has a neural network to export"):
        export_model(with_photos, tmp_path / "onnx", quiet=True)
    assert not (tmp_path / "onnx").exists()


IMAGE_CNN = {"image_size": 16, "width": 0.25, "epochs": 3, "batch_size": 8, "lr": 1e-2}


def test_an_ensemble_exports_its_neural_members_and_stays_an_ensemble(photo_catalog, tmp_path):
    frame, photos = photo_catalog
    # fixed weights: the photo member counts, so a broken graph would show in the ensemble's output
    params = {"members": ["tfidf-linear", "image-cnn"], "weights": [0.5, 0.5], "member_params": {"image-cnn": IMAGE_CNN}}
    clf = Categorizer(model="ensemble", params=params, quiet=True, seed=1, image_col="image", image_root=str(photos),
                      **FORMATS["single"])
    source = clf.fit(frame).save(tmp_path / "ensemble")
    out = export_model(source, tmp_path / "onnx", quiet=True)

    exported = Categorizer.load(out)
    assert exported.model == "ensemble" and exported.params == Categorizer.load(source).params
    assert [m.name for m in exported._fitted.members_] == ["tfidf-linear", "onnx"]
    products = frame.drop(columns=["category", "leaf", "tags"])
    original = Categorizer.load(source)
    assert np.abs(exported.predict_proba(products).to_numpy() - original.predict_proba(products).to_numpy()).max() < 1e-4
    assert exported.predict(products) == original.predict(products)
    # the report's parts (text alone, photo alone, combined) are the source's
    parts, expected = exported.evaluate(frame)["components"], original.evaluate(frame)["components"]
    assert parts.keys() == expected.keys() == {"tfidf-linear", "image-cnn", "combined"}
    assert all(parts[k]["macro_f1"] == pytest.approx(expected[k]["macro_f1"]) for k in parts)
    info = exported.manifest_["training"]["export"]
    assert list(info["members"]) == ["image-cnn"] and info["members"]["image-cnn"]["quantize"] is None
    assert info["members"]["image-cnn"]["max_abs_probability_difference"] < 1e-4
    assert info["check"]["photos"] == info["check"]["texts"] == "synthetic"
    # exported once is enough: its source is what to export again
    with pytest.raises(ConfigError, match="whose neural members are already exported"):
        export_model(out, tmp_path / "again", quiet=True)
    # the exported member keeps its own settings under source_params: a manifest contradicting them is refused
    edited = Path(shutil.copytree(out, tmp_path / "edited"))
    manifest = json.loads((edited / "manifest.json").read_text())
    manifest["model"]["params"]["member_params"]["image-cnn"]["width"] = 1.0
    (edited / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelDirError, match=r"member_params\['image-cnn'\]\['width'\] is 1.0, but member 2 "
                                            r"\(image-cnn\) was trained with 0.25 \(model_state.json "
                                            r"members\[1\].params.source_params\)"):
        Categorizer.load(edited)


def test_int8_quantizes_an_ensembles_text_members_and_keeps_its_photo_members_in_fp32(photo_catalog, tmp_path,
                                                                                       capsys):
    frame, photos = photo_catalog
    params = {"members": ["bow", "image-cnn"], "method": "stacking", "folds": 2,
              "member_params": {"image-cnn": IMAGE_CNN, "bow": _fast_params()["bow"]}}
    clf = Categorizer(model="ensemble", params=params, quiet=True, seed=1, image_col="image", image_root=str(photos),
                      **FORMATS["single"])
    source = clf.fit(frame).save(tmp_path / "stacking")
    capsys.readouterr()
    out = export_model(source, tmp_path / "int8", quantize="int8")
    assert "image-cnn reads photos: exported in fp32 (int8 convolutions are slower on CPU)" in capsys.readouterr().err
    info = Categorizer.load(out).manifest_["training"]["export"]
    assert info["quantize"] == "int8"
    assert {key: m["quantize"] for key, m in info["members"].items()} == {"bow": "int8", "image-cnn": None}
    # a photo-only set of neural members has nothing int8 would help
    photo_members = _photo_model(tmp_path, "ensemble", {"members": ["tfidf-linear", "image-cnn"],
                                                        "member_params": {"image-cnn": IMAGE_CNN}})
    with pytest.raises(ConfigError, match=r"whose neural members \(image-cnn\) read photos: export it without --quantize"):
        export_model(photo_members, tmp_path / "refused", quantize="int8", quiet=True)


def test_an_ensemble_member_saved_with_an_unknown_runtime_is_refused_when_it_loads(photo_catalog, tmp_path):
    frame, photos = photo_catalog
    source = _photo_model(tmp_path, "ensemble", {"members": ["tfidf-linear", "image-cnn"],
                                                 "member_params": {"image-cnn": IMAGE_CNN}})
    out = export_model(source, tmp_path / "onnx", quiet=True)
    for runtime, source_model in (("torchscript", "image-cnn"), ("onnx", "image-resnet")):
        edited = Path(shutil.copytree(out, tmp_path / f"edited-{runtime}"))
        state = json.loads((edited / "model_state.json").read_text())
        state["members"][1]["runtime"] = runtime
        state["members"][1]["params"]["source_model"] = source_model
        (edited / "model_state.json").write_text(json.dumps(state))
        with pytest.raises(ModelDirError, match=f"member 'image-cnn' is saved as runtime '{runtime}' of "
                                                f"'{source_model}'"):
            Categorizer.load(_with_checksums_matching(edited))


@pytest.mark.parametrize("label_agreement, warned", [(0.8281, True), (0.995, False)])
def test_int8_export_warns_when_it_changes_many_labels(label_agreement, warned, trained, tmp_path, monkeypatch, capsys):
    import prodcat.export

    measured = prodcat.export.agreement
    monkeypatch.setattr(prodcat.export, "agreement",
                        lambda *args: {**measured(*args), "label_agreement": label_agreement})
    capsys.readouterr()
    out = export_model(trained["bow"], tmp_path / "int8", quantize="int8")

    err = capsys.readouterr().err
    warning = ("warning: int8 quantization changed the label of 17.19% of the 512 check products "
               "(largest probability difference")
    assert (warning in err) is warned
    if warned:
        assert "export without --quantize to keep PyTorch's labels" in err
    # still exported, the user's choice, with the agreement on record
    check = Categorizer.load(out).manifest_["training"]["export"]["check"]
    assert check["label_agreement"] == label_agreement and check["products"] == 512


def _with_checksums_matching(model_dir: Path) -> Path:
    """model_dir's manifest made to vouch for its files again, as a hand edit would leave it."""
    import hashlib

    manifest = json.loads((model_dir / "manifest.json").read_text())
    for name in manifest["files"]:
        manifest["files"][name]["sha256"] = hashlib.sha256((model_dir / name).read_bytes()).hexdigest()
    (model_dir / "manifest.json").write_text(json.dumps(manifest))
    return model_dir


def test_an_exported_graph_that_does_not_fit_its_model_directory_is_refused_when_it_loads(tmp_path):
    # The graph is bytes in safetensors: one of another catalog (other classes),
    # or a feed edited in the state, loaded and then failed inside ONNX Runtime
    # on the first product, with a traceback.
    from safetensors.numpy import load_file, save_file

    single = export_model(_train("bow", "single", tmp_path), tmp_path / "single-onnx", quiet=True)
    multi = export_model(_train("bow", "multi", tmp_path), tmp_path / "multi-onnx", quiet=True)

    other_classes = Path(shutil.copytree(single, tmp_path / "other-classes"))
    arrays = load_file(str(other_classes / "weights.safetensors"))
    arrays["model.onnx_graph"] = load_file(str(multi / "weights.safetensors"))["model.onnx_graph"]
    save_file(arrays, str(other_classes / "weights.safetensors"))
    with pytest.raises(ModelDirError, match=r"other-classes .*graph gives 9 scores per product, .* 4 classes"):
        Categorizer.load(_with_checksums_matching(other_classes))

    other_feed = Path(shutil.copytree(single, tmp_path / "other-feed"))
    state = json.loads((other_feed / "model_state.json").read_text())
    state["feed"] = "collate"
    (other_feed / "model_state.json").write_text(json.dumps(state))
    with pytest.raises(ModelDirError, match=r"other-feed .*graph takes 'mask', which input layout 'collate' lacks"):
        Categorizer.load(_with_checksums_matching(other_feed))

    # a layout that is no name at all was reported as a graph ONNX Runtime cannot load
    state["feed"] = ["padded_bag"]
    (other_feed / "model_state.json").write_text(json.dumps(state))
    with pytest.raises(ModelDirError, match=r"other-feed .*onnx: unknown input layout \['padded_bag'\]"):
        Categorizer.load(_with_checksums_matching(other_feed))


def test_export_refuses_arguments_of_the_wrong_type_before_loading(tmp_path):
    # None was a TypeError from pathlib; one text was checked as its letters, a product each
    with pytest.raises(ConfigError, match="the model directory must be a path .*got None"):
        export_model(None, tmp_path / "out")
    with pytest.raises(ConfigError, match=r"check_texts must be a list of product texts, not one text: pass \[text\]"):
        export_model(tmp_path / "model", tmp_path / "out", check_texts="oxford shirt")
    # none would be an export said to be checked on no product; None failed inside tracing
    for texts in ([], ["oxford shirt", None]):
        with pytest.raises(ConfigError, match="check_texts must be a non-empty list of product texts"):
            export_model(tmp_path / "model", tmp_path / "out", check_texts=texts)
    # "17" failed inside torch with a TypeError; 5 exported a graph onnxruntime cannot run
    for opset in ("17", 5, 99):
        with pytest.raises(ConfigError, match=f"opset must be a whole number from 13 to 20, got {opset!r}"):
            export_model(tmp_path / "model", tmp_path / "out", opset=opset)


def test_a_transformers_photo_checkpoint_exports_like_pytorch(photo_catalog, tmp_path):
    # image-pretrained's --checkpoint takes any transformers image classifier (a ViT here):
    # attention and patch embeddings must trace as the EfficientNet does.
    import torch
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(0)
    config = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=64, num_labels=5)
    checkpoint = tmp_path / "tiny-vit"
    ViTForImageClassification(config).save_pretrained(checkpoint)
    (checkpoint / "preprocessor_config.json").write_text(json.dumps(
        {"image_processor_type": "ViTImageProcessor", "do_normalize": True, "image_mean": [0.5] * 3,
         "image_std": [0.5] * 3, "size": {"height": 32, "width": 32}}))
    frame, photos = photo_catalog
    clf = Categorizer(model="image-pretrained", params={"checkpoint": str(checkpoint), "epochs": 1, "batch_size": 16},
                      quiet=True, seed=1, image_col="image", image_root=str(photos), **FORMATS["single"])
    source = clf.fit(frame).save(tmp_path / "vit")
    out = export_model(source, tmp_path / "onnx", quiet=True)
    products = frame.drop(columns=["category", "leaf", "tags"])
    expected = Categorizer.load(source).predict_proba(products).to_numpy()
    assert np.abs(Categorizer.load(out).predict_proba(products).to_numpy() - expected).max() < 1e-4


def test_an_exported_models_errors_name_what_it_was_exported_from(photo_catalog, tmp_path):
    # "model 'onnx' reads nothing but photos" did not say it is an image-cnn
    frame, photos = photo_catalog
    source = _photo_model(tmp_path, "image-cnn", {**_fast_params()["image-cnn"], "epochs": 1})
    exported = Categorizer.load(export_model(source, tmp_path / "onnx", quiet=True))
    no_photos = tmp_path / "no-photos.csv"
    frame[["sku", "title"]].to_csv(no_photos, index=False)
    with pytest.raises(ColumnError, match=r"and model 'onnx' \(an exported image-cnn\) reads nothing but photos"):
        exported.predict_file(no_photos, tmp_path / "p.csv")


@pytest.mark.parametrize("location", ["../../../../../../etc/passwd", "/etc/passwd", "weights.safetensors"])
def test_an_exported_graph_whose_tensor_names_an_outside_file_is_refused_unread(location, tmp_path, monkeypatch):
    # ONNX Runtime before 1.24 read such a file into the weights of a graph given as bytes,
    # from wherever it was: its contents could come back in the probabilities.
    from onnx import ModelProto, TensorProto
    from safetensors.numpy import load_file, save_file

    exported = export_model(_train("bow", "single", tmp_path), tmp_path / "onnx", quiet=True)
    arrays = load_file(str(exported / "weights.safetensors"))
    graph = ModelProto.FromString(arrays["model.onnx_graph"].tobytes())
    tensor = graph.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "64")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    arrays["model.onnx_graph"] = np.frombuffer(graph.SerializeToString(), dtype=np.uint8)
    save_file(arrays, str(exported / "weights.safetensors"))
    sessions = []
    monkeypatch.setattr("prodcat.models.onnx_runtime.inference_session", lambda *args: sessions.append(args))

    with pytest.raises(ModelDirError, match=f"tensor {tensor.name!r} from an outside file {location!r}"):
        Categorizer.load(_with_checksums_matching(exported))
    assert sessions == []  # ONNX Runtime never saw it
