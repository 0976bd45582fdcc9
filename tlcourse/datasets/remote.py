"""Opt-in full datasets for learners who are online: MNIST, Fashion-MNIST, CIFAR-10.

Nothing here runs unless a learner asks for it (``datasets.load("mnist-full")``); every
notebook runs offline on the bundled data. On request the official files are downloaded
once, checked, cached, and parsed with NumPy:

* **where from** — :data:`MIRRORS`, one table of base URLs per dataset, tried in order.
  ``base_url=`` (the folder holding that dataset's files) or ``$TLCOURSE_MIRROR`` (a root
  with one folder per dataset: ``<root>/mnist/``, ``<root>/fashion-mnist/``,
  ``<root>/cifar10/`` — the layout of the download cache, so a teacher can serve a
  classroom from one machine's cache) replace the table;
* **checked** — each file's SHA-256 is pinned in :data:`FILES`; a download that does not
  match is deleted and refused, a cached file that no longer matches is fetched again;
* **cached** — in ``$TLCOURSE_DATA_DIR`` or else ``tlcourse.paths.subdir("downloads")``,
  as ``<cache>/<dataset>/<file>``, written to ``<file>.part`` and renamed when complete;
* **progress** — a tqdm bar per file;
* **offline** — no connection gives :class:`OfflineError`, naming the offline dataset
  to use instead.

Formats (parsed here, NumPy only):

* MNIST and Fashion-MNIST: gzip'd IDX files (LeCun et al.): big-endian header
  ``0x00 0x00 <type> <ndim>``, ``ndim`` uint32 sizes, then the values row-major;
* CIFAR-10 (Krizhevsky 2009): a tar.gz of Python pickles ``data_batch_1..5`` and
  ``test_batch``, each ``{b"data": uint8 (10000, 3072), b"labels": [...]}`` with each row
  the 1024 red, 1024 green, then 1024 blue values of a 32×32 image. The pickles are
  opened only after the SHA-256 check, with an unpickler that accepts nothing but NumPy
  arrays.

>>> from tlcourse.datasets.remote import load_mnist_full
>>> ds = load_mnist_full(n_train=6000, n_test=1000)     # doctest: +SKIP
>>> ds.x_train.shape, ds.x_train.dtype                  # doctest: +SKIP
((6000, 28, 28), dtype('float32'))
"""

from __future__ import annotations

import codecs
import errno
import gzip
import hashlib
import http.client
import io
import os
import pickle
import socket
import tarfile
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tlcourse.paths import env_subdir

DATASETS = ("mnist", "fashion-mnist", "cifar10")

