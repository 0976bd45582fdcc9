"""Feature fusion: the NumPy formulas, and the PyTorch and Keras layers against them."""

from __future__ import annotations

import numpy as np
import pytest

from tlcourse.methods import fusion as fu


def _features(seed=0, n=5, d_s=4, d_t=4):
    rng = np.random.default_rng(seed)
    f_s = np.maximum(0, rng.normal(size=(n, d_s)))  # ReLU features: nonnegative, some zeros
    f_t = np.maximum(0, rng.normal(size=(n, d_t)))
    return f_s, f_t


def test_numpy_operators_match_their_formulas():
    f_s, f_t = _features()
    np.testing.assert_array_equal(fu.weighted_sum(f_s, f_t, 0.3), 0.3 * f_s + 0.7 * f_t)
    np.testing.assert_array_equal(fu.weighted_sum(f_s, f_t, 1.0), f_s)
    np.testing.assert_array_equal(fu.weighted_sum(f_s, f_t, 0.0), f_t)
    np.testing.assert_array_equal(fu.product(f_s, f_t), f_s * f_t)
    np.testing.assert_array_equal(fu.maximum(f_s, f_t), np.maximum(f_s, f_t))
    z = fu.concat(f_s, f_t)
    assert z.shape == (5, 8)
    np.testing.assert_array_equal(z[:, :4], f_s)
    np.testing.assert_array_equal(z[:, 4:], f_t)
    for op in fu.OPERATORS:
        np.testing.assert_array_equal(fu.fuse(f_s, f_t, op, alpha=0.3),
                                      {"sum": fu.weighted_sum(f_s, f_t, 0.3), "product": f_s * f_t,
                                       "max": np.maximum(f_s, f_t), "concat": z}[op])
    # aliases, and the zeros of a product are the union of both sides' zeros
    np.testing.assert_array_equal(fu.fuse(f_s, f_t, "Maximum"), fu.maximum(f_s, f_t))
    zero = (fu.product(f_s, f_t) == 0)
    np.testing.assert_array_equal(zero, (f_s == 0) | (f_t == 0))


def test_concat_then_linear_is_a_sum_with_one_matrix_per_stream():
    f_s, f_t = _features(1)
    rng = np.random.default_rng(1)
    W_s, W_t = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    np.testing.assert_allclose(fu.concat(f_s, f_t) @ np.vstack([W_s, W_t]), f_s @ W_s + f_t @ W_t)
    # ...and a weighted sum before one matrix W is the special case W_s = αW, W_t = (1 − α)W
    alpha, W = 0.3, W_s
    np.testing.assert_allclose(fu.weighted_sum(f_s, f_t, alpha) @ W,
                               fu.concat(f_s, f_t) @ np.vstack([alpha * W, (1 - alpha) * W]))


def test_widths_and_plain_errors():
    assert fu.fused_width("concat", 64, 32) == 96
    assert fu.fused_width("sum", 64, 64) == 64
    f_s, f_t = _features(d_s=4, d_t=3)
    assert fu.concat(f_s, f_t).shape == (5, 7)  # concatenation takes any widths
    for op in ("sum", "product", "max"):
        with pytest.raises(ValueError, match="same width: the source gives 4 features, the target 3"):
            fu.fuse(f_s, f_t, op)
        with pytest.raises(ValueError, match="concatenation"):
            fu.fused_width(op, 64, 32)
    with pytest.raises(ValueError, match="different batch sizes"):
        fu.concat(f_s, f_t[:2])
    with pytest.raises(ValueError, match="valid names"):
        fu.fuse(f_s, f_s, "mean")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fu.weighted_sum(f_s, f_s, alpha=1.5)
    with pytest.raises(ValueError, match="positive"):
        fu.fused_width("concat", 0, 3)


