"""Moving weights between PyTorch and Keras: the same numbers, in different layouts.

Parameter transfer across frameworks is a change of layout, nothing else. With the
state of a small network as NumPy arrays (``small_cnn_torch.export_state`` /
``small_cnn_tf.export_state``), three things differ:

* **convolution kernels** — PyTorch ``(out, in, kh, kw)`` ("OIHW"), Keras
  ``(kh, kw, in, out)`` ("HWIO"): ``K = W.transpose(2, 3, 1, 0)``;
* **dense weights** — PyTorch ``(out, in)`` computes ``y = W x + b``, Keras ``(in, out)``
  computes ``y = x K + b``: ``K = Wᵀ``;
* **the flatten order before the first dense layer** — PyTorch flattens NCHW feature
  maps, Keras NHWC ones, so the same input unit sits at different positions::

      torch index  = c·H·W + h·W + w          keras index = h·W·C + w·C + c

  The rows of that dense layer must be permuted, not just transposed:
  ``K = W.reshape(out, C, H, W).transpose(0, 2, 3, 1).reshape(out, -1).T``.
  Forgetting this gives a model that loads without error and predicts garbage.

BatchNorm's four arrays only change names: weight/bias/running_mean/running_var ↔
gamma/beta/moving_mean/moving_variance.

>>> import numpy as np
>>> w = np.arange(2 * 3 * 2 * 2).reshape(2, 3, 2, 2)          # dense 12 → 2 after a (3, 2, 2) map
>>> k = dense_to_keras(w.reshape(2, 12), flatten_from=(3, 2, 2))
>>> k.shape, bool((dense_to_torch(k, flatten_from=(3, 2, 2)) == w.reshape(2, 12)).all())
((12, 2), True)
"""

from __future__ import annotations

import numpy as np

from tlcourse.models.architectures import Spec

# PyTorch parameter name → Keras weight name, per kind of layer.
_NAMES = {
    "conv": {"weight": "kernel", "bias": "bias"},
    "dense": {"weight": "kernel", "bias": "bias"},
    "bn": {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"},
}


def conv_to_keras(w: np.ndarray) -> np.ndarray:
    """PyTorch conv weight ``(out, in, kh, kw)`` → Keras kernel ``(kh, kw, in, out)``."""
    _ndim(w, 4, "a conv weight (out, in, kh, kw)")
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0))


def conv_to_torch(k: np.ndarray) -> np.ndarray:
    """Keras conv kernel ``(kh, kw, in, out)`` → PyTorch weight ``(out, in, kh, kw)``."""
    _ndim(k, 4, "a conv kernel (kh, kw, in, out)")
    return np.ascontiguousarray(k.transpose(3, 2, 0, 1))


def dense_to_keras(w: np.ndarray, flatten_from: tuple[int, int, int] | None = None) -> np.ndarray:
    """PyTorch dense weight ``(out, in)`` → Keras kernel ``(in, out)``.

    ``flatten_from=(C, H, W)`` when the layer reads a flattened feature map: its input
    units are reordered from PyTorch's (C, H, W) order to Keras' (H, W, C) order.
    """
    _ndim(w, 2, "a dense weight (out, in)")
    if flatten_from is not None:
        w = w.reshape(w.shape[0], *_map_shape(w.shape[1], flatten_from)).transpose(0, 2, 3, 1)
        w = w.reshape(w.shape[0], -1)
    return np.ascontiguousarray(w.T)


def dense_to_torch(k: np.ndarray, flatten_from: tuple[int, int, int] | None = None) -> np.ndarray:
    """Keras dense kernel ``(in, out)`` → PyTorch weight ``(out, in)`` (see :func:`dense_to_keras`)."""
    _ndim(k, 2, "a dense kernel (in, out)")
    w = k.T
    if flatten_from is not None:
        c, h, wd = _map_shape(w.shape[1], flatten_from)
        w = w.reshape(w.shape[0], h, wd, c).transpose(0, 3, 1, 2).reshape(w.shape[0], -1)
    return np.ascontiguousarray(w)


def _ndim(a, ndim: int, what: str) -> None:
    if np.ndim(a) != ndim:
        raise ValueError(f"expected {what}, got an array of shape {np.shape(a)}")


