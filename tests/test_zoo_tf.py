"""The source-model zoo with Keras: build, reload, detect a corrupted cache (tiny recipe)."""

from __future__ import annotations

import json
import warnings

import keras
import numpy as np
import pytest
from zoo_helpers import fake_load, same_state, tiny_zoo

from tlcourse import training_tf
from tlcourse.models import small_cnn_tf, zoo, zoo_tf


@pytest.fixture
def home(tmp_path, monkeypatch):
    return tiny_zoo(monkeypatch, tmp_path)


def test_build_reload_and_corruption(home):
    first = zoo.pretrained("mnist-cnn-bn", framework="tf", progress=False)
    assert isinstance(first, keras.Model) and not first.zoo_info.from_cache
    assert small_cnn_tf.block_names(first) == ["conv1", "conv2", "fc1", "head"]
    ds = fake_load("mnist")
    assert first.zoo_info.test_acc == pytest.approx(training_tf.evaluate(first, ds.x_test, ds.y_test))
    weights, sidecar = zoo.cache_paths("mnist-cnn-bn", "tf")
    assert json.loads(sidecar.read_text())["sha256"] == zoo.file_sha256(weights)
    assert "conv1/bn/moving_mean" in np.load(weights).files  # Keras layout on disk

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = zoo_tf.pretrained("mnist-cnn-bn", progress=False)
    assert second.zoo_info.from_cache
    clean = small_cnn_tf.export_state(first)
    assert same_state(clean, small_cnn_tf.export_state(second))

    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.warns(zoo.CacheWarning, match="corrupted.*truncated"):
        third = zoo_tf.pretrained("mnist-cnn-bn", progress=False)
    assert not third.zoo_info.from_cache
    assert same_state(clean, small_cnn_tf.export_state(third))  # the rebuild is deterministic
