"""The small CNN and MLP of :mod:`tlcourse.models.architectures` in PyTorch.

A :class:`SmallNet` holds ``features`` (an ``nn.Sequential`` of named blocks — ``conv1``,
``conv2``, ``fc1`` for the CNN) and ``head`` (an ``nn.Linear`` giving logits). Each block
is itself an ``nn.Sequential`` with children ``conv``/``dense``, ``bn``, ``relu``, ``pool``,
so parameter names read ``features.conv1.conv.weight``, ``head.bias``.

Freezing the first ``n`` blocks is a loop over :func:`block_names`::

    model = small_cnn(seed=0)
    for name in block_names(model)[:2]:          # conv1, conv2
        model.blocks[name].requires_grad_(False)

Inputs are NCHW float tensors, ``(N, C, S, S)``; convert the course's channels-last
NumPy images with :func:`tlcourse.training_torch.to_tensor`.

>>> model = small_cnn(seed=0)
>>> block_names(model), count_params(model)
(['conv1', 'conv2', 'fc1', 'head'], 105866)
>>> import torch; model(torch.zeros(2, 1, 28, 28)).shape
torch.Size([2, 10])
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from tlcourse.models.architectures import BN_EPSILON, BN_MOMENTUM, KERNEL_SIZE, Block, Spec, spec
from tlcourse.models.convert import check_state


def _block_module(block: Block) -> nn.Sequential:
    layers: list[tuple[str, nn.Module]] = []
    if block.op == "conv":
        layers.append(("conv", nn.Conv2d(block.n_in, block.n_out, KERNEL_SIZE,
                                         padding=KERNEL_SIZE // 2, bias=block.bias)))
        norm = nn.BatchNorm2d
    else:
        if block.flatten_from is not None:
            layers.append(("flatten", nn.Flatten()))
        layers.append(("dense", nn.Linear(block.n_in, block.n_out, bias=block.bias)))
        norm = nn.BatchNorm1d
    if block.batch_norm:
        layers.append(("bn", norm(block.n_out, eps=BN_EPSILON, momentum=BN_MOMENTUM)))
    if block.relu:
        layers.append(("relu", nn.ReLU()))
    if block.pool:
        layers.append(("pool", nn.MaxPool2d(2)))
    return nn.Sequential(OrderedDict(layers))


def init_weights(module: nn.Module) -> nn.Module:
    """He-uniform kernels (``U(±sqrt(6/fan_in))``) and zero biases for every conv/dense layer.

    The same start as the Keras model (see ``architectures.init_bound``); BatchNorm keeps
    γ = 1, β = 0. Draws from the global torch generator.
    """
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return module


class SmallNet(nn.Module):
    """A small CNN or MLP built from a :class:`~tlcourse.models.architectures.Spec`.

    ``forward(x)`` takes ``(N, C, S, S)`` float images and returns ``(N, num_classes)``
    logits. Attributes: ``spec``, ``features`` (all blocks but the head), ``head``.
    """

    def __init__(self, arch_spec: Spec):
        super().__init__()
        if not isinstance(arch_spec, Spec):
            raise TypeError(f"SmallNet needs an architectures.Spec, got {type(arch_spec).__name__}")
        self.spec = arch_spec
        *body, head = arch_spec.blocks
        self.features = nn.Sequential(OrderedDict((b.name, _block_module(b)) for b in body))
        self.head = nn.Linear(head.n_in, head.n_out)
        init_weights(self)

    @property
    def blocks(self) -> OrderedDict[str, nn.Module]:
        """The blocks by name, in order, the head last."""
        return OrderedDict([*self.features.named_children(), ("head", self.head)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = (self.spec.in_channels, self.spec.image_size, self.spec.image_size)
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or tuple(x.shape[1:]) != expected:
            got = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
            hint = ""
            if hasattr(x, "shape") and len(x.shape) == 4 and tuple(x.shape[1:]) == expected[1:] + expected[:1]:
                hint = " — that looks channels-last; convert with tlcourse.training_torch.to_tensor(x)"
            elif hasattr(x, "shape") and len(x.shape) == 3:
                hint = " — add the channel axis with tlcourse.training_torch.to_tensor(x)"
            raise ValueError(f"{self.spec.arch} expects NCHW input of shape (N, {', '.join(map(str, expected))}), "
                             f"got {got}{hint}")
        return self.head(self.features(x))

    def extra_repr(self) -> str:
        return f"arch={self.spec.arch!r}, params={count_params(self):,}"


def build(arch_spec: Spec, seed: int | None = None) -> SmallNet:
    """A :class:`SmallNet` for ``arch_spec``, initialised from ``seed``.

    With a seed the weights depend on it alone (the global RNG is left untouched); with
    ``seed=None`` they come from the global RNG that ``tlcourse.setup`` seeded. Kernels
    start He-uniform, biases at zero, as in the Keras model (:func:`init_weights`).
    """
    if seed is None:
        return SmallNet(arch_spec)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return SmallNet(arch_spec)


def small_cnn(in_channels: int = 1, num_classes: int = 10, *, batch_norm: bool = False,
              width: float = 1.0, image_size: int = 28, seed: int | None = None) -> SmallNet:
    """The small CNN: conv1, conv2 (3×3 conv, ReLU, 2×2 max-pool), fc1, head.

    >>> model = small_cnn(3, 5, batch_norm=True, seed=0)
    >>> [name for name, _ in model.blocks["conv1"].named_children()]
    ['conv', 'bn', 'relu', 'pool']
    """
    return build(spec("cnn", in_channels=in_channels, num_classes=num_classes,
                      batch_norm=batch_norm, width=width, image_size=image_size), seed)


def mlp(in_channels: int = 1, num_classes: int = 10, *, batch_norm: bool = False,
        width: float = 1.0, image_size: int = 28, seed: int | None = None) -> SmallNet:
    """The MLP: fc1 (flatten, dense 128, ReLU), fc2 (dense 64, ReLU), head.

    >>> block_names(mlp(seed=0)), count_params(mlp(seed=0))
    (['fc1', 'fc2', 'head'], 109386)
    """
    return build(spec("mlp", in_channels=in_channels, num_classes=num_classes,
                      batch_norm=batch_norm, width=width, image_size=image_size), seed)


def _check(model) -> SmallNet:
    if not isinstance(model, SmallNet):
        raise TypeError(f"expected a SmallNet (from small_cnn() or mlp()), got {type(model).__name__}")
    return model


def block_names(model: SmallNet) -> list[str]:
    """The block names in order, head last: ``['conv1', 'conv2', 'fc1', 'head']``."""
    return list(_check(model).blocks)


def blocks(model: SmallNet) -> OrderedDict[str, nn.Module]:
    """The blocks by name, head last (``model.blocks``; Keras: ``model.get_layer(name)``)."""
    return _check(model).blocks


def feature_extractor(model: SmallNet) -> nn.Sequential:
    """Everything but the head (shares its weights with ``model``): images → features."""
    return _check(model).features


def replace_head(model: SmallNet, num_classes: int, seed: int | None = None) -> SmallNet:
    """Give ``model`` a fresh, trainable head with ``num_classes`` outputs (in place).

    Returns ``model`` itself, so ``model = replace_head(model, 5)`` reads as in Keras.
    """
    model = _check(model)
    new_spec = model.spec.with_head(num_classes)
    n_in = new_spec.feature_dim
    if seed is None:
        head = init_weights(nn.Linear(n_in, num_classes))
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            head = init_weights(nn.Linear(n_in, num_classes))
    model.head = head
    model.spec = new_spec
    return model


def count_params(model: nn.Module, trainable: bool | None = None) -> int:
    """Number of parameters: all (``None``), trainable only (``True``) or frozen only (``False``).

    BatchNorm running statistics are buffers, not parameters, and are never counted
    (Keras lists them among its non-trainable weights; ``small_cnn_tf.count_params``
    leaves them out too so the two agree).
    """
    return sum(p.numel() for p in model.parameters() if trainable is None or p.requires_grad == trainable)


def export_state(model: nn.Module) -> dict[str, np.ndarray]:
    """The model's weights as NumPy arrays in PyTorch layout, keyed as in ``state_dict()``.

    BatchNorm's ``num_batches_tracked`` counters are left out (Keras has none).
    """
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()
            if not k.endswith("num_batches_tracked")}


def import_state(model: nn.Module, state: dict[str, np.ndarray]) -> nn.Module:
    """Load NumPy arrays in PyTorch layout (as :func:`export_state` gives) into ``model``.

    Every weight of the model must be given, with its shape; missing, unexpected or
    mis-shaped entries raise ``ValueError`` naming them.
    """
    own = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    check_state(state, {k: tuple(v.shape) for k, v in own.items()}, "state does not fit the model")
    tensors = {k: torch.as_tensor(np.asarray(v), dtype=own[k].dtype) for k, v in state.items()}
    model.load_state_dict(tensors, strict=False)
    return model
