"""Feature-fusion layers for Keras (formulas and NumPy references in :mod:`.fusion`).

Each layer is a Keras layer called, like Keras' own merge layers, with the list of the
two feature tensors, ``fuse([f_s, f_t])``::

    WeightedSum(alpha)   z = α·f_s + (1 − α)·f_t     (learnable=True: α = sigmoid(a), a trained)
    Product()            z = f_s ⊙ f_t                (as keras.layers.Multiply)
    Maximum()            z = max(f_s, f_t)            (as keras.layers.Maximum)
    Concat()             z = [f_s; f_t]  (last axis)  (as keras.layers.Concatenate)

Unlike Keras' merge layers, they take exactly two inputs and a width mismatch raises a
``ValueError`` that says what to do (the same message as :mod:`.fusion_torch`).
``fusion("concat")`` builds a layer by name.

>>> import numpy as np
>>> f_s, f_t = np.array([[1.0, 0.0]], "float32"), np.array([[3.0, 1.0]], "float32")
>>> np.asarray(WeightedSum(0.25)([f_s, f_t])).tolist()
[[2.5, 0.75]]
>>> tuple(Concat()([f_s, f_t]).shape)
(1, 4)
"""

from __future__ import annotations

import math

from tlcourse.methods.fusion import check_alpha, describe_mismatch, operator_name
from tlcourse.runtime import _quiet_tensorflow_env

_quiet_tensorflow_env()  # before TensorFlow loads: no start-up log noise
import keras  # noqa: E402

__all__ = ["Concat", "Maximum", "Product", "WeightedSum", "fusion"]


def _known(shape_a, shape_b):
    """Two shapes with unknown (None) sizes treated as matching each other."""
    a, b = list(shape_a), list(shape_b)
    if len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if x is None or y is None:
                a[i] = b[i] = "?"
    return tuple(a), tuple(b)


class _Fusion(keras.layers.Layer):
    op = ""

    def _pair(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise TypeError(f"{type(self).__name__} takes the list [f_s, f_t] of two feature tensors, "
                            f"got {type(inputs).__name__}" + (f" of length {len(inputs)}" if isinstance(inputs, (list, tuple)) else ""))
        return inputs[0], inputs[1]

    def _check_shapes(self, shape_s, shape_t) -> None:
        problem = describe_mismatch(self.op, *_known(shape_s, shape_t))
        if problem:
            raise ValueError(problem)

    def build(self, input_shape):
        shapes = input_shape if isinstance(input_shape, (list, tuple)) else ()
        if len(shapes) != 2 or not all(isinstance(s, (list, tuple)) for s in shapes):
            raise TypeError(f"{type(self).__name__} takes the list [f_s, f_t] of two feature tensors, "
                            f"got one input of shape {input_shape}")
        self._check_shapes(*shapes)

    def call(self, inputs):
        f_s, f_t = self._pair(inputs)
        self._check_shapes(f_s.shape, f_t.shape)
        return self.combine(f_s, f_t)

    def combine(self, f_s, f_t):
        raise NotImplementedError


class WeightedSum(_Fusion):
    """z = α·f_s + (1 − α)·f_t, α fixed, or learned (``learnable=True``, α = sigmoid(a), starts at ``alpha``)."""

    op = "sum"

    def __init__(self, alpha: float = 0.5, learnable: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.initial_alpha = check_alpha(alpha)
        self.learnable = bool(learnable)
        if self.learnable and not 0.0 < self.initial_alpha < 1.0:
            raise ValueError(f"a learnable alpha = sigmoid(a) must start strictly inside (0, 1), got {alpha}")

    def build(self, input_shape):
        super().build(input_shape)
        if self.learnable:
            a = self.initial_alpha
            self.logit = self.add_weight(shape=(), name="alpha_logit", trainable=True,
                                         initializer=keras.initializers.Constant(math.log(a / (1.0 - a))))

    @property
    def alpha(self) -> float:
        """The current α, as a number."""
        if self.learnable and self.built:
            return float(keras.ops.convert_to_numpy(keras.ops.sigmoid(self.logit)))
        return self.initial_alpha

    def combine(self, f_s, f_t):
        if self.learnable:
            alpha = keras.ops.cast(keras.ops.sigmoid(self.logit), f_s.dtype)
        else:
            alpha = self.initial_alpha
        return alpha * f_s + (1 - alpha) * f_t

    def get_config(self):
        return {**super().get_config(), "alpha": self.initial_alpha, "learnable": self.learnable}


class Product(_Fusion):
    """z = f_s ⊙ f_t, element by element."""

    op = "product"

    def combine(self, f_s, f_t):
        return f_s * f_t


class Maximum(_Fusion):
    """z = max(f_s, f_t), element by element (on a tie the gradient goes to f_s, as ``tf.maximum``)."""

    op = "max"

    def combine(self, f_s, f_t):
        return keras.ops.maximum(f_s, f_t)


class Concat(_Fusion):
    """z = [f_s; f_t], joined along the last axis: width d_s + d_t."""

    op = "concat"

    def combine(self, f_s, f_t):
        return keras.ops.concatenate([f_s, f_t], axis=-1)


def fusion(op: str, alpha: float = 0.5, learnable: bool = False, **kwargs) -> keras.layers.Layer:
    """A fusion layer by name (``"sum"``, ``"product"``, ``"max"``, ``"concat"``); α options for ``"sum"``.

    >>> type(fusion("max")).__name__
    'Maximum'
    """
    op = operator_name(op)
    if op == "sum":
        return WeightedSum(alpha, learnable, **kwargs)
    return {"product": Product, "max": Maximum, "concat": Concat}[op](**kwargs)
