"""The model-reading check of notebook 10 (modalities.q2) on real PyTorch and Keras models.

``tests/test_exercises.py`` runs the question on its ``examples()``, which use light
stand-ins for models; here the check reads real networks from both frameworks, and the
grader's out-of-kernel verdict on the recorded observation agrees with it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tlcourse.exercises import CORRECT, INCORRECT
from tlcourse.exercises import modalities as mod
from tlcourse.grading import answers


@pytest.fixture(scope="module")
def torch_cnn():
    return pytest.importorskip("tlcourse.models.small_cnn_torch", reason="needs PyTorch")


@pytest.fixture(scope="module")
def keras_cnn():
    return pytest.importorskip("tlcourse.models.small_cnn_tf", reason="needs TensorFlow/Keras")


def _verdict(fn, source):
    outcome = mod.q2.evaluate(fn, source=source)
    record = json.loads(json.dumps(answers._payload("modalities.q2", (fn,), {"source": source})))
    assert answers.judge("modalities.q2", record).status == outcome.status
    return outcome


def test_probe_start_on_torch(torch_cnn):
    import copy

    import torch

    source = torch_cnn.small_cnn(seed=0)
    before = {k: v.clone() for k, v in source.state_dict().items()}

    def good(src, W, b):
        model = torch_cnn.small_cnn(seed=1)
        model.load_state_dict(src.state_dict())
        with torch.no_grad():
            model.head.weight.copy_(torch.from_numpy(W))
            model.head.bias.copy_(torch.from_numpy(b))
        return model

    def deep_copy(src, W, b):
        model = copy.deepcopy(src)
        with torch.no_grad():
            model.head.weight.copy_(torch.from_numpy(W))
            model.head.bias.copy_(torch.from_numpy(b))
        return model

    def in_place(src, W, b):
        with torch.no_grad():
            src.head.weight.copy_(torch.from_numpy(W))
            src.head.bias.copy_(torch.from_numpy(b))
        return src

    def shared_trunk(src, W, b):  # the source article's construction: the source's layers inside the target
        model = torch_cnn.small_cnn(seed=1)
        model.features = src.features
        with torch.no_grad():
            model.head.weight.copy_(torch.from_numpy(W))
            model.head.bias.copy_(torch.from_numpy(b))
        return model

    def source_head_kept(src, W, b):
        model = torch_cnn.small_cnn(seed=1)
        model.load_state_dict(src.state_dict())
        return model

    assert _verdict(good, source).status == CORRECT
    assert _verdict(deep_copy, source).status == CORRECT
    assert all(torch.equal(v, before[k]) for k, v in source.state_dict().items()), "the check changed the source"
    for fn in (shared_trunk, source_head_kept):
        assert _verdict(fn, source).status == INCORRECT, fn
    outcome = _verdict(in_place, torch_cnn.small_cnn(seed=0))
    assert outcome.status == INCORRECT and "source model itself" in outcome.message


def test_probe_start_on_keras(keras_cnn):
    source = keras_cnn.small_cnn(seed=0)
    before = [w.copy() for w in source.get_weights()]

    def good(src, W, b):
        model = keras_cnn.small_cnn(seed=1)
        model.set_weights(src.get_weights())
        model.get_layer("head").set_weights([np.asarray(W).T, np.asarray(b)])
        return model

    def not_transposed(src, W, b):
        model = keras_cnn.small_cnn(seed=1)
        model.set_weights(src.get_weights())
        model.get_layer("head").set_weights([np.asarray(W), np.asarray(b)])  # Keras refuses the shape
        return model

    def trunk_not_copied(src, W, b):
        model = keras_cnn.small_cnn(seed=1)
        model.get_layer("head").set_weights([np.asarray(W).T, np.asarray(b)])
        return model

    def same_model(src, W, b):
        src.get_layer("head").set_weights([np.asarray(W).T, np.asarray(b)])
        return src

    assert _verdict(good, source).status == CORRECT
    assert all(np.array_equal(a, b) for a, b in zip(before, source.get_weights())), "the check changed the source"
    for fn in (not_transposed, trunk_not_copied):
        assert _verdict(fn, source).status == INCORRECT, fn
    assert _verdict(same_model, keras_cnn.small_cnn(seed=0)).status == INCORRECT
