"""EfficientNet-Lite0 with ImageNet weights, in Keras 3 (TensorFlow backend).

A port written with the Keras functional API, loading the *same* ImageNet weights as
:mod:`tlcourse.models.efficientnet_torch`, without importing torch: the PyTorch ``.pth`` is
read by the pure-NumPy reader :mod:`tlcourse.models.pth_format` and cached once as ``.npz``
(``$TLCOURSE_HOME/models/efficientnet-lite0-<sha256[:16]>.npz``, see
:mod:`tlcourse.models.efficientnet_weights`). The first call builds that cache (≈0.1 s);
``efficientnet_torch.export_numpy_state()`` builds the identical file through torch.

The network, layer names in brackets (``i`` = 0…15, PyTorch's ``_blocks.i``)::

    stem   ZeroPadding2D -> Conv2D 3×3/2 (32) -> BN -> ReLU6          [stem_pad, stem_conv, stem_bn, stem_relu]
    block  [Conv2D 1×1 (e·c_in) -> BN -> ReLU6]                      [block{i}_expand_conv, _expand_bn, _expand_relu]
           ZeroPadding2D -> DepthwiseConv2D k×k/s -> BN -> ReLU6     [block{i}_dw_pad, _dwconv, _dw_bn, _dw_relu]
           Conv2D 1×1 (c_out) -> BN                                   [block{i}_project_conv, _project_bn]
           (+ input when s = 1 and c_in = c_out, after stochastic depth)   [block{i}_drop, block{i}_add]
    head   Conv2D 1×1 (1280) -> BN -> ReLU6 -> GlobalAveragePooling2D -> Dropout -> Dense
                                       [head_conv, head_bn, head_relu, avg_pool, dropout, predictions]

Faithful to the PyTorch model:

* **padding** — PyTorch's model pads like TensorFlow's "same" at 224 × 224, where every
  stride-2 input is even: ``(0, 1)`` for 3×3 and ``(1, 2)`` for 5×5 (top/left, bottom/right),
  ``(1, 1)`` / ``(2, 2)`` at stride 1. These fixed pads are explicit ``ZeroPadding2D`` layers
  before ``padding="valid"`` convolutions, so the two models agree at any input size;
* **BatchNorm** — ``epsilon=1e-3``, Keras ``momentum=0.99`` (= PyTorch ``momentum=0.01``);
  ``[gamma, beta, moving_mean, moving_variance]`` = ``weight, bias, running_mean, running_var``;
* **weight layouts** — conv ``(out, in, kh, kw) -> (kh, kw, in, out)``; depthwise
  ``(c, 1, kh, kw) -> (kh, kw, c, 1)``; dense ``(out, in) -> (in, out)``;
* **activation** — ReLU6 everywhere; no squeeze-excitation (the "Lite" simplifications);
* **stochastic depth** — ``Dropout(rate_i, noise_shape=(None, 1, 1, 1))`` drops the whole
  residual branch of a sample, ``rate_i = drop_connect · i / 16``, as in PyTorch.

Checked against PyTorch on six bundled photos: same top-5, max |Δlogit| = 4.5e-6.

Example
-------
>>> from skimage import data
>>> model = efficientnet_lite0()
>>> [i for i, _, _ in predict(model, data.chelsea(), k=3)]
[282, 285, 281]
>>> tuple(features(model, prepare(data.chelsea())).shape)
(1, 1280)
"""

from __future__ import annotations

import os
import weakref

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402

from tlcourse.models import imagenet  # noqa: E402
from tlcourse.models.convert import conv_to_keras, dense_to_keras  # noqa: E402
from tlcourse.models.efficientnet_weights import check_options, numpy_state  # noqa: E402

if keras.backend.backend() != "tensorflow":  # pragma: no cover - depends on the environment
    raise ImportError(
        f"tlcourse.models.efficientnet_tf needs Keras' TensorFlow backend, but KERAS_BACKEND is "
        f"{keras.backend.backend()!r}: set KERAS_BACKEND=tensorflow before importing keras"
    )

FEATURE_DIM = 1280
NUM_BLOCKS = 16
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99

