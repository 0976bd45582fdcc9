"""tlcourse.setup, the results recorder, evaluation helpers and plots."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import matplotlib
import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

import tlcourse
from tlcourse import evaluation, plotting, results

matplotlib.use("Agg")


def test_setup_makes_numpy_and_python_repeatable():
    tlcourse.setup(seed=3)
    a = (np.random.rand(3), random.random())
    tlcourse.setup(seed=3)
    b = (np.random.rand(3), random.random())
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]
    tlcourse.setup(seed=4)
    assert not np.array_equal(a[0], np.random.rand(3))


def test_setup_caps_threads_and_reports():
    info = tlcourse.setup(seed=0, threads=1)
    assert info.threads == 1 and os.environ["OMP_NUM_THREADS"] == "1"
    assert "seed=0" in str(info)


@pytest.mark.parametrize("bad", [dict(seed="1"), dict(seed=1.5), dict(framework="jax"), dict(threads=-1)])
def test_setup_rejects_bad_input(bad):
    with pytest.raises((TypeError, ValueError)):
        tlcourse.setup(**bad)


def _run(code):
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def test_setup_seeds_torch_only_when_asked():
    out = _run(
        "import sys, tlcourse; tlcourse.setup(0); print('torch' in sys.modules);"
        "info = tlcourse.setup(0, framework='torch'); import torch; a = torch.rand(2);"
        "tlcourse.setup(0, framework='torch'); print(torch.equal(a, torch.rand(2)), torch.get_num_threads(), info.device)"
    )
    assert out.split() == ["False", "True", "1", "cpu"]


def test_setup_seeds_tensorflow():
    out = _run(
        "import tlcourse; tlcourse.setup(0, framework='tf'); import tensorflow as tf; a = tf.random.uniform((2,));"
        "tlcourse.setup(0, framework='tf'); b = tf.random.uniform((2,));"
        "print(bool(tf.reduce_all(a == b)), tf.config.threading.get_intra_op_parallelism_threads())"
    )
    assert out.split()[-2:] == ["True", "1"]


def test_recorder_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCOURSE_RESULTS_DIR", str(tmp_path))
    rec = results.Recorder("nb_demo")
    rec.add("acc", np.float32(0.5))
    rec.add("claim/py", True)
    rec.add("claim/np", np.bool_(False))
    rec.add("n", np.int64(3))
    rec.add_table("runs", pd.DataFrame({"method": ["a"], "acc": [0.7]}))
    rec.save()
    back = results.load("nb_demo")
    assert back["values"]["acc"] == 0.5 and back["tables"]["runs"][0]["method"] == "a"
    assert back["values"]["claim/py"] is True and back["values"]["claim/np"] is False  # claims stay bools
    assert type(back["values"]["n"]) is int
    with pytest.raises(ValueError):
        rec.add("bad", float("nan"))
    with pytest.raises(ValueError):
        results.Recorder("no spaces allowed")
    with pytest.raises(FileNotFoundError, match="nb_demo"):
        results.load("missing")


def _runs():
    rows = []
    for seed in range(3):
        for k in (1, 5):
            rows.append(dict(method="scratch", labels_per_class=k, seed=seed, acc=0.3 + 0.05 * k + 0.01 * seed))
            rows.append(dict(method="transfer", labels_per_class=k, seed=seed, acc=0.6 + 0.02 * k))
    return pd.DataFrame(rows)


def test_evaluation_summaries():
    df = _runs()
    s = evaluation.summarize(df)
    assert set(s.columns) >= {"mean", "std", "count"} and (s["count"] == 3).all()
    assert evaluation.gap(df, "transfer", "scratch", at=1) == pytest.approx(0.62 - 0.36)
    table = evaluation.pivot(df)
    assert list(table.columns) == ["scratch", "transfer"] and "±" in table.iloc[0, 0]
    with pytest.raises(KeyError, match="methods"):
        evaluation.mean_at(df, "nope", at=1)


def test_plots_have_titles_and_labels():
    ax = plotting.learning_curves(_runs())
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    assert len(ax.get_legend().get_texts()) == 2
    fig = plotting.image_grid(np.random.rand(6, 8, 8), labels=list(range(6)), title="demo")
    assert fig._suptitle.get_text() == "demo"
    with pytest.raises(ValueError, match="labels"):
        plotting.image_grid(np.random.rand(6, 8, 8), labels=[1])
    with pytest.raises(ValueError, match="shape"):
        plotting.image_grid(np.random.rand(8))
    ax = plotting.bars({"a": 1.0, "b": 2.0}, title="t", ylabel="y")
    assert ax.get_title() == "t"
    # value labels sit beyond the error bars' caps, not over them
    ax = plotting.bars({"a": 1.0, "b": -0.5}, title="t", ylabel="y", errors={"a": 0.3, "b": 0.2})
    labels = {t.get_text(): t.xy[1] for t in ax.texts}
    assert labels == {"1.00": pytest.approx(1.3), "-0.50": pytest.approx(-0.7)}


def test_sweep_collects_rows_and_rejects_bad_runs():
    from tlcourse.experiments import sweep

    def run(k, seed):
        return [dict(method="a", acc=k / 10 + seed), dict(method="b", acc=0.0)]

    df = sweep(run, budgets=[1, 5], seeds=[0, 1], progress=False)
    assert len(df) == 8 and list(df.columns[:3]) == ["method", "labels_per_class", "seed"]
    assert df[(df.method == "a") & (df.labels_per_class == 5) & (df.seed == 1)].acc.item() == pytest.approx(1.5)
    with pytest.raises(KeyError, match="method"):
        sweep(lambda k, s: {"acc": 1.0}, budgets=[1], seeds=[0], progress=False)
    with pytest.raises(TypeError):
        sweep(lambda k, s: 3, budgets=[1], seeds=[0], progress=False)
    with pytest.raises(ValueError):
        sweep(run, budgets=[], seeds=[0], progress=False)