def test_numpy_gradients_match_finite_differences():
    f_s, f_t = _features(2)
    f_s[0, 0] = f_t[0, 0] = 0.7  # no ties: the max is differentiable at the points we probe
    f_s[f_s == f_t] += 0.01
    rng = np.random.default_rng(2)
    h = 1e-6
    for op in fu.OPERATORS:
        z = fu.fuse(f_s, f_t, op, alpha=0.3)
        v = rng.normal(size=z.shape)  # L = Σ v ⊙ z, so ∂L/∂z = v

        def loss(a, b, op=op, v=v):
            return float(np.sum(v * fu.fuse(a, b, op, alpha=0.3)))

        g_s, g_t = fu.gradients(op, f_s, f_t, v, alpha=0.3)
        for grad, which in ((g_s, 0), (g_t, 1)):
            for idx in np.ndindex(f_s.shape):
                pair = [f_s.copy(), f_t.copy()]
                pair[which][idx] += h
                fd = (loss(*pair) - loss(f_s, f_t)) / h
                assert fd == pytest.approx(grad[idx], abs=1e-4), (op, which, idx)
    # the product sends no gradient to a target unit whose source unit is 0
    g_t = fu.gradients("product", f_s, f_t, np.ones_like(f_s))[1]
    np.testing.assert_array_equal(g_t == 0, f_s == 0)
    with pytest.raises(ValueError, match="grad_z"):
        fu.gradients("concat", f_s, f_t, np.ones_like(f_s))


def test_torch_layers_match_numpy_and_check_shapes():
    torch = pytest.importorskip("torch")
    from tlcourse.methods import fusion_torch as ft

    f_s, f_t = _features(3)
    a, b = torch.tensor(f_s, requires_grad=True), torch.tensor(f_t, requires_grad=True)
    for op in fu.OPERATORS:
        layer = ft.fusion(op, alpha=0.3)
        z = layer(a, b)
        np.testing.assert_allclose(z.detach().numpy(), fu.fuse(f_s, f_t, op, alpha=0.3), rtol=1e-12)
        v = np.random.default_rng(3).normal(size=z.shape)
        a.grad = b.grad = None
        (z * torch.tensor(v)).sum().backward()
        g_s, g_t = fu.gradients(op, f_s, f_t, v, alpha=0.3)  # ties split in half, as torch.maximum
        np.testing.assert_allclose(a.grad.numpy(), g_s, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(b.grad.numpy(), g_t, rtol=1e-12, atol=1e-15)
    # a learnable α starts where asked, stays in (0, 1), and receives a gradient
    layer = ft.WeightedSum(0.8, learnable=True)
    assert float(layer.alpha) == pytest.approx(0.8)
    assert [n for n, _ in layer.named_parameters()] == ["logit"]
    layer(a.detach(), b.detach()).sum().backward()
    assert layer.logit.grad is not None and float(layer.logit.grad) != 0.0
    assert list(ft.WeightedSum(0.5).parameters()) == []  # a fixed α is not trained
    with pytest.raises(ValueError, match="strictly inside"):
        ft.WeightedSum(1.0, learnable=True)
    narrow = torch.zeros(5, 3, dtype=torch.float64)
    assert ft.Concat()(a, narrow).shape == (5, 7)
    for op in ("sum", "product", "max"):
        with pytest.raises(ValueError, match="same width"):
            ft.fusion(op)(a, narrow)
    with pytest.raises(TypeError, match="two tensors"):
        ft.Product()(a, f_t)


def test_keras_layers_match_numpy_train_and_check_shapes():
    pytest.importorskip("tensorflow")
    import keras
    import tensorflow as tf

    from tlcourse.methods import fusion_tf as fk

    f_s, f_t = _features(4)
    a, b = tf.constant(f_s), tf.constant(f_t)
    for op in fu.OPERATORS:
        layer = fk.fusion(op, alpha=0.3, dtype="float64")
        with tf.GradientTape() as tape:
            tape.watch([a, b])
            z = layer([a, b])
            v = np.random.default_rng(4).normal(size=z.shape)
            loss = tf.reduce_sum(z * v)
        np.testing.assert_allclose(z.numpy(), fu.fuse(f_s, f_t, op, alpha=0.3), rtol=1e-12)
        if op != "max":  # tf.maximum sends a tie's gradient to its first argument, not half to each
            for got, ref in zip(tape.gradient(loss, [a, b]), fu.gradients(op, f_s, f_t, v, alpha=0.3)):
                np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12, atol=1e-15)
    # in a functional model: widths checked when the graph is built, learnable α trained by fit
    keras.utils.set_random_seed(0)
    x = keras.Input((6,))
    s, t = keras.layers.Dense(4, activation="relu")(x), keras.layers.Dense(4, activation="relu")(x)
    fuse = fk.WeightedSum(0.5, learnable=True)
    model = keras.Model(x, keras.layers.Dense(2)(fuse([s, t])))
    assert [w.name for w in fuse.trainable_weights] == ["alpha_logit"]
    from tlcourse import training_tf

    xs = np.random.default_rng(0).random((32, 6)).astype("float32")
    training_tf.fit(model, xs, np.arange(32) % 2, epochs=3, lr=0.05, seed=0, progress=False)
    assert 0.0 < fuse.alpha < 1.0 and fuse.alpha != pytest.approx(0.5)
    assert fk.WeightedSum(0.5).alpha == 0.5 and fk.WeightedSum(0.5).trainable_weights == []
    wide, narrow = keras.Input((4,)), keras.Input((3,))
    assert tuple(fk.Concat()([wide, narrow]).shape) == (None, 7)
    for op in ("sum", "product", "max"):
        with pytest.raises(ValueError, match="same width"):
            fk.fusion(op)([wide, narrow])
    with pytest.raises(TypeError, match=r"list \[f_s, f_t\]"):
        fk.Product()(wide)
    with pytest.raises(ValueError, match="strictly inside"):
        fk.WeightedSum(0.0, learnable=True)