MIRRORS = {
    "mnist": (
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    "cifar10": ("https://www.cs.toronto.edu/~kriz/",),
}
"""Base URLs per dataset, tried in order (the files' names are appended)."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset: its name, pinned SHA-256 and size in bytes (``None``: unknown)."""

    name: str
    sha256: str
    size: int | None = None


# Provenance of the pinned digests. None was computed here (this machine has no network);
# they are the SHA-256 digests and sizes registered by TensorFlow Datasets for these very
# files (tensorflow_datasets/url_checksums/{mnist,fashion_mnist}.txt and cifar10.csv) and
# agree with other projects that pin them. The MD5 digests published alongside (torchvision:
# MNIST f68b3c2d…, d53e105e…, 9fb629c4…, ec29112d…; CIFAR-10 on its home page:
# c58f30108f718f92721af3b95e74349a) are not checked here: SHA-256 is.
FILES = {
    "mnist": (
        RemoteFile("train-images-idx3-ubyte.gz",
                   "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
        RemoteFile("train-labels-idx1-ubyte.gz",
                   "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
        RemoteFile("t10k-images-idx3-ubyte.gz",
                   "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
        RemoteFile("t10k-labels-idx1-ubyte.gz",
                   "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
    ),
    "fashion-mnist": (
        RemoteFile("train-images-idx3-ubyte.gz",
                   "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880),
        RemoteFile("train-labels-idx1-ubyte.gz",
                   "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515),
        RemoteFile("t10k-images-idx3-ubyte.gz",
                   "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102),
        RemoteFile("t10k-labels-idx1-ubyte.gz",
                   "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148),
    ),
    "cifar10": (
        RemoteFile("cifar-10-python.tar.gz",
                   "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce", 170498071),
    ),
}
"""The official files of each dataset with their pinned SHA-256 digests."""

OFFLINE_ALTERNATIVE = {
    "mnist": "datasets.load('mnist') (5,000 real MNIST images, offline)",
    "fashion-mnist": "datasets.load('letters') (letters A-J rendered from fonts, 28x28 grey, offline)",
    "cifar10": "datasets.load('textures') (colour patches of bundled photos, offline) "
               "or datasets.load('mnist-m')",
}

REGISTRY_NAME = {"mnist": "mnist-full", "fashion-mnist": "fashion-mnist", "cifar10": "cifar10"}

_CHUNK = 1 << 16


class DownloadError(OSError):
    """A file could not be fetched from any mirror."""


class OfflineError(DownloadError, ConnectionError):
    """No mirror could be reached at all: this machine looks offline."""


class ChecksumError(ValueError):
    """A file's SHA-256 differs from the pinned one; the file has been deleted."""


def _check_dataset(dataset: str) -> str:
    if dataset not in FILES:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {DATASETS}")
    return dataset


def data_dir() -> Path:
    """The download cache: ``$TLCOURSE_DATA_DIR`` or ``tlcourse.paths.subdir("downloads")``."""
    return env_subdir("TLCOURSE_DATA_DIR", "downloads")


def mirrors(dataset: str, base_url: str | None = None) -> tuple[str, ...]:
    """Base URLs to try for ``dataset``: ``base_url``, else ``$TLCOURSE_MIRROR``, else :data:`MIRRORS`."""
    _check_dataset(dataset)
    if base_url:
        return (base_url.rstrip("/") + "/",)
    root = os.environ.get("TLCOURSE_MIRROR")
    if root:
        return (f"{root.rstrip('/')}/{dataset}/",)
    return MIRRORS[dataset]


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(dataset: str, checksums: dict[str, str] | None) -> tuple[RemoteFile, ...]:
    files = FILES[_check_dataset(dataset)]
    if not checksums:
        return files
    unknown = set(checksums) - {f.name for f in files}
    if unknown:
        raise ValueError(f"checksums for unknown file(s) {sorted(unknown)}; {dataset} has "
                         f"{[f.name for f in files]}")
    return tuple(RemoteFile(f.name, checksums[f.name].lower(), None) if f.name in checksums else f
                 for f in files)


_NO_ROUTE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN}


def _is_offline(err: BaseException) -> bool:
    """True for errors meaning "could not connect": refused, no route, no DNS, time-out."""
    if isinstance(err, urllib.error.HTTPError):
        return False
    reason = getattr(err, "reason", err)
    if isinstance(reason, (ConnectionError, TimeoutError, socket.gaierror)):
        return True
    return isinstance(reason, OSError) and reason.errno in _NO_ROUTE


def _describe(err: BaseException) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return str(err)  # "HTTP Error 404: Not Found"
    return str(getattr(err, "reason", err))


def _fetch(url: str, part: Path, name: str, size: int | None, timeout: float,
           progress: bool) -> None:
    """Stream ``url`` into ``part`` with a progress bar; a short body raises IncompleteRead."""
    from tqdm.auto import tqdm

    with urllib.request.urlopen(url, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        announced = int(length) if length and length.isdigit() else None
        written = 0
        with open(part, "wb") as out, tqdm(total=announced or size, unit="B", unit_scale=True,
                                          unit_divisor=1024, desc=name, disable=not progress,
                                          leave=False) as bar:
            while True:
                block = response.read(_CHUNK)
                if not block:
                    break
                out.write(block)
                written += len(block)
                bar.update(len(block))
    if announced is not None and written != announced:
        raise http.client.IncompleteRead(b"", announced - written)


def _download(dataset: str, f: RemoteFile, target: Path, bases: tuple[str, ...],
              timeout: float, progress: bool) -> None:
    part = target.with_name(f"{target.name}.{os.getpid()}.part")
    failures: list[tuple[str, BaseException]] = []
    for base in bases:
        url = base + f.name
        try:
            _fetch(url, part, f.name, f.size, timeout, progress)
        except (OSError, http.client.HTTPException) as err:  # URLError is an OSError
            part.unlink(missing_ok=True)
            failures.append((url, err))
            continue
        digest = sha256_of(part)
        if digest != f.sha256:
            size = part.stat().st_size
            part.unlink()
            failures.append((url, ChecksumError(
                f"{f.name} from {url} ({size} bytes) has sha256 {digest}, expected {f.sha256}")))
            continue
        os.replace(part, target)
        return
    alternative = OFFLINE_ALTERNATIVE[dataset]
    bad = [err for _, err in failures if isinstance(err, ChecksumError)]
    if bad:
        raise ChecksumError(
            f"refused {f.name}: the downloaded file does not match its pinned sha256 and was "
            f"deleted ({'; '.join(str(e) for e in bad)}). The mirror serves a damaged or "
            f"different file: try again later or another mirror (base_url=..., "
            f"$TLCOURSE_MIRROR); offline, use {alternative}."
        )
    tried = "; ".join(f"{url}: {_describe(err)}" for url, err in failures)
    if all(_is_offline(err) for _, err in failures):
        raise OfflineError(
            f"no network: could not reach any mirror for {f.name} ({tried}). "
            f"Use {alternative} instead, or copy the file into {target.parent}."
        )
    raise DownloadError(
        f"could not download {f.name} ({tried}). Try another mirror (base_url=..., "
        f"$TLCOURSE_MIRROR) or, offline, use {alternative}."
    )


def download(dataset: str, *, base_url: str | None = None, checksums: dict[str, str] | None = None,
             progress: bool = True, timeout: float = 30.0) -> dict[str, Path]:
    """Make sure every file of ``dataset`` is in the cache and intact; return their paths.

    A cached file is re-hashed on every call; one whose SHA-256 no longer matches is
    deleted (with a warning) and downloaded again. ``checksums`` (file name → SHA-256)
    overrides pinned digests — for tests and private mirrors serving other files.

    >>> paths = download("mnist")                            # doctest: +SKIP
    >>> sorted(p.name for p in paths.values())[0]            # doctest: +SKIP
    't10k-images-idx3-ubyte.gz'
    """
    files = _files(dataset, checksums)
    folder = data_dir() / dataset
    folder.mkdir(parents=True, exist_ok=True)
    bases = mirrors(dataset, base_url)
    paths = {}
    for f in files:
        target = folder / f.name
        if target.exists():
            if sha256_of(target) == f.sha256:
                paths[f.name] = target
                continue
            warnings.warn(f"tlcourse: the cached {target} does not match its pinned sha256; "
                          "deleted, downloading it again", RuntimeWarning, stacklevel=2)
            target.unlink()
        _download(dataset, f, target, bases, timeout, progress)
        paths[f.name] = target
    return paths


# ----------------------------------------------------------------------------- parsing

_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def parse_idx(data: bytes) -> np.ndarray:
    """An IDX file's contents (already un-gzipped) as a NumPy array in native byte order.

    Header: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions ``d``, then ``d`` big-endian
    uint32 sizes; the values follow, row-major and big-endian.

    >>> parse_idx(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9])).tolist()
    [7, 8, 9]
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError("not an IDX file: it must start with two zero bytes")
    code, ndim = data[2], data[3]
    if code not in _IDX_TYPES:
        raise ValueError(f"IDX type code 0x{code:02x} unknown; expected one of "
                         f"{[hex(c) for c in _IDX_TYPES]}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"IDX header truncated: {len(data)} bytes for {ndim} dimensions")
    shape = tuple(int(s) for s in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(f"IDX body has {len(data) - header} bytes, expected {expected} for "
                         f"shape {shape} of {dtype.name}")
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx_gz(path: Path) -> np.ndarray:
    """Read a gzip'd IDX file (``*.gz``), see :func:`parse_idx`."""
    with gzip.open(path, "rb") as fh:
        return parse_idx(fh.read())


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, bytes, numbers and NumPy arrays; refuses any other global."""

    # What a pickled ndarray refers to; numpy moved numpy.core to numpy._core in 2.0, so the
    # functions are taken from numpy's own reduce tuples instead of by (private) import.
    # _codecs.encode appears when Python 3 pickles bytes with protocol 2; it only re-encodes.
    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): lambda: np.zeros(0).__reduce__()[0],
        ("numpy._core.multiarray", "_reconstruct"): lambda: np.zeros(0).__reduce__()[0],
        ("numpy.core.multiarray", "scalar"): lambda: np.int64(0).__reduce__()[0],
        ("numpy._core.multiarray", "scalar"): lambda: np.int64(0).__reduce__()[0],
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: np.dtype,
        ("_codecs", "encode"): lambda: codecs.encode,
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR pickle")
        return self._ALLOWED[module, name]()


def parse_cifar_batch(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch → ``(images uint8 (N, 32, 32, 3), labels int64 (N,))``.

    The batch is a pickled dict with keys ``b"data"`` (uint8 rows of 3072 = 3 × 32 × 32,
    channel-major: all red, then green, then blue) and ``b"labels"``.
    """
    # latin1: how NumPy's docs say to read arrays pickled by Python 2 (as CIFAR-10's were).
    batch = _NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()
    if not isinstance(batch, dict):
        raise ValueError(f"a CIFAR batch is a pickled dict, got {type(batch).__name__}")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise ValueError(f"a CIFAR batch needs keys 'data' and 'labels', found {sorted(batch)}")
    rows = np.asarray(batch["data"], dtype=np.uint8)
    labels = np.asarray(batch["labels"], dtype=np.int64)
    if rows.ndim != 2 or rows.shape[1] != 3072 or len(rows) != len(labels):
        raise ValueError(f"CIFAR data must be (N, 3072) with N labels, got {rows.shape} and "
                         f"{labels.shape}")
    return rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def read_cifar10_tar(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)`` as uint8/int64 from ``cifar-10-python.tar.gz``."""
    members = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    with tarfile.open(path, "r:gz") as tar:
        for info in tar:
            base = info.name.rsplit("/", 1)[-1]
            if info.isfile() and base in members:
                found[base] = parse_cifar_batch(tar.extractfile(info).read())
    missing = [m for m in members if m not in found]
    if missing:
        raise ValueError(f"{path.name} lacks the CIFAR-10 batches {missing}")
    x_train = np.concatenate([found[m][0] for m in members[:5]])
    y_train = np.concatenate([found[m][1] for m in members[:5]])
    return x_train, y_train, found["test_batch"][0], found["test_batch"][1]


# ----------------------------------------------------------------------------- loaders


def _subsample(y: np.ndarray, n: int | None, seed: int, what: str) -> np.ndarray:
    """All indices (official order) if ``n`` is None, else a stratified random subset."""
    if n is None:
        return np.arange(len(y))
    from tlcourse.datasets.sampling import stratified_split

    if n > len(y):
        raise ValueError(f"{what}={n} is more than the {len(y)} examples available")
    train, _ = stratified_split(y, n_test=0, n_train=n, seed=seed)
    return train


def _imageset(dataset: str, x_tr, y_tr, x_te, y_te, seed, n_train, n_test, paths):
    from tlcourse.datasets.base import ImageSet, get_entry

    entry = get_entry(REGISTRY_NAME[dataset])
    tr = _subsample(y_tr, n_train, seed, "n_train")
    te = _subsample(y_te, n_test, seed, "n_test")
    return ImageSet(
        name=entry.name,
        x_train=x_tr[tr].astype(np.float32) / np.float32(255.0), y_train=y_tr[tr],
        x_test=x_te[te].astype(np.float32) / np.float32(255.0), y_test=y_te[te],
        classes=list(entry.classes), source=entry.source,
        extra={"files": {k: str(v) for k, v in paths.items()}, "seed": seed,
               "official_split": True, "n_train_available": len(y_tr),
               "n_test_available": len(y_te)},
    )


def _load_idx_dataset(dataset, seed, n_train, n_test, base_url, checksums, progress, timeout):
    paths = download(dataset, base_url=base_url, checksums=checksums, progress=progress,
                     timeout=timeout)
    arrays = [read_idx_gz(paths[f.name]) for f in FILES[dataset]]
    x_tr, y_tr, x_te, y_te = arrays
    for x, y, part in ((x_tr, y_tr, "train"), (x_te, y_te, "test")):
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{dataset} {part}: images {x.shape} and labels {y.shape} do not match")
    return _imageset(dataset, x_tr, y_tr.astype(np.int64), x_te, y_te.astype(np.int64), seed,
                     n_train, n_test, paths)


def load_mnist_full(seed: int = 0, n_train: int | None = None, n_test: int | None = None, *,
                    base_url: str | None = None, checksums: dict[str, str] | None = None,
                    progress: bool = True, timeout: float = 30.0):
    """MNIST, all 70,000 digits (official 60,000 / 10,000 split), downloaded on first use.

    Images ``(N, 28, 28)`` float32 in [0, 1] (``pixel / 255``), labels int64. With
    ``n_train`` / ``n_test`` a stratified random subset of each official part is drawn
    with ``seed``; without them the official order is kept. Needs ~11 MB of download;
    offline, use ``datasets.load("mnist")``.
    """
    return _load_idx_dataset("mnist", seed, n_train, n_test, base_url, checksums, progress, timeout)


def load_fashion_mnist(seed: int = 0, n_train: int | None = None, n_test: int | None = None, *,
                       base_url: str | None = None, checksums: dict[str, str] | None = None,
                       progress: bool = True, timeout: float = 30.0):
    """Fashion-MNIST (Zalando), 70,000 clothing images 28×28 grey, like :func:`load_mnist_full`.

    ~30 MB of download. Classes: T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal,
    Shirt, Sneaker, Bag, Ankle boot.
    """
    return _load_idx_dataset("fashion-mnist", seed, n_train, n_test, base_url, checksums,
                             progress, timeout)


def load_cifar10(seed: int = 0, n_train: int | None = None, n_test: int | None = None, *,
                 base_url: str | None = None, checksums: dict[str, str] | None = None,
                 progress: bool = True, timeout: float = 30.0):
    """CIFAR-10, 60,000 colour images ``(N, 32, 32, 3)`` float32 in [0, 1], 50,000 / 10,000.

    ~170 MB of download. All 60,000 as float32 take 740 MB of memory: on a small machine
    (Binder: 2 GB) ask for a subset, e.g. ``n_train=5000, n_test=1000`` (stratified,
    drawn with ``seed``; images are converted to float only after subsetting).
    """
    paths = download("cifar10", base_url=base_url, checksums=checksums, progress=progress,
                     timeout=timeout)
    x_tr, y_tr, x_te, y_te = read_cifar10_tar(paths["cifar-10-python.tar.gz"])
    return _imageset("cifar10", x_tr, y_tr, x_te, y_te, seed, n_train, n_test, paths)
