"""Framework-neutral ImageNet helpers: preprocessing, class names, decoding, the .pth reader."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from tlcourse.models import imagenet
from tlcourse.models.efficientnet_weights import (
    WEIGHTS_SHA256,
    cache_file,
    numpy_state,
    sha256,
    weights_path,
)
from tlcourse.models.pth_format import LEGACY_MAGIC, PthFormatError, read_state_dict

# --------------------------------------------------------------------------- class names


def test_class_names_are_the_imagenet_1k_list_in_index_order():
    names, full, ids = imagenet.class_names(), imagenet.class_names(full=True), imagenet.wnids()
    assert len(names) == len(full) == len(ids) == 1000
    assert ids == sorted(ids) and len(set(ids)) == 1000
    assert (names[0], names[281], names[282], names[285]) == ("tench", "tabby", "tiger cat", "Egyptian cat")
    assert (names[504], names[967], names[999]) == ("coffee mug", "espresso", "toilet tissue")
    assert full[281] == "tabby, tabby cat" and ids[281] == "n02123045"


# --------------------------------------------------------------------------- preprocess


def test_preprocess_shapes_dtype_and_normalization():
    img = np.full((300, 400, 3), 255, np.uint8)
    x = imagenet.preprocess(img)
    assert x.shape == (1, 224, 224, 3) and x.dtype == np.float32
    np.testing.assert_allclose(x, (255 - 127) / 128)
    assert np.allclose(imagenet.preprocess(np.full((50, 60, 3), 127, np.uint8)), 0.0)
    batch = np.zeros((5, 64, 80, 3), np.uint8)
    assert imagenet.preprocess(batch, size=32).shape == (5, 32, 32, 3)
    nchw = imagenet.preprocess(batch, size=32, layout="NCHW")
    assert nchw.shape == (5, 3, 32, 32)


def test_preprocess_crops_the_centre_before_resizing():
    # 256 × 256 image, a 16-pixel white frame around black: crop 0.875 keeps exactly the black
    img = np.full((256, 256, 3), 255, np.uint8)
    img[16:240, 16:240] = 0
    x = imagenet.preprocess(img)
    np.testing.assert_allclose(x, -127 / 128)
    whole = imagenet.preprocess(img, crop=1.0)
    assert whole.max() > 0.5  # the frame is kept without cropping


def test_preprocess_accepts_grey_rgba_float_and_lists_of_sizes():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    np.testing.assert_allclose(imagenet.preprocess(rgb / 255.0), imagenet.preprocess(rgb), atol=1e-5)
    rgba = np.concatenate([rgb, np.zeros((90, 120, 1), np.uint8)], axis=2)
    np.testing.assert_array_equal(imagenet.preprocess(rgba), imagenet.preprocess(rgb))
    grey = rgb[..., 0]
    g = imagenet.preprocess(grey)
    np.testing.assert_array_equal(g[..., 0], g[..., 2])
    np.testing.assert_array_equal(imagenet.preprocess(grey[..., None]), g)
    mixed = imagenet.preprocess([rgb, grey, rgb[:40, :70]])
    assert mixed.shape == (3, 224, 224, 3)
    np.testing.assert_array_equal(mixed[0], imagenet.preprocess(rgb)[0])


@pytest.mark.parametrize(
    ("images", "error", "words"),
    [
        (np.zeros((3, 50, 60), np.uint8), ValueError, "channels-first"),
        (np.zeros((2, 3, 50, 60), np.uint8), ValueError, "channels-first"),
        (np.zeros((50, 60, 7), np.uint8), ValueError, "(H, W, 3)"),
        (np.zeros((1, 2, 50, 60, 3), np.uint8), ValueError, "(N, H, W, 3)"),
        (np.full((50, 60, 3), 200.0), ValueError, "[0, 1]"),
        (np.full((50, 60, 3), -5, np.int16), ValueError, "0..255"),
        (np.full((50, 60, 3), np.nan), ValueError, "NaN"),
        (np.zeros((50, 60, 3), bool), TypeError, "boolean"),
        ("chelsea.png", TypeError, "NumPy array"),
        ([], ValueError, "at least one image"),
    ],
)
def test_preprocess_rejects_bad_input_with_a_plain_message(images, error, words):
    with pytest.raises(error, match=None) as info:
        imagenet.preprocess(images)
    assert words in str(info.value)


def test_preprocess_checks_its_options():
    img = np.zeros((10, 10, 3), np.uint8)
    for kwargs in ({"layout": "CHW"}, {"crop": 0.0}, {"crop": 1.5}, {"size": 4}):
        with pytest.raises(ValueError):
            imagenet.preprocess(img, **kwargs)


def test_unprocess_inverts_preprocess():
    img = np.random.default_rng(1).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    np.testing.assert_array_equal(imagenet.unprocess(imagenet.preprocess(img, crop=1.0))[0], img)
    nchw = imagenet.preprocess(img, crop=1.0, layout="NCHW")
    np.testing.assert_array_equal(imagenet.unprocess(nchw, layout="NCHW")[0], img)


# --------------------------------------------------------------------------- decode


def test_decode_gives_sorted_softmax_probabilities():
    z = np.zeros(1000)
    z[[285, 282, 281]] = [5.0, 4.0, 3.0]
    top = imagenet.decode(z, k=3)
    assert [i for i, _, _ in top] == [285, 282, 281]
    assert [n for _, n, _ in top] == ["Egyptian cat", "tiger cat", "tabby"]
    denom = np.exp(5) + np.exp(4) + np.exp(3) + 997
    assert top[0][2] == pytest.approx(np.exp(5) / denom)
    batch = imagenet.decode(np.stack([z, -z]), k=2)
    assert len(batch) == 2 and batch[0][0][0] == 285
    assert imagenet.decode(z[None], k=1) == imagenet.decode(z, k=1)  # a batch of one: one list
    assert imagenet.decode(np.array([0.0, 2.0]), k=1, names=["no", "yes"])[0][:2] == (1, "yes")


def test_decode_rejects_bad_input():
    with pytest.raises(ValueError, match="names"):
        imagenet.decode(np.zeros(10))
    with pytest.raises(ValueError, match="k must"):
        imagenet.decode(np.zeros(1000), k=0)
    with pytest.raises(ValueError, match="shape"):
        imagenet.decode(np.zeros((2, 2, 1000)))


# --------------------------------------------------------------------------- .pth reader


def test_pth_reader_reads_the_bundled_weights_without_torch():
    code = (
        "import sys\n"
        "from tlcourse.models.pth_format import read_state_dict\n"
        "from tlcourse.models.efficientnet_weights import weights_path\n"
        "import tlcourse.models.imagenet\n"
        "s = read_state_dict(weights_path())\n"
        "assert len(s) == 296, len(s)\n"
        "assert s['_conv_stem.weight'].shape == (32, 3, 3, 3)\n"
        "assert s['_blocks.15._depthwise_conv.weight'].shape == (1152, 1, 3, 3)\n"
        "assert s['_fc.weight'].shape == (1000, 1280) and str(s['_fc.weight'].dtype) == 'float32'\n"
        "assert (s['_bn1.running_var'] >= 0).all()\n"
        "bad = [m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_bundled_weights_are_the_expected_file():
    assert sha256(weights_path()) == WEIGHTS_SHA256


def test_numpy_state_is_cached_and_a_damaged_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCOURSE_HOME", str(tmp_path))
    target = cache_file()
    assert target.parent == tmp_path / "models" and not target.exists()
    state = numpy_state()
    assert len(state) == 296 and target.is_file()
    target.write_bytes(b"garbage")
    again = numpy_state()
    np.testing.assert_array_equal(again["_fc.bias"], state["_fc.bias"])
    with np.load(target) as data:
        assert len(data.files) == 296


def test_pth_reader_refuses_code_in_the_pickle(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        for obj in (LEGACY_MAGIC, 1001, {"little_endian": True}, {"w": Evil()}, []):
            pickle.dump(obj, f, protocol=2)
    with pytest.raises(PthFormatError, match="refusing"):
        read_state_dict(path)


def test_pth_reader_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_state_dict(tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a pickle at all")
    with pytest.raises(PthFormatError):
        read_state_dict(junk)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(weights_path().read_bytes()[:100_000])
    with pytest.raises(PthFormatError, match="truncated"):
        read_state_dict(truncated)
