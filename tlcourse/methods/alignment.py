"""Aligning source and target features: MMD, CORAL and the gradient reversal of DANN.

Unsupervised domain adaptation trains on labelled source images ``x_s`` and *unlabelled*
target images ``x_t``. A feature extractor ``f`` and a classifier ``g`` minimise

    L = L_cls(g(f(x_s)), y_s) + λ · L_align(f(x_s), f(x_t))

where ``L_align`` is small when the two feature distributions look alike. This module holds
the NumPy reference of each ``L_align`` (the formulas the framework versions in
:mod:`tlcourse.methods.alignment_torch` and :mod:`tlcourse.methods.alignment_tf` reproduce,
differentiably), the schedule of DANN's reversal weight, and a framework-neutral iterator
of paired source/target mini-batches.

**MMD** (maximum mean discrepancy; Gretton et al., JMLR 2012; used in a network by DAN,
Long et al., ICML 2015). With a kernel ``k``,

    MMD²(P, Q) = E k(x, x') + E k(y, y') − 2 E k(x, y),     x, x' ~ P,  y, y' ~ Q

and its biased estimate from samples ``X`` (m rows) and ``Y`` (n rows) replaces each
expectation by the mean over all pairs, diagonal included:

    MMD²_b = 1/m² Σ_ij k(x_i, x_j) + 1/n² Σ_ij k(y_i, y_j) − 2/(mn) Σ_ij k(x_i, y_j)

It is the squared distance between the two samples' mean embeddings, so it is ≥ 0 and
exactly 0 for identical samples. With the linear kernel ``k(x, y) = x·y`` it is the squared
distance of the means, ``||mean(X) − mean(Y)||²``; a Gaussian kernel sees every moment.

**CORAL** (correlation alignment; Sun & Saenko, "Deep CORAL", ECCV workshops 2016) matches
second-order statistics, the covariance matrices of the ``d`` features:

    L_CORAL = ||C_s − C_t||²_F / (4 d²),     C = 1/(n − 1) (Xᵀ X − (1ᵀX)ᵀ(1ᵀX) / n)

**DANN** (domain-adversarial training; Ganin et al., JMLR 2016) trains a domain classifier
``h`` to tell source features from target features, and trains ``f`` to *fool* it, with one
backward pass: between ``f`` and ``h`` sits a gradient reversal layer, the identity going
forward and ``−λ ×`` the gradient going back. ``h`` descends the domain loss while ``f``
ascends it. The paper raises ``λ`` from 0 to 1 as training progresses (``p`` from 0 to 1):

    λ_p = 2 / (1 + exp(−γ p)) − 1,     γ = 10

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(50, 3))
>>> float(mmd2(x, x))
0.0
>>> bool(mmd2(x, x + 2.0) > mmd2(x, x + 0.5) > 0.0)
True
>>> float(coral(x, x))
0.0
>>> round(dann_lambda(0.0), 3), round(dann_lambda(1.0), 3)
(0.0, 1.0)
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = [
    "SCALES",
    "coral",
    "covariance",
    "dann_lambda",
    "domain_labels",
    "gaussian_kernel",
    "linear_mmd2",
    "median_sq_distance",
    "mmd2",
    "paired_batches",
    "reverse_gradient",
    "sq_distances",
]

SCALES = (0.125, 0.25, 0.5, 1.0, 2.0)
"""Multipliers of the median heuristic's σ² for the multi-bandwidth Gaussian kernel
(2⁻³ … 2¹, the spread of TLlib's DAN; there the base σ² is the mean squared distance)."""


def _features(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a feature matrix (n, d), got shape {arr.shape}"
                         + ("; flatten images first, x.reshape(len(x), -1)" if arr.ndim > 2 else ""))
    if len(arr) < 1:
        raise ValueError(f"{name}: no rows")
    return arr


def _pair(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = _features(x, "x"), _features(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x has {x.shape[1]} features per row but y has {y.shape[1]}: they must match")
    return x, y


def sq_distances(a, b) -> np.ndarray:
    """Squared Euclidean distances ``||a_i − b_j||²`` between the rows of ``a`` and ``b``."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d2, 0.0)


def median_sq_distance(x, y) -> float:
    """The median heuristic: the median of ``||z_i − z_j||²`` over the distinct pairs ``i < j``
    of the pooled sample ``z = [x; y]`` (the average of the two middle values for an even count).

    >>> median_sq_distance(np.array([[0.0], [1.0]]), np.array([[3.0]]))   # 1, 9, 4
    4.0
    """
    z = np.concatenate(_pair(x, y))
    if len(z) < 2:
        raise ValueError("the median heuristic needs at least two points")
    d2 = sq_distances(z, z)
    return float(np.median(d2[np.triu_indices(len(z), k=1)]))


def gaussian_kernel(a, b, sigma2: float, scales=SCALES) -> np.ndarray:
    """The multi-bandwidth Gaussian kernel matrix, the mean over the scales ``s_j``:

        k(a, b) = 1/J Σ_j exp(−||a − b||² / (2 s_j σ²))

    so that ``k(a, a) = 1``.
    """
    if not sigma2 > 0:
        raise ValueError(f"sigma2 must be positive, got {sigma2!r}")
    d2 = sq_distances(a, b)
    return np.mean([np.exp(-d2 / (2.0 * s * sigma2)) for s in scales], axis=0)


def mmd2(x, y, sigma2: float | None = None, scales=SCALES) -> float:
    """Biased estimate of MMD² between the rows of ``x`` (m, d) and ``y`` (n, d):

        MMD²_b = mean k(x_i, x_j) + mean k(y_i, y_j) − 2 mean k(x_i, y_j)

    with the Gaussian kernel of :func:`gaussian_kernel`. ``sigma2=None`` takes σ² from the
    median heuristic (:func:`median_sq_distance` of the pooled sample). Lies in [0, 2].

    >>> a = np.array([[0.0, 0.0], [1.0, 0.0]])
    >>> float(mmd2(a, a)), round(mmd2(a, a + 10.0), 3)
    (0.0, 1.252)
    """
    x, y = _pair(x, y)
    if sigma2 is None:
        sigma2 = median_sq_distance(x, y)
        if sigma2 <= 0:  # every point the same: no scale to measure with
            return 0.0
    kxx = gaussian_kernel(x, x, sigma2, scales).mean()
    kyy = gaussian_kernel(y, y, sigma2, scales).mean()
    kxy = gaussian_kernel(x, y, sigma2, scales).mean()
    return float(max(kxx + kyy - 2.0 * kxy, 0.0))


def linear_mmd2(x, y) -> float:
    """MMD² with the linear kernel ``k(a, b) = a·b``: the squared distance of the means,
    ``||mean(x) − mean(y)||²`` (only the first moment is compared).

    >>> linear_mmd2(np.array([[0.0, 0.0], [2.0, 0.0]]), np.array([[1.0, 3.0]]))
    9.0
    """
    x, y = _pair(x, y)
    diff = x.mean(0) - y.mean(0)
    return float(diff @ diff)


def covariance(x) -> np.ndarray:
    """The unbiased covariance of the columns, ``1/(n − 1) (XᵀX − (1ᵀX)ᵀ(1ᵀX)/n)`` (n ≥ 2)."""
    x = _features(x, "x")
    if len(x) < 2:
        raise ValueError("a covariance needs at least two rows")
    centred = x - x.mean(0)
    return centred.T @ centred / (len(x) - 1)


def coral(x, y) -> float:
    """Deep CORAL's loss ``||C_s − C_t||²_F / (4 d²)`` between the feature covariances.

    >>> x = np.array([[0.0, 0.0], [2.0, 2.0]])       # C = [[2, 2], [2, 2]]
    >>> coral(x, np.zeros((2, 2)))                   # 16 / (4 · 4)
    1.0
    """
    x, y = _pair(x, y)
    d = x.shape[1]
    diff = covariance(x) - covariance(y)
    return float(np.sum(diff * diff) / (4.0 * d * d))


def dann_lambda(progress: float, gamma: float = 10.0) -> float:
    """DANN's reversal weight ``λ_p = 2 / (1 + exp(−γ p)) − 1`` at training progress ``p ∈ [0, 1]``.

    It starts at 0 — the domain classifier first learns while its noisy gradient is kept away
    from the features — and approaches 1 (0.987 at p = 0.5, with γ = 10).
    """
    if not 0.0 <= progress <= 1.0:
        raise ValueError(f"progress must lie in [0, 1] (step / total steps), got {progress!r}")
    return float(2.0 / (1.0 + np.exp(-gamma * progress)) - 1.0)


def reverse_gradient(grad, lam: float = 1.0) -> np.ndarray:
    """What the gradient reversal layer passes back: ``−λ · grad`` (forward it is the identity).

    >>> reverse_gradient(np.array([1.0, -2.0]), 0.5).tolist()
    [-0.5, 1.0]
    """
    return -float(lam) * np.asarray(grad, dtype=np.float64)


def domain_labels(n_source: int, n_target: int) -> np.ndarray:
    """Labels for a domain classifier fed ``[source; target]``: 0 for source rows, 1 for target."""
    return np.concatenate([np.zeros(n_source), np.ones(n_target)]).astype(np.float32)


def _count(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{what} must be a positive int, got {value!r}")
    return int(value)


def paired_batches(n_source: int, n_target: int, batch_size: int, steps: int, seed: int = 0):
    """Yield ``steps`` pairs ``(source indices, target indices)`` of ``batch_size`` each.

    Each domain is walked in its own random order (``numpy.random.default_rng(seed)``) and
    reshuffled when it runs out, so the smaller domain simply comes round more often. Only
    indices: the same pairs drive a PyTorch and a Keras loop.

    >>> [(s.tolist(), t.tolist()) for s, t in paired_batches(4, 2, 2, 3, seed=0)]
    [([2, 0], [1, 0]), ([1, 3], [0, 1]), ([0, 3], [1, 0])]
    """
    n_source, n_target = _count(n_source, "n_source"), _count(n_target, "n_target")
    batch_size, steps = _count(batch_size, "batch_size"), _count(steps, "steps")
    if batch_size > min(n_source, n_target):
        raise ValueError(f"batch_size {batch_size} is larger than a domain ({n_source} source, {n_target} target)")
    rng = np.random.default_rng(seed)
    orders = [rng.permutation(n_source), rng.permutation(n_target)]
    pos = [0, 0]
    sizes = (n_source, n_target)
    for _ in range(steps):
        out = []
        for d in (0, 1):
            if pos[d] + batch_size > sizes[d]:
                orders[d], pos[d] = rng.permutation(sizes[d]), 0
            out.append(orders[d][pos[d]:pos[d] + batch_size])
            pos[d] += batch_size
        yield out[0], out[1]
