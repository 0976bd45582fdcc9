"""EfficientNet-Lite0 with ImageNet weights in PyTorch: predictions, features, transfer helpers."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch")

import tlcourse  # noqa: E402
from tlcourse.models import efficientnet_torch as et  # noqa: E402
from tlcourse.models import efficientnet_weights, imagenet  # noqa: E402
from tlcourse.models.pth_format import read_state_dict  # noqa: E402


@pytest.fixture(scope="module")
def model():
    tlcourse.setup(0, framework="torch")
    return et.efficientnet_lite0()


@pytest.fixture(scope="module")
def photos():
    from skimage import data

    return {"chelsea": data.chelsea(), "coffee": data.coffee(), "rocket": data.rocket()}


def test_chelsea_is_a_cat(model, photos):
    top = et.predict(model, photos["chelsea"], k=3)
    assert {i for i, _, _ in top} == {281, 282, 285}  # tabby, tiger cat, Egyptian cat
    assert sum(p for _, _, p in top) > 0.8


def test_other_photos_get_sensible_classes(model, photos):
    tops = et.predict(model, [photos["coffee"], photos["rocket"]], k=5)
    coffee, rocket = ({i for i, _, _ in top} for top in tops)
    assert coffee >= {967, 968}  # espresso, cup
    assert tops[0][0][0] == 967 and tops[0][0][2] > 0.5
    assert rocket & {657, 744, 812}  # missile, projectile, space shuttle


def test_imagenet_normalization_is_worse_than_the_lite_one(model, photos):
    """The weights expect (x - 127) / 128: the usual ImageNet mean/std lowers confidence."""
    img = photos["coffee"][..., :3].astype(np.float32)
    lite = et.prepare(img / 255.0)
    std_norm = (imagenet.unprocess(lite[0], layout="NCHW").astype(np.float32) / 255.0 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    other = torch.from_numpy(std_norm.transpose(2, 0, 1)[None].astype(np.float32))
    with torch.no_grad():
        p_lite = torch.softmax(model(lite), 1)[0, 967]
        p_other = torch.softmax(model(other), 1)[0, 967]
    assert p_lite > p_other + 0.1


def test_prepare_gives_nchw_float32(photos):
    x = et.prepare([photos["chelsea"], photos["coffee"]])
    assert isinstance(x, torch.Tensor) and x.dtype == torch.float32
    assert tuple(x.shape) == (2, 3, 224, 224)
    assert -1.0 <= float(x.min()) and float(x.max()) <= 1.0


@pytest.mark.parametrize(
    ("x", "error", "words"),
    [
        (np.zeros((1, 3, 224, 224), np.float32), TypeError, "prepare("),
        (torch.zeros(1, 224, 224, 3), ValueError, "channels last"),
        (torch.zeros(3, 224, 224), ValueError, "(N, 3, H, W)"),
        (torch.zeros(1, 3, 224, 224, dtype=torch.uint8), TypeError, "float"),
    ],
)
def test_features_rejects_bad_input(model, x, error, words):
    with pytest.raises(error) as info:
        et.features(model, x)
    assert words in str(info.value)


def test_prepare_rejects_channels_first_images():
    with pytest.raises(ValueError, match="channels-first"):
        et.prepare(np.zeros((3, 100, 100), np.uint8))


def test_features_are_the_classifier_input(model, photos):
    x = et.prepare([photos["chelsea"], photos["rocket"]])
    with torch.no_grad():
        f = et.features(model, x)
        logits = model(x)
    assert tuple(f.shape) == (2, et.FEATURE_DIM)
    torch.testing.assert_close(model._fc(f), logits, atol=1e-4, rtol=1e-4)
    bank = et.extract_features(model, [photos["chelsea"], photos["rocket"]], batch_size=1)
    assert bank.shape == (2, 1280) and bank.dtype == np.float32
    np.testing.assert_allclose(bank, f.numpy(), atol=1e-5)
    np.testing.assert_allclose(et.extract_features(model, x, batch_size=1), f.numpy(), atol=1e-5)
    assert not model.training


def test_blocks_freeze_all_but_the_top_k():
    m = et.efficientnet_lite0()
    stages = et.blocks(m)
    assert len(stages) == 2 + et.NUM_BLOCKS
    assert stages[0][0] is m._conv_stem and stages[-1][0] is m._conv_head
    for stage in stages[:-2]:
        stage.requires_grad_(False)
    expected = sum(p.numel() for s in stages[-2:] for p in s.parameters()) + sum(p.numel() for p in m._fc.parameters())
    assert et.count_params(m, trainable=True) == expected < et.count_params(m) == 4_652_008
    m.train()
    m(torch.zeros(2, 3, 64, 64)).sum().backward()
    assert m._conv_stem.weight.grad is None and m._blocks[13]._project_conv.weight.grad is None
    assert m._blocks[15]._project_conv.weight.grad is not None and m._fc.weight.grad is not None


def test_replace_classifier_keeps_the_trunk():
    tlcourse.setup(1, framework="torch")
    m = et.efficientnet_lite0()
    stem = m._conv_stem.weight.clone()
    assert et.replace_classifier(m, 7) is m
    assert tuple(m(torch.zeros(2, 3, 64, 64)).shape) == (2, 7)
    torch.testing.assert_close(m._conv_stem.weight, stem)
    with pytest.raises(ValueError):
        et.replace_classifier(m, 0)


def test_pretrained_with_a_new_head_keeps_imagenet_trunk(model):
    m = et.efficientnet_lite0(num_classes=10)
    assert tuple(m._fc.weight.shape) == (10, 1280)
    torch.testing.assert_close(m._blocks[7]._depthwise_conv.weight, model._blocks[7]._depthwise_conv.weight)
    scratch = et.efficientnet_lite0(pretrained=False)
    assert not torch.equal(scratch._conv_stem.weight, model._conv_stem.weight)


def test_pure_numpy_reader_matches_torch_load(tmp_path):
    theirs = et.load_state_dict()
    ours = read_state_dict(efficientnet_weights.weights_path())
    assert list(ours) == list(theirs)
    for key, value in theirs.items():
        assert ours[key].dtype == value.numpy().dtype, key
        np.testing.assert_array_equal(ours[key], value.numpy(), err_msg=key)
    # the zip format of torch >= 1.6, with a non-contiguous view and a parameter
    state = {"t": torch.arange(12.0).reshape(3, 4).t(), "s": torch.arange(10)[2:7], "n": {"p": torch.nn.Parameter(torch.ones(2))}}
    torch.save(state, tmp_path / "zip.pth")
    back = read_state_dict(tmp_path / "zip.pth")
    np.testing.assert_array_equal(back["t"], state["t"].numpy())
    np.testing.assert_array_equal(back["s"], np.arange(2, 7))
    np.testing.assert_array_equal(back["n"]["p"], np.ones(2, np.float32))


def test_export_numpy_state_builds_the_keras_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCOURSE_HOME", str(tmp_path))
    path = et.export_numpy_state()
    assert path == efficientnet_weights.cache_file() and path.parent == tmp_path / "models"
    state = efficientnet_weights.numpy_state()  # read back from the cache
    reference = read_state_dict(efficientnet_weights.weights_path())
    assert list(state) == list(reference)
    np.testing.assert_array_equal(state["_fc.weight"], reference["_fc.weight"])
