"""MMD, CORAL and gradient reversal: the NumPy reference, and PyTorch and Keras against it."""

from __future__ import annotations

import numpy as np
import pytest

from tlcourse.methods import alignment as al


def _samples(seed=0, m=40, n=30, d=5, shift=0.0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(m, d)), rng.normal(size=(n, d)) + shift


# -- the NumPy reference ---------------------------------------------------------------------------


def test_mmd_of_identical_samples_is_zero_and_grows_with_the_shift():
    x, _ = _samples()
    assert al.mmd2(x, x) == 0.0
    assert al.linear_mmd2(x, x) == 0.0
    values = [al.mmd2(*_samples(shift=s), sigma2=10.0) for s in (0.0, 0.5, 1.0, 2.0, 4.0)]
    assert all(a < b for a, b in zip(values, values[1:])), values
    assert 0.0 <= values[0] < 0.05 and values[-1] > 0.5
    assert all(0.0 <= v <= 2.0 for v in values)


def test_mmd_matches_its_definition_term_by_term():
    x, y = _samples(1, m=7, n=5, d=3, shift=0.7)
    sigma2 = al.median_sq_distance(x, y)
    z = np.concatenate([x, y])
    pair_d2 = [np.sum((z[i] - z[j]) ** 2) for i in range(len(z)) for j in range(i + 1, len(z))]
    assert sigma2 == pytest.approx(np.median(pair_d2))

    def k(a, b):
        return np.mean([np.exp(-np.sum((a - b) ** 2) / (2 * s * sigma2)) for s in al.SCALES])

    expected = (np.mean([[k(a, b) for b in x] for a in x]) + np.mean([[k(a, b) for b in y] for a in y])
                - 2 * np.mean([[k(a, b) for b in y] for a in x]))
    assert al.mmd2(x, y) == pytest.approx(expected, rel=1e-12)
    assert al.gaussian_kernel(x, x, sigma2).diagonal() == pytest.approx(np.ones(len(x)))


def test_linear_mmd_is_the_squared_distance_of_the_means():
    x, y = _samples(2, shift=1.5)
    assert al.linear_mmd2(x, y) == pytest.approx(np.sum((x.mean(0) - y.mean(0)) ** 2))
    # the linear kernel sees means only: a sample and its mirror image about the mean look alike
    mirrored = 2 * x.mean(0) - x
    assert al.linear_mmd2(x, mirrored) == pytest.approx(0.0, abs=1e-12)
    wide = (x - x.mean(0)) * 3 + x.mean(0)  # same mean, three times the spread
    assert al.linear_mmd2(x, wide) == pytest.approx(0.0, abs=1e-12)
    assert al.mmd2(x, wide) > 0.1  # the Gaussian kernel sees the spread


def test_coral_matches_its_formula():
    x, y = _samples(3, d=4)
    y = y @ np.diag([1.0, 2.0, 0.5, 3.0])
    d = x.shape[1]
    expected = np.sum((np.cov(x, rowvar=False) - np.cov(y, rowvar=False)) ** 2) / (4 * d * d)
    assert al.coral(x, y) == pytest.approx(expected, rel=1e-12)
    assert al.coral(x, x) == 0.0
    # CORAL sees covariances only: a shift of the mean costs nothing
    assert al.coral(x, x + 5.0) == pytest.approx(0.0, abs=1e-12)
    assert al.covariance(x) == pytest.approx(np.cov(x, rowvar=False))


def test_dann_lambda_and_reversal():
    assert al.dann_lambda(0.0) == 0.0
    assert al.dann_lambda(1.0) == pytest.approx(1.0, abs=1e-4)
    ps = np.linspace(0, 1, 11)
    lams = [al.dann_lambda(p) for p in ps]
    assert all(a < b for a, b in zip(lams, lams[1:]))
    assert al.dann_lambda(0.5) == pytest.approx(2 / (1 + np.exp(-5)) - 1)
    assert al.reverse_gradient(np.array([1.0, -2.0]), 0.5).tolist() == [-0.5, 1.0]
    with pytest.raises(ValueError, match="progress"):
        al.dann_lambda(1.5)
    assert al.domain_labels(2, 3).tolist() == [0, 0, 1, 1, 1]


def test_paired_batches_walk_both_domains():
    pairs = list(al.paired_batches(10, 4, 2, 10, seed=0))
    assert len(pairs) == 10 and all(len(s) == 2 and len(t) == 2 for s, t in pairs)
    # the first pass over each domain sees every index exactly once
    assert sorted(np.concatenate([s for s, _ in pairs[:5]]).tolist()) == list(range(10))
    assert sorted(np.concatenate([t for _, t in pairs[:2]]).tolist()) == list(range(4))
    again = list(al.paired_batches(10, 4, 2, 10, seed=0))
    assert all((a[0] == b[0]).all() and (a[1] == b[1]).all() for a, b in zip(pairs, again))
    with pytest.raises(ValueError, match="larger than a domain"):
        next(al.paired_batches(10, 4, 8, 1))


