"""The Keras loop's shared training steps (``training_tf._Engine``): reused across models of
one architecture, and computing exactly what a step traced for the model alone computes."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from model_helpers import random_images

from tlcourse import training_tf as tk
from tlcourse.models import small_cnn_tf as sc

X, Y = random_images(48, seed=0)
VAL = random_images(20, seed=1)


def _own_step_fit(model, **kw):
    """The same training with a step traced for this model alone: a Keras loss object is a
    custom ``loss_fn``, so ``fit`` does not use an engine for it (same computation)."""
    return tk.fit(model, X, Y, loss_fn=keras.losses.SparseCategoricalCrossentropy(from_logits=True), **kw)


def _frozen_conv(model):
    for name in ("conv1", "conv2"):
        model.get_layer(name).trainable = False
    return model


@pytest.mark.parametrize("make, kw", [
    (lambda: sc.small_cnn(seed=0), {}),
    (lambda: sc.small_cnn(batch_norm=True, seed=0), {"optimizer": "sgd", "lr": 1e-2}),
    (lambda: _frozen_conv(sc.small_cnn(batch_norm=True, seed=0)), {"weight_decay": 1e-2}),
    (lambda: sc.mlp(seed=0), {"val": VAL}),
], ids=["cnn-adam", "cnn-bn-sgd", "frozen-bn-decay", "mlp-val"])
def test_a_shared_step_computes_what_the_models_own_step_computes(make, kw):
    tk._ENGINES.clear()
    reference = make()
    own = _own_step_fit(reference, epochs=3, seed=0, progress=False, **kw)
    assert not tk._ENGINES, "a custom loss_fn must not use a shared engine"
    for attempt in range(2):  # the first builds the engine, the second reuses it
        model = make()
        history = tk.fit(model, X, Y, epochs=3, seed=0, progress=False, **kw)
        assert len(tk._ENGINES) == 1
        assert history["loss"] == own["loss"] and history.get("val_acc") == own.get("val_acc")
        for a, b in zip(model.weights, reference.weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=f"{a.path} (run {attempt})")
        # the model's optimizer holds the state of its own training: 3 epochs of 1 step
        for a, b in zip(model.optimizer.variables, reference.optimizer.variables):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    assert int(model.optimizer.iterations.numpy()) == 3


def test_an_engine_never_touches_the_models_it_trained_before():
    tk._ENGINES.clear()
    first = sc.small_cnn(seed=0)
    tk.fit(first, X, Y, epochs=1, seed=0, progress=False)
    saved = [w.copy() for w in first.get_weights()]
    tk.fit(sc.small_cnn(seed=5), X, Y, epochs=2, lr=1e-2, seed=1, progress=False)
    assert len(tk._ENGINES) == 1
    for a, b in zip(first.get_weights(), saved):
        np.testing.assert_array_equal(a, b)


def test_frozen_layers_and_other_settings_get_their_own_engine():
    tk._ENGINES.clear()
    model = sc.small_cnn(seed=0)
    tk.fit(model, X, Y, epochs=1, seed=0, progress=False)
    frozen = [w.numpy().copy() for w in model.get_layer("conv1").weights]
    model.get_layer("conv1").trainable = False
    tk.fit(model, X, Y, epochs=1, seed=0, progress=False)
    tk.fit(sc.small_cnn(seed=0), X, Y, epochs=1, optimizer="sgd", seed=0, progress=False)
    assert len(tk._ENGINES) == 3
    for a, b in zip(model.get_layer("conv1").weights, frozen):
        np.testing.assert_array_equal(a.numpy(), b)


def test_a_loss_or_optimizer_that_may_refer_to_the_model_trains_on_its_own_step():
    tk._ENGINES.clear()
    model = sc.small_cnn(seed=0)
    tk.fit(model, X, Y, epochs=1, loss_fn=lambda logits, y, m: keras.ops.mean(
        keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)), progress=False)
    tk.fit(model, X, Y, epochs=1, optimizer=keras.optimizers.Adam(1e-3), progress=False)
    assert not tk._ENGINES


def test_architecture_keys_ignore_names_seeds_and_compile_but_not_sizes():
    a, b = sc.small_cnn(seed=0), sc.small_cnn(seed=1)
    b.compile(optimizer="sgd", loss="mse")
    assert tk._architecture(a) == tk._architecture(b)
    assert tk._architecture(a) != tk._architecture(sc.small_cnn(width=0.5, seed=0))
    assert tk._architecture(a) != tk._architecture(sc.small_cnn(batch_norm=True, seed=0))
