"""Trained PyTorch source models from the zoo (see :mod:`tlcourse.models.zoo`).

>>> model = pretrained("mnist-cnn")            # doctest: +SKIP
>>> model.zoo_info.test_acc, model.zoo_info.from_cache   # doctest: +SKIP
(0.97..., True)
"""

from __future__ import annotations

from tlcourse import training_torch
from tlcourse.models import small_cnn_torch, zoo


def pretrained(name: str = "mnist-cnn", seed: int = 0, *, rebuild: bool = False,
               progress: bool = True) -> small_cnn_torch.SmallNet:
    """The zoo model ``name`` (``zoo.names()``) as a :class:`~tlcourse.models.small_cnn_torch.SmallNet`.

    Trained on first use (about 15 s on one thread) and cached; afterwards loaded from the
    cache, which is checked (recipe key, size, SHA-256) and rebuilt with a warning when it
    is stale or corrupted. Returned in ``eval()`` mode, all parameters trainable.
    """
    model = zoo.obtain(name, "torch", seed, small_cnn_torch, training_torch, rebuild=rebuild, progress=progress)
    return model.eval()
