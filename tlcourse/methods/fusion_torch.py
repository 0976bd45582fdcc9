"""Feature-fusion layers for PyTorch (formulas and NumPy references in :mod:`.fusion`).

Each layer is an ``nn.Module`` called with the two feature tensors, ``fuse(f_s, f_t)``::

    WeightedSum(alpha)   z = α·f_s + (1 − α)·f_t     (learnable=True: α = sigmoid(a), a trained)
    Product()            z = f_s ⊙ f_t
    Maximum()            z = max(f_s, f_t)
    Concat()             z = [f_s; f_t]   (last axis)

Sum, product and maximum need features of the same shape and raise a ``ValueError``
saying so otherwise; concatenation needs only the leading axes to agree.
``fusion("concat")`` builds a layer by name.

>>> import torch
>>> f_s, f_t = torch.tensor([[1.0, 0.0]]), torch.tensor([[3.0, 1.0]])
>>> WeightedSum(0.25)(f_s, f_t).tolist()
[[2.5, 0.75]]
>>> Concat()(f_s, f_t).shape
torch.Size([1, 4])
>>> Product()(f_s, torch.ones(1, 3))
Traceback (most recent call last):
...
ValueError: product pairs source unit j with target unit j, so both need the same width: the source gives 2 features, the target 3. Give the target extractor 2 outputs, project one side with a linear layer, or use concatenation
"""

from __future__ import annotations

import math

import torch
from torch import nn

from tlcourse.methods.fusion import check_alpha, describe_mismatch, operator_name

__all__ = ["Concat", "Maximum", "Product", "WeightedSum", "fusion"]


class _Fusion(nn.Module):
    op = ""

    def _check(self, f_s: torch.Tensor, f_t: torch.Tensor) -> None:
        for name, f in (("f_s", f_s), ("f_t", f_t)):
            if not isinstance(f, torch.Tensor):
                raise TypeError(f"{type(self).__name__} takes two tensors (f_s, f_t); {name} is {type(f).__name__}")
        problem = describe_mismatch(self.op, f_s.shape, f_t.shape)
        if problem:
            raise ValueError(problem)


class WeightedSum(_Fusion):
    """z = α·f_s + (1 − α)·f_t, α fixed, or learned (``learnable=True``, α = sigmoid(a), starts at ``alpha``).

    A learned α stays inside (0, 1); it starts at ``alpha``, which must then lie strictly inside.
    """

    op = "sum"

    def __init__(self, alpha: float = 0.5, learnable: bool = False):
        super().__init__()
        alpha = check_alpha(alpha)
        self.learnable = bool(learnable)
        if self.learnable:
            if not 0.0 < alpha < 1.0:
                raise ValueError(f"a learnable alpha = sigmoid(a) must start strictly inside (0, 1), got {alpha}")
            self.logit = nn.Parameter(torch.tensor(math.log(alpha / (1.0 - alpha))))
        self.initial_alpha = alpha

    @property
    def alpha(self) -> float:
        """The current α, as a number."""
        return float(torch.sigmoid(self.logit.detach())) if self.learnable else self.initial_alpha

    def forward(self, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        self._check(f_s, f_t)
        alpha = torch.sigmoid(self.logit).to(f_s.dtype) if self.learnable else self.initial_alpha
        return alpha * f_s + (1 - alpha) * f_t

    def extra_repr(self) -> str:
        return f"alpha={self.alpha:.3f}, learnable={self.learnable}"


class Product(_Fusion):
    """z = f_s ⊙ f_t, element by element."""

    op = "product"

    def forward(self, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        self._check(f_s, f_t)
        return f_s * f_t


class Maximum(_Fusion):
    """z = max(f_s, f_t), element by element (on a tie each side gets half the gradient)."""

    op = "max"

    def forward(self, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        self._check(f_s, f_t)
        return torch.maximum(f_s, f_t)


class Concat(_Fusion):
    """z = [f_s; f_t], joined along the last axis: width d_s + d_t."""

    op = "concat"

    def forward(self, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        self._check(f_s, f_t)
        return torch.cat([f_s, f_t], dim=-1)


def fusion(op: str, alpha: float = 0.5, learnable: bool = False) -> nn.Module:
    """A fusion layer by name (``"sum"``, ``"product"``, ``"max"``, ``"concat"``); α options for ``"sum"``.

    >>> fusion("max")
    Maximum()
    """
    op = operator_name(op)
    if op == "sum":
        return WeightedSum(alpha, learnable)
    return {"product": Product, "max": Maximum, "concat": Concat}[op]()