def test_weighted_sum_exercise_is_judged_from_a_plain_observation():
    """q2's answer must raise a ValueError, which cannot travel to the grader: its checker observes
    the function in the kernel and the grader judges that small, plain observation."""
    import json

    from tlcourse.exercises import feature_fusion as ex
    from tlcourse.exercises.core import Observed
    from tlcourse.grading import answers

    class WidthMismatch(ValueError):
        pass

    def good(f_s, f_t, alpha):
        if f_s.shape != f_t.shape:
            raise WidthMismatch("widths differ")  # a ValueError subclass is a ValueError
        return alpha * f_s + (1 - alpha) * f_t

    assert ex.q2.observes()
    record = json.loads(json.dumps(answers._payload("feature_fusion.q2", (good,), {})))
    assert set(record) == {"question", "observed"} and len(json.dumps(record)) < 5000
    assert answers.judge("feature_fusion.q2", record).correct
    observation = answers.decode(record["observed"])
    assert observation["mismatch"] == {"raised": "WidthMismatch", "value_error": True}
    # the grader applies its own rules: the same outputs with the mismatch accepted are incorrect
    observation["mismatch"] = {"raised": None, "value_error": False, "shape": [6, 4]}
    record["observed"] = answers.encode(observation)
    verdict = answers.judge("feature_fusion.q2", record)
    assert verdict.status == "incorrect" and "were accepted" in verdict.message
    # ...and so are outputs that are not the weighted sum
    observation = answers.decode(json.loads(json.dumps(answers._payload("feature_fusion.q2", (good,), {})))["observed"])
    observation["outputs"][1]["array"] = observation["outputs"][1]["array"] + 0.1
    verdict = ex.q2.evaluate(Observed(observation))
    assert verdict.status == "incorrect" and "weighted_sum(f_s, f_t, 0.9)" in verdict.message
