"""Test helpers shared by the PyTorch and Keras model tests (framework-neutral)."""

from __future__ import annotations

import numpy as np

#: Architectures every test of the small networks runs on.
CONFIGS = [
    dict(arch="cnn"),
    dict(arch="cnn", batch_norm=True),
    dict(arch="cnn", in_channels=3, num_classes=5, width=0.5),
    dict(arch="mlp"),
    dict(arch="mlp", in_channels=3, batch_norm=True, width=2.0),
]


def config_id(config: dict) -> str:
    return "-".join(f"{k}={v}" for k, v in config.items())


def random_images(n=96, channels=1, classes=10, seed=0):
    """``n`` random channels-last images and cyclic labels ``0, 1, …, classes-1, 0, …``."""
    rng = np.random.default_rng(seed)
    shape = (n, 28, 28) if channels == 1 else (n, 28, 28, channels)
    return rng.random(shape, dtype=np.float32), (np.arange(n) % classes).astype(np.int64)


def separable_task(n=200):
    """Two classes a small CNN must get all right: class 1 has a bright top half."""
    rng = np.random.default_rng(0)
    y = np.arange(n) % 2
    x = rng.random((n, 28, 28), dtype=np.float32) * 0.2
    x[y == 1, :14] += 0.8
    return x, y


#: Parameters of conv1 + conv2 with BatchNorm (no conv biases, γ and β per channel).
FROZEN_CONV_BN = (9 * 16 + 2 * 16) + (9 * 16 * 32 + 2 * 32)
