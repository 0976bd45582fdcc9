"""The framework-neutral half of the training loops in ``training_torch`` and ``training_tf``.

Both loops share, from here, their defaults, their input checks, their batch order, the
progress bar and the history they return, so PyTorch and Keras runs with the same seed
see the same mini-batches in the same order and report the same quantities:

* batches: each epoch a fresh permutation of ``0..N-1`` from
  ``numpy.random.default_rng(seed)``, cut into batches of ``batch_size`` (the last one
  smaller);
* history: per epoch the mean training loss and accuracy measured on the fly (each batch
  weighted by its size, before its update), the wall time, and — with validation data —
  the validation loss and accuracy in inference mode::

      loss = Σ_b |b| · L_b / N        acc = #{argmax f(x_i) = y_i} / N

>>> run = TrainingRun(n=10, epochs=2, batch_size=4, seed=0, progress=False)
>>> [[len(b) for b in epoch] for epoch in run.epochs()]
[[4, 4, 2], [4, 4, 2]]
"""

from __future__ import annotations

import inspect
import numbers
import time

import numpy as np

#: Defaults shared by both frameworks' ``fit``.
LR = 1e-3
BATCH_SIZE = 64
OPTIMIZERS = ("adam", "sgd")
SGD_MOMENTUM = 0.9
EVAL_BATCH_SIZE = 256
PROGRESS_DELAY = 2.0  # seconds before a progress bar shows up


def positive_int(value, what: str) -> int:
    """``value`` if it is a whole number >= 1, else a ``ValueError`` naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{what} must be a positive int, got {value!r}")
    return int(value)


def channels_last(x, name: str = "x") -> np.ndarray:
    """Check a batch of course images (or features) and return it as float32.

    ``(N, H, W)`` grey images get a channel axis → ``(N, H, W, 1)``; ``(N, H, W, C)`` with
    C ∈ {1, 3} and feature matrices ``(N, D)`` pass unchanged.

    >>> channels_last(np.zeros((5, 28, 28), np.float32)).shape
    (5, 28, 28, 1)
    >>> channels_last(np.zeros((5, 3, 28, 28), np.float32))
    Traceback (most recent call last):
    ...
    ValueError: x: expected channels-last images (N, H, W, C) with C = 1 or 3, got shape (5, 3, 28, 28); NCHW arrays (PyTorch layout) need x.transpose(0, 2, 3, 1)
    """
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.floating):
        hint = " (divide uint8 images by 255)" if arr.dtype == np.uint8 else ""
        raise TypeError(f"{name} must hold floats (images in [0, 1]), got dtype {arr.dtype}{hint}")
    if arr.ndim == 3:
        arr = arr[..., None]
    elif arr.ndim == 4 and arr.shape[-1] not in (1, 3):
        raise ValueError(f"{name}: expected channels-last images (N, H, W, C) with C = 1 or 3, got shape "
                         f"{arr.shape}; NCHW arrays (PyTorch layout) need x.transpose(0, 2, 3, 1)")
    elif arr.ndim not in (2, 4):
        raise ValueError(f"{name}: expected a batch of images (N, H, W) or (N, H, W, C), or features (N, D); "
                         f"got shape {arr.shape}" + (" — for one image use x[None]" if arr.ndim in (1, 2) else ""))
    return np.ascontiguousarray(arr, dtype=np.float32)


def labels(y, n: int) -> np.ndarray:
    """Check ``n`` integer class labels and return them as int64."""
    arr = np.asarray(y)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"y must be a 1-D array of integer class labels, got shape {arr.shape} dtype {arr.dtype}")
    if len(arr) != n:
        raise ValueError(f"x has {n} examples but y has {len(arr)} labels")
    if n and arr.min() < 0:
        raise ValueError(f"labels must be >= 0, got {arr.min()}")
    return arr.astype(np.int64)


def check_label_range(y: np.ndarray, n_outputs: int) -> None:
    """Labels must index the model's outputs."""
    if len(y) and int(np.max(y)) >= n_outputs:
        raise ValueError(f"label {int(np.max(y))} does not fit a model with {n_outputs} outputs "
                         f"(labels must lie in 0..{n_outputs - 1}); replace the head first?")


def validation_pair(val):
    """``None`` or ``(x_val, y_val)``; anything else is a ``TypeError`` saying so."""
    if val is None:
        return None
    if not isinstance(val, (tuple, list)) or len(val) != 2:
        raise TypeError(f"val must be a pair (x_val, y_val), got {type(val).__name__}")
    return tuple(val)


