"""A small labelled text corpus written for the course (CC0).

``tlcourse/data/text_corpus.csv`` (columns ``text,label``) holds 350 short English
sentences, 70 on each of five topics — sports, cooking, weather, technology, music —
written by hand for tlcourse and released under CC0. They vary in wording and length
and share everyday words across topics (times, places, people), so a bag-of-words model
trained on one to five sentences per topic is far from perfect — few test sentences
share a content word with so few training sentences — while a pretrained sentence
encoder has room to help.

``x_train``/``x_test`` are NumPy arrays of ``str``; labels index :data:`TOPICS`.

>>> ds = load_text(seed=0)           # doctest: +SKIP
>>> ds.x_train[0], ds.classes[ds.y_train[0]]  # doctest: +SKIP
('Rinse the rice until the water runs clear.', 'cooking')
"""

from __future__ import annotations

import csv
from importlib import resources

import numpy as np

from tlcourse.datasets.base import ImageSet, get_entry, make_imageset
from tlcourse.datasets.sampling import stratified_split

CORPUS_FILE = "text_corpus.csv"


def read_corpus() -> tuple[np.ndarray, np.ndarray]:
    """All sentences (array of str) and their labels (int64 indices into the topics)."""
    topics = list(get_entry("text").classes)
    path = resources.files("tlcourse") / "data" / CORPUS_FILE
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames != ["text", "label"]:
            raise ValueError(f"{CORPUS_FILE}: expected the columns text,label, got {reader.fieldnames}")
        rows = list(reader)
    unknown = sorted({r["label"] for r in rows} - set(topics))
    if unknown:
        raise ValueError(f"{CORPUS_FILE}: unknown labels {unknown}; topics are {topics}")
    texts = np.array([r["text"] for r in rows], dtype=str)
    labels = np.array([topics.index(r["label"]) for r in rows], dtype=np.int64)
    return texts, labels


def load_text(seed: int = 0, n_test: int = 100, n_train: int | None = None) -> ImageSet:
    """The corpus with a stratified, seed-shuffled split (``n_test`` test sentences)."""
    texts, labels = read_corpus()
    train, test = stratified_split(labels, n_test=n_test, n_train=n_train, seed=seed)
    return make_imageset("text", texts, labels, train, test, extra={"seed": seed})
