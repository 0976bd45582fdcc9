"""The model-reading checks of notebooks 03 and 04 on real PyTorch and Keras models.

``tests/test_exercises.py`` runs every question on its ``examples()``, which use light
stand-ins for models; here the same checks read real networks from both frameworks.
"""

from __future__ import annotations

import pytest

from tlcourse.exercises import CORRECT, INCORRECT
from tlcourse.exercises import feature_extraction as fe
from tlcourse.exercises import pretraining as pt


@pytest.fixture(scope="module")
def torch_cnn():
    pytest.importorskip("torch")
    from tlcourse.models import small_cnn_torch

    return small_cnn_torch


@pytest.fixture(scope="module")
def keras_cnn():
    pytest.importorskip("keras")
    from tlcourse.models import small_cnn_tf

    return small_cnn_tf


@pytest.mark.parametrize("kind", ["correct", "wrong"])
def test_freeze_check_on_real_models(kind, torch_cnn, keras_cnn):
    """q1's own example answers, applied to real networks instead of its stand-ins."""
    real = {"TorchNet": torch_cnn, "KerasNet": keras_cnn}
    good, bad = fe.q1.examples()
    for fn, stand_in in good if kind == "correct" else bad:
        outcome = fe.q1.evaluate(fn, real[type(stand_in).__name__].small_cnn(seed=0))
        if kind == "correct":
            assert outcome.status == CORRECT and "650 of 105,866" in outcome.message, (fn, outcome)
        else:
            assert outcome.status == INCORRECT, (fn, outcome)


def test_reload_check_on_torch(torch_cnn, tmp_path):
    import torch

    source = torch_cnn.small_cnn(seed=0)
    path = tmp_path / "cnn.pt"
    torch.save(source.state_dict(), path)
    reference = [v.numpy() for v in source.state_dict().values()]

    def good(p):
        model = torch_cnn.small_cnn(seed=123)
        model.load_state_dict(torch.load(p))
        return model

    def report(p):
        return torch_cnn.small_cnn(seed=123).load_state_dict(torch.load(p))

    assert pt.q2.evaluate(good, path, reference).status == CORRECT
    assert "load_state_dict" in pt.q2.evaluate(report, path, reference).message
    assert pt.q2.evaluate(lambda p: torch_cnn.small_cnn(seed=123), path, reference).status == INCORRECT


def test_reload_check_on_keras(keras_cnn, tmp_path):
    source = keras_cnn.small_cnn(seed=0)
    path = tmp_path / "cnn.weights.h5"
    source.save_weights(path)

    def good(p):
        model = keras_cnn.small_cnn(seed=123)
        model.load_weights(p)
        return model

    def returns_none(p):
        return keras_cnn.small_cnn(seed=123).load_weights(p)

    assert pt.q2.evaluate(good, path, source.get_weights()).status == CORRECT
    assert pt.q2.evaluate(returns_none, path, source.get_weights()).status == INCORRECT
    assert pt.q2.evaluate(lambda p: source, path, source.get_weights()).status == INCORRECT
