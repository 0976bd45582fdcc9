"""Read a PyTorch ``.pth`` state dict into NumPy arrays, without PyTorch.

This lets the Keras notebooks load EfficientNet-Lite0's ImageNet weights (shipped as a
PyTorch file) without importing torch. :func:`read_state_dict` understands the two formats of
``torch.save``:

* the **legacy** format (PyTorch < 1.6, and the bundled EfficientNet-Lite0 file): a stream of
  pickles — magic number, protocol version, system info, the state dict (whose tensors refer
  to storages by key), the list of storage keys — followed by each storage as an int64
  element count and its raw little-endian bytes;
* the **zip** format (PyTorch ≥ 1.6): ``<name>/data.pkl`` plus one ``<name>/data/<key>`` entry
  of raw bytes per storage.

In both, a tensor is pickled as ``torch._utils._rebuild_tensor_v2(storage, offset, size,
stride, ...)``; we rebuild it as ``numpy.lib.stride_tricks.as_strided(buffer[offset:], size,
stride · itemsize)`` and copy it. Unpickling is *restricted*: only ``collections.OrderedDict``,
the tensor/parameter rebuild functions and the storage types are allowed, so a file cannot run
code (a plain ``pickle.load`` of an untrusted ``.pth`` can).

Example
-------
>>> from tlcourse.models.pth_format import read_state_dict     # doctest: +SKIP
>>> state = read_state_dict("efficientnet-lite0-57934424.pth")  # doctest: +SKIP
>>> state["_conv_stem.weight"].shape                            # doctest: +SKIP
(32, 3, 3, 3)
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
"""The number a legacy ``torch.save`` file starts with."""

_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"),  # converted to float32 after reading
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class PthFormatError(ValueError):
    """The file is not a PyTorch state dict this reader understands."""


@dataclass(frozen=True)
class _StorageType:
    name: str

    @property
    def dtype(self) -> np.dtype:
        return _STORAGE_DTYPES[self.name]


@dataclass
class _StorageRef:
    key: str
    dtype: np.dtype
    bfloat16: bool


@dataclass
class _TensorRef:
    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    return _TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


def _rebuild_parameter(data, *_ignored):
    return data


class _RestrictedUnpickler(pickle.Unpickler):
    """Builds storage/tensor placeholders; refuses every other global."""

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise PthFormatError(
            f"refusing to unpickle {module}.{name}: only plain tensor state dicts are supported"
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise PthFormatError(f"unexpected persistent id {pid!r}")
        storage_type, key = pid[1], str(pid[2])
        if not isinstance(storage_type, _StorageType):
            raise PthFormatError(f"unknown storage type {storage_type!r}")
        if len(pid) > 5 and pid[5] is not None:
            raise PthFormatError("storage views (PyTorch < 0.4 files) are not supported")
        return _StorageRef(key, storage_type.dtype, storage_type.name == "BFloat16Storage")


def _materialize(ref: _TensorRef, buffers: dict[str, np.ndarray]) -> np.ndarray:
    flat = buffers[ref.storage.key]
    count = int(np.prod(ref.size)) if ref.size else 1
    if count == 0:
        return np.zeros(ref.size, flat.dtype)
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride))
    if ref.offset < 0 or last >= flat.size:
        raise PthFormatError(f"tensor of size {ref.size} runs past its storage {ref.storage.key}")
    base = flat[ref.offset :]
    strides = tuple(s * flat.itemsize for s in ref.stride)
    arr = np.lib.stride_tricks.as_strided(base, shape=ref.size, strides=strides).copy()
    if ref.storage.bfloat16:
        arr = (arr.astype(np.uint32) << 16).view(np.float32)
    return arr


def _resolve(obj, buffers: dict[str, np.ndarray]):
    if isinstance(obj, _TensorRef):
        return _materialize(obj, buffers)
    if isinstance(obj, dict):
        return collections.OrderedDict((k, _resolve(v, buffers)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_resolve(v, buffers) for v in obj)
    return obj


def _storage_refs(obj, found: dict[str, _StorageRef]) -> dict[str, _StorageRef]:
    if isinstance(obj, _TensorRef):
        found[obj.storage.key] = obj.storage
    elif isinstance(obj, dict):
        for v in obj.values():
            _storage_refs(v, found)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _storage_refs(v, found)
    return found


def _read_legacy(f: io.BufferedReader) -> object:
    if _RestrictedUnpickler(f).load() != LEGACY_MAGIC:
        raise PthFormatError("not a PyTorch file (wrong magic number)")
    protocol = _RestrictedUnpickler(f).load()
    if protocol != 1001:
        raise PthFormatError(f"unsupported legacy protocol version {protocol!r}")
    info = _RestrictedUnpickler(f).load()
    if isinstance(info, dict) and not info.get("little_endian", True):
        raise PthFormatError("big-endian PyTorch files are not supported")
    obj = _RestrictedUnpickler(f).load()
    keys = _RestrictedUnpickler(f).load()
    refs = _storage_refs(obj, {})
    buffers: dict[str, np.ndarray] = {}
    for key in keys:
        (count,) = np.frombuffer(f.read(8), "<i8")
        ref = refs.get(str(key))
        dtype = ref.dtype if ref is not None else np.dtype("u1")
        nbytes = int(count) * dtype.itemsize
        if ref is None:  # a storage no tensor uses: we cannot know its size; give up
            raise PthFormatError(f"storage {key} is not used by any tensor")
        raw = f.read(nbytes)
        if len(raw) != nbytes:
            raise PthFormatError(f"file ends inside storage {key}: truncated download?")
        buffers[str(key)] = np.frombuffer(raw, dtype)
    return _resolve(obj, buffers)


def _read_zip(path: Path) -> object:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkl) != 1:
            raise PthFormatError(f"{path.name}: expected one data.pkl in the zip, found {len(pkl)}")
        prefix = pkl[0][: -len("data.pkl")]
        obj = _RestrictedUnpickler(io.BytesIO(archive.read(pkl[0]))).load()
        buffers = {
            key: np.frombuffer(archive.read(f"{prefix}data/{key}"), ref.dtype)
            for key, ref in _storage_refs(obj, {}).items()
        }
    return _resolve(obj, buffers)


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """A ``{name: numpy array}`` dict from a file written by ``torch.save(model.state_dict())``.

    Arrays keep PyTorch's layout and dtype (``float32`` weights, ``int64`` for
    ``num_batches_tracked``; bfloat16 is widened to float32). Raises :class:`PthFormatError`
    for anything else than a (possibly nested) dict of tensors, and ``FileNotFoundError`` for
    a missing file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such PyTorch file: {path}")
    if zipfile.is_zipfile(path):
        obj = _read_zip(path)
    else:
        with open(path, "rb") as f:
            try:
                obj = _read_legacy(f)
            except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as err:
                if isinstance(err, PthFormatError):
                    raise
                raise PthFormatError(f"{path.name} is not a readable PyTorch file: {err}") from err
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise PthFormatError(f"{path.name} holds a {type(obj).__name__}, not a state dict")
    return dict(obj)
