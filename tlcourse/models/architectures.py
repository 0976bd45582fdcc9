"""The small source networks of the course, described once for PyTorch and for Keras.

A :class:`Spec` lists the blocks of a network; ``small_cnn_torch`` and ``small_cnn_tf``
build the same blocks from it, so both frameworks get the same layers, the same names
and the same number of parameters. Two architectures, for ``S × S`` images with ``C``
channels (MNIST: 28 × 28 × 1), widths scaled by ``width``:

``"cnn"``  (105,866 parameters at width 1, C = 1, 10 classes)::

    conv1  conv 3×3, C → 16, padding 1  [BN]  ReLU  max-pool 2    S   → S/2
    conv2  conv 3×3, 16 → 32, padding 1 [BN]  ReLU  max-pool 2    S/2 → S/4
    fc1    flatten, dense 32·(S/4)² → 64 [BN] ReLU
    head   dense 64 → num_classes                                  (logits)

``"mlp"``  (109,386 parameters at width 1, C = 1, 10 classes)::

    fc1    flatten, dense C·S² → 128 [BN] ReLU
    fc2    dense 128 → 64        [BN] ReLU
    head   dense 64 → num_classes

Parameter count of a block (``k`` kernel size, biases dropped when BatchNorm follows,
BN adds a scale γ and a shift β per channel, plus two running statistics that are
state, not trainable parameters)::

    conv:  k·k·c_in·c_out + (c_out  or  2·c_out with BN)
    dense: n_in·n_out     + (n_out  or  2·n_out with BN)

The ``blocks`` are what "transfer the first n layers" counts: freezing the first two
blocks of the CNN freezes ``conv1`` and ``conv2``. Everything but ``head`` is the
feature extractor (``feature_dim`` features).

>>> s = spec("cnn")
>>> s.block_names
['conv1', 'conv2', 'fc1', 'head']
>>> s.param_count(), s.feature_dim
(105866, 64)
>>> spec("cnn", batch_norm=True).param_count(), spec("cnn", batch_norm=True).state_count()
(105978, 224)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

#: BatchNorm settings shared by both frameworks (PyTorch's defaults). Keras' own defaults
#: differ (``momentum=0.99`` keeps 99 % of the old average, ``epsilon=1e-3``); PyTorch's
#: ``momentum=0.1`` is the weight of the *new* batch, i.e. Keras ``momentum=0.9``.
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.1  # running = (1 - BN_MOMENTUM) * running + BN_MOMENTUM * batch statistic

#: Base widths at ``width=1``.
CNN_CHANNELS = (16, 32)
CNN_HIDDEN = 64
MLP_HIDDEN = (128, 64)
KERNEL_SIZE = 3

ARCHITECTURES = ("cnn", "mlp")


@dataclass(frozen=True)
class Block:
    """One block: a convolution or dense layer, optional BatchNorm, ReLU, optional pooling.

    ``flatten_from`` is the ``(channels, height, width)`` of the input when the block
    starts by flattening an image-shaped tensor (its dense weights then depend on the
    flatten order, which differs between NCHW PyTorch and NHWC Keras).
    """

    name: str
    op: str  # "conv" or "dense"
    n_in: int
    n_out: int
    batch_norm: bool = False
    relu: bool = True
    pool: bool = False
    flatten_from: tuple[int, int, int] | None = None

    @property
    def bias(self) -> bool:
        """A bias is redundant right before BatchNorm (β shifts the output anyway)."""
        return not self.batch_norm

    def param_count(self) -> int:
        fan_in = self.n_in * (KERNEL_SIZE**2 if self.op == "conv" else 1)
        count = fan_in * self.n_out + (self.n_out if self.bias else 0)
        return count + (2 * self.n_out if self.batch_norm else 0)


@dataclass(frozen=True)
class Spec:
    """An architecture: ``arch`` in :data:`ARCHITECTURES` plus its options (see :func:`spec`)."""

    arch: str = "cnn"
    in_channels: int = 1
    num_classes: int = 10
    batch_norm: bool = False
    width: float = 1.0
    image_size: int = 28

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.arch!r}; valid names: {', '.join(ARCHITECTURES)}")
        if self.in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 (grey) or 3 (colour), got {self.in_channels!r}")
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) or self.num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {self.num_classes!r}")
        if not isinstance(self.width, (int, float)) or not self.width > 0:
            raise ValueError(f"width must be a positive number, got {self.width!r}")
        smallest = 4 if self.arch == "cnn" else 1
        if not isinstance(self.image_size, int) or self.image_size < smallest:
            raise ValueError(f"image_size must be an int >= {smallest} for {self.arch!r}, got {self.image_size!r}")

    def _scaled(self, base: int) -> int:
        return max(1, int(round(base * self.width)))

    @property
    def blocks(self) -> list[Block]:
        """The blocks in order, the head last."""
        bn = self.batch_norm
        if self.arch == "cnn":
            c1, c2 = (self._scaled(c) for c in CNN_CHANNELS)
            hidden = self._scaled(CNN_HIDDEN)
            side = self.image_size // 4  # two 2×2 max-pools, rounding down
            body = [
                Block("conv1", "conv", self.in_channels, c1, bn, pool=True),
                Block("conv2", "conv", c1, c2, bn, pool=True),
                Block("fc1", "dense", c2 * side * side, hidden, bn, flatten_from=(c2, side, side)),
            ]
        else:
            h1, h2 = (self._scaled(h) for h in MLP_HIDDEN)
            size = self.image_size
            body = [
                Block("fc1", "dense", self.in_channels * size * size, h1, bn,
                      flatten_from=(self.in_channels, size, size)),
                Block("fc2", "dense", h1, h2, bn),
            ]
        head = Block("head", "dense", body[-1].n_out, self.num_classes, relu=False)
        return [*body, head]

    @property
    def block_names(self) -> list[str]:
        return [b.name for b in self.blocks]

    @property
    def feature_dim(self) -> int:
        """Length of the feature vector the extractor (all blocks but the head) returns."""
        return self.blocks[-1].n_in

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """One example, channels last (as the datasets hold it): ``(S, S, C)``."""
        return (self.image_size, self.image_size, self.in_channels)

    def param_count(self) -> int:
        """Trainable parameters (weights, biases, BN γ and β)."""
        return sum(b.param_count() for b in self.blocks)

    def state_count(self) -> int:
        """Non-trainable state: BN running means and variances."""
        return sum(2 * b.n_out for b in self.blocks if b.batch_norm)

    def with_head(self, num_classes: int) -> Spec:
        """The same network with a new number of output classes."""
        return replace(self, num_classes=num_classes)

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        """A one-line-per-block table of the network."""
        rows = []
        for b in self.blocks:
            what = f"{b.op} {b.n_in}→{b.n_out}"
            extras = [x for x, on in (("BN", b.batch_norm), ("ReLU", b.relu), ("max-pool 2", b.pool)) if on]
            rows.append(f"{b.name:<6} {what:<18} {' '.join(extras):<20} {b.param_count():>8,} params")
        total = f"total {self.param_count():,} trainable parameters"
        if self.state_count():
            total += f" + {self.state_count():,} BN statistics"
        return "\n".join([*rows, total])


def spec(arch: str = "cnn", *, in_channels: int = 1, num_classes: int = 10,
         batch_norm: bool = False, width: float = 1.0, image_size: int = 28) -> Spec:
    """The :class:`Spec` of a small network (``arch``: ``"cnn"`` or ``"mlp"``).

    >>> spec("mlp", width=0.5).block_names, spec("mlp", width=0.5).param_count()
    (['fc1', 'fc2', 'head'], 52650)
    """
    return Spec(arch, in_channels, num_classes, bool(batch_norm), width, image_size)


def init_bound(block: Block) -> float:
    """Kernels start uniform in ``[-b, b]`` with ``b = sqrt(6 / fan_in)``, biases at 0.

    This is He (Kaiming) uniform initialisation, suited to ReLU networks; ``fan_in`` is
    ``k·k·c_in`` for a convolution and ``n_in`` for a dense layer. PyTorch builds it with
    ``nn.init.kaiming_uniform_(w, nonlinearity="relu")``, Keras with ``HeUniform``, so
    both frameworks start from the same distribution (their own defaults differ).

    >>> round(init_bound(spec("cnn").blocks[0]), 4)     # conv1: fan_in = 3·3·1
    0.8165
    """
    fan_in = block.n_in * (KERNEL_SIZE**2 if block.op == "conv" else 1)
    return math.sqrt(6.0 / fan_in)
