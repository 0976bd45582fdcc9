"""Penalties that pull parameters toward a point: zero (L2) or the source's weights (L2-SP).

A target model ``f_t`` fine-tuned from a source model ``f_s`` minimises

    L_t(w) = Σ_i l(f_t(x_i), y_i) + λ R(w)

with one of

    L2       R(w) = Σ_l ||w_l||²            = Σ_l Σ_j w_lj²             ∇R = 2 w
    L2-SP    R(w) = Σ_l ||w_l − w_l^s||²    = Σ_l Σ_j (w_lj − w^s_lj)²   ∇R = 2 (w − w^s)

where ``l`` runs over the parameter arrays (layers) and ``w^s`` are the source's weights,
stored before fine-tuning. L2 pulls every weight toward 0 and so, where the target data say
little, erases what the source learned; L2-SP ("starting point as reference", Li, Grandvalet
& Davoine, ICML 2018) pulls toward the source's weights instead. The paper applies L2-SP to
the transferred layers and plain L2 to the new head, which has no source value.

No factor ½ and no λ here: ``λ·R`` is the caller's. (PyTorch's ``weight_decay=wd`` adds
``wd·w`` to the gradient, which is L2 with ``λ = wd/2``.)

The weights may be one array, a sequence of arrays, or a dict of arrays (matched by key).
:mod:`tlcourse.methods.regularization_torch` and :mod:`tlcourse.methods.regularization_tf`
compute the same penalties, differentiably, over a model's parameters.

>>> import numpy as np
>>> w, w_s = [np.array([1.0, 2.0]), np.array([[3.0]])], [np.array([1.0, 0.0]), np.array([[1.0]])]
>>> l2_penalty(w)                 # 1 + 4 + 9
14.0
>>> l2sp_penalty(w, w_s)          # 0 + 4 + 4
8.0
>>> [g.tolist() for g in l2sp_gradient(w, w_s)]
[[0.0, 4.0], [[4.0]]]
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["l2_gradient", "l2_penalty", "l2sp_gradient", "l2sp_penalty"]


def _arrays(weights, what: str) -> list[np.ndarray]:
    if isinstance(weights, Mapping):
        weights = list(weights.values())
    elif isinstance(weights, np.ndarray) or np.isscalar(weights):
        weights = [weights]
    try:
        return [np.asarray(w, dtype=np.float64) for w in weights]
    except (TypeError, ValueError) as err:
        raise TypeError(f"{what}: expected an array, a list of arrays or a dict of arrays ({err})") from err


def _pairs(weights, source_weights) -> list[tuple[np.ndarray, np.ndarray]]:
    if isinstance(weights, Mapping) != isinstance(source_weights, Mapping):
        raise TypeError("give weights and source_weights both as dicts or both as arrays/lists")
    if isinstance(weights, Mapping):
        missing = sorted(set(source_weights) - set(weights))
        if missing:
            raise KeyError(f"source weights {missing} have no counterpart in weights {sorted(weights)}")
        keys = list(source_weights)
        weights = {k: weights[k] for k in keys}
    w, s = _arrays(weights, "weights"), _arrays(source_weights, "source_weights")
    if len(w) != len(s):
        raise ValueError(f"{len(w)} weight arrays but {len(s)} source arrays: they must pair up one to one")
    for i, (a, b) in enumerate(zip(w, s)):
        if a.shape != b.shape:
            raise ValueError(f"array {i}: weights have shape {a.shape}, source weights {b.shape}")
    return list(zip(w, s))


def l2_penalty(weights) -> float:
    """R = Σ_l ||w_l||², the squared Euclidean norm of all the weights (pulls toward 0)."""
    return float(sum(np.sum(w * w) for w in _arrays(weights, "weights")))


def l2sp_penalty(weights, source_weights) -> float:
    """R = Σ_l ||w_l − w_l^s||², the squared distance to the source's weights (pulls toward them).

    >>> l2sp_penalty(np.array([3.0, 4.0]), np.array([0.0, 0.0]))
    25.0
    """
    return float(sum(np.sum((w - s) ** 2) for w, s in _pairs(weights, source_weights)))


def l2_gradient(weights) -> list[np.ndarray]:
    """∇R = 2 w for each array (of :func:`l2_penalty`)."""
    return [2.0 * w for w in _arrays(weights, "weights")]


def l2sp_gradient(weights, source_weights) -> list[np.ndarray]:
    """∇R = 2 (w − w^s) for each array (of :func:`l2sp_penalty`)."""
    return [2.0 * (w - s) for w, s in _pairs(weights, source_weights)]
