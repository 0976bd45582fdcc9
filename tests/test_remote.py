"""The opt-in downloads (tlcourse.datasets.remote) against a local HTTP server.

The server runs on 127.0.0.1 in a thread and serves small files written here in the real
formats (gzip'd IDX; a CIFAR-10 python tarball with Python-2-style pickles); their
sha256 digests reach the loaders through ``checksums=``. Nothing leaves this machine.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import os
import pickle
import socket
import struct
import tarfile
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from tlcourse import datasets
from tlcourse.datasets import remote

N_TRAIN, N_TEST = 30, 20


# ----------------------------------------------------------------------------- fixtures


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file: 0, 0, type code, ndim, big-endian sizes, big-endian values."""
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int16): 0x0B, np.dtype(np.float32): 0x0D}
    code = codes[array.dtype]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


class Py2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 ``str`` (BINSTRING), as the CIFAR-10 pickles were written."""

    def save_bytes(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[bytes] = save_bytes


def py2_pickle(obj) -> bytes:
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    # NumPy 1.x (and the real file) name the module numpy.core.multiarray.
    return buf.getvalue().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_idx_dataset(folder: Path, seed: int):
    """Small MNIST-format files; returns (arrays, checksums)."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": np.arange(N_TRAIN, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.permutation(np.arange(N_TEST, dtype=np.uint8) % 10),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, a in arrays.items():
        (folder / name).write_bytes(gzip.compress(idx_bytes(a)))
    return arrays, {name: sha(folder / name) for name in arrays}


def write_cifar(folder: Path, seed: int = 3):
    """A CIFAR-10-format tarball with 5 small training batches and a test batch."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (6, 10, 32, 32, 3), dtype=np.uint8)  # 6 batches of 10
    labels = [rng.permutation(10).tolist() for _ in range(6)]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "cifar-10-python.tar.gz"
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    with tarfile.open(path, "w:gz") as tar:
        for name, x, y in zip(names, images, labels, strict=True):
            rows = x.transpose(0, 3, 1, 2).reshape(10, 3072)  # R plane, G plane, B plane
            blob = py2_pickle({b"batch_label": name.encode(), b"labels": y, b"data": rows,
                               b"filenames": [b"img.png"] * 10})
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return images, np.array(labels), {path.name: sha(path)}


class _Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        self.server.requests.append(self.path)
        if self.path.startswith("/cut/"):  # announces 100 kB, sends 100 bytes, hangs up
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"\x1f\x8b" + bytes(98))
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def server(tmp_path):
    """A 127.0.0.1 file server on a free port; yields (root folder, base URL, request log)."""
    root = tmp_path / "www"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}", httpd.requests
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "downloads"
    monkeypatch.setenv("TLCOURSE_DATA_DIR", str(folder))
    monkeypatch.delenv("TLCOURSE_MIRROR", raising=False)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------- tests


def test_pinned_table_is_complete():
    assert set(remote.FILES) == set(remote.MIRRORS) == set(remote.OFFLINE_ALTERNATIVE)
    for files in remote.FILES.values():
        for f in files:
            assert len(f.sha256) == 64 and int(f.sha256, 16) >= 0 and f.size > 0
    for dataset, name in remote.REGISTRY_NAME.items():
        entry = datasets.base.get_entry(name)
        assert (entry.module, entry.offline) == ("tlcourse.datasets.remote", False), dataset
        assert callable(entry.loader())


def test_parse_idx_round_trip_and_bad_files():
    for a in (np.arange(24, dtype=np.uint8).reshape(2, 3, 4), np.array([-2, 300], np.int16),
              np.array([[0.5, -1.25]], np.float32)):
        out = remote.parse_idx(idx_bytes(a))
        assert out.dtype == a.dtype.newbyteorder("=") and np.array_equal(out, a)
    good = idx_bytes(np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="two zero bytes"):
        remote.parse_idx(b"\x01" + good[1:])
    with pytest.raises(ValueError, match="expected 4"):
        remote.parse_idx(good[:-1])
    with pytest.raises(ValueError, match="type code"):
        remote.parse_idx(good[:2] + b"\x07" + good[3:])


def test_download_parse_and_cache_hit(server, cache_dir):
    root, url, requests = server
    arrays, checksums = write_idx_dataset(root / "files", seed=0)
    ds = remote.load_mnist_full(base_url=f"{url}/files/", checksums=checksums, progress=False)
    assert len(requests) == 4
    assert ds.name == "mnist-full" and ds.classes == [str(d) for d in range(10)]
    assert ds.x_train.shape == (N_TRAIN, 28, 28) and ds.x_train.dtype == np.float32
    assert ds.y_train.dtype == np.int64 and ds.x_test.shape == (N_TEST, 28, 28)
    assert np.allclose(ds.x_train * 255, arrays["train-images-idx3-ubyte.gz"])
    assert np.array_equal(ds.y_test, arrays["t10k-labels-idx1-ubyte.gz"])
    assert 0.0 <= ds.x_test.min() and ds.x_test.max() <= 1.0
    cached = sorted(p.name for p in (cache_dir / "mnist").iterdir())
    assert cached == sorted(checksums)  # no .part file left behind
    # A second call is served from the cache: no request at all.
    again = remote.load_mnist_full(base_url=f"{url}/files/", checksums=checksums, progress=False)
    assert len(requests) == 4 and np.array_equal(again.x_train, ds.x_train)
    # ... and so is a stratified, seeded subset, through the public registry.
    sub = datasets.load("mnist-full", n_train=10, n_test=10, seed=1, base_url=f"{url}/files/",
                        checksums=checksums, progress=False)
    assert len(requests) == 4
    assert np.bincount(sub.y_train).tolist() == [1] * 10
    assert np.array_equal(sub.x_train, datasets.load("mnist-full", n_train=10, seed=1,
                                                     base_url=f"{url}/files/", checksums=checksums,
                                                     progress=False).x_train)


def test_mirror_environment_variable(server, monkeypatch):
    root, url, requests = server
    arrays, checksums = write_idx_dataset(root / "fashion-mnist", seed=1)
    monkeypatch.setenv("TLCOURSE_MIRROR", url)
    ds = remote.load_fashion_mnist(checksums=checksums, progress=False)
    assert sorted(requests) == sorted(f"/fashion-mnist/{n}" for n in checksums)
    assert ds.classes[0] == "T-shirt/top" and ds.classes[-1] == "Ankle boot"
    assert np.array_equal(ds.y_train, arrays["train-labels-idx1-ubyte.gz"])


def test_cifar10_tarball(server):
    root, url, requests = server
    images, labels, checksums = write_cifar(root / "c")
    ds = remote.load_cifar10(base_url=f"{url}/c", checksums=checksums, progress=False)
    assert ds.x_train.shape == (50, 32, 32, 3) and ds.x_test.shape == (10, 32, 32, 3)
    assert np.array_equal(np.rint(ds.x_train * 255).astype(np.uint8), images[:5].reshape(50, 32, 32, 3))
    assert np.array_equal(ds.y_train, labels[:5].ravel()) and np.array_equal(ds.y_test, labels[5])
    assert ds.classes[:2] == ["airplane", "automobile"] and len(requests) == 1
    sub = remote.load_cifar10(n_train=20, n_test=10, base_url=f"{url}/c", checksums=checksums,
                              progress=False)
    assert np.bincount(sub.y_train).tolist() == [2] * 10 and len(requests) == 1


def test_unpickler_accepts_only_numpy():
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo hacked",))

    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        remote.parse_cifar_batch(pickle.dumps({"data": Evil(), "labels": []}, protocol=2))
    with pytest.raises(ValueError, match="3072"):
        remote.parse_cifar_batch(py2_pickle({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}))


def test_corrupted_download_is_refused_and_deleted(server, cache_dir):
    root, url, _ = server
    _, checksums = write_idx_dataset(root, seed=0)
    wrong = dict(checksums, **{"train-labels-idx1-ubyte.gz": "0" * 64})
    with pytest.raises(remote.ChecksumError, match="sha256.*deleted"):
        remote.load_mnist_full(base_url=url, checksums=wrong, progress=False)
    assert not (cache_dir / "mnist" / "train-labels-idx1-ubyte.gz").exists()
    assert not list((cache_dir / "mnist").glob("*.part"))


def test_corrupted_cache_is_fetched_again(server, cache_dir):
    root, url, requests = server
    _, checksums = write_idx_dataset(root, seed=0)
    remote.download("mnist", base_url=url, checksums=checksums, progress=False)
    cached = cache_dir / "mnist" / "t10k-images-idx3-ubyte.gz"
    cached.write_bytes(cached.read_bytes()[:100])  # truncated on disk
    with pytest.warns(RuntimeWarning, match="does not match"):
        paths = remote.download("mnist", base_url=url, checksums=checksums, progress=False)
    assert len(requests) == 5 and sha(paths[cached.name]) == checksums[cached.name]


def test_unreachable_server_gives_offline_error():
    url = f"http://127.0.0.1:{free_port()}/"
    with pytest.raises(remote.OfflineError) as info:
        remote.load_mnist_full(base_url=url, progress=False, timeout=5)
    assert "no network" in str(info.value)
    assert "datasets.load('mnist')" in str(info.value)
    assert isinstance(info.value, ConnectionError)
    with pytest.raises(remote.OfflineError, match=r"datasets.load\('textures'\)"):
        remote.load_cifar10(base_url=url, progress=False, timeout=5)


def test_missing_file_is_not_called_offline(server):
    _, url, _ = server
    with pytest.raises(remote.DownloadError, match="404") as info:
        remote.download("mnist", base_url=url, progress=False)
    assert not isinstance(info.value, remote.OfflineError)


def test_interrupted_download_leaves_nothing(server, cache_dir):
    _, url, requests = server
    with pytest.raises(remote.DownloadError, match="IncompleteRead"):
        remote.download("mnist", base_url=f"{url}/cut/", progress=False)
    assert requests == ["/cut/train-images-idx3-ubyte.gz"]
    assert list((cache_dir / "mnist").iterdir()) == []


def test_progress_bar_without_a_tty(server, capsys):
    root, url, _ = server
    _, checksums = write_idx_dataset(root, seed=2)
    ds = remote.load_mnist_full(base_url=url, checksums=checksums, progress=True)
    assert len(ds.y_train) == N_TRAIN
    assert "train-images-idx3-ubyte.gz" in capsys.readouterr().err


def test_bad_arguments():
    with pytest.raises(ValueError, match="choose one of"):
        remote.download("imagenet")
    with pytest.raises(ValueError, match="unknown file"):
        remote.download("mnist", checksums={"nope.gz": "0" * 64})
    with pytest.raises(TypeError, match="accepts"):
        datasets.load("cifar10", n_val=3)
