"""The source-model zoo: recipes, cache keys, cache hits, misses, stale and corrupted caches.

Trained with PyTorch here (``test_zoo_tf.py`` covers Keras), on tiny recipes: one epoch
on a small synthetic stand-in for MNIST, in a temporary ``TLCOURSE_HOME``.
"""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest
import torch
from zoo_helpers import fake_load, same_state, tiny_zoo

from tlcourse.models import small_cnn_torch, zoo, zoo_torch


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A private cache, tiny recipes, fake data."""
    return tiny_zoo(monkeypatch, tmp_path)


def _state(model):
    return small_cnn_torch.export_state(model)


def test_names_and_errors():
    assert zoo.names() == ["mnist-cnn", "mnist-cnn-bn", "mnist-mlp"]
    with pytest.raises(ValueError, match="unknown zoo model 'resnet50'; valid names: mnist-cnn, mnist-cnn-bn, mnist-mlp"):
        zoo.pretrained("resnet50")
    with pytest.raises(ValueError, match="unknown framework 'jax'; valid names: torch, tf"):
        zoo.pretrained("mnist-cnn", framework="jax")
    with pytest.raises(TypeError, match="seed must be an int"):
        zoo.recipe("mnist-cnn", "torch", seed="0")


def test_cache_key_follows_the_recipe(monkeypatch):
    base = zoo.cache_key(zoo.recipe("mnist-cnn", "torch", 0))
    assert base == zoo.cache_key(dict(reversed(list(zoo.recipe("mnist-cnn", "torch", 0).items()))))
    others = {zoo.cache_key(zoo.recipe("mnist-cnn", "tf", 0)), zoo.cache_key(zoo.recipe("mnist-cnn", "torch", 1)),
              zoo.cache_key(zoo.recipe("mnist-cnn-bn", "torch", 0))}
    monkeypatch.setitem(zoo.RECIPES, "mnist-cnn", dataclasses.replace(zoo.RECIPES["mnist-cnn"], lr=2e-3))
    others.add(zoo.cache_key(zoo.recipe("mnist-cnn", "torch", 0)))
    monkeypatch.undo()
    monkeypatch.setattr(zoo, "RECIPE_VERSION", zoo.RECIPE_VERSION + 1)
    others.add(zoo.cache_key(zoo.recipe("mnist-cnn", "torch", 0)))
    assert base not in others and len(others) == 5


def test_miss_then_hit(home):
    assert zoo.cache_status("mnist-cnn", "torch") == "missing"
    first = zoo.pretrained("mnist-cnn", framework="torch", progress=False)
    assert isinstance(first, small_cnn_torch.SmallNet)
    assert not first.zoo_info.from_cache and not first.training
    weights, sidecar = zoo.cache_paths("mnist-cnn", "torch")
    meta = json.loads(sidecar.read_text())
    assert meta["sha256"] == zoo.file_sha256(weights) and meta["bytes"] == weights.stat().st_size
    assert meta["recipe"] == zoo.recipe("mnist-cnn", "torch") and meta["key"] == first.zoo_info.key
    ds = fake_load("mnist")
    from tlcourse import training_torch

    assert meta["test_acc"] == pytest.approx(training_torch.evaluate(first, ds.x_test, ds.y_test))
    assert zoo.cache_status("mnist-cnn", "torch") == "ok"

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = zoo_torch.pretrained("mnist-cnn", progress=False)
    assert second.zoo_info.from_cache and second.zoo_info.test_acc == meta["test_acc"]
    assert same_state(_state(first), _state(second))
    assert all(p.requires_grad for p in second.parameters())


def test_building_is_deterministic(home):
    first = _state(zoo_torch.pretrained("mnist-cnn-bn", progress=False))
    sha = json.loads(zoo.cache_paths("mnist-cnn-bn", "torch")[1].read_text())["sha256"]
    torch.manual_seed(999)  # the global RNG state must not matter
    np.random.seed(999)
    again = zoo_torch.pretrained("mnist-cnn-bn", rebuild=True, progress=False)
    assert not again.zoo_info.from_cache
    assert same_state(first, _state(again))
    assert json.loads(zoo.cache_paths("mnist-cnn-bn", "torch")[1].read_text())["sha256"] == sha
    other_seed = zoo_torch.pretrained("mnist-cnn-bn", seed=1, progress=False)
    assert not same_state(first, _state(other_seed))


def _flip_a_byte(weights, sidecar):
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))


def _truncate(weights, sidecar):
    weights.write_bytes(weights.read_bytes()[:1000])


def _garble_sidecar(weights, sidecar):
    sidecar.write_text("{not json")


def _drop_weights(weights, sidecar):
    weights.unlink()


def _drop_sidecar(weights, sidecar):
    sidecar.unlink()


def _rehash(weights, sidecar):
    meta = json.loads(sidecar.read_text())
    meta.update(sha256=zoo.file_sha256(weights), bytes=weights.stat().st_size)
    sidecar.write_text(json.dumps(meta))


def _foreign_arrays(weights, sidecar):
    """A valid npz of the wrong arrays, with a sidecar that vouches for it."""
    np.savez(weights, **{"head.weight": np.zeros((3, 3), np.float32)})
    _rehash(weights, sidecar)


def _not_an_npz(weights, sidecar):
    weights.write_bytes(b"this is not a zip file" * 50)
    _rehash(weights, sidecar)


DAMAGE = {
    "flipped byte": (_flip_a_byte, "SHA-256 does not match"),
    "truncated": (_truncate, "truncated"),
    "garbled sidecar": (_garble_sidecar, "unreadable sidecar"),
    "weights missing": (_drop_weights, "weights file is missing"),
    "sidecar missing": (_drop_sidecar, "no sidecar"),
    "foreign arrays": (_foreign_arrays, "do not fit the model"),
    "not an npz": (_not_an_npz, "unreadable weights"),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_corrupted_cache_is_rebuilt_with_a_warning(home, damage):
    clean = _state(zoo_torch.pretrained("mnist-mlp", progress=False))
    weights, sidecar = zoo.cache_paths("mnist-mlp", "torch")
    spoil, message = DAMAGE[damage]
    spoil(weights, sidecar)
    status = zoo.cache_status("mnist-mlp", "torch")
    assert status == "ok" if damage == "foreign arrays" else status.startswith("corrupted") and message in status
    with pytest.warns(zoo.CacheWarning, match=f"corrupted.*{message}.*rebuilding"):
        model = zoo_torch.pretrained("mnist-mlp", progress=False)
    assert not model.zoo_info.from_cache
    assert same_state(clean, _state(model))
    assert zoo.cache_status("mnist-mlp", "torch") == "ok"
    assert zoo_torch.pretrained("mnist-mlp", progress=False).zoo_info.from_cache


def test_a_stale_cache_is_rebuilt_with_a_warning(home, monkeypatch):
    old = zoo_torch.pretrained("mnist-cnn", progress=False)
    monkeypatch.setitem(zoo.RECIPES, "mnist-cnn", dataclasses.replace(zoo.RECIPES["mnist-cnn"], epochs=2))
    status = zoo.cache_status("mnist-cnn", "torch")
    assert status.startswith("stale") and "epochs" in status
    with pytest.warns(zoo.CacheWarning, match="stale: the recipe changed.*rebuilding"):
        new = zoo_torch.pretrained("mnist-cnn", progress=False)
    assert not new.zoo_info.from_cache and new.zoo_info.key != old.zoo_info.key
    meta = json.loads(zoo.cache_paths("mnist-cnn", "torch")[1].read_text())
    assert meta["recipe"]["epochs"] == 2
    assert not same_state(_state(old), _state(new))
    monkeypatch.setattr(zoo, "RECIPE_VERSION", zoo.RECIPE_VERSION + 1)
    with pytest.warns(zoo.CacheWarning, match="stale.*recipe_version"):
        zoo_torch.pretrained("mnist-cnn", progress=False)


def test_progress_message_on_first_build_only(home, capsys):
    zoo_torch.pretrained("mnist-mlp", progress=True)
    assert "Training the source model 'mnist-mlp'" in capsys.readouterr().out
    zoo_torch.pretrained("mnist-mlp", progress=True)
    assert capsys.readouterr().out == ""


def test_with_the_real_mnist(tmp_path, monkeypatch):
    """The recipe's data options reach ``tlcourse.datasets.load`` (a small real split)."""
    monkeypatch.setenv("TLCOURSE_HOME", str(tmp_path))
    options = {"seed": 0, "n_train": 300, "n_test": 100}
    monkeypatch.setitem(zoo.RECIPES, "mnist-cnn",
                        dataclasses.replace(zoo.RECIPES["mnist-cnn"], epochs=2, data_options=options))
    model = zoo_torch.pretrained("mnist-cnn", progress=False)
    meta = json.loads(zoo.cache_paths("mnist-cnn", "torch")[1].read_text())
    assert (meta["n_train"], meta["n_test"]) == (300, 100)
    assert model.zoo_info.test_acc > 0.5  # ten classes: chance is 0.1