STAGES = (
    # repeats, kernel, stride, expand ratio, input channels, output channels
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
"""EfficientNet-Lite0's MBConv stages; the first block of a stage has its stride."""


def block_specs() -> list[tuple[int, int, int, int, int]]:
    """The 16 blocks as ``(kernel, stride, expand, c_in, c_out)``."""
    specs = []
    for repeats, kernel, stride, expand, c_in, c_out in STAGES:
        for r in range(repeats):
            specs.append((kernel, stride if r == 0 else 1, expand, c_in if r == 0 else c_out, c_out))
    return specs


def same_pads(kernel: int, stride: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """TensorFlow-"same" pads for an even input size: ``total = k - s`` (``k - 1`` at stride 1).

    ``before = total // 2``, ``after = total - before``; e.g. 3×3/2 -> ``(0, 1)``.

    >>> same_pads(5, 2), same_pads(3, 1)
    (((1, 2), (1, 2)), ((1, 1), (1, 1)))
    """
    total = max(kernel - stride, 0)
    before = total // 2
    pad = (before, total - before)
    return (pad, pad)


def _bn(name: str):
    return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)


def _relu6(name: str):
    return layers.ReLU(max_value=6.0, name=name)


def _mbconv(x, i: int, spec, drop_rate: float):
    kernel, stride, expand, c_in, c_out = spec
    p = f"block{i}_"
    inputs = x
    if expand != 1:
        x = layers.Conv2D(c_in * expand, 1, use_bias=False, name=p + "expand_conv")(x)
        x = _bn(p + "expand_bn")(x)
        x = _relu6(p + "expand_relu")(x)
    x = layers.ZeroPadding2D(same_pads(kernel, stride), name=p + "dw_pad")(x)
    x = layers.DepthwiseConv2D(kernel, strides=stride, padding="valid", use_bias=False, name=p + "dwconv")(x)
    x = _bn(p + "dw_bn")(x)
    x = _relu6(p + "dw_relu")(x)
    x = layers.Conv2D(c_out, 1, use_bias=False, name=p + "project_conv")(x)
    x = _bn(p + "project_bn")(x)
    if stride == 1 and c_in == c_out:
        if drop_rate > 0:
            x = layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=p + "drop")(x)
        x = layers.Add(name=p + "add")([x, inputs])
    return x


def build(
    num_classes: int = 1000,
    image_size: int | None = imagenet.IMAGE_SIZE,
    dropout: float = 0.2,
    drop_connect: float = 0.2,
) -> keras.Model:
    """The EfficientNet-Lite0 architecture, randomly initialized (see :func:`efficientnet_lite0`)."""
    check_options(num_classes, dropout, drop_connect)
    if image_size is not None and not (isinstance(image_size, int) and image_size >= 32):
        raise ValueError(f"image_size must be an integer >= 32 or None, got {image_size!r}")
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = layers.ZeroPadding2D(same_pads(3, 2), name="stem_pad")(inputs)
    x = layers.Conv2D(32, 3, strides=2, padding="valid", use_bias=False, name="stem_conv")(x)
    x = _bn("stem_bn")(x)
    x = _relu6("stem_relu")(x)
    for i, spec in enumerate(block_specs()):
        x = _mbconv(x, i, spec, drop_connect * i / NUM_BLOCKS)
    x = layers.Conv2D(FEATURE_DIM, 1, use_bias=False, name="head_conv")(x)
    x = _bn("head_bn")(x)
    x = _relu6("head_relu")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, name="predictions")(x)
    return keras.Model(inputs, outputs, name="efficientnet_lite0")


# --------------------------------------------------------------------------- weights


def _torch_names() -> dict[str, tuple[str, str]]:
    """Keras layer name -> (PyTorch prefix, kind)."""
    names = {
        "stem_conv": ("_conv_stem", "conv"),
        "stem_bn": ("_bn0", "bn"),
        "head_conv": ("_conv_head", "conv"),
        "head_bn": ("_bn1", "bn"),
        "predictions": ("_fc", "dense"),
    }
    for i, (_, _, expand, _, _) in enumerate(block_specs()):
        t, k = f"_blocks.{i}.", f"block{i}_"
        if expand != 1:
            names[k + "expand_conv"] = (t + "_expand_conv", "conv")
            names[k + "expand_bn"] = (t + "_bn0", "bn")
        names[k + "dwconv"] = (t + "_depthwise_conv", "depthwise")
        names[k + "dw_bn"] = (t + "_bn1", "bn")
        names[k + "project_conv"] = (t + "_project_conv", "conv")
        names[k + "project_bn"] = (t + "_bn2", "bn")
    return names


def keras_weights(state: dict[str, np.ndarray], prefix: str, kind: str) -> list[np.ndarray]:
    """One layer's Keras weights from a PyTorch state dict (layouts converted, float32).

    ``conv``: ``W(out,in,kh,kw) -> (kh,kw,in,out)``; ``depthwise``: ``(c,1,kh,kw) -> (kh,kw,c,1)``;
    ``dense``: ``[W.T, b]``; ``bn``: ``[weight, bias, running_mean, running_var]``.
    """

    def get(name: str) -> np.ndarray:
        key = f"{prefix}.{name}"
        if key not in state:
            raise KeyError(f"the state dict has no {key!r}")
        return np.asarray(state[key], dtype=np.float32)

    if kind == "conv":
        return [conv_to_keras(get("weight"))]
    if kind == "depthwise":
        return [np.ascontiguousarray(get("weight").transpose(2, 3, 0, 1))]
    if kind == "dense":
        return [dense_to_keras(get("weight")), get("bias")]
    if kind == "bn":
        return [get("weight"), get("bias"), get("running_mean"), get("running_var")]
    raise ValueError(f"unknown layer kind {kind!r}")


