"""The offline datasets (tlcourse.datasets): loaders, sampler, cache, registry, hygiene.

Loaders read and fill the normal cache (``$TLCOURSE_HOME``), as notebooks do; the first
run builds mnist-m, letters and textures (about half a minute). Cache tests use a
temporary ``$TLCOURSE_HOME``.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

from tlcourse import datasets
from tlcourse.datasets import base, cache, letters, mnistm, sampling
from tlcourse.datasets.digits import mnist_geometry
from tlcourse.datasets.geometry import centre_by_mass, fit_in_box
from tlcourse.datasets.letters import affine_matrix
from tlcourse.datasets.mnistm import blend
from tlcourse.datasets.photos import split_regions

# name, load options: every offline image dataset tlcourse owns
IMAGE_SETS = {
    "mnist": {},
    "digits": {},
    "digits28": {"size": 28},
    "mnist-m": {},
    "letters": {},
    "textures": {},
    "faces": {},
}


def _name(key: str) -> str:
    return "digits" if key.startswith("digits") else key


@pytest.fixture(scope="module")
def loaded():
    """Each image dataset with seed 0, loaded once for the module."""
    return {key: datasets.load(_name(key), seed=0, **kw) for key, kw in IMAGE_SETS.items()}


def _row_hashes(x: np.ndarray) -> set[str]:
    return {hashlib.sha1(np.ascontiguousarray(a).tobytes()).hexdigest() for a in x}


def _nearest_centroid_accuracy(ds, features=lambda x: x.reshape(len(x), -1)) -> float:
    ftr, fte = features(ds.x_train), features(ds.x_test)
    centroids = np.stack([ftr[ds.y_train == c].mean(0) for c in range(ds.n_classes)])
    dist = ((fte[:, None, :] - centroids[None]) ** 2).sum(-1)
    return float((dist.argmin(1) == ds.y_test).mean())


# ----------------------------------------------------------------------------- loaders


@pytest.mark.parametrize("key", list(IMAGE_SETS))
def test_image_loader_contract(loaded, key):
    ds = loaded[key]
    meta = datasets.info(_name(key))
    assert ds.name == _name(key)
    assert ds.source == meta["source"] and len(ds.source) > 20
    assert ds.classes == meta["classes"]
    expected_shape = (28, 28) if key == "digits28" else meta["example_shape"]
    assert ds.x_train.shape == (meta["n_train"], *expected_shape)
    assert ds.x_test.shape == (meta["n_test"], *expected_shape)
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.min() >= 0.0 and x.max() <= 1.0
        assert 0.05 < x.mean() < 0.95, "images should be neither blank nor saturated"
        assert set(np.unique(y)) == set(range(ds.n_classes))
    # stratified: class shares in train and test within one example of proportional
    counts_tr = np.bincount(ds.y_train, minlength=ds.n_classes)
    counts_te = np.bincount(ds.y_test, minlength=ds.n_classes)
    share = (counts_tr + counts_te) / (counts_tr + counts_te).sum()
    assert np.all(np.abs(counts_te - share * counts_te.sum()) <= 1.0)
    assert counts_tr.min() >= 0.9 * counts_tr.max()


@pytest.mark.parametrize("key", list(IMAGE_SETS))
def test_no_image_in_both_train_and_test(loaded, key):
    ds = loaded[key]
    train, test = _row_hashes(ds.x_train), _row_hashes(ds.x_test)
    assert not train & test
    assert len(train) == len(ds.x_train), "duplicate images within the training set"


@pytest.mark.parametrize("key", list(IMAGE_SETS))
def test_same_seed_same_data_other_seed_other_split(loaded, key):
    name, kw = _name(key), IMAGE_SETS[key]
    again = datasets.load(name, seed=0, **kw)
    ds = loaded[key]
    assert np.array_equal(again.x_train, ds.x_train) and np.array_equal(again.y_train, ds.y_train)
    assert np.array_equal(again.x_test, ds.x_test)
    other = datasets.load(name, seed=1, **kw)
    assert other.x_train.shape == ds.x_train.shape
    assert not np.array_equal(other.y_train, ds.y_train)
    assert _row_hashes(other.x_test) != _row_hashes(ds.x_test)


@pytest.mark.parametrize("key", ["mnist", "digits", "digits28", "letters", "faces"])
def test_labels_match_images(loaded, key):
    """A nearest-centroid classifier beats chance by far: images and labels stayed paired."""
    ds = loaded[key]
    assert _nearest_centroid_accuracy(ds) > 1 / ds.n_classes + 0.3


def test_texture_labels_match_images(loaded):
    def colour_stats(x):
        return np.concatenate([x.mean(axis=(1, 2)), x.std(axis=(1, 2))], axis=1)

    assert _nearest_centroid_accuracy(loaded["textures"], colour_stats) > 1 / 8 + 0.3


def test_mnist_m_shares_the_mnist_split_and_blends_digits(loaded):
    mnist, mm = loaded["mnist"], loaded["mnist-m"]
    assert np.array_equal(mnist.y_train, mm.y_train) and np.array_equal(mnist.y_test, mm.y_test)
    assert mm.x_train.shape[-1] == 3
    # the blend |patch - digit| inverts the patch under the strokes: where MNIST has ink,
    # the colour differs from the image's background far more than elsewhere
    ink = mnist.x_train[:200] > 0.8
    background = mnist.x_train[:200] < 0.05
    grey = mm.x_train[:200]
    median = np.median(grey.reshape(200, -1, 3), axis=1)[:, None, None, :]
    deviation = np.abs(grey - median).sum(-1)
    assert deviation[ink].mean() > 2 * deviation[background].mean()
    assert set(mm.extra["photo_train"]) <= set(mnistm.PHOTOS)


def test_mnist_m_images_differ_between_seeds():
    a = datasets.load("mnist-m", seed=0, n_train=50, n_test=10)
    b = datasets.load("mnist-m", seed=1, n_train=50, n_test=10)
    assert not np.array_equal(a.x_train, b.x_train)


def test_blend_formula():
    digit = np.array([[[0.0, 1.0]]])
    patch = np.array([[[[0.25, 0.5, 1.0], [0.25, 0.5, 1.0]]]])
    assert blend(digit, patch).tolist() == [[[[0.25, 0.5, 1.0], [0.75, 0.5, 0.0]]]]
    with pytest.raises(ValueError, match="shape"):
        blend(digit, patch[..., :2])


def test_digits28_in_mnist_geometry(loaded):
    x = loaded["digits28"].x_train[:300]
    rows, cols = np.mgrid[0:28, 0:28]
    mass = x.sum(axis=(1, 2))
    cy = (x * rows).sum(axis=(1, 2)) / mass
    cx = (x * cols).sum(axis=(1, 2)) / mass
    assert np.all(np.abs(cy - 13.5) < 1.0) and np.all(np.abs(cx - 13.5) < 1.0)
    for img in x:
        rows_ink, cols_ink = np.nonzero(img > 0.01)
        assert np.ptp(rows_ink) < 20 and np.ptp(cols_ink) < 20, "the digit fits a 20x20 box"
    with pytest.raises(ValueError, match="expected grey images"):
        mnist_geometry(np.zeros((8, 8)))
    with pytest.raises(ValueError, match="size must be one of"):
        datasets.load("digits", size=16)


def test_geometry_helpers():
    img = np.zeros((40, 10))
    img[5:35, 2:8] = 1.0
    small = fit_in_box(img, 20)
    assert max(small.shape) == 20 and small.shape == (20, 4)
    out = centre_by_mass(small, 28)
    rows, cols = np.nonzero(out > 0.5)
    assert abs(rows.mean() - 13.5) <= 0.5 and abs(cols.mean() - 13.5) <= 0.5
    shifted = centre_by_mass(small, 28, shift=(2, -1))
    assert np.array_equal(np.roll(np.roll(out, 2, 0), -1, 1), shifted)
    with pytest.raises(ValueError, match="does not fit"):
        centre_by_mass(np.ones((30, 5)), 28)


def test_letters_options_and_errors():
    ds = datasets.load("letters", letters="XYZ", per_class=20, seed=3)
    assert ds.classes == ["X", "Y", "Z"] and ds.x_train.shape == (48, 28, 28)
    assert set(ds.extra["font_train"]) <= set(letters.FONTS)
    with pytest.raises(ValueError, match="capitals A-Z"):
        datasets.load("letters", letters="ab")
    with pytest.raises(ValueError, match="repeat"):
        datasets.load("letters", letters="AAB")
    assert len(letters.available_fonts()) == len(letters.FONTS)
    rot = affine_matrix(90, 0.0, (1.0, 1.0))
    assert np.allclose(rot @ [1.0, 0.0], [0.0, 1.0])


def test_textures_regions_are_disjoint_and_cover_the_photo():
    for shape in [(512, 512), (191, 384), (600, 300)]:
        train, test = split_regions(shape)
        mask = np.zeros(shape[:2], dtype=int)
        mask[train] += 1
        mask[test] += 2
        assert set(np.unique(mask)) == {1, 2}, "each pixel in exactly one region"
        assert (mask == 1).mean() == pytest.approx(0.7, abs=0.01)


def test_textures_size_option():
    ds = datasets.load("textures", size=32, train_per_class=3, test_per_class=2, seed=5)
    assert ds.x_train.shape == (24, 32, 32, 3) and ds.x_test.shape == (16, 32, 32, 3)
    with pytest.raises(ValueError, match="size"):
        datasets.load("textures", size=4)


# ----------------------------------------------------------------------------- text


@pytest.fixture(scope="module")
def text():
    return datasets.load("text", seed=0)


def test_text_corpus(text):
    assert text.x_train.dtype.kind == "U" and text.y_train.dtype == np.int64
    assert text.x_train.shape == (250,) and text.x_test.shape == (100,)
    assert np.bincount(text.y_test).tolist() == [20] * 5
    everything = np.concatenate([text.x_train, text.x_test])
    assert len(set(everything)) == len(everything), "duplicate sentences"
    assert not set(text.x_train) & set(text.x_test)
    assert all(3 <= len(s.split()) <= 25 for s in everything)
    assert "CC0" in text.source
    other = datasets.load("text", seed=1)
    assert list(other.x_test) != list(text.x_test)


def test_text_is_not_trivial_for_bag_of_words(text):
    """A bag-of-words model learns something, but 5 sentences per topic are far from enough."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    def accuracy(x, y):
        vec = CountVectorizer().fit(x)
        clf = LogisticRegression(max_iter=2000).fit(vec.transform(x), y)
        return float((clf.predict(vec.transform(text.x_test)) == text.y_test).mean())

    few = np.mean([accuracy(*datasets.few_shot(text.x_train, text.y_train, 5, seed=s)) for s in range(3)])
    full = accuracy(text.x_train, text.y_train)
    assert few < 0.8
    assert full > few and full > 0.3


