"""Weight transfer between PyTorch and Keras (``tlcourse.models.convert``).

Keras runs in this process; the PyTorch side runs in a subprocess (a module never imports
both frameworks). The subprocess builds PyTorch models, reports their weights, counts and
logits, and loads the Keras models' weights converted to PyTorch layout.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tlcourse import training_tf as tk
from tlcourse.models import architectures, convert
from tlcourse.models import small_cnn_tf as sc

CONFIGS = {
    "cnn": dict(arch="cnn"),
    "cnn-bn": dict(arch="cnn", batch_norm=True),
    "cnn-rgb-half": dict(arch="cnn", in_channels=3, num_classes=4, width=0.5),
    "mlp-rgb-bn": dict(arch="mlp", in_channels=3, batch_norm=True),
}
TOLERANCE = 1e-4

TORCH_SIDE = """
import json, sys
import numpy as np, torch
from tlcourse import training_torch as tt
from tlcourse.models import architectures, small_cnn_torch as sc

configs, given = json.loads(sys.argv[1]), np.load(sys.argv[2])
out = {}
for name, config in configs.items():
    model = sc.build(architectures.spec(**config), seed=1)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # BatchNorm away from its initial state, so that it matters
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=gen) - 0.5)
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=gen) - 0.5)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
    x = given[name + "|x"]
    out[name + "|count"] = np.array(sc.count_params(model))
    out[name + "|logits"] = tt.predict(model, x)
    for key, value in sc.export_state(model).items():
        out[name + "|state|" + key] = value
    prefix = name + "|from_keras|"
    other = sc.build(architectures.spec(**config), seed=2)
    sc.import_state(other, {k[len(prefix):]: given[k] for k in given.files if k.startswith(prefix)})
    out[name + "|logits_from_keras"] = tt.predict(other, x)
