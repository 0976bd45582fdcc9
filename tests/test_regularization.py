"""L2 and L2-SP penalties: the NumPy formulas, and the PyTorch and Keras versions against them."""

from __future__ import annotations

import numpy as np
import pytest

from tlcourse.methods import regularization as reg


def _weights(seed=0):
    rng = np.random.default_rng(seed)
    source = [rng.normal(size=(4, 3)), rng.normal(size=3), rng.normal(size=(3, 2))]
    weights = [s + rng.normal(scale=0.3, size=s.shape) for s in source]
    return weights, source


def test_numpy_penalties_match_their_formulas():
    w, s = _weights()
    assert reg.l2_penalty(w) == pytest.approx(sum(float(np.sum(a**2)) for a in w))
    assert reg.l2sp_penalty(w, s) == pytest.approx(float(np.sum(np.concatenate([(a - b).ravel() for a, b in zip(w, s)]) ** 2)))
    assert reg.l2sp_penalty(s, s) == 0.0
    assert reg.l2sp_penalty(w, [np.zeros_like(a) for a in w]) == pytest.approx(reg.l2_penalty(w))
    # one array, and dicts matched by key (order does not matter)
    assert reg.l2sp_penalty(np.array([3.0, 4.0]), np.zeros(2)) == 25.0
    dw, ds = {"a": w[0], "b": w[1]}, {"b": s[1], "a": s[0]}
    assert reg.l2sp_penalty(dw, ds) == pytest.approx(reg.l2sp_penalty(w[:2], s[:2]))


def test_numpy_gradients_match_finite_differences():
    w, s = _weights(1)
    grads = reg.l2sp_gradient(w, s)
    h = 1e-6
    for i, a in enumerate(w):
        for idx in np.ndindex(a.shape):
            bumped = [b.copy() for b in w]
            bumped[i][idx] += h
            fd = (reg.l2sp_penalty(bumped, s) - reg.l2sp_penalty(w, s)) / h
            assert fd == pytest.approx(grads[i][idx], abs=1e-4)
    assert all(np.allclose(g, 2 * a) for g, a in zip(reg.l2_gradient(w), w))


def test_numpy_penalties_reject_mismatches_plainly():
    w, s = _weights()
    with pytest.raises(ValueError, match="pair up"):
        reg.l2sp_penalty(w, s[:2])
    with pytest.raises(ValueError, match="shape"):
        reg.l2sp_penalty(w, [s[0].T, s[1], s[2]])
    with pytest.raises(KeyError, match="no counterpart"):
        reg.l2sp_penalty({"a": w[0]}, {"b": s[0]})
    with pytest.raises(TypeError, match="both as dicts"):
        reg.l2sp_penalty({"a": w[0]}, [s[0]])


def test_torch_penalties_match_numpy_and_differentiate():
    torch = pytest.importorskip("torch")
    from tlcourse.methods import regularization_torch as rt

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2)).double()
    features = model[0]
    source = rt.snapshot(features)
    assert set(source) == {"weight", "bias"}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    w = [p.detach().numpy() for p in features.parameters()]
    s = [source[n].numpy() for n, _ in features.named_parameters()]
    penalty = rt.l2sp_penalty(features, source)
    assert penalty.item() == pytest.approx(reg.l2sp_penalty(w, s), rel=1e-12)
    penalty.backward()
    for p, g in zip(features.parameters(), reg.l2sp_gradient(w, s)):
        np.testing.assert_allclose(p.grad.numpy(), g, rtol=1e-12)
    head = model[2]
    assert rt.l2_penalty(head).item() == pytest.approx(reg.l2_penalty([p.detach().numpy() for p in head.parameters()]))
    assert rt.l2_penalty(head, skip={"bias"}).item() == pytest.approx(float((head.weight.detach() ** 2).sum()))
    # frozen parameters are left out: the optimizer cannot move them
    features.bias.requires_grad_(False)
    assert rt.l2sp_penalty(features, source).item() == pytest.approx(reg.l2sp_penalty(w[:1], s[:1]))
    with pytest.raises(KeyError, match="same module"):
        rt.l2sp_penalty(model, source)  # names of the sub-module are not the model's


def test_tf_penalties_match_numpy_and_differentiate():
    pytest.importorskip("tensorflow")
    import keras
    import tensorflow as tf

    from tlcourse.methods import regularization_tf as rtf

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, name="features", dtype="float64"),
         keras.layers.BatchNormalization(dtype="float64"), keras.layers.Dense(2, name="head", dtype="float64")]
    )
    source = rtf.snapshot(model)
    assert not any("moving" in k for k in source), "BatchNorm statistics are not parameters"
    rng = np.random.default_rng(0)
    for v in model.trainable_weights:
        v.assign_add(0.1 * rng.normal(size=v.shape))
    features = model.get_layer("features")
    w = [v.numpy() for v in features.trainable_weights]
    s = [source[v.path].numpy() for v in features.trainable_weights]
    with tf.GradientTape() as tape:
        penalty = rtf.l2sp_penalty(features, source)
    assert float(penalty) == pytest.approx(reg.l2sp_penalty(w, s), rel=1e-12)
    for g, ref in zip(tape.gradient(penalty, features.trainable_weights), reg.l2sp_gradient(w, s)):
        np.testing.assert_allclose(g.numpy(), ref, rtol=1e-12)
    head = model.get_layer("head")
    assert float(rtf.l2_penalty(head)) == pytest.approx(reg.l2_penalty([v.numpy() for v in head.trainable_weights]))
    features.trainable = False
    assert float(rtf.l2sp_penalty(model, source)) == pytest.approx(
        sum(reg.l2sp_penalty(v.numpy(), source[v.path].numpy()) for v in model.trainable_weights)
    )
    other = keras.layers.Dense(2, name="elsewhere")
    other.build((None, 3))
    with pytest.raises(KeyError, match="snapshot"):
        rtf.l2sp_penalty(other, source)
