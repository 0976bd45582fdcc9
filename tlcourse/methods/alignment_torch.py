"""MMD, CORAL and gradient reversal in PyTorch, differentiable (formulas in :mod:`.alignment`).

    MMD²_b  = mean k(x_i, x_j) + mean k(y_i, y_j) − 2 mean k(x_i, y_j),  k = 1/J Σ_j exp(−d²/(2 s_j σ²))
    CORAL   = ||C_s − C_t||²_F / (4 d²)
    GRL     forward: x ↦ x        backward: g ↦ −λ g

Each loss takes two feature batches ``(m, d)`` and ``(n, d)`` and returns a scalar tensor
that ``backward()`` differentiates; the values equal the NumPy reference
(``tests/test_alignment.py``). The median-heuristic bandwidth σ² is computed from the batch
and treated as a constant (no gradient flows through it), as in DAN.

A DANN step puts :func:`grad_reverse` between the features and the domain classifier::

    f_s, f_t = model.features(x_s), model.features(x_t)
    d = domain_classifier(grad_reverse(torch.cat([f_s, f_t]), lam))
    loss = F.cross_entropy(model.head(f_s), y_s) + F.binary_cross_entropy_with_logits(d[:, 0], domain)

>>> x = torch.randn(20, 4, requires_grad=True)
>>> y = grad_reverse(x, 0.5).sum()
>>> y.backward()
>>> x.grad[0].tolist()
[-0.5, -0.5, -0.5, -0.5]
>>> float(mmd2(x, x).detach()), float(coral(x, x).detach())
(0.0, 0.0)
"""

from __future__ import annotations

import torch
from torch import nn

from tlcourse.methods.alignment import SCALES

__all__ = ["GradientReversal", "GradientReversalLayer", "coral", "grad_reverse", "linear_mmd2", "mmd2"]


def _check(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.dim() != 2 or y.dim() != 2:
        raise ValueError(f"expected feature matrices (n, d); got shapes {tuple(x.shape)} and {tuple(y.shape)}"
                         " — flatten with x.flatten(1)")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x has {x.shape[1]} features per row but y has {y.shape[1]}: they must match")


def _sq_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return d2.clamp_min(0.0)


def _median_sq_distance(z: torch.Tensor) -> torch.Tensor:
    """Median of the squared distances over the pairs i < j (mean of the two middle values)."""
    d2 = _sq_distances(z, z)
    i, j = torch.triu_indices(len(z), len(z), offset=1)
    v = d2[i, j].sort().values
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else 0.5 * (v[mid - 1] + v[mid])


def mmd2(x: torch.Tensor, y: torch.Tensor, sigma2=None, scales=SCALES) -> torch.Tensor:
    """Biased MMD² with the multi-bandwidth Gaussian kernel; σ² by the median heuristic if ``None``."""
    _check(x, y)
    if sigma2 is None:
        sigma2 = _median_sq_distance(torch.cat([x, y]).detach()).clamp_min(1e-12)
    d_xx, d_yy, d_xy = _sq_distances(x, x), _sq_distances(y, y), _sq_distances(x, y)

    def k(d2):
        return torch.stack([torch.exp(-d2 / (2.0 * s * sigma2)) for s in scales]).mean(0)

    return (k(d_xx).mean() + k(d_yy).mean() - 2.0 * k(d_xy).mean()).clamp_min(0.0)


def linear_mmd2(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """MMD² with the linear kernel: ``||mean(x) − mean(y)||²``."""
    _check(x, y)
    return (x.mean(0) - y.mean(0)).pow(2).sum()


def _covariance(x: torch.Tensor) -> torch.Tensor:
    centred = x - x.mean(0, keepdim=True)
    return centred.T @ centred / (len(x) - 1)


def coral(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Deep CORAL: ``||C_s − C_t||²_F / (4 d²)`` with unbiased covariances (n ≥ 2 rows each)."""
    _check(x, y)
    if len(x) < 2 or len(y) < 2:
        raise ValueError("CORAL needs at least two rows per domain (a covariance)")
    d = x.shape[1]
    return (_covariance(x) - _covariance(y)).pow(2).sum() / (4.0 * d * d)


class GradientReversal(torch.autograd.Function):
    """Identity going forward; multiplies the gradient by ``−λ`` going back (Ganin et al. 2016)."""

    @staticmethod
    def forward(ctx, x, lam):
        ctx.lam = float(lam)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output):
        return -ctx.lam * grad_output, None  # no gradient for λ


def grad_reverse(x: torch.Tensor, lam: float = 1.0) -> torch.Tensor:
    """``x`` unchanged, with its gradient reversed and scaled by ``λ`` on the way back."""
    return GradientReversal.apply(x, lam)


class GradientReversalLayer(nn.Module):
    """:func:`grad_reverse` as a module; set ``layer.lam`` as training progresses."""

    def __init__(self, lam: float = 1.0):
        super().__init__()
        self.lam = float(lam)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.lam)

    def extra_repr(self) -> str:
        return f"lam={self.lam:g}"
