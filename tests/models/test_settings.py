"""Settings every neural model shares a rule for: one check, one message."""

import pytest

from prodcat.errors import ConfigError
from prodcat.models import available_models, get_model_class
from prodcat.models.torch_base import check_probability_below_one

# Each (model, setting) whose value is a rate in [0, 1): found in the registry,
# so a new model with a dropout setting is checked by being registered.
RATES = [(name, key) for name in available_models()
         for key, value in getattr(get_model_class(name), "all_defaults", dict)().items()
         if key.endswith("dropout") and isinstance(value, float)]


def test_the_rates_are_found():
    assert {("bow", "dropout"), ("lstm", "word_dropout"), ("image-cnn", "dropout"),
            ("image-resnet", "dropout")} <= set(RATES)


@pytest.mark.parametrize("name, key", RATES)
@pytest.mark.parametrize("value", [1.0, -0.1, 2.5])
def test_a_rate_outside_zero_to_one_is_refused_with_one_message(name, key, value):
    with pytest.raises(ConfigError) as error:
        get_model_class(name)(**{key: value})
    assert str(error.value) == f"{name}: {key} must be a number in [0, 1), got {value!r}"


@pytest.mark.parametrize("value", [0, 0.0, 0.5, 0.999])
def test_a_rate_in_zero_to_one_passes(value):
    check_probability_below_one("m", "dropout", value)


@pytest.mark.parametrize("value", [True, "0.5", None, float("nan")])
def test_a_rate_that_is_no_number_is_refused(value):
    with pytest.raises(ConfigError, match=r"m: dropout must be a number in \[0, 1\), got "):
        check_probability_below_one("m", "dropout", value)


def test_numpy_numbers_are_taken_as_the_numbers_they_are_and_saved_as_json(tmp_path):
    # C from np.logspace was refused as "not a positive number, got np.float32(0.5)", min_df as np.int64
    import json

    import numpy as np

    from prodcat import Categorizer
    from tiny_catalogs import FORMATS, tiny_frame

    clf = Categorizer("tfidf-linear", params={"C": np.float32(0.5), "min_df": np.int64(1)}, quiet=True,
                      **FORMATS["single"]).fit(tiny_frame(8))
    clf.save(tmp_path / "model")
    params = json.loads((tmp_path / "model" / "manifest.json").read_text())["model"]["params"]
    assert params["C"] == 0.5 and params["min_df"] == 1
