import numpy as np

from prodcat.calibration import apply_calibration, fit_temperature


def _proba(scores, temperature):
    return apply_calibration(np.asarray(scores, dtype=np.float64), {"kind": "temperature", "temperature": temperature},
                             multi=False)


def test_a_validation_split_without_a_mistake_leaves_probabilities_short_of_certain():
    # A small catalog whose words give every class away: the model gets its whole
    # validation split right. T went to ~0.015, so every product, one unlike any
    # the model saw included, was predicted at confidence 1.0 and none needed review.
    scores = np.array([[1.0, -1.0, -1.0], [-1.0, 1.0, -1.0], [-1.0, -1.0, 1.0]] * 10)
    y = np.array([0, 1, 2] * 10)
    t = fit_temperature(scores, y)
    assert 0.9 < _proba(scores, t).max() < 0.99
    assert _proba([[0.1, 0.0, -0.1]], t).max() < 0.5


def test_a_class_the_model_cannot_predict_takes_no_share_of_the_smoothing():
    scores = np.array([[1.0, -1.0, -np.inf], [-1.0, 1.0, -np.inf]] * 10)
    y = np.array([0, 1] * 10)
    t = fit_temperature(scores, y)
    assert np.isfinite(t)
    assert np.allclose(_proba(scores, t)[:, 0], [21 / 22, 1 / 22] * 10, atol=0.01)


def test_mistakes_still_soften_the_probabilities():
    scores = np.array([[8.0, 0.0], [0.0, 8.0]] * 10)
    y = np.array([0, 1] * 9 + [1, 0])  # two confident mistakes in twenty
    assert fit_temperature(scores, y) > 1.0
