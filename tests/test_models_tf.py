"""The small Keras networks and the Keras training loop."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from model_helpers import CONFIGS, FROZEN_CONV_BN, config_id, random_images, separable_task

from tlcourse import training_tf as tk
from tlcourse.models import architectures
from tlcourse.models import small_cnn_tf as sc


def _weights(model):
    return {k: v.copy() for k, v in sc.export_state(model).items()}


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_parameter_count_matches_the_spec(config):
    arch_spec = architectures.spec(**config)
    model = sc.build(arch_spec, seed=0)
    assert sc.count_params(model) == arch_spec.param_count()
    # Keras' own count adds the BatchNorm moving statistics
    assert model.count_params() == arch_spec.param_count() + arch_spec.state_count()
    assert sc.block_names(model) == arch_spec.block_names


def test_known_sizes_and_shapes():
    model = sc.small_cnn(seed=0)
    assert sc.count_params(model) == 105_866
    assert sc.count_params(sc.mlp(seed=0)) == 109_386
    assert [layer.name for layer in model.layers] == ["image", "conv1", "conv2", "fc1", "head"]
    x = np.zeros((3, 28, 28, 1), np.float32)
    assert model(x).shape == (3, 10)
    assert sc.feature_extractor(model)(x).shape == (3, 64)
    assert sc.small_cnn(in_channels=3, image_size=32, seed=0)(np.zeros((2, 32, 32, 3), np.float32)).shape == (2, 10)


def test_same_seed_same_weights():
    a, b, c = _weights(sc.small_cnn(seed=7)), _weights(sc.small_cnn(seed=7)), _weights(sc.small_cnn(seed=8))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["conv1/conv/kernel"], c["conv1/conv/kernel"])
    keras.utils.set_random_seed(1)
    d = _weights(sc.small_cnn())
    keras.utils.set_random_seed(1)
    assert np.array_equal(d["head/kernel"], _weights(sc.small_cnn())["head/kernel"])


def test_he_uniform_initialisation():
    model = sc.small_cnn(seed=0)
    state = sc.export_state(model)
    for block in model.spec.blocks:
        prefix = "head" if block.name == "head" else f"{block.name}/{block.op}"
        bound = architectures.init_bound(block)
        assert np.abs(state[f"{prefix}/kernel"]).max() <= bound
        assert np.abs(state[f"{prefix}/kernel"]).max() > 0.9 * bound
        assert np.all(state[f"{prefix}/bias"] == 0)


def test_replace_head_keeps_the_features():
    model = sc.small_cnn(seed=0)
    new = sc.replace_head(model, 4, seed=1)
    assert new.spec.num_classes == 4 and model.spec.num_classes == 10
    assert new(np.zeros((2, 28, 28, 1), np.float32)).shape == (2, 4)
    assert new.get_layer("conv1") is model.get_layer("conv1")
    assert sc.count_params(new) == architectures.spec("cnn", num_classes=4).param_count()
    again = sc.replace_head(sc.small_cnn(seed=0), 4, seed=1)
    assert np.array_equal(_weights(again)["head/kernel"], _weights(new)["head/kernel"])


def test_blocks_are_ordered_and_freezable():
    model = sc.small_cnn(batch_norm=True, seed=0)
    assert list(sc.blocks(model)) == ["conv1", "conv2", "fc1", "head"]
    assert [layer.name for layer in model.get_layer("conv1").layers] == ["conv", "bn", "relu", "pool"]
    for name in sc.block_names(model)[:2]:
        model.get_layer(name).trainable = False
    assert sc.count_params(model, trainable=False) == FROZEN_CONV_BN
    assert sc.count_params(model, trainable=True) == sc.count_params(model) - FROZEN_CONV_BN


@pytest.mark.parametrize("n_frozen", [1, 2, 3])
def test_fit_leaves_exactly_the_frozen_blocks_unchanged(n_frozen):
    model = sc.small_cnn(seed=0)
    names = sc.block_names(model)
    for name in names[:n_frozen]:
        model.get_layer(name).trainable = False
    before = _weights(model)
    x, y = random_images()
    tk.fit(model, x, y, epochs=1, batch_size=32, seed=0, progress=False)
    after = _weights(model)
    for key in before:
        if names.index(key.split("/")[0]) < n_frozen:
            assert np.array_equal(before[key], after[key]), key
        else:
            assert not np.array_equal(before[key], after[key]), key


def test_batchnorm_statistics_follow_trainable():
    """Keras: a frozen BatchNorm runs in inference mode, its statistics stay put (unlike PyTorch)."""
    x, y = random_images()
    model = sc.small_cnn(batch_norm=True, seed=0)
    stats = _weights(model)["conv1/bn/moving_mean"]
    tk.fit(model, x, y, epochs=1, seed=0, progress=False)
    assert not np.array_equal(stats, _weights(model)["conv1/bn/moving_mean"])

    model = sc.small_cnn(batch_norm=True, seed=0)
    model.get_layer("conv1").trainable = False
    before = _weights(model)
    tk.fit(model, x, y, epochs=1, seed=0, progress=False)
    after = _weights(model)
    assert all(np.array_equal(before[k], after[k]) for k in before if k.startswith("conv1/"))


def test_batchnorm_momentum_and_epsilon_are_shared_with_pytorch():
    """moving ← 0.9 · moving + 0.1 · batch mean (PyTorch: momentum=0.1), ε = 1e-5."""
    model = sc.small_cnn(batch_norm=True, seed=0)
    x = tk.to_input(random_images(16)[0])
    block = model.get_layer("conv1")
    batch_mean = np.asarray(block.get_layer("conv")(x)).mean(axis=(0, 1, 2))
    model(x, training=True)
    np.testing.assert_allclose(np.asarray(block.get_layer("bn").moving_mean), 0.1 * batch_mean, rtol=1e-4, atol=1e-6)
    assert block.get_layer("bn").epsilon == architectures.BN_EPSILON == 1e-5


def test_fit_is_deterministic_and_reports_history():
    x, y = random_images()
    runs = []
    for _ in range(2):
        model = sc.small_cnn(seed=3)
        history = tk.fit(model, x, y, epochs=2, seed=5, val=(x[:20], y[:20]), progress=False)
        runs.append((_weights(model), history, model))
    (a, ha, model_a), (b, hb, _) = runs
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert ha["loss"] == hb["loss"] and ha["val_acc"] == hb["val_acc"]
    assert set(ha) == {"loss", "acc", "val_loss", "val_acc", "seconds"}
    assert all(len(v) == 2 for v in ha.values())
    assert ha["val_acc"][-1] == pytest.approx(tk.evaluate(model_a, x[:20], y[:20]))
    c = sc.small_cnn(seed=3)
    tk.fit(c, x, y, epochs=2, seed=6, progress=False)
    assert not np.array_equal(_weights(c)["head/kernel"], a["head/kernel"])  # the seed picks the batch order


def test_fit_learns_a_separable_task_and_leaves_a_compiled_model():
    x, y = separable_task()
    model = sc.small_cnn(num_classes=2, seed=0)
    history = tk.fit(model, x, y, epochs=3, seed=0, progress=False)
    assert history["loss"][-1] < history["loss"][0]
    assert tk.evaluate(model, x, y) == 1.0
    logs = model.evaluate(x[..., None], y, verbose=0, return_dict=True)
    assert logs["acc"] == 1.0


def test_loss_functions_with_and_without_the_model():
    x, y = random_images(32)
    seen = []

    def l2_loss(logits, target, model):
        seen.append(model)
        penalty = tf.add_n([tf.reduce_sum(w**2) for w in model.get_layer("head").trainable_weights])
        return keras.losses.sparse_categorical_crossentropy(target, logits, from_logits=True) + 0.01 * penalty

    model = sc.small_cnn(seed=0)
    before = _weights(model)["head/kernel"]
    tk.fit(model, x, y, epochs=1, loss_fn=l2_loss, seed=0, progress=False)
    assert seen and all(m is model for m in seen)
    assert not np.array_equal(before, _weights(model)["head/kernel"])
    smooth = keras.losses.CategoricalCrossentropy(from_logits=True)
    history = tk.fit(model, x, y, epochs=1, seed=0, progress=False,
                     loss_fn=lambda logits, target: smooth(tf.one_hot(target, 10), logits))
    assert np.isfinite(history["loss"][0])
    history = tk.fit(model, x, y, epochs=1, seed=0, progress=False,
                     loss_fn=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert np.isfinite(history["loss"][0])


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_weight_decay_is_decoupled(optimizer):
    """With zero gradients only the decay acts: w_k = (1 − lr·λ)^k w_0 (as in PyTorch)."""
    model = sc.small_cnn(seed=0)
    before = _weights(model)
    x, y = random_images(64)
    tk.fit(model, x, y, epochs=1, batch_size=32, lr=0.1, weight_decay=0.5, optimizer=optimizer,
           loss_fn=lambda logits, target: 0.0 * tf.reduce_sum(logits), seed=0, progress=False)
    for key, value in _weights(model).items():
        np.testing.assert_allclose(value, before[key] * (1 - 0.1 * 0.5) ** 2, rtol=1e-5, atol=1e-7)


def test_export_import_round_trip():
    a, b = sc.small_cnn(batch_norm=True, seed=0), sc.small_cnn(batch_norm=True, seed=1)
    a.get_layer("conv1").get_layer("bn").moving_variance.assign(np.full(16, 2.0, np.float32))
    state = sc.export_state(a)
    sc.import_state(b, state)
    x = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    assert np.array_equal(tk.predict(a, x), tk.predict(b, x))
    with pytest.raises(ValueError, match="missing"):
        sc.import_state(b, {k: v for k, v in state.items() if k != "head/bias"})
    with pytest.raises(ValueError, match="shapes differ.*head/kernel"):
        sc.import_state(b, {**state, "head/kernel": np.zeros((64, 3), np.float32)})


def test_predict_and_features_shapes():
    model = sc.small_cnn(in_channels=3, num_classes=5, seed=0)
    x, _ = random_images(10, channels=3)
    assert tk.predict(model, x, batch_size=3).shape == (10, 5)
    assert tk.features(model, x).shape == (10, 64)
    pooled = keras.Sequential([keras.layers.GlobalAveragePooling2D()])
    assert tk.features(pooled, x).shape == (10, 3)  # any model works as an extractor
    head = keras.Sequential([keras.Input((64,)), keras.layers.Dense(5)])
    tk.fit(head, tk.features(model, x), np.arange(10) % 5, epochs=1, progress=False)  # features (N, D) train too


def test_to_input_layouts_and_errors():
    assert tk.to_input(np.zeros((2, 28, 28), np.float32)).shape == (2, 28, 28, 1)
    assert tk.to_input(np.zeros((2, 28, 28, 3), np.float64)).dtype == np.float32
    with pytest.raises(ValueError, match="channels-last"):
        tk.to_input(np.zeros((2, 3, 28, 28), np.float32))
    with pytest.raises(TypeError, match="255"):
        tk.to_input(np.zeros((2, 28, 28), np.uint8))


def test_bad_input_errors():
    model = sc.small_cnn(seed=0)
    x, y = random_images(10)
    with pytest.raises(ValueError, match="label 12 .* 10 outputs.*replace the head"):
        tk.fit(model, x, y + 3, epochs=1, progress=False)
    with pytest.raises(ValueError, match="10 examples but y has 9"):
        tk.fit(model, x, y[:9], epochs=1, progress=False)
    with pytest.raises(ValueError, match="adam, sgd"):
        tk.fit(model, x, y, epochs=1, optimizer="rmsprop", progress=False)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        tk.fit(model, x, y, epochs=1, batch_size=0, progress=False)
    with pytest.raises(TypeError, match=r"val must be a pair \(x_val, y_val\)"):
        tk.fit(model, x, y, epochs=1, val=[x], progress=False)
    with pytest.raises(ValueError, match="set weight decay on the optimizer"):
        tk.fit(model, x, y, epochs=1, optimizer=keras.optimizers.Adam(), weight_decay=0.1)
    model.trainable = False
    with pytest.raises(ValueError, match="no trainable weights"):
        tk.fit(model, x, y, epochs=1, progress=False)
    with pytest.raises(TypeError, match="without a .spec"):
        sc.block_names(keras.Sequential([keras.layers.Dense(2)]))
