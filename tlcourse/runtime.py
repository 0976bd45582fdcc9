"""Reproducibility and runtime set-up: one call seeds everything and caps threads.

``setup(seed)`` makes a re-run of a notebook print the numbers its text discusses:

* seeds Python's ``random``, NumPy, and PyTorch / TensorFlow *if the notebook uses them*
  (named in ``framework`` or already imported), without importing an unused framework;
* caps the number of threads (one by default, as on a Binder pod), both through the
  environment variables read by OpenMP / MKL / OpenBLAS and through the framework APIs;
* turns on deterministic kernels (``torch.use_deterministic_algorithms``,
  ``tf.config.experimental.enable_op_determinism``);
* silences TensorFlow's start-up log noise;
* picks a GPU when one is present, the CPU otherwise.

Call it in the first code cell, before any model is built: TensorFlow fixes its thread
pools when it runs its first operation.
"""

from __future__ import annotations

import os
import random
import sys
import warnings
from dataclasses import dataclass, field

import numpy as np

FRAMEWORKS = ("torch", "tf")

_THREAD_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


@dataclass
class RunInfo:
    """What :func:`setup` did: the seed, the thread cap, the frameworks seeded, the device."""

    seed: int
    threads: int
    frameworks: list[str] = field(default_factory=list)
    device: str = "cpu"

    def __str__(self) -> str:
        fw = ", ".join(self.frameworks) or "numpy only"
        return f"seed={self.seed} threads={self.threads} frameworks=[{fw}] device={self.device}"


def _default_threads() -> int:
    value = os.environ.get("TLCOURSE_THREADS", "1")
    try:
        threads = int(value)
    except ValueError as err:
        raise ValueError(f"TLCOURSE_THREADS must be a whole number, got {value!r}") from err
    return threads


def _quiet_tensorflow_env() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def _setup_torch(seed: int, threads: int, deterministic: bool) -> str:
    import torch

    torch.manual_seed(seed)
    if threads > 0:
        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(threads)
        except RuntimeError:
            # Only possible before the first parallel work; a second setup() keeps the first.
            pass
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
        return "cuda"
    return "cpu"


def _setup_tf(seed: int, threads: int, deterministic: bool) -> str:
    _quiet_tensorflow_env()
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    already = tf.config.threading.get_intra_op_parallelism_threads() == threads
    if threads > 0 and not already:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:
            warnings.warn(
                "TensorFlow had already started; call tlcourse.setup() before building "
                "models so that the thread cap takes effect.",
                stacklevel=3,
            )
    tf.keras.utils.set_random_seed(seed)
    if deterministic:
        try:
            tf.config.experimental.enable_op_determinism()
        except Exception:  # pragma: no cover - very old TF
            pass
    return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"


def setup(
    seed: int = 0,
    framework: str | None = None,
    threads: int | None = None,
    deterministic: bool = True,
) -> RunInfo:
    """Seed every random generator in use and cap threads.

    Parameters
    ----------
    seed:
        The seed for Python, NumPy and the frameworks.
    framework:
        ``"torch"``, ``"tf"`` or ``None``. ``None`` seeds whichever framework is already
        imported (and no other); naming one imports and seeds it.
    threads:
        Thread cap; defaults to ``$TLCOURSE_THREADS`` or 1 (a Binder pod has one CPU).
        ``0`` leaves the libraries' defaults.
    deterministic:
        Ask the frameworks for deterministic kernels.

    Returns
    -------
    RunInfo
        ``info.device`` is ``"cuda"``/``"gpu"`` when an accelerator is present, else ``"cpu"``.

    Example
    -------
    >>> info = setup(seed=1)
    >>> import numpy as np; a = np.random.rand(); _ = setup(seed=1); a == np.random.rand()
    True
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if framework is not None and framework not in FRAMEWORKS:
        raise ValueError(f"framework must be one of {FRAMEWORKS} or None, got {framework!r}")
    threads = _default_threads() if threads is None else int(threads)
    if threads < 0:
        raise ValueError(f"threads must be >= 0, got {threads}")

    os.environ["PYTHONHASHSEED"] = str(seed)
    if threads > 0:
        for var in _THREAD_VARS:
            os.environ[var] = str(threads)
    _quiet_tensorflow_env()
    random.seed(seed)
    np.random.seed(seed)

    info = RunInfo(seed=int(seed), threads=threads)
    use_torch = framework == "torch" or (framework is None and "torch" in sys.modules)
    use_tf = framework == "tf" or (framework is None and "tensorflow" in sys.modules)
    if use_torch:
        info.device = _setup_torch(seed, threads, deterministic)
        info.frameworks.append("torch")
    if use_tf:
        info.device = _setup_tf(seed, threads, deterministic)
        info.frameworks.append("tf")
    _cap_numpy_threads(threads)
    return info


def _cap_numpy_threads(threads: int) -> None:
    """Cap BLAS threads of an already-loaded NumPy (env vars only act before loading)."""
    if threads <= 0:
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        return
    threadpool_limits(limits=threads)


def rng(seed: int) -> np.random.Generator:
    """A NumPy ``Generator`` for a seed: the course's one way to draw random numbers."""
    return np.random.default_rng(seed)