def load_torch_state(model: keras.Model, state: dict[str, np.ndarray], classifier: bool = True) -> keras.Model:
    """Copy a PyTorch EfficientNet-Lite0 state dict (NumPy arrays) into the Keras model.

    Every Keras layer with weights gets the matching PyTorch tensors (``classifier=False``
    leaves ``predictions`` as it is); shapes are checked, and every PyTorch tensor except
    ``num_batches_tracked`` must be used. Returns the model.
    """
    used = set()
    for layer_name, (prefix, kind) in _torch_names().items():
        if layer_name == "predictions" and not classifier:
            continue
        try:
            layer = model.get_layer(layer_name)
        except ValueError as err:
            raise ValueError(f"the model has no layer {layer_name!r}: build it with build()") from err
        values = keras_weights(state, prefix, kind)
        expected = [tuple(w.shape) for w in layer.get_weights()]
        got = [v.shape for v in values]
        if expected != got:
            raise ValueError(f"{layer_name}: Keras expects weights {expected}, {prefix}.* gives {got}")
        layer.set_weights(values)
        used.update(k for k in state if k.startswith(prefix + "."))
    unused = sorted(k for k in state if k not in used and not k.endswith("num_batches_tracked"))
    if classifier and unused:
        raise ValueError(f"tensors of the state dict not used by the Keras model: {unused[:5]}")
    return model


def efficientnet_lite0(
    pretrained: bool = True,
    num_classes: int = 1000,
    image_size: int | None = imagenet.IMAGE_SIZE,
    dropout: float = 0.2,
    drop_connect: float = 0.2,
) -> keras.Model:
    """EfficientNet-Lite0 in Keras, with ImageNet weights by default.

    Parameters
    ----------
    pretrained:
        Load the ImageNet weights (all of them when ``num_classes == 1000``; all but the
        classifier otherwise, which keeps Keras' fresh initialization).
    num_classes:
        Units of the final ``Dense`` layer (logits: no softmax).
    image_size:
        Side of the square input; ``None`` accepts any size (the pads are fixed).
    dropout, drop_connect:
        Dropout before the classifier; stochastic-depth rate (block ``i`` drops its residual
        branch with probability ``drop_connect · i / 16``). Both act only with ``training=True``.

    Inputs are ``(N, H, W, 3)`` float32 from :func:`prepare`.
    """
    model = build(num_classes, image_size=image_size, dropout=dropout, drop_connect=drop_connect)
    if pretrained:
        load_torch_state(model, numpy_state(), classifier=num_classes == 1000)
    return model


# --------------------------------------------------------------------------- use


def prepare(images, crop: float = imagenet.CROP_FRACTION, size: int = imagenet.IMAGE_SIZE) -> np.ndarray:
    """Photographs (channels last, uint8 or float in [0, 1]) -> ``(N, size, size, 3)`` float32.

    The same as :func:`tlcourse.models.imagenet.preprocess` (``layout="NHWC"``).
    """
    return imagenet.preprocess(images, size=size, crop=crop, layout="NHWC")


def _check_input(x):
    shape = tuple(x.shape)
    if len(shape) != 4 or shape[-1] != 3:
        hint = " (channels first? use np.moveaxis(x, 1, -1))" if len(shape) == 4 and shape[1] == 3 else ""
        raise ValueError(f"expected a batch of shape (N, H, W, 3) from prepare(), got {shape}{hint}")
    dtype = str(getattr(x, "dtype", ""))
    if "float" not in dtype:
        raise TypeError(f"expected float32 input from prepare(), got dtype {dtype}")
    return x


_FEATURE_MODELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_INFERENCE_FNS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def inference_function(model: keras.Model):
    """``model(x, training=False)`` compiled once with ``tf.function`` (any batch and image size).

    Keras' eager call of this network is ~3× slower and needs ~2× the memory of the compiled
    graph on a CPU; the helpers below use this function. The first call traces (~1 s).
    """
    if model not in _INFERENCE_FNS:
        spec = tf.TensorSpec((None, None, None, 3), tf.float32)
        _INFERENCE_FNS[model] = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    return _INFERENCE_FNS[model]


def feature_model(model: keras.Model) -> keras.Model:
    """A model sharing ``model``'s layers whose output is the pooled ``(N, 1280)`` features."""
    if model not in _FEATURE_MODELS:
        try:
            pooled = model.get_layer("avg_pool").output
        except ValueError as err:
            raise TypeError("feature_model() expects a model built by efficientnet_lite0()") from err
        _FEATURE_MODELS[model] = keras.Model(model.input, pooled, name=f"{model.name}_features")
    return _FEATURE_MODELS[model]