def loss_takes_model(loss_fn) -> bool:
    """Whether a loss is called ``(logits, y, model)`` rather than ``(logits, y)``.

    A PyTorch module (``nn.CrossEntropyLoss()``) is judged by its ``forward``.

    >>> loss_takes_model(lambda logits, y, model: 0), loss_takes_model(lambda logits, y: 0)
    (True, False)
    """
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be None or a callable (logits, y[, model]), got {type(loss_fn).__name__}")
    forward = getattr(loss_fn, "forward", None)
    try:
        inspect.signature(forward if callable(forward) else loss_fn).bind(None, None, None)
        return True
    except (TypeError, ValueError):
        return False


def scores(logits: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of logits ``(N, K)`` against labels ``(N,)``.

    ``CE = −1/N Σ_i log softmax(z_i)_{y_i}``, computed stably as ``logsumexp(z_i) − z_{i,y_i}``.

    >>> [round(v, 3) for v in scores(np.array([[2.0, 0.0], [0.0, 3.0]]), np.array([0, 0]))]
    [1.588, 0.5]
    """
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2:
        raise ValueError(f"the model must return logits of shape (N, classes), got {logits.shape}")
    y = labels(y, len(logits))
    check_label_range(y, logits.shape[1])
    if not len(y):
        return float("nan"), float("nan")
    top = logits.max(1, keepdims=True)
    lse = np.log(np.exp(logits - top).sum(1)) + top[:, 0]
    loss = float(np.mean(lse - logits[np.arange(len(y)), y]))
    return loss, float(np.mean(logits.argmax(1) == y))


class TrainingRun:
    """Batch order, progress bar and history of one ``fit`` call.

    ``seed=None`` draws the seed from NumPy's global generator (seeded by
    ``tlcourse.setup``). Use as::

        run = TrainingRun(n, epochs, batch_size, seed, progress, desc, validate=val is not None)
        for batches in run.epochs():
            for idx in batches:
                ...; run.step(loss, correct, len(idx))
            run.end_epoch(*val_scores)          # or run.end_epoch()
        return run.history
    """

    def __init__(self, n: int, epochs: int, batch_size: int, seed: int | None, progress: bool = True,
                 desc: str = "fit", validate: bool = False):
        self.n = n
        self.epochs_total = positive_int(epochs, "epochs")
        self.batch_size = positive_int(batch_size, "batch_size")
        if n < 1:
            raise ValueError("x holds no examples")
        seed = int(np.random.randint(2**31 - 1)) if seed is None else seed
        self.rng = np.random.default_rng(seed)
        self.steps = -(-n // self.batch_size)
        self.history: dict[str, list] = {"loss": [], "acc": [], "seconds": []}
        if validate:
            self.history.update(val_loss=[], val_acc=[])
        self.progress = progress
        self.desc = desc
        self._bar = None
        self._sum_loss = 0.0
        self._correct = 0
        self._start = 0.0

    def epochs(self):
        """Yield, per epoch, the list of index arrays of its batches."""
        from tqdm.auto import tqdm

        self._bar = tqdm(total=self.epochs_total * self.steps, desc=self.desc, unit="batch",
                         delay=PROGRESS_DELAY, disable=not self.progress, leave=False)
        try:
            for _ in range(self.epochs_total):
                self._sum_loss, self._correct = 0.0, 0
                self._start = time.perf_counter()
                order = self.rng.permutation(self.n)
                yield [order[i:i + self.batch_size] for i in range(0, self.n, self.batch_size)]
        finally:
            self._bar.close()

    def step(self, loss: float, correct: int, size: int) -> None:
        """Record one batch: its mean loss, how many it got right, its size."""
        self._sum_loss += float(loss) * size
        self._correct += int(correct)
        self._bar.update(1)

    def end_epoch(self, val_loss: float | None = None, val_acc: float | None = None) -> None:
        """Close an epoch (with the validation scores when validating)."""
        h = self.history
        h["loss"].append(self._sum_loss / self.n)
        h["acc"].append(self._correct / self.n)
        if "val_acc" in h:
            h["val_loss"].append(val_loss)
            h["val_acc"].append(val_acc)
        h["seconds"].append(time.perf_counter() - self._start)
        self._bar.set_postfix(loss=f"{h['loss'][-1]:.3f}", acc=f"{h['acc'][-1]:.3f}")
