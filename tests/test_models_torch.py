"""The small PyTorch networks and the PyTorch training loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from model_helpers import CONFIGS, FROZEN_CONV_BN, config_id, random_images, separable_task
from torch import nn

from tlcourse import training_torch as tt
from tlcourse.models import architectures
from tlcourse.models import small_cnn_torch as sc


def _params(model):
    return {k: v.detach().clone() for k, v in model.named_parameters()}


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_parameter_count_matches_the_spec(config):
    arch_spec = architectures.spec(**config)
    model = sc.build(arch_spec, seed=0)
    assert sc.count_params(model) == arch_spec.param_count()
    buffers = sum(b.numel() for name, b in model.named_buffers() if not name.endswith("num_batches_tracked"))
    assert buffers == arch_spec.state_count()
    assert sc.block_names(model) == arch_spec.block_names


def test_known_sizes_and_shapes():
    model = sc.small_cnn(seed=0)
    assert sc.count_params(model) == 105_866
    assert sc.count_params(sc.mlp(seed=0)) == 109_386
    assert sc.block_names(model) == ["conv1", "conv2", "fc1", "head"]
    x = torch.zeros(3, 1, 28, 28)
    assert model(x).shape == (3, 10)
    assert sc.feature_extractor(model)(x).shape == (3, 64)
    assert sc.small_cnn(in_channels=3, image_size=32, seed=0)(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_same_seed_same_weights_and_global_rng_untouched():
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a, b, c = sc.small_cnn(seed=7), sc.small_cnn(seed=7), sc.small_cnn(seed=8)
    assert torch.rand(1) == expected_next  # building with a seed leaves the global RNG alone
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k])
    assert not torch.equal(a.features.conv1.conv.weight, c.features.conv1.conv.weight)
    torch.manual_seed(1)
    d = sc.small_cnn()
    torch.manual_seed(1)
    assert torch.equal(d.head.weight, sc.small_cnn().head.weight)


def test_he_uniform_initialisation():
    model = sc.small_cnn(seed=0)
    for block in model.spec.blocks:
        layer = model.head if block.name == "head" else getattr(getattr(model.features, block.name), block.op)
        bound = architectures.init_bound(block)
        assert layer.weight.abs().max() <= bound
        assert layer.weight.abs().max() > 0.9 * bound
        assert torch.all(layer.bias == 0)


def test_replace_head_keeps_the_features():
    model = sc.small_cnn(seed=0)
    conv1 = model.features.conv1.conv.weight
    out = sc.replace_head(model, 4, seed=1)
    assert out is model and model.spec.num_classes == 4
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 4)
    assert model.features.conv1.conv.weight is conv1
    assert sc.count_params(model) == architectures.spec("cnn", num_classes=4).param_count()
    again = sc.replace_head(sc.small_cnn(seed=0), 4, seed=1)
    assert torch.equal(again.head.weight, model.head.weight)


def test_blocks_are_ordered_and_freezable():
    model = sc.small_cnn(batch_norm=True, seed=0)
    assert list(sc.blocks(model)) == ["conv1", "conv2", "fc1", "head"]
    assert [n for n, _ in model.blocks["conv1"].named_children()] == ["conv", "bn", "relu", "pool"]
    for name in sc.block_names(model)[:2]:
        model.blocks[name].requires_grad_(False)
    assert sc.count_params(model, trainable=False) == FROZEN_CONV_BN
    assert sc.count_params(model, trainable=True) == sc.count_params(model) - FROZEN_CONV_BN


@pytest.mark.parametrize("n_frozen", [1, 2, 3])
def test_fit_leaves_exactly_the_frozen_blocks_unchanged(n_frozen):
    model = sc.small_cnn(seed=0)
    names = sc.block_names(model)
    for name in names[:n_frozen]:
        model.blocks[name].requires_grad_(False)
    before = _params(model)
    x, y = random_images()
    tt.fit(model, x, y, epochs=1, batch_size=32, seed=0, progress=False)
    after = _params(model)
    for key in before:
        block = key.split(".")[1] if key.startswith("features.") else "head"
        if names.index(block) < n_frozen:
            assert torch.equal(before[key], after[key]), key
        else:
            assert not torch.equal(before[key], after[key]), key


def test_frozen_parameters_stay_put_with_an_optimizer_over_all_parameters():
    model = sc.small_cnn(seed=0)
    x, y = random_images()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)
    tt.fit(model, x, y, epochs=1, optimizer=opt, seed=0, progress=False)  # leaves momentum behind
    model.features.conv1.conv.weight.grad = torch.ones_like(model.features.conv1.conv.weight)  # a stale gradient
    model.features.requires_grad_(False)
    before = _params(model)
    tt.fit(model, x, y, epochs=1, optimizer=opt, seed=0, progress=False)
    after = _params(model)
    for key in before:
        assert torch.equal(before[key], after[key]) == key.startswith("features."), key


def test_batchnorm_statistics_follow_the_train_mode():
    x, y = random_images()
    model = sc.small_cnn(batch_norm=True, seed=0)
    model.features.requires_grad_(False)
    stats = model.features.conv1.bn.running_mean.clone()
    tt.fit(model, x, y, epochs=1, seed=0, progress=False)
    # the PyTorch pitfall: frozen parameters, yet train() mode updates the running statistics
    assert not torch.equal(stats, model.features.conv1.bn.running_mean)

    model = sc.small_cnn(batch_norm=True, seed=0)
    model.features.requires_grad_(False)
    model.train()
    model.features.eval()
    stats = model.features.conv1.bn.running_mean.clone()
    tt.fit(model, x, y, epochs=1, seed=0, keep_modes=True, progress=False)
    assert torch.equal(stats, model.features.conv1.bn.running_mean)
    assert model.training and not model.features.training  # the caller's modes survive


def test_batchnorm_momentum_and_epsilon_are_shared_with_keras():
    """running ← 0.9 · running + 0.1 · batch mean (Keras: momentum=0.9), ε = 1e-5."""
    model = sc.small_cnn(batch_norm=True, seed=0).train()
    x = tt.to_tensor(random_images(16)[0])
    with torch.no_grad():
        batch_mean = model.features.conv1.conv(x).mean(dim=(0, 2, 3))
        model(x)
    torch.testing.assert_close(model.features.conv1.bn.running_mean, 0.1 * batch_mean)
    assert model.features.conv1.bn.eps == architectures.BN_EPSILON == 1e-5


def test_fit_restores_modes_and_evaluate_uses_eval_mode():
    model = sc.small_cnn(batch_norm=True, seed=0).eval()
    x, y = random_images()
    tt.fit(model, x, y, epochs=1, seed=0, progress=False)
    assert not any(m.training for m in model.modules())
    model.train()
    before = model.features.conv1.bn.running_mean.clone()
    tt.evaluate(model, x, y)
    tt.features(model, x)
    assert model.training and torch.equal(before, model.features.conv1.bn.running_mean)


def test_fit_is_deterministic_and_reports_history():
    x, y = random_images()
    runs = []
    for _ in range(2):
        model = sc.small_cnn(seed=3)
        history = tt.fit(model, x, y, epochs=2, seed=5, val=(x[:20], y[:20]), progress=False)
        runs.append((model, history))
    (a, ha), (b, hb) = runs
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    assert ha["loss"] == hb["loss"] and ha["val_acc"] == hb["val_acc"]
    assert set(ha) == {"loss", "acc", "val_loss", "val_acc", "seconds"}
    assert all(len(v) == 2 for v in ha.values())
    assert ha["val_acc"][-1] == pytest.approx(tt.evaluate(a, x[:20], y[:20]))
    c = sc.small_cnn(seed=3)
    tt.fit(c, x, y, epochs=2, seed=6, progress=False)
    assert not torch.equal(c.head.weight, a.head.weight)  # the seed picks the batch order


def test_fit_learns_a_separable_task():
    x, y = separable_task()
    model = sc.small_cnn(num_classes=2, seed=0)
    history = tt.fit(model, x, y, epochs=3, seed=0, progress=False)
    assert history["loss"][-1] < history["loss"][0]
    assert tt.evaluate(model, x, y) == 1.0


def test_loss_functions_with_and_without_the_model():
    x, y = random_images(32)
    seen = []

    def l2_loss(logits, target, model):
        seen.append(model)
        penalty = sum((p**2).sum() for p in model.head.parameters())
        return nn.functional.cross_entropy(logits, target) + 0.01 * penalty

    model = sc.small_cnn(seed=0)
    tt.fit(model, x, y, epochs=1, loss_fn=l2_loss, seed=0, progress=False)
    assert seen and all(m is model for m in seen)
    history = tt.fit(model, x, y, epochs=1, loss_fn=nn.CrossEntropyLoss(label_smoothing=0.1), seed=0, progress=False)
    assert np.isfinite(history["loss"][0])
    per_example = tt.fit(sc.small_cnn(seed=0), x, y, epochs=1, seed=0, progress=False,
                         loss_fn=nn.CrossEntropyLoss(reduction="none"))  # averaged like the default
    default = tt.fit(sc.small_cnn(seed=0), x, y, epochs=1, seed=0, progress=False)
    assert per_example["loss"] == pytest.approx(default["loss"])


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_weight_decay_is_decoupled(optimizer):
    """With zero gradients only the decay acts: w_k = (1 − lr·λ)^k w_0 (as in Keras)."""
    model = sc.small_cnn(seed=0)
    before = _params(model)
    x, y = random_images(64)
    tt.fit(model, x, y, epochs=1, batch_size=32, lr=0.1, weight_decay=0.5, optimizer=optimizer,
           loss_fn=lambda logits, target: 0.0 * logits.sum(), seed=0, progress=False)
    for key, value in _params(model).items():
        torch.testing.assert_close(value, before[key] * (1 - 0.1 * 0.5) ** 2)


def test_export_import_round_trip():
    a, b = sc.small_cnn(batch_norm=True, seed=0), sc.small_cnn(batch_norm=True, seed=1)
    a.features.conv1.bn.running_var.fill_(2.0)
    state = sc.export_state(a)
    assert all(isinstance(v, np.ndarray) for v in state.values())
    assert not any(k.endswith("num_batches_tracked") for k in state)
    sc.import_state(b, state)
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(a.eval()(x), b.eval()(x))
    with pytest.raises(ValueError, match="missing"):
        sc.import_state(b, {k: v for k, v in state.items() if k != "head.bias"})
    with pytest.raises(ValueError, match="shapes differ.*head.weight"):
        sc.import_state(b, {**state, "head.weight": np.zeros((3, 64), np.float32)})


def test_predict_and_features_shapes():
    model = sc.small_cnn(in_channels=3, num_classes=5, seed=0)
    x, _ = random_images(10, channels=3)
    assert tt.predict(model, x, batch_size=3).shape == (10, 5)
    assert tt.features(model, x).shape == (10, 64)
    pooled = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    assert tt.features(pooled, x).shape == (10, 3)  # any module works as an extractor
    head = nn.Linear(64, 5)
    tt.fit(head, tt.features(model, x), np.arange(10) % 5, epochs=1, progress=False)  # features (N, D) train too


def test_to_tensor_layouts_and_errors():
    assert tt.to_tensor(np.zeros((2, 28, 28), np.float32)).shape == (2, 1, 28, 28)
    assert tt.to_tensor(np.zeros((2, 28, 28, 1), np.float64)).dtype == torch.float32
    assert tt.to_tensor(np.zeros((2, 64), np.float32)).shape == (2, 64)
    assert tt.to_tensor(torch.zeros(2, 3, 8, 8)).shape == (2, 3, 8, 8)
    x = np.random.default_rng(0).random((2, 5, 6, 3), dtype=np.float32)
    assert torch.equal(tt.to_tensor(x)[1, 2, 3], torch.from_numpy(x[1, 3, :, 2]))
    with pytest.raises(ValueError, match="channels-last"):
        tt.to_tensor(np.zeros((2, 3, 28, 28), np.float32))
    with pytest.raises(TypeError, match="255"):
        tt.to_tensor(np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(ValueError, match=r"x\[None\]"):
        tt.to_tensor(np.zeros(28, np.float32))


def test_bad_input_errors():
    model = sc.small_cnn(seed=0)
    with pytest.raises(ValueError, match="channels-last.*to_tensor"):
        model(torch.zeros(2, 28, 28, 1))
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        model(torch.zeros(2, 3, 28, 28))
    x, y = random_images(10)
    with pytest.raises(ValueError, match="label 12 .* 10 outputs.*replace the head"):
        tt.fit(model, x, y + 3, epochs=1, progress=False)
    with pytest.raises(ValueError, match="10 examples but y has 9"):
        tt.fit(model, x, y[:9], epochs=1, progress=False)
    with pytest.raises(ValueError, match="adam, sgd"):
        tt.fit(model, x, y, epochs=1, optimizer="rmsprop", progress=False)
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        tt.fit(model, x, y, epochs=0, progress=False)
    with pytest.raises(TypeError, match=r"val must be a pair \(x_val, y_val\)"):
        tt.fit(model, x, y, epochs=1, val=x, progress=False)
    with pytest.raises(ValueError, match="set weight decay on the optimizer"):
        tt.fit(model, x, y, epochs=1, optimizer=torch.optim.Adam(model.parameters()), weight_decay=0.1)
    model.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        tt.fit(model, x, y, epochs=1, progress=False)
    with pytest.raises(ValueError, match="unknown architecture 'resnet'; valid names: cnn, mlp"):
        architectures.spec("resnet")
    with pytest.raises(ValueError, match="in_channels must be 1"):
        sc.small_cnn(in_channels=2)
    with pytest.raises(TypeError, match="SmallNet"):
        sc.block_names(nn.Linear(2, 2))
