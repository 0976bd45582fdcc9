"""Training and evaluation loops for PyTorch models: the plumbing notebooks repeat.

The transfer technique itself (freezing with ``requires_grad_(False)``, copying weights
with ``load_state_dict``, the regularised loss) stays in the notebook; these functions
only run it. :mod:`tlcourse.training_tf` has the same functions with the same defaults
for Keras, so both frameworks give comparable numbers.

``fit`` minimises the mean loss over mini-batches (cross-entropy by default)::

    L(θ) = 1/|B| Σ_{i∈B} −log softmax(f_θ(x_i))_{y_i}

with Adam (``lr=1e-3``) or SGD with momentum 0.9, batches of 64 drawn by a fresh
permutation each epoch from ``numpy.random.default_rng(seed)`` — the same batches as
``training_tf.fit`` with the same seed (both loops share :mod:`tlcourse.training`).

What it does with train/eval modes (and so with BatchNorm): it calls ``model.train()``
before every epoch — BatchNorm normalises with the statistics of the batch and updates
its running statistics, *also in blocks whose parameters are frozen*; validation,
``evaluate``, ``predict`` and ``features`` run in ``eval()`` mode (running statistics,
no update). With ``keep_modes=True`` it leaves the modes as you set them (e.g.
``model.train(); model.features.eval()`` keeps the BatchNorm statistics of a frozen
extractor fixed). Each function restores the modes the model had when it was called.

>>> import numpy as np, torch
>>> from tlcourse.models.small_cnn_torch import small_cnn
>>> x = np.random.default_rng(0).random((32, 28, 28), dtype=np.float32)
>>> y = np.arange(32) % 10
>>> model = small_cnn(seed=0)
>>> history = fit(model, x, y, epochs=2, seed=0, progress=False)
>>> sorted(history), len(history["loss"])
(['acc', 'loss', 'seconds'], 2)
>>> predict(model, x).shape, features(model, x).shape
((32, 10), (32, 64))
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from tlcourse import training
from tlcourse.training import BATCH_SIZE, EVAL_BATCH_SIZE, LR, OPTIMIZERS, SGD_MOMENTUM


def to_tensor(x, name: str = "x") -> torch.Tensor:
    """Channels-last NumPy images → an NCHW float32 tensor (feature matrices pass as ``(N, D)``).

    ===================  ======================
    input                output
    ===================  ======================
    ``(N, H, W)``        ``(N, 1, H, W)``
    ``(N, H, W, C)``     ``(N, C, H, W)``, C ∈ {1, 3}
    ``(N, D)``           ``(N, D)``
    a ``torch.Tensor``   itself, as float32 (its layout is trusted)
    ===================  ======================

    >>> to_tensor(np.zeros((5, 28, 28, 3), np.float32)).shape
    torch.Size([5, 3, 28, 28])
    """
    if isinstance(x, torch.Tensor):
        return x.float()
    arr = training.channels_last(x, name)
    if arr.ndim == 4:
        arr = np.ascontiguousarray(arr.transpose(0, 3, 1, 2))
    return torch.from_numpy(arr)


def make_optimizer(params, optimizer: str = "adam", lr: float = LR, weight_decay: float = 0.0):
    """``"adam"`` → ``Adam`` (``AdamW`` when ``weight_decay > 0``), ``"sgd"`` → SGD, momentum 0.9.

    Weight decay is *decoupled* in both frameworks: each step also does
    ``w ← w − lr · weight_decay · w`` (Keras' ``weight_decay`` argument). For SGD,
    :func:`fit` applies it itself, since ``torch.optim.SGD`` couples it to the gradient.
    """
    if optimizer == "adam":
        if weight_decay:
            return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
        return torch.optim.Adam(params, lr=lr)
    if optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=SGD_MOMENTUM)
    raise ValueError(f"unknown optimizer {optimizer!r}; valid names: {', '.join(OPTIMIZERS)}, "
                     "or pass a torch.optim.Optimizer instance")


def _snapshot_modes(model: nn.Module) -> list[tuple[nn.Module, bool]]:
    return [(m, m.training) for m in model.modules()]


def _restore_modes(snapshot) -> None:
    for module, training_mode in snapshot:
        module.training = training_mode


def _decay(opt, weight_decay: float) -> None:
    """Decoupled weight decay ``w ← (1 − lr·λ) w`` on the trainable parameters of ``opt``."""
    with torch.no_grad():
        for group in opt.param_groups:
            for p in group["params"]:
                if p.requires_grad:
                    p.mul_(1 - group["lr"] * weight_decay)


def fit(model: nn.Module, x, y, *, epochs: int, lr: float = LR, batch_size: int = BATCH_SIZE,
        optimizer="adam", weight_decay: float = 0.0, loss_fn=None, val=None,
        seed: int | None = None, keep_modes: bool = False, progress: bool = True) -> dict[str, list]:
    """Train ``model`` on ``(x, y)`` for ``epochs`` passes; returns the history.

    Parameters
    ----------
    x, y:
        Channels-last images ``(N, H, W[, C])`` or features ``(N, D)`` (see :func:`to_tensor`),
        and integer labels ``(N,)``.
    optimizer:
        ``"adam"`` or ``"sgd"`` (built over the parameters with ``requires_grad=True``),
        or a ``torch.optim.Optimizer`` you built — e.g. with parameter groups at different
        learning rates; ``lr`` and ``weight_decay`` are then its own.
    loss_fn:
        ``None`` for cross-entropy, a callable ``(logits, y)`` (e.g. ``nn.CrossEntropyLoss()``),
        or ``(logits, y, model)`` for losses that look at the weights (L2-SP). A
        per-example loss vector is averaged.
    val:
        ``(x_val, y_val)`` to measure after each epoch (in eval mode).
    seed:
        Seeds the batch order; ``None`` draws it from NumPy's global generator
        (which ``tlcourse.setup`` seeds).
    keep_modes:
        Leave the train/eval modes as set by the caller instead of ``model.train()``.

    Only parameters with ``requires_grad=True`` change: frozen ones get no gradient
    (``zero_grad(set_to_none=True)`` clears any left over before each step), and PyTorch's
    optimizers skip a parameter without one, momentum and weight decay included. BatchNorm
    running statistics are buffers, not parameters: see the module notes.

    Returns ``{"loss": [...], "acc": [...], "seconds": [...]}`` per epoch (training loss
    and accuracy measured on the fly), plus ``"val_loss"``, ``"val_acc"`` with ``val``.
    """
    X = to_tensor(x)
    Y = torch.from_numpy(training.labels(y.cpu().numpy() if isinstance(y, torch.Tensor) else y, len(X)))
    val = training.validation_pair(val)
    run = training.TrainingRun(len(X), epochs, batch_size, seed, progress, desc=f"fit {type(model).__name__}",
                               validate=val is not None)
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("the model has no trainable parameters (all have requires_grad=False)")
    if isinstance(optimizer, torch.optim.Optimizer):
        if weight_decay:
            raise ValueError("with an optimizer instance, set weight decay on the optimizer itself")
        opt, sgd_decay = optimizer, 0.0
    else:
        opt = make_optimizer(trainable, optimizer, lr, weight_decay)
        sgd_decay = weight_decay if optimizer == "sgd" else 0.0
    if loss_fn is None:
        def compute_loss(logits, yb):
            return F.cross_entropy(logits, yb)
    elif training.loss_takes_model(loss_fn):
        def compute_loss(logits, yb):
            return loss_fn(logits, yb, model)
    else:
        compute_loss = loss_fn

    entry_modes = _snapshot_modes(model)
    try:
        for batches in run.epochs():
            if not keep_modes:
                model.train()
            for i, idx in enumerate(batches):
                idx = torch.from_numpy(idx)
                logits = model(X[idx])
                if i == 0:
                    _check_logits(logits, Y)
                loss = compute_loss(logits, Y[idx])
                if loss.dim():  # a per-example loss is averaged
                    loss = loss.mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if sgd_decay:
                    _decay(opt, sgd_decay)
                opt.step()
                run.step(float(loss.detach()), int((logits.detach().argmax(1) == Y[idx]).sum()), len(idx))
            run.end_epoch(*(_scores(model, *val) if val is not None else ()))
    finally:
        opt.zero_grad(set_to_none=True)
        _restore_modes(entry_modes)
    return run.history


def _check_logits(logits: torch.Tensor, y: torch.Tensor) -> None:
    if logits.dim() != 2:
        raise ValueError(f"the model must return logits of shape (N, classes), got {tuple(logits.shape)}")
    training.check_label_range(y.numpy(), logits.shape[1])


@torch.no_grad()
def _outputs(module: nn.Module, x, batch_size: int) -> torch.Tensor:
    X = to_tensor(x)
    batch_size = training.positive_int(batch_size, "batch_size")
    modes = _snapshot_modes(module)
    module.eval()
    try:
        if not len(X):
            return module(X)
        return torch.cat([module(X[i:i + batch_size]) for i in range(0, len(X), batch_size)])
    finally:
        _restore_modes(modes)


def _scores(model: nn.Module, x, y, batch_size: int = EVAL_BATCH_SIZE) -> tuple[float, float]:
    return training.scores(predict(model, x, batch_size), y)


def evaluate(model: nn.Module, x, y, batch_size: int = EVAL_BATCH_SIZE) -> float:
    """Accuracy of ``model`` on ``(x, y)`` (eval mode, no gradients): the share of ``argmax = y``."""
    return _scores(model, x, y, batch_size)[1]


def predict(model: nn.Module, x, batch_size: int = EVAL_BATCH_SIZE) -> np.ndarray:
    """The model's outputs (logits, ``(N, classes)``) as a NumPy array; ``.argmax(1)`` gives classes."""
    return _outputs(model, x, batch_size).numpy()


def features(model_or_extractor: nn.Module, x, batch_size: int = EVAL_BATCH_SIZE) -> np.ndarray:
    """Features of ``x`` as a NumPy array ``(N, ...)``.

    A ``SmallNet`` gives the output of everything but its head (``(N, 64)`` for the
    CNN); any other module is run as it is (pass your own extractor).
    """
    from tlcourse.models.small_cnn_torch import SmallNet, feature_extractor

    module = model_or_extractor
    if isinstance(module, SmallNet):
        module = feature_extractor(module)
    return _outputs(module, x, batch_size).numpy()