np.savez(sys.argv[3], **out)
"""


def _keras_model(config):
    model = sc.build(architectures.spec(**config), seed=3)
    rng = np.random.default_rng(1)
    for layer in model.layers:
        for sub in getattr(layer, "layers", []):
            if sub.name == "bn":
                for weight, low in (("gamma", 0.5), ("beta", -0.5), ("moving_mean", -0.5), ("moving_variance", 0.5)):
                    var = getattr(sub, weight)
                    var.assign(rng.random(var.shape).astype(np.float32) + low)
    return model


@pytest.fixture(scope="module")
def sides(tmp_path_factory):
    """Keras models and inputs here; the PyTorch results from a subprocess."""
    tmp = tmp_path_factory.mktemp("convert")
    given, keras_models = {}, {}
    for name, config in CONFIGS.items():
        arch_spec = architectures.spec(**config)
        x = np.random.default_rng(0).random((8, *arch_spec.input_shape), dtype=np.float32)
        given[f"{name}|x"] = x
        keras_models[name] = model = _keras_model(config)
        for key, value in convert.keras_to_torch(sc.export_state(model), arch_spec).items():
            given[f"{name}|from_keras|{key}"] = value
    np.savez(tmp / "given.npz", **given)
    subprocess.run([sys.executable, "-c", TORCH_SIDE, json.dumps(CONFIGS), str(tmp / "given.npz"),
                    str(tmp / "torch.npz")], check=True)
    with np.load(tmp / "torch.npz") as data:
        torch_side = {k: data[k] for k in data.files}
    return given, keras_models, torch_side


def _torch_state(torch_side, name):
    prefix = f"{name}|state|"
    return {k[len(prefix):]: v for k, v in torch_side.items() if k.startswith(prefix)}


@pytest.mark.parametrize("name", CONFIGS)
def test_torch_weights_in_keras_give_the_same_logits(sides, name):
    given, _, torch_side = sides
    arch_spec = architectures.spec(**CONFIGS[name])
    model = sc.build(arch_spec, seed=9)
    sc.import_state(model, convert.torch_to_keras(_torch_state(torch_side, name), arch_spec))
    logits = tk.predict(model, given[f"{name}|x"])
    assert np.abs(logits - torch_side[f"{name}|logits"]).max() < TOLERANCE
    assert np.abs(torch_side[f"{name}|logits"]).max() > 0.1  # not trivially zero


@pytest.mark.parametrize("name", CONFIGS)
def test_keras_weights_in_torch_give_the_same_logits(sides, name):
    given, keras_models, torch_side = sides
    logits = tk.predict(keras_models[name], given[f"{name}|x"])
    assert np.abs(logits - torch_side[f"{name}|logits_from_keras"]).max() < TOLERANCE


@pytest.mark.parametrize("name", CONFIGS)
def test_parameter_counts_and_names_match_across_frameworks(sides, name):
    _, keras_models, torch_side = sides
    arch_spec = architectures.spec(**CONFIGS[name])
    assert int(torch_side[f"{name}|count"]) == sc.count_params(keras_models[name]) == arch_spec.param_count()
    pairs = convert.key_pairs(arch_spec)
    assert sorted(_torch_state(torch_side, name)) == sorted(t for t, _, _, _ in pairs)
    assert sorted(sc.export_state(keras_models[name])) == sorted(k for _, k, _, _ in pairs)


def test_forgetting_the_flatten_order_breaks_the_model(sides):
    """Transposing the first dense layer without reordering its inputs loads fine and is wrong."""
    given, _, torch_side = sides
    arch_spec = architectures.spec("cnn")
    torch_state = _torch_state(torch_side, "cnn")
    keras_state = convert.torch_to_keras(torch_state, arch_spec)
    keras_state["fc1/dense/kernel"] = torch_state["features.fc1.dense.weight"].T
    model = sc.import_state(sc.build(arch_spec), keras_state)
    assert np.abs(tk.predict(model, given["cnn|x"]) - torch_side["cnn|logits"]).max() > 0.1


def test_round_trips_are_exact():
    rng = np.random.default_rng(0)
    for config in CONFIGS.values():
        arch_spec = architectures.spec(**config)
        keras_state = sc.export_state(_keras_model(config))
        back = convert.torch_to_keras(convert.keras_to_torch(keras_state, arch_spec), arch_spec)
        assert all(np.array_equal(keras_state[k], back[k]) for k in keras_state)
    w = rng.random((5, 4, 3, 3))
    assert np.array_equal(convert.conv_to_torch(convert.conv_to_keras(w)), w)
    assert convert.conv_to_keras(w).shape == (3, 3, 4, 5)


def test_flatten_order_formula():
    """y = W · flatten_NCHW(f) equals flatten_NHWC(f) · K for K = dense_to_keras(W, (C, H, W))."""
    rng = np.random.default_rng(0)
    fmap = rng.random((3, 4, 5))  # (C, H, W)
    w = rng.random((7, 60))
    k = convert.dense_to_keras(w, flatten_from=(3, 4, 5))
    np.testing.assert_allclose(w @ fmap.reshape(-1), fmap.transpose(1, 2, 0).reshape(-1) @ k)
    assert np.array_equal(convert.dense_to_torch(k, flatten_from=(3, 4, 5)), w)
    assert np.array_equal(convert.dense_to_keras(w), w.T)


def test_conversion_errors():
    arch_spec = architectures.spec("cnn")
    state = {t: np.zeros(1) for t, _, _, _ in convert.key_pairs(arch_spec)}
    del state["head.bias"]
    with pytest.raises(ValueError, match=r"torch-layout.*missing \['head.bias'\]"):
        convert.torch_to_keras(state, arch_spec)
    with pytest.raises(ValueError, match="keras-layout"):
        convert.keras_to_torch({"conv1.conv.weight": np.zeros(1)}, arch_spec)
    with pytest.raises(ValueError, match=r"conv weight \(out, in, kh, kw\)"):
        convert.conv_to_keras(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="holds 60 units but the layer has 61 inputs"):
        convert.dense_to_keras(np.zeros((2, 61)), flatten_from=(3, 4, 5))


def test_framework_neutral_modules_import_no_framework():
    code = ("import sys\n"
            "import tlcourse.training, tlcourse.models.architectures, tlcourse.models.convert, tlcourse.models.zoo\n"
            "bad = [m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)
