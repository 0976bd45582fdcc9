"""L2 and L2-SP penalties over a Keras model's weights (formulas in :mod:`.regularization`).

    L2      R = Σ_v ||w_v||²          L2-SP   R = Σ_v ||w_v − w_v^s||²

``snapshot(model)`` stores a constant copy of the trainable weights, keyed by the variable's
``path`` (e.g. ``"sequential/features/kernel"``), right after the model received the
source's weights (``set_weights``) and before any layer is frozen or fine-tuned; the
penalties return a scalar tensor that ``tf.GradientTape`` differentiates. Paths are global,
so ``l2sp_penalty(model.get_layer("features"), source)`` picks the layer's own weights from
a snapshot of the whole model. Weights not in the snapshot (a new head) are left out, and
so are frozen weights (``trainable = False``: the optimizer cannot move them, they would only
add a constant) and non-trainable state (BatchNorm's moving statistics).

>>> import keras
>>> layer = keras.layers.Dense(1)
>>> layer.build((None, 2))
>>> source = snapshot(layer)
>>> _ = layer.kernel.assign_add([[1.0], [1.0]])
>>> round(float(l2sp_penalty(layer, source)), 4)   # two weights moved by 1 (float32)
2.0
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import tensorflow as tf

__all__ = ["l2_penalty", "l2sp_penalty", "snapshot"]


def snapshot(model) -> dict[str, tf.Tensor]:
    """A constant copy of the model's trainable weights, keyed by variable path."""
    out: dict[str, tf.Tensor] = {}
    for v in model.trainable_weights:
        if v.path in out:
            raise ValueError(f"two weights share the path {v.path!r}: give the layers distinct names")
        out[v.path] = tf.constant(v.numpy())
    return out


def l2_penalty(model, skip: Iterable[str] = ()) -> tf.Tensor:
    """R = Σ ||w||² over the model's trainable weights whose paths are not in ``skip``."""
    skip = set(skip)
    terms = [tf.reduce_sum(tf.square(v)) for v in model.trainable_weights if v.path not in skip]
    return tf.add_n(terms) if terms else tf.constant(0.0)


def l2sp_penalty(model, source: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """R = Σ ||w − w^s||² over the model's trainable weights whose paths are in ``source``.

    Raises ``KeyError`` when none of the model's weights is in ``source`` (wrong snapshot).
    """
    if not any(v.path in source for v in model.weights):
        raise KeyError(
            f"none of this model's weights {[v.path for v in model.weights][:6]} is in the "
            f"snapshot {sorted(source)[:6]}; take the snapshot of this model (or its parent)"
        )
    terms = []
    for v in model.trainable_weights:
        if v.path not in source:
            continue
        w_s = source[v.path]
        if tuple(v.shape) != tuple(w_s.shape):
            raise ValueError(f"{v.path}: weight has shape {tuple(v.shape)}, source {tuple(w_s.shape)}")
        terms.append(tf.reduce_sum(tf.square(v - tf.cast(w_s, v.dtype))))
    return tf.add_n(terms) if terms else tf.constant(0.0)
