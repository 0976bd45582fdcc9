"""L2 and L2-SP penalties over a PyTorch module's parameters (formulas in :mod:`.regularization`).

    L2      R = Σ_p ||w_p||²          L2-SP   R = Σ_p ||w_p − w_p^s||²

``snapshot(module)`` stores a detached copy of the parameters, by name, right after the
module received the source's weights (``load_state_dict``) and before fine-tuning; the
penalties return a scalar tensor that ``backward()`` differentiates. Names are relative to
the module passed, so snapshot and penalise the same module: ``snapshot(model.features)``
with ``l2sp_penalty(model.features, source)``, and the new head with ``l2_penalty(model.head)``
(the L2-SP paper's choice). Frozen parameters (``requires_grad_(False)``) are left out: the
optimizer cannot move them, they would only add a constant.

>>> import torch
>>> layer = torch.nn.Linear(2, 1)
>>> source = snapshot(layer)
>>> with torch.no_grad():
...     _ = layer.weight.add_(1.0)
>>> l2sp_penalty(layer, source).item()        # two weights moved by 1
2.0
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn

__all__ = ["l2_penalty", "l2sp_penalty", "snapshot"]


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of every parameter of ``module``, keyed by its name."""
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def l2_penalty(module: nn.Module, skip: Iterable[str] = ()) -> torch.Tensor:
    """R = Σ ||w||² over the trainable parameters of ``module`` whose names are not in ``skip``."""
    skip = set(skip)
    terms = [p.pow(2).sum() for name, p in module.named_parameters() if p.requires_grad and name not in skip]
    return torch.stack(terms).sum() if terms else torch.zeros(())


def l2sp_penalty(module: nn.Module, source: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """R = Σ ||w − w^s||² over the trainable parameters named in ``source`` (from :func:`snapshot`)."""
    params = dict(module.named_parameters())
    missing = sorted(set(source) - set(params))
    if missing:
        raise KeyError(
            f"source parameters {missing[:5]} are not parameters of this module "
            f"(it has {sorted(params)[:8]}); snapshot and penalise the same module"
        )
    terms = []
    for name, w_s in source.items():
        w = params[name]
        if not w.requires_grad:
            continue
        if w.shape != w_s.shape:
            raise ValueError(f"{name}: parameter has shape {tuple(w.shape)}, source {tuple(w_s.shape)}")
        terms.append((w - w_s.to(device=w.device, dtype=w.dtype)).pow(2).sum())
    return torch.stack(terms).sum() if terms else torch.zeros(())
