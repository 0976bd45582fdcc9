"""MMD, CORAL and gradient reversal in TensorFlow/Keras, differentiable (formulas in :mod:`.alignment`).

    MMD²_b  = mean k(x_i, x_j) + mean k(y_i, y_j) − 2 mean k(x_i, y_j),  k = 1/J Σ_j exp(−d²/(2 s_j σ²))
    CORAL   = ||C_s − C_t||²_F / (4 d²)
    GRL     forward: x ↦ x        backward: g ↦ −λ g

Each loss takes two feature batches ``(m, d)`` and ``(n, d)`` and returns a scalar tensor
that ``tf.GradientTape`` differentiates; the values equal the NumPy reference
(``tests/test_alignment.py``). The median-heuristic bandwidth σ² is computed from the batch
and treated as a constant (``tf.stop_gradient``), as in DAN.

A DANN step puts :func:`grad_reverse` (written with ``tf.custom_gradient``) between the
features and the domain classifier::

    with tf.GradientTape() as tape:
        f_s, f_t = features(x_s, training=True), features(x_t, training=True)
        d = domain_classifier(grad_reverse(tf.concat([f_s, f_t], 0), lam))
        loss = cross_entropy(y_s, head(f_s)) + domain_loss(domain, d)

>>> x = tf.random.normal((20, 4))
>>> with tf.GradientTape() as tape:
...     tape.watch(x)
...     y = tf.reduce_sum(grad_reverse(x, 0.5))
>>> tape.gradient(y, x)[0].numpy().tolist()
[-0.5, -0.5, -0.5, -0.5]
>>> float(mmd2(x, x)), float(coral(x, x))
(0.0, 0.0)
"""

from __future__ import annotations

from tlcourse.methods.alignment import SCALES
from tlcourse.runtime import _quiet_tensorflow_env

_quiet_tensorflow_env()  # before TensorFlow loads: no start-up log noise
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

__all__ = ["GradientReversal", "GradientReversalLayer", "coral", "grad_reverse", "linear_mmd2", "mmd2"]


def _check(x, y) -> None:
    if len(x.shape) != 2 or len(y.shape) != 2:
        raise ValueError(f"expected feature matrices (n, d); got shapes {tuple(x.shape)} and {tuple(y.shape)}"
                         " — flatten with tf.reshape(x, (len(x), -1))")
    if x.shape[1] is not None and y.shape[1] is not None and x.shape[1] != y.shape[1]:
        raise ValueError(f"x has {x.shape[1]} features per row but y has {y.shape[1]}: they must match")


def _sq_distances(a, b):
    d2 = (tf.reduce_sum(a * a, 1)[:, None] + tf.reduce_sum(b * b, 1)[None, :]
          - 2.0 * tf.matmul(a, b, transpose_b=True))
    return tf.maximum(d2, 0.0)


def _median_sq_distance(z):
    """Median of the squared distances over the pairs i < j (mean of the two middle values)."""
    n = tf.shape(z)[0]
    d2 = _sq_distances(z, z)
    upper = tf.linalg.band_part(tf.ones((n, n), tf.bool), 0, -1) & ~tf.eye(n, dtype=tf.bool)
    v = tf.sort(tf.boolean_mask(d2, upper))
    m = tf.size(v)
    mid = m // 2
    return tf.where(m % 2 == 1, v[mid], 0.5 * (v[tf.maximum(mid - 1, 0)] + v[mid]))


def mmd2(x, y, sigma2=None, scales=SCALES):
    """Biased MMD² with the multi-bandwidth Gaussian kernel; σ² by the median heuristic if ``None``."""
    x, y = tf.convert_to_tensor(x), tf.convert_to_tensor(y)
    _check(x, y)
    if sigma2 is None:
        sigma2 = tf.maximum(tf.stop_gradient(_median_sq_distance(tf.concat([x, y], 0))), 1e-12)
    sigma2 = tf.cast(sigma2, x.dtype)

    def k(d2):
        return tf.reduce_mean(tf.stack([tf.exp(-d2 / (2.0 * s * sigma2)) for s in scales]), 0)

    value = (tf.reduce_mean(k(_sq_distances(x, x))) + tf.reduce_mean(k(_sq_distances(y, y)))
             - 2.0 * tf.reduce_mean(k(_sq_distances(x, y))))
    return tf.maximum(value, 0.0)


def linear_mmd2(x, y):
    """MMD² with the linear kernel: ``||mean(x) − mean(y)||²``."""
    x, y = tf.convert_to_tensor(x), tf.convert_to_tensor(y)
    _check(x, y)
    return tf.reduce_sum(tf.square(tf.reduce_mean(x, 0) - tf.reduce_mean(y, 0)))


def _covariance(x):
    centred = x - tf.reduce_mean(x, 0, keepdims=True)
    n = tf.cast(tf.shape(x)[0], x.dtype)
    return tf.matmul(centred, centred, transpose_a=True) / (n - 1.0)


def coral(x, y):
    """Deep CORAL: ``||C_s − C_t||²_F / (4 d²)`` with unbiased covariances (n ≥ 2 rows each)."""
    x, y = tf.convert_to_tensor(x), tf.convert_to_tensor(y)
    _check(x, y)
    if (x.shape[0] is not None and x.shape[0] < 2) or (y.shape[0] is not None and y.shape[0] < 2):
        raise ValueError("CORAL needs at least two rows per domain (a covariance)")
    d = tf.cast(tf.shape(x)[1], x.dtype)
    return tf.reduce_sum(tf.square(_covariance(x) - _covariance(y))) / (4.0 * d * d)


def grad_reverse(x, lam=1.0):
    """``x`` unchanged, with its gradient reversed and scaled by ``λ`` on the way back."""
    x = tf.convert_to_tensor(x)
    lam = tf.cast(tf.convert_to_tensor(lam), x.dtype)

    @tf.custom_gradient
    def _reverse(value):
        def grad(upstream):
            return -lam * upstream

        return tf.identity(value), grad

    return _reverse(x)


class GradientReversalLayer(keras.layers.Layer):
    """:func:`grad_reverse` as a Keras layer; ``layer.lam.assign(value)`` as training progresses.

    (The PyTorch module of the same name is ``alignment_torch.GradientReversalLayer``.)"""

    def __init__(self, lam: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.lam = self.add_weight(shape=(), initializer=keras.initializers.Constant(float(lam)),
                                   trainable=False, name="lam")

    def call(self, x):
        return grad_reverse(x, tf.convert_to_tensor(self.lam))

    def get_config(self):
        return {**super().get_config(), "lam": float(self.lam.numpy())}


GradientReversal = GradientReversalLayer  # the name this layer had first