def _map_shape(n_in: int, flatten_from) -> tuple[int, int, int]:
    c, h, w = (int(v) for v in flatten_from)
    if c * h * w != n_in:
        raise ValueError(f"flatten_from={tuple(flatten_from)} holds {c * h * w} units but the layer has {n_in} inputs")
    return c, h, w


def key_pairs(arch_spec: Spec) -> list[tuple[str, str, str, tuple | None]]:
    """``(torch key, keras key, layer kind, flatten_from)`` for every array of a network.

    >>> from tlcourse.models.architectures import spec
    >>> key_pairs(spec("cnn"))[0]
    ('features.conv1.conv.weight', 'conv1/conv/kernel', 'conv', None)
    """
    pairs = []
    for block in arch_spec.blocks:
        if block.name == "head":
            layers = [("dense", "head", "head")]
        else:
            layers = [(block.op, f"features.{block.name}.{block.op}", f"{block.name}/{block.op}")]
            if block.batch_norm:
                layers.append(("bn", f"features.{block.name}.bn", f"{block.name}/bn"))
        for kind, t_prefix, k_prefix in layers:
            for t_name, k_name in _NAMES[kind].items():
                if t_name == "bias" and kind != "bn" and not block.bias:
                    continue
                flat = block.flatten_from if kind == "dense" and t_name == "weight" else None
                pairs.append((f"{t_prefix}.{t_name}", f"{k_prefix}/{k_name}", kind, flat))
    return pairs


def check_state(state: dict, expected: dict, what: str) -> None:
    """Raise ``ValueError`` naming missing, unexpected and mis-shaped arrays of ``state``.

    ``expected`` maps each name to its shape (``None``: any shape); ``what`` opens the message.

    >>> check_state({"w": np.zeros((2, 3))}, {"w": (3, 2), "b": None}, "state does not fit the model")
    Traceback (most recent call last):
    ...
    ValueError: state does not fit the model: missing ['b'], unexpected []
    """
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{what}: missing {missing}, unexpected {unexpected}")
    bad = [f"{k}: model {tuple(shape)} vs state {tuple(np.shape(state[k]))}" for k, shape in expected.items()
           if shape is not None and tuple(shape) != tuple(np.shape(state[k]))]
    if bad:
        raise ValueError(f"{what}, shapes differ: " + "; ".join(bad))


def _convert(state: dict[str, np.ndarray], arch_spec: Spec, to_keras: bool) -> dict[str, np.ndarray]:
    pairs = key_pairs(arch_spec)
    check_state(state, dict.fromkeys(p[0] if to_keras else p[1] for p in pairs),
                f"this is not a {'torch' if to_keras else 'keras'}-layout state of the given architecture")
    layout = {"conv": conv_to_keras if to_keras else conv_to_torch,
              "dense": dense_to_keras if to_keras else dense_to_torch}
    out = {}
    for t_key, k_key, kind, flat in pairs:
        source, target = (t_key, k_key) if to_keras else (k_key, t_key)
        value = np.asarray(state[source])
        if kind in layout and t_key.endswith(".weight"):  # kernels change layout; biases, BN do not
            value = layout[kind](value, flat) if kind == "dense" else layout[kind](value)
        out[target] = value.copy()
    return out


def torch_to_keras(state: dict[str, np.ndarray], arch_spec: Spec) -> dict[str, np.ndarray]:
    """A PyTorch-layout state (``small_cnn_torch.export_state``) → Keras layout and names.

    >>> from tlcourse.models.architectures import spec
    >>> s = spec("mlp", width=0.25)
    >>> torch_state = {t: np.zeros(1) for t, _, _, _ in key_pairs(s)}   # shapes aside
    >>> sorted(torch_to_keras({k: v for k, v in torch_state.items() if k.endswith("bias")}, s))
    Traceback (most recent call last):
    ...
    ValueError: this is not a torch-layout state of the given architecture: missing ['features.fc1.dense.weight', 'features.fc2.dense.weight', 'head.weight'], unexpected []
    """
    return _convert(state, arch_spec, to_keras=True)


def keras_to_torch(state: dict[str, np.ndarray], arch_spec: Spec) -> dict[str, np.ndarray]:
    """A Keras-layout state (``small_cnn_tf.export_state``) → PyTorch layout and names."""
    return _convert(state, arch_spec, to_keras=False)