def test_text_preview_prints_a_table(text, capsys):
    assert datasets.preview(text, n=5) is None
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 + 5
    assert {line.split()[0] for line in out[2:]} == set(text.classes)


# ----------------------------------------------------------------------------- sampler


def test_few_shot_k_per_class_reproducible_nested():
    y = np.repeat(np.arange(4), [10, 7, 12, 9])
    x = np.arange(len(y)) * 10
    xk, yk = datasets.few_shot(x, y, 5, seed=0)
    assert np.bincount(yk).tolist() == [5, 5, 5, 5]
    assert np.array_equal(y[xk // 10], yk), "x and y stay paired"
    again, _ = datasets.few_shot(x, y, 5, seed=0)
    assert np.array_equal(again, xk)
    other, _ = datasets.few_shot(x, y, 5, seed=1)
    assert set(other) != set(xk)
    small, _ = datasets.few_shot(x, y, 2, seed=0)
    assert set(small) <= set(xk)
    assert len(np.unique(xk)) == len(xk)
    assert len(set(yk[:4])) > 1, "the result is shuffled, not sorted by class"


def test_few_shot_errors():
    y = np.repeat(np.arange(3), [10, 4, 8])
    with pytest.raises(ValueError, match=r"class 1 has 4 examples"):
        datasets.few_shot(np.zeros(len(y)), y, 5)
    with pytest.raises(ValueError, match="at least 1"):
        datasets.few_shot(np.zeros(len(y)), y, 0)
    with pytest.raises(TypeError, match="whole number"):
        datasets.few_shot(np.zeros(len(y)), y, 2.5)
    with pytest.raises(ValueError, match="labels"):
        datasets.few_shot(np.zeros(5), y, 1)
    with pytest.raises(TypeError, match="integers"):
        datasets.few_shot(np.zeros(3), np.array([0.0, 1.0, 1.0]), 1)


def test_stratified_split():
    y = np.repeat(np.arange(3), [50, 30, 20])
    train, test = datasets.stratified_split(y, n_test=10, n_train=40, seed=0)
    assert np.bincount(y[test]).tolist() == [5, 3, 2]
    assert np.bincount(y[train]).tolist() == [20, 12, 8]
    assert not set(train) & set(test)
    train2, test2 = datasets.stratified_split(y, n_test=10, n_train=40, seed=0)
    assert np.array_equal(train, train2) and np.array_equal(test, test2)
    everything, _ = datasets.stratified_split(y, n_test=0, seed=0)
    assert sorted(everything) == list(range(100))
    with pytest.raises(ValueError, match="only 100"):
        datasets.stratified_split(y, n_test=60, n_train=60)
    assert sampling.allocate([7, 7, 6], 10).sum() == 10


# ----------------------------------------------------------------------------- cache


@pytest.fixture
def tmp_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCOURSE_HOME", str(tmp_path))
    return tmp_path


def test_cache_miss_builds_hit_loads(tmp_home):
    calls = []

    def build():
        calls.append(1)
        return {"x": np.arange(12).reshape(3, 4), "y": np.array([1, 2, 3])}

    first, info1 = cache.cached("toy", 1, {"seed": 0}, build, quiet=True)
    second, info2 = cache.cached("toy", 1, {"seed": 0}, build, quiet=True)
    assert len(calls) == 1 and info1["built"] and not info2["built"]
    assert np.array_equal(first["x"], second["x"])
    assert info1["cache_file"].startswith(str(tmp_home))
    cache.cached("toy", 1, {"seed": 1}, build, quiet=True)
    cache.cached("toy", 2, {"seed": 0}, build, quiet=True)
    assert len(calls) == 3, "another seed or recipe version is another cache entry"


@pytest.mark.parametrize("damage", ["truncate", "flip", "swap"])
def test_corrupted_cache_is_detected_and_rebuilt(tmp_home, damage):
    def build():
        return {"x": np.arange(1000, dtype=np.int64)}

    _, info = cache.cached("toy", 1, {"seed": 0}, build, quiet=True)
    path = info["cache_file"]
    raw = bytearray(open(path, "rb").read())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "flip":
        mid = len(raw) // 3
        raw[mid : mid + 8] = bytes(b ^ 0xFF for b in raw[mid : mid + 8])
    if damage == "swap":  # a well-formed file with other content under the same name
        cache._write(cache.cache_path("toy", 1, {"seed": 0}), {"x": np.zeros(1000, np.int64)},
                     {"name": "toy", "version": 1, "params": {"seed": 0}, "digest": "0" * 64})
    else:
        open(path, "wb").write(bytes(raw))
    with pytest.warns(RuntimeWarning, match="corrupted"):
        arrays, info2 = cache.cached("toy", 1, {"seed": 0}, build, quiet=True)
    assert info2["built"]
    assert np.array_equal(arrays["x"], np.arange(1000))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, info3 = cache.cached("toy", 1, {"seed": 0}, build, quiet=True)
    assert not info3["built"], "the rebuilt file is used next time"


def test_built_dataset_cache_end_to_end(tmp_home, capsys):
    ds = datasets.load("letters", letters="AB", per_class=10, seed=0)
    assert ds.extra["built"] and "built letters" in capsys.readouterr().out
    again = datasets.load("letters", letters="AB", per_class=10, seed=0)
    assert not again.extra["built"] and capsys.readouterr().out == ""
    assert np.array_equal(ds.x_train, again.x_train)
    path = ds.extra["cache_file"]
    open(path, "wb").write(b"not a zip file")
    with pytest.warns(RuntimeWarning, match="corrupted"):
        rebuilt = datasets.load("letters", letters="AB", per_class=10, seed=0)
    assert rebuilt.extra["built"] and np.array_equal(rebuilt.x_train, ds.x_train)


# ----------------------------------------------------------------------------- registry


def test_names_and_info():
    expected = {"mnist", "digits", "mnist-m", "letters", "textures", "faces", "text",
                "spoken-digits", "mnist-full", "fashion-mnist", "cifar10"}
    assert set(datasets.names()) == expected
    assert set(datasets.names(offline_only=True)) == expected - {"mnist-full", "fashion-mnist", "cifar10"}
    for name in expected:
        meta = datasets.info(name)
        assert meta["source"] and meta["classes"] and meta["summary"]


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown dataset 'mnsit'.*mnist-m") as err:
        datasets.load("mnsit")
    assert all(n in str(err.value) for n in datasets.names())
    with pytest.raises(ValueError, match="valid names"):
        datasets.info("nope")


def test_unknown_option_lists_accepted_ones():
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['n_trian'\].*n_train"):
        datasets.load("mnist", n_trian=10)
    with pytest.raises(TypeError, match="accepts"):
        datasets.load("faces", size=28)


def test_missing_loader_module_is_named():
    entry = base.Entry("ghost", "tlcourse.datasets.no_such_module", "load_ghost", "s", "src",
                       ("a", "b"), (2, 2), 1, 1)
    base.register(entry)
    try:
        with pytest.raises(ModuleNotFoundError, match="tlcourse.datasets.no_such_module"):
            datasets.load("ghost")
    finally:
        del base.REGISTRY["ghost"]


def test_imageset_validates():
    x = np.zeros((4, 2, 2), np.float32)
    with pytest.raises(ValueError, match="lie in 0..1"):
        base.ImageSet("t", x, np.array([0, 1, 2, 0]), x, np.array([0, 1, 0, 1]), ["a", "b"], "s")
    with pytest.raises(ValueError, match="4 examples but y_train has 3"):
        base.ImageSet("t", x, np.array([0, 1, 0]), x, np.array([0, 1, 0, 1]), ["a", "b"], "s")
    with pytest.raises(TypeError, match="integer labels"):
        base.ImageSet("t", x, np.zeros(4), x, np.array([0, 1, 0, 1]), ["a", "b"], "s")
    ds = base.ImageSet("t", x, np.array([0, 1, 0, 1], np.int32), x, np.array([0, 1, 0, 1]), ["a", "b"], "s")
    assert ds.y_train.dtype == np.int64
    with pytest.raises(AttributeError):
        ds.name = "other"


def test_preview_draws_every_class(loaded):
    import matplotlib.pyplot as plt

    for key in ("mnist", "mnist-m", "textures", "faces"):
        fig = datasets.preview(loaded[key], n=20)
        titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
        assert len(titles) == min(20, len(loaded[key].x_train))
        assert set(titles) == set(loaded[key].classes)
        plt.close(fig)
    with pytest.raises(TypeError, match="ImageSet"):
        datasets.preview(np.zeros((3, 4, 4)))


# ----------------------------------------------------------------------------- hygiene


def test_importing_and_loading_imports_no_framework():
    code = (
        "import sys\n"
        "from tlcourse import datasets\n"
        "assert 'skimage' not in sys.modules and 'sklearn' not in sys.modules, 'import is lazy'\n"
        "for name in ('mnist', 'digits', 'mnist-m', 'letters', 'textures', 'faces', 'text'):\n"
        "    datasets.load(name)\n"
        "bad = [m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", ["mnist", "digits", "mnist-m", "letters", "textures", "faces", "text"])
def test_cached_load_is_fast(loaded, name):
    start = time.perf_counter()
    datasets.load(name)
    assert time.perf_counter() - start < 5.0