def features(model: keras.Model, x, training: bool = False):
    """Global-pooled features ``(N, 1280)`` (a tensor): the classifier's input.

    ``f = mean_{h,w} ReLU6(BN(head_conv(blocks(stem(x)))))``. Differentiable inside a
    ``tf.GradientTape``; ``training=True`` runs BatchNorm in training mode.
    """
    return feature_model(model)(_check_input(x), training=training)


def _batches(images, batch_size: int, prepared: bool, crop: float, size: int):
    """Prepared float32 NHWC batches of at most ``batch_size`` images."""
    if not (prepared or isinstance(images, tf.Tensor)):
        yield from imagenet.prepared_batches(images, batch_size, size=size, crop=crop)
        return
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    x = _check_input(np.asarray(images, dtype=np.float32))
    for start in range(0, len(x), batch_size):
        yield x[start : start + batch_size]


def extract_features(
    model: keras.Model,
    images,
    batch_size: int = 32,
    prepared: bool = False,
    crop: float = imagenet.CROP_FRACTION,
    size: int = imagenet.IMAGE_SIZE,
) -> np.ndarray:
    """Features ``(N, 1280)`` float32 of images, batch by batch, in inference mode.

    ``images``: photographs as for :func:`tlcourse.models.imagenet.preprocess` (prepared
    here with ``crop`` and ``size``), or — with ``prepared=True``, or as a ``tf.Tensor`` —
    a batch already made by :func:`prepare`.
    """
    fn = inference_function(feature_model(model))
    out = [fn(x).numpy() for x in _batches(images, batch_size, prepared, crop, size)]
    return np.concatenate(out).astype(np.float32)


def predict(model: keras.Model, images, k: int = 5, prepared: bool = False):
    """Top-``k`` ImageNet classes ``[(index, name, probability), ...]`` of photographs.

    One image gives one list, a batch a list of lists (see :func:`imagenet.decode`).
    ``prepared=True`` (or a ``tf.Tensor``) takes ``images`` as a batch from :func:`prepare`.
    """
    fn = inference_function(model)
    logits = np.concatenate([fn(x).numpy() for x in _batches(images, 64, prepared, imagenet.CROP_FRACTION, imagenet.IMAGE_SIZE)])
    return imagenet.decode(logits, k=k)


def blocks(model: keras.Model) -> list[list[layers.Layer]]:
    """The 18 stages as lists of layers: stem, 16 MBConv blocks, head (before pooling).

    Freeze all but the top ``k`` with ``layer.trainable = False`` for each layer of
    ``blocks(model)[:-k]``. In Keras a BatchNormalization layer with ``trainable = False``
    also runs in inference mode (its statistics stay fixed).
    """
    groups: list[list[layers.Layer]] = [[] for _ in range(NUM_BLOCKS + 2)]
    for layer in model.layers:
        name = layer.name
        if name.startswith("stem_"):
            groups[0].append(layer)
        elif name.startswith("block"):
            groups[1 + int(name[5:].split("_", 1)[0])].append(layer)
        elif name.startswith("head_"):
            groups[-1].append(layer)
    if any(not group for group in groups):
        raise TypeError("blocks() expects a model built by efficientnet_lite0()")
    return groups


def replace_classifier(model: keras.Model, num_classes: int, dropout: float | None = None) -> keras.Model:
    """A new model: ``model``'s layers up to the pooled features + a fresh ``Dense(num_classes)``.

    Functional Keras models cannot swap a layer in place, so this returns a new
    ``keras.Model`` that *shares* the trunk's layers (and weights) with ``model``; the new
    ``predictions`` layer is initialized from Keras' RNG (seed with ``tlcourse.setup``).
    ``dropout`` defaults to the model's own rate.
    """
    check_options(num_classes, 0.0 if dropout is None else dropout)
    pooled = feature_model(model).output
    rate = model.get_layer("dropout").rate if dropout is None else dropout
    x = layers.Dropout(rate, name="dropout")(pooled)
    outputs = layers.Dense(num_classes, name="predictions")(x)
    return keras.Model(model.input, outputs, name=model.name)


def count_params(model: keras.Model, trainable: bool | None = None) -> int:
    """Number of parameters: all (``None``), trainable only (``True``) or frozen only (``False``).

    BatchNorm's moving mean and variance are statistics, not parameters, and are not counted
    (Keras' ``model.count_params()`` includes them), so the count matches PyTorch's:
    4,652,008 for EfficientNet-Lite0.
    """
    live = {id(v) for v in model.trainable_weights}
    return int(
        sum(
            np.prod(v.shape)
            for v in model.weights
            if v.path.rsplit("/", 1)[-1] not in ("moving_mean", "moving_variance")
            and (trainable is None or (id(v) in live) == trainable)
        )
    )