def test_plain_errors():
    with pytest.raises(ValueError, match="must match"):
        al.mmd2(np.zeros((3, 2)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="flatten"):
        al.coral(np.zeros((3, 2, 2)), np.zeros((3, 2, 2)))
    with pytest.raises(ValueError, match="two rows"):
        al.coral(np.zeros((1, 2)), np.zeros((3, 2)))


# -- the frameworks against the reference ---------------------------------------------------------


def _matches_reference(module, tensor):
    """``module``'s MMD², linear MMD² and CORAL equal the NumPy reference on float64 samples."""
    x, y = _samples(4, m=33, n=21, d=6, shift=0.8)
    tx, ty = tensor(x), tensor(y)
    assert float(module.mmd2(tx, ty)) == pytest.approx(al.mmd2(x, y), rel=1e-10, abs=1e-12)
    assert float(module.mmd2(tx, ty, sigma2=3.0)) == pytest.approx(al.mmd2(x, y, sigma2=3.0), rel=1e-10)
    assert float(module.linear_mmd2(tx, ty)) == pytest.approx(al.linear_mmd2(x, y), rel=1e-10)
    assert float(module.coral(tx, ty)) == pytest.approx(al.coral(x, y), rel=1e-10)
    assert float(module.mmd2(tx, tx)) == pytest.approx(0.0, abs=1e-12)
    return x, y, tx, ty


def test_torch_versions_equal_the_reference_and_reverse_gradients():
    torch = pytest.importorskip("torch")
    from tlcourse.methods import alignment_torch as at

    x, y, tx, ty = _matches_reference(at, torch.from_numpy)
    # float32 features, as in a network
    assert float(at.mmd2(tx.float(), ty.float())) == pytest.approx(al.mmd2(x, y), rel=1e-4, abs=1e-6)

    # gradient reversal: identity forward, −λ × the gradient backward
    w = torch.randn(5, 3, dtype=torch.float64)
    a = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    (a @ w).pow(2).sum().backward()
    plain = a.grad.clone()
    a.grad = None
    out = at.grad_reverse(a, 0.3)
    assert torch.equal(out, a)
    (out @ w).pow(2).sum().backward()
    assert torch.allclose(a.grad, -0.3 * plain)
    layer = at.GradientReversalLayer(2.0)
    b = torch.ones(3, requires_grad=True)
    layer(b).sum().backward()
    assert b.grad.tolist() == [-2.0, -2.0, -2.0]

    # the losses differentiate: one gradient step on y lowers MMD and CORAL
    for loss in (at.mmd2, at.coral):
        yy = ty.clone().requires_grad_(True)
        before = loss(tx, yy)
        before.backward()
        with torch.no_grad():
            yy -= 0.5 * yy.grad / yy.grad.norm()
        assert float(loss(tx, yy).detach()) < float(before.detach())


def test_tf_versions_equal_the_reference_and_reverse_gradients():
    tf = pytest.importorskip("tensorflow")
    from tlcourse.methods import alignment_tf as atf

    x, y, tx, ty = _matches_reference(atf, tf.constant)
    assert float(atf.mmd2(tf.cast(tx, tf.float32), tf.cast(ty, tf.float32))) == pytest.approx(
        al.mmd2(x, y), rel=1e-4, abs=1e-6)
    # an even number of pairs (the median averages the two middle values) and an odd one
    for m in (3, 4):
        xs, ys = _samples(5, m=m, n=2, d=2)
        assert float(atf.mmd2(tf.constant(xs), tf.constant(ys))) == pytest.approx(al.mmd2(xs, ys), rel=1e-10)

    w = tf.constant(np.random.default_rng(0).normal(size=(5, 3)))
    a = tf.Variable(np.random.default_rng(1).normal(size=(4, 5)))
    with tf.GradientTape() as tape:
        plain_loss = tf.reduce_sum(tf.square(a @ w))
    plain = tape.gradient(plain_loss, a)
    with tf.GradientTape() as tape:
        out = atf.grad_reverse(a, 0.3)
        loss = tf.reduce_sum(tf.square(out @ w))
    np.testing.assert_array_equal(out.numpy(), a.numpy())
    np.testing.assert_allclose(tape.gradient(loss, a).numpy(), -0.3 * plain.numpy())

    layer = atf.GradientReversalLayer(2.0)
    assert atf.GradientReversal is atf.GradientReversalLayer
    b = tf.Variable(tf.ones(3))
    with tf.GradientTape() as tape:
        s = tf.reduce_sum(layer(b))
    assert tape.gradient(s, b).numpy().tolist() == [-2.0, -2.0, -2.0]
    layer.lam.assign(0.5)  # a schedule changes λ without rebuilding anything

    @tf.function
    def reversed_grad(v):
        with tf.GradientTape() as tape:
            tape.watch(v)
            s = tf.reduce_sum(layer(v))
        return tape.gradient(s, v)

    assert reversed_grad(tf.ones(3)).numpy().tolist() == [-0.5, -0.5, -0.5]
    layer.lam.assign(1.0)
    assert reversed_grad(tf.ones(3)).numpy().tolist() == [-1.0, -1.0, -1.0]

    for loss in (atf.mmd2, atf.coral):
        yy = tf.Variable(y)
        with tf.GradientTape() as tape:
            before = loss(tx, yy)
        g = tape.gradient(before, yy)
        yy.assign_sub(0.5 * g / tf.norm(g))
        assert float(loss(tx, yy)) < float(before)


# -- the docstring examples ------------------------------------------------------------------------


@pytest.mark.parametrize("module", ["alignment", "alignment_torch", "alignment_tf"])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    pytest.importorskip({"alignment_torch": "torch", "alignment_tf": "tensorflow"}.get(module, "numpy"))
    mod = importlib.import_module(f"tlcourse.methods.{module}")
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0, result
