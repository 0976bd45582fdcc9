"""Trained Keras source models from the zoo (see :mod:`tlcourse.models.zoo`).

The Keras copy is trained by Keras from the same recipe as the PyTorch one (same data,
architecture, initial distribution and batch order), not converted from it: a TensorFlow
notebook must not need PyTorch. The two reach the same test accuracy within a few tenths
of a percent; ``tlcourse.models.convert`` moves weights across when one set is wanted.

>>> model = pretrained("mnist-cnn")            # doctest: +SKIP
>>> model.zoo_info.test_acc, model.zoo_info.from_cache   # doctest: +SKIP
(0.97..., True)
"""

from __future__ import annotations

from tlcourse import training_tf
from tlcourse.models import small_cnn_tf, zoo


def pretrained(name: str = "mnist-cnn", seed: int = 0, *, rebuild: bool = False, progress: bool = True):
    """The zoo model ``name`` (``zoo.names()``) as a functional ``keras.Model``.

    Trained on first use (about 20 s on one thread) and cached; afterwards loaded from the
    cache, which is checked (recipe key, size, SHA-256) and rebuilt with a warning when it
    is stale or corrupted. Not compiled; every layer trainable.
    """
    return zoo.obtain(name, "tf", seed, small_cnn_tf, training_tf, rebuild=rebuild, progress=progress)
