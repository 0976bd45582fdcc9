"""Feature fusion: combining a source extractor's features with a target extractor's.

Two extractors look at the same input ``x``: ``f_s`` from a network trained on the
source (usually frozen) and ``f_t`` trained on the target. A fusion operator turns the
pair into one vector ``z`` and a head classifies it, ``ŷ = g(z)``::

    weighted sum    z = α·f_s(x) + (1 − α)·f_t(x)      α ∈ [0, 1], fixed or learned   needs d_s = d_t
    product         z = f_s(x) ⊙ f_t(x)                 element by element             needs d_s = d_t
    maximum         z = max(f_s(x), f_t(x))             element by element             needs d_s = d_t
    concatenation   z = [f_s(x); f_t(x)]                 width d_s + d_t                any widths

Sum, product and maximum pair unit ``j`` of the source with unit ``j`` of the target, so
both must have the same width ``d``; with different widths, project one side first (a
linear layer ``W f_t`` with ``W ∈ R^{d_s × d_t}``) or concatenate. Concatenation followed
by a linear head is the most general of the linear ones::

    W [f_s; f_t] = W_s f_s + W_t f_t          (W = [W_s  W_t])

and a weighted sum followed by a linear head is the special case ``W_s = α W``,
``W_t = (1 − α) W``: it ties the two streams to one matrix, as if source unit ``j`` and
target unit ``j`` meant the same thing.

What each operator does to the scale of the features (with ReLU features, ``≥ 0``):

* weighted sum: the larger stream dominates unless ``α`` compensates;
* product: scales multiply (``rms(z) ≈ rms(f_s)·rms(f_t)`` for independent streams), and
  ``z_j = 0`` wherever *either* side is 0 — the zeros of both sides add up;
* maximum: ``z ≥`` both sides; when one stream is much larger it wins almost every
  unit and the other is ignored;
* concatenation: each stream keeps its own scale; the head sees both.

And to the gradients ``∂L/∂f`` flowing back into the (trainable) target extractor, given
``g = ∂L/∂z`` (see :func:`gradients`)::

    weighted sum    ∂L/∂f_t = (1 − α)·g
    product         ∂L/∂f_t = f_s ⊙ g          zero wherever the source unit is 0
    maximum         ∂L/∂f_t = g · [f_t > f_s]    (+ g/2 on ties)  zero wherever the source wins
    concatenation   ∂L/∂f_t = g[d_s:]

This module holds NumPy reference implementations (float64);
:mod:`tlcourse.methods.fusion_torch` and :mod:`tlcourse.methods.fusion_tf` hold the same
operators as layers. The idea of a frozen base plus a trained side network merged by a
weighted sum is "side-tuning" (Zhang et al., ECCV 2020); Feichtenhofer, Pinz & Zisserman
(CVPR 2016) compare sum, max, concatenation and other fusions of two networks' features.

>>> import numpy as np
>>> f_s, f_t = np.array([[1.0, 0.0, 2.0]]), np.array([[3.0, 1.0, 0.0]])
>>> weighted_sum(f_s, f_t, alpha=0.25).tolist()
[[2.5, 0.75, 0.5]]
>>> product(f_s, f_t).tolist(), maximum(f_s, f_t).tolist()
([[3.0, 0.0, 0.0]], [[3.0, 1.0, 2.0]])
>>> concat(f_s, f_t).shape, fused_width("concat", 64, 32), fused_width("sum", 64, 64)
((1, 6), 96, 64)
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = [
    "OPERATORS",
    "check_pair",
    "concat",
    "fuse",
    "fused_width",
    "gradients",
    "maximum",
    "product",
    "weighted_sum",
]

OPERATORS = ("sum", "product", "max", "concat")
"""The fusion operators by name: weighted sum, element-wise product, element-wise maximum, concatenation."""

_NAMES = {"sum": "weighted sum", "product": "product", "max": "maximum", "concat": "concatenation"}
_ALIASES = {"weighted_sum": "sum", "prod": "product", "maximum": "max", "concatenation": "concat", "cat": "concat"}


def operator_name(op: str) -> str:
    """The canonical name of a fusion operator (``"sum"``, ``"product"``, ``"max"``, ``"concat"``).

    >>> operator_name("maximum")
    'max'
    """
    if not isinstance(op, str):
        raise TypeError(f"a fusion operator is named by a string, one of {', '.join(OPERATORS)}; got {op!r}")
    key = op.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in OPERATORS:
        raise ValueError(f"unknown fusion operator {op!r}; valid names: {', '.join(OPERATORS)}")
    return key


def describe_mismatch(op: str, shape_s, shape_t) -> str | None:
    """Why two feature shapes cannot be fused by ``op`` (``None`` if they can).

    Shared by the NumPy, PyTorch and Keras implementations so that all three say the same.
    """
    op = operator_name(op)
    shape_s, shape_t = tuple(shape_s), tuple(shape_t)
    if len(shape_s) != len(shape_t):
        return (f"{_NAMES[op]}: the source features have shape {shape_s} and the target features "
                f"{shape_t}; they must have the same number of axes, e.g. (batch, features)")
    if len(shape_s) == 0:
        return f"{_NAMES[op]}: expected feature arrays such as (batch, features), got scalars"
    if op == "concat":
        if shape_s[:-1] != shape_t[:-1]:
            return (f"concatenation joins the last axis, so every other axis must agree: source "
                    f"{shape_s}, target {shape_t} (different batch sizes?)")
        return None
    if shape_s != shape_t:
        if shape_s[:-1] == shape_t[:-1]:
            return (f"{_NAMES[op]} pairs source unit j with target unit j, so both need the same width: "
                    f"the source gives {shape_s[-1]} features, the target {shape_t[-1]}. Give the target "
                    f"extractor {shape_s[-1]} outputs, project one side with a linear layer, or use concatenation")
        return f"{_NAMES[op]}: the source features have shape {shape_s} and the target features {shape_t}"
    return None


def check_pair(op: str, f_s, f_t) -> tuple[np.ndarray, np.ndarray]:
    """Both feature arrays as float64, or a ``ValueError`` saying why ``op`` cannot fuse them."""
    a, b = np.asarray(f_s, dtype=np.float64), np.asarray(f_t, dtype=np.float64)
    problem = describe_mismatch(op, a.shape, b.shape)
    if problem:
        raise ValueError(problem)
    return a, b


def check_alpha(alpha) -> float:
    """``alpha`` as a float in [0, 1], or a ``ValueError``."""
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha is the weight of the source features, a number in [0, 1]; got {alpha!r}")
    return float(alpha)


def weighted_sum(f_s, f_t, alpha: float = 0.5) -> np.ndarray:
    """z = α·f_s + (1 − α)·f_t (same shapes; α = 1 keeps only the source, α = 0 only the target).

    >>> weighted_sum([[2.0, 4.0]], [[0.0, 0.0]], alpha=0.5).tolist()
    [[1.0, 2.0]]
    """
    a, b = check_pair("sum", f_s, f_t)
    alpha = check_alpha(alpha)
    return alpha * a + (1.0 - alpha) * b


def product(f_s, f_t) -> np.ndarray:
    """z = f_s ⊙ f_t, element by element (same shapes): zero wherever either side is zero."""
    a, b = check_pair("product", f_s, f_t)
    return a * b


def maximum(f_s, f_t) -> np.ndarray:
    """z = max(f_s, f_t), element by element (same shapes)."""
    a, b = check_pair("max", f_s, f_t)
    return np.maximum(a, b)


def concat(f_s, f_t) -> np.ndarray:
    """z = [f_s; f_t], joined along the last axis (widths may differ): shape (..., d_s + d_t)."""
    a, b = check_pair("concat", f_s, f_t)
    return np.concatenate([a, b], axis=-1)


def fuse(f_s, f_t, op: str, alpha: float = 0.5) -> np.ndarray:
    """Fuse with the operator named ``op`` (one of :data:`OPERATORS`); ``alpha`` is for ``"sum"``.

    >>> fuse([[1.0]], [[3.0]], "sum", alpha=0.75).tolist()
    [[1.5]]
    """
    op = operator_name(op)
    if op == "sum":
        return weighted_sum(f_s, f_t, alpha)
    return {"product": product, "max": maximum, "concat": concat}[op](f_s, f_t)


def fused_width(op: str, d_s: int, d_t: int) -> int:
    """Width of ``z`` for features of widths ``d_s`` and ``d_t`` (``ValueError`` if ``op`` needs equal widths).

    >>> fused_width("concat", 64, 64)
    128
    """
    op = operator_name(op)
    for name, d in (("d_s", d_s), ("d_t", d_t)):
        if isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 1:
            raise ValueError(f"{name} must be a positive whole number of features, got {d!r}")
    if op == "concat":
        return int(d_s) + int(d_t)
    problem = describe_mismatch(op, (1, d_s), (1, d_t))
    if problem:
        raise ValueError(problem)
    return int(d_s)


def gradients(op: str, f_s, f_t, grad_z, alpha: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """(∂L/∂f_s, ∂L/∂f_t) given ``grad_z`` = ∂L/∂z, by the chain rule through the operator.

    For ``"max"`` a tie sends half the gradient to each side (PyTorch's ``torch.maximum``;
    TensorFlow's ``tf.maximum`` sends all of it to the first argument). With ReLU features
    ties are mostly both-zero units, whose gradient the ReLU stops anyway.

    >>> g_s, g_t = gradients("product", [[0.0, 2.0]], [[5.0, 3.0]], [[1.0, 1.0]])
    >>> g_t.tolist()       # no gradient reaches the target unit where the source is 0
    [[0.0, 2.0]]
    """
    op = operator_name(op)
    a, b = check_pair(op, f_s, f_t)
    g = np.asarray(grad_z, dtype=np.float64)
    expected = concat(a, b).shape if op == "concat" else a.shape
    if g.shape != expected:
        raise ValueError(f"grad_z must have the shape of the fused features {expected}, got {g.shape}")
    if op == "sum":
        alpha = check_alpha(alpha)
        return alpha * g, (1.0 - alpha) * g
    if op == "product":
        return g * b, g * a
    if op == "max":
        share_s = np.where(a > b, 1.0, np.where(a < b, 0.0, 0.5))
        return g * share_s, g * (1.0 - share_s)
    d_s = a.shape[-1]
    return g[..., :d_s], g[..., d_s:]
