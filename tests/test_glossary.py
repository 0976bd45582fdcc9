"""The glossary: unique terms, every entry placed in a notebook of the course map, lookups both ways."""

import doctest
import re
from pathlib import Path

import pytest

from tlcourse import evaluation, glossary

ROOT = Path(__file__).resolve().parents[1]


def test_terms_are_unique_and_complete():
    en = [t.en.lower() for t in glossary.TERMS]
    zh = [t.zh for t in glossary.TERMS]
    assert len(set(en)) == len(en) and len(set(zh)) == len(zh)
    for t in glossary.TERMS:
        assert t.meaning and re.fullmatch(r"\d\d", t.notebook), t
        assert re.search(r"[\u4e00-\u9fff]", t.zh), f"{t.en}: no Chinese characters in {t.zh!r}"


def test_every_term_points_to_a_row_of_the_course_map():
    welcome = (ROOT / "notebooks" / "00_welcome.ipynb").read_text(encoding="utf-8")
    rows = set(re.findall(r"\| (\d\d) \|", welcome))
    missing = {t.en: t.notebook for t in glossary.TERMS if t.notebook not in rows}
    assert not missing, missing


def test_lookup_and_accepts():
    assert glossary.lookup("Fine-Tuning").zh == "微调"
    assert glossary.lookup("领域自适应").en == "domain adaptation"
    assert glossary.accepts("domain adaptation", "域自适应")
    assert glossary.accepts("domain adaptation", " 领域自适应 ")
    assert not glossary.accepts("source domain", "目标域")
    with pytest.raises(KeyError, match="not in the course glossary"):
        glossary.lookup("quantum transfer")
    table = glossary.table({"05": "05 fine-tuning"})
    assert len(table) == len(glossary.TERMS)
    assert table.loc[table.English == "fine-tuning", "where"].item() == "05 fine-tuning"


def test_capstone_terms_are_in_the_glossary():
    from tlcourse.exercises import capstone

    for term in capstone.Glossary.TERMS:
        glossary.lookup(term)


@pytest.mark.parametrize("module", [glossary, evaluation])
def test_doctests(module):
    result = doctest.testmod(module)
    assert result.attempted and not result.failed


def test_interval_and_paired():
    import pandas as pd

    mean, half = evaluation.interval([0.5, 0.55, 0.6])
    assert mean == pytest.approx(0.55) and half == pytest.approx(4.302653 * 0.05 / 3 ** 0.5, rel=1e-6)
    with pytest.raises(ValueError, match="at least two"):
        evaluation.interval([0.5])
    df = pd.DataFrame({"method": ["a", "b"] * 3, "labels_per_class": [5] * 6,
                       "seed": [0, 0, 1, 1, 2, 2], "acc": [0.7, 0.6, 0.8, 0.75, 0.6, 0.58]})
    d = evaluation.paired(df, "a", "b", at=5)
    assert list(d.round(3)) == [0.1, 0.05, 0.02]
    with pytest.raises(KeyError, match="no runs of 'c'"):
        evaluation.paired(df, "a", "c", at=5)
