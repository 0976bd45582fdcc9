"""The small CNN and MLP of :mod:`tlcourse.models.architectures` in Keras.

A functional ``keras.Model`` whose layers are the blocks: each block (``conv1``,
``conv2``, ``fc1`` for the CNN) is a named ``keras.Sequential`` holding ``conv``/``dense``,
``bn``, ``relu``, ``pool`` (and ``flatten``), and the head is a ``Dense`` layer named
``head`` giving logits. So ``model.get_layer("conv1")`` is what
``model.blocks["conv1"]`` is in :mod:`~tlcourse.models.small_cnn_torch`, and freezing the
first ``n`` blocks reads::

    model = small_cnn(seed=0)
    for name in block_names(model)[:2]:          # conv1, conv2
        model.get_layer(name).trainable = False

Inputs are channels-last float images ``(N, S, S, C)`` — the course's layout; a grey
batch ``(N, S, S)`` needs its channel axis (:func:`tlcourse.training_tf.to_input`).
The model carries its architecture as ``model.spec``.

>>> model = small_cnn(seed=0)
>>> block_names(model), count_params(model)
(['conv1', 'conv2', 'fc1', 'head'], 105866)
>>> import numpy as np; model(np.zeros((2, 28, 28, 1), np.float32)).shape
TensorShape([2, 10])
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from tlcourse.runtime import _quiet_tensorflow_env

_quiet_tensorflow_env()  # before TensorFlow loads: no start-up log noise
import keras  # noqa: E402

from tlcourse.models.architectures import (  # noqa: E402
    BN_EPSILON,
    BN_MOMENTUM,
    KERNEL_SIZE,
    Block,
    Spec,
    spec,
)
from tlcourse.models.convert import check_state  # noqa: E402

# Keras' names for the weights of each kind of layer, in PyTorch's order.
WEIGHT_NAMES = {
    "conv": ("kernel", "bias"),
    "dense": ("kernel", "bias"),
    "bn": ("gamma", "beta", "moving_mean", "moving_variance"),
}
BN_STATISTICS = ("moving_mean", "moving_variance")


def _init(seed: int | None, index: int):
    """He-uniform: ``W ~ U(-b, b)``, ``b = sqrt(6 / fan_in)`` (as the PyTorch model)."""
    return keras.initializers.HeUniform(seed=None if seed is None else int(seed) * 1000 + index)


def _block_layer(block: Block, seed: int | None, index: int) -> keras.Sequential:
    layers = []
    if block.op == "conv":
        layers.append(keras.layers.Conv2D(block.n_out, KERNEL_SIZE, padding="same", use_bias=block.bias,
                                          kernel_initializer=_init(seed, index), name="conv"))
    else:
        if block.flatten_from is not None:
            layers.append(keras.layers.Flatten(name="flatten"))
        layers.append(keras.layers.Dense(block.n_out, use_bias=block.bias,
                                         kernel_initializer=_init(seed, index), name="dense"))
    if block.batch_norm:
        layers.append(keras.layers.BatchNormalization(momentum=1 - BN_MOMENTUM, epsilon=BN_EPSILON, name="bn"))
    if block.relu:
        layers.append(keras.layers.ReLU(name="relu"))
    if block.pool:
        layers.append(keras.layers.MaxPooling2D(2, name="pool"))
    return keras.Sequential(layers, name=block.name)


def _head(arch_spec: Spec, seed: int | None) -> keras.layers.Dense:
    return keras.layers.Dense(arch_spec.num_classes, kernel_initializer=_init(seed, len(arch_spec.blocks) - 1),
                              name="head")


def build(arch_spec: Spec, seed: int | None = None) -> keras.Model:
    """A functional Keras model for ``arch_spec``, initialised from ``seed``.

    With a seed the weights depend on it alone; with ``seed=None`` they come from
    Keras' global generator (seeded by ``tlcourse.setup``). Kernels start He-uniform,
    biases at zero, as in the PyTorch model.
    """
    if not isinstance(arch_spec, Spec):
        raise TypeError(f"build needs an architectures.Spec, got {type(arch_spec).__name__}")
    inputs = keras.Input(shape=arch_spec.input_shape, name="image")
    x = inputs
    for i, block in enumerate(arch_spec.blocks[:-1]):
        x = _block_layer(block, seed, i)(x)
    model = keras.Model(inputs, _head(arch_spec, seed)(x), name=f"small_{arch_spec.arch}")
    model.spec = arch_spec
    return model


def small_cnn(in_channels: int = 1, num_classes: int = 10, *, batch_norm: bool = False,
              width: float = 1.0, image_size: int = 28, seed: int | None = None) -> keras.Model:
    """The small CNN: conv1, conv2 (3×3 conv, ReLU, 2×2 max-pool), fc1, head.

    >>> model = small_cnn(3, 5, batch_norm=True, seed=0)
    >>> [layer.name for layer in model.get_layer("conv1").layers]
    ['conv', 'bn', 'relu', 'pool']
    """
    return build(spec("cnn", in_channels=in_channels, num_classes=num_classes,
                      batch_norm=batch_norm, width=width, image_size=image_size), seed)


def mlp(in_channels: int = 1, num_classes: int = 10, *, batch_norm: bool = False,
        width: float = 1.0, image_size: int = 28, seed: int | None = None) -> keras.Model:
    """The MLP: fc1 (flatten, dense 128, ReLU), fc2 (dense 64, ReLU), head.

    >>> block_names(mlp(seed=0)), count_params(mlp(seed=0))
    (['fc1', 'fc2', 'head'], 109386)
    """
    return build(spec("mlp", in_channels=in_channels, num_classes=num_classes,
                      batch_norm=batch_norm, width=width, image_size=image_size), seed)


def spec_of(model) -> Spec:
    """The architecture a model was built from (``model.spec``)."""
    arch_spec = getattr(model, "spec", None)
    if not isinstance(arch_spec, Spec):
        raise TypeError(f"expected a model from small_cnn_tf.small_cnn() or mlp(), got "
                        f"{type(model).__name__} {getattr(model, 'name', '')!r} without a .spec")
    return arch_spec


def block_names(model) -> list[str]:
    """The block names in order, head last: ``['conv1', 'conv2', 'fc1', 'head']``."""
    return spec_of(model).block_names


def blocks(model) -> OrderedDict:
    """The blocks by name (``keras.Sequential`` blocks, then the ``head`` Dense layer)."""
    return OrderedDict((name, model.get_layer(name)) for name in block_names(model))


def feature_extractor(model) -> keras.Model:
    """Everything but the head (shares its layers with ``model``): images → features."""
    last = block_names(model)[-2]
    return keras.Model(model.input, model.get_layer(last).output, name=f"{model.name}_features")


def replace_head(model, num_classes: int, seed: int | None = None) -> keras.Model:
    """A new model: ``model``'s blocks (shared, with their weights) and a fresh head.

    A functional model cannot swap a layer in place, so use the returned model:
    ``model = replace_head(model, 5)``.
    """
    new_spec = spec_of(model).with_head(num_classes)
    features = model.get_layer(block_names(model)[-2]).output
    new = keras.Model(model.input, _head(new_spec, seed)(features), name=model.name)
    new.spec = new_spec
    return new


def _weighted_layers(model):
    """``(block, sublayer name, layer)`` for every layer holding weights, in order."""
    for name, layer in blocks(model).items():
        if isinstance(layer, keras.Sequential):
            for sub in layer.layers:
                kind = "conv" if isinstance(sub, keras.layers.Conv2D) else \
                    "dense" if isinstance(sub, keras.layers.Dense) else \
                    "bn" if isinstance(sub, keras.layers.BatchNormalization) else None
                if kind:
                    yield name, sub.name, kind, sub
        else:
            yield name, None, "dense", layer


def _variables(model) -> OrderedDict:
    """``{"conv1/conv/kernel": variable, ..., "head/bias": variable}``."""
    out = OrderedDict()
    for block, sub, kind, layer in _weighted_layers(model):
        for weight in WEIGHT_NAMES[kind]:
            variable = getattr(layer, weight, None)
            if variable is not None:
                out["/".join(p for p in (block, sub, weight) if p)] = variable
    return out


def count_params(model, trainable: bool | None = None) -> int:
    """Number of parameters: all (``None``), trainable only (``True``) or frozen only (``False``).

    BatchNorm's moving mean and variance are statistics, not parameters, and are never
    counted (Keras' own ``count_params()`` includes them), so the count matches PyTorch's.
    """
    live = {id(v) for v in model.trainable_weights}
    return sum(int(np.prod(v.shape)) for key, v in _variables(model).items()
               if key.rsplit("/", 1)[-1] not in BN_STATISTICS
               and (trainable is None or (id(v) in live) == trainable))


def export_state(model) -> dict[str, np.ndarray]:
    """The model's weights as NumPy arrays in Keras layout, keyed ``block/layer/weight``.

    >>> sorted(export_state(small_cnn(seed=0)))[:3]
    ['conv1/conv/bias', 'conv1/conv/kernel', 'conv2/conv/bias']
    """
    return {key: np.array(v.numpy()) for key, v in _variables(model).items()}


def import_state(model, state: dict[str, np.ndarray]):
    """Load NumPy arrays in Keras layout (as :func:`export_state` gives) into ``model``.

    Missing, unexpected or mis-shaped entries raise ``ValueError`` naming them.
    """
    variables = _variables(model)
    check_state(state, {k: tuple(v.shape) for k, v in variables.items()}, "state does not fit the model")
    for key, variable in variables.items():
        variable.assign(np.asarray(state[key], dtype=variable.dtype))
    return model
