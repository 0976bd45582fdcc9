"""The negative-transfer exercise checks on real PyTorch and Keras models and on run tables
shaped as the notebook's (examples() use small stand-ins)."""

from __future__ import annotations

import numpy as np
import pytest

from tlcourse.exercises import CORRECT, INCORRECT, NOT_ATTEMPTED
from tlcourse.exercises import negative_transfer as ex

pd = pytest.importorskip("pandas")


@pytest.fixture(params=["torch", "tf"])
def framework(request):
    """(small_cnn module, namespace the solution runs in, a function that kills fc1 units)."""
    if request.param == "torch":
        torch = pytest.importorskip("torch")
        from tlcourse.models import small_cnn_torch as arch

        def kill(model, n):
            with torch.no_grad():
                model.features.fc1.dense.bias[:n] = -1e3

        return arch, {"FRAMEWORK": "torch", "torch": torch, "np": np}, kill
    pytest.importorskip("tensorflow")
    import keras

    from tlcourse.models import small_cnn_tf as arch

    def kill(model, n):
        kernel, bias = model.get_layer("fc1").get_weights()
        bias[:n] = -1e3
        model.get_layer("fc1").set_weights([kernel, bias])

    return arch, {"FRAMEWORK": "tf", "keras": keras, "np": np}, kill


def _solution(namespace):
    exec(ex.q1.solution_code, namespace)  # noqa: S102 - the solution a learner sees, run as the notebook runs it
    return namespace["dead_units"]


def test_q1_solution_is_right_on_real_models(framework):
    arch, namespace, kill = framework
    damaged = arch.small_cnn(seed=0)
    kill(damaged, 40)
    models = {"damaged": damaged, "fresh": arch.small_cnn(seed=1)}
    x = np.random.default_rng(0).random((30, 28, 28), dtype=np.float32)
    dead_units = _solution(namespace)
    assert dead_units(damaged, x) >= 40 / 64
    outcome = ex.q1.evaluate(dead_units, models=models, x=x)
    assert outcome.status == CORRECT, outcome
    assert "damaged" in outcome.message


def test_q1_common_mistakes_on_real_models(framework):
    arch, namespace, kill = framework
    damaged = arch.small_cnn(seed=0)
    kill(damaged, 40)
    models = {"damaged": damaged}
    x = np.random.default_rng(0).random((30, 28, 28), dtype=np.float32)
    dead_units = _solution(namespace)

    def count(model, images):
        return dead_units(model, images) * 64

    def alive(model, images):
        return 1 - dead_units(model, images)

    for wrong, says in ((count, "number of dead units"), (alive, "alive")):
        outcome = ex.q1.evaluate(wrong, models=models, x=x)
        assert outcome.status == INCORRECT and says in outcome.message, outcome


def test_q1_blank_is_not_attempted():
    from tlcourse.exercises import ____

    def blank(model, x):
        return ____

    assert ex.q1.evaluate(blank, models={"m": object()}, x=np.zeros((2, 28, 28))).status in (NOT_ATTEMPTED, INCORRECT)


def _runs():
    """A run table shaped as the notebook's sweep (DataFrame), with known gaps."""
    rows = []
    for k, base in ((1, 0.6), (5, 0.8), (20, 0.85), (100, 0.9)):
        for seed in (0, 1, 2):
            rows.append(dict(method="scratch", source="none (scratch)", way="scratch", labels_per_class=k,
                             seed=seed, acc=base + 0.01 * seed, val_acc=base))
            for name, d_frozen in (("MNIST", 0.08), ("shuffled labels", -0.4), ("inverted images", -0.05)):
                rows.append(dict(method=f"{name}, frozen", source=name, way="frozen", labels_per_class=k,
                                 seed=seed, acc=base + d_frozen, val_acc=base + d_frozen))
            for name, d_tuned in (("shuffled labels", -0.45), ("inverted images", -0.1 - 0.01 * seed)):
                rows.append(dict(method=f"{name}, fine-tuned", source=name, way="fine-tuned", labels_per_class=k,
                                 seed=seed, acc=base + d_tuned, val_acc=base + d_tuned))
    return pd.DataFrame(rows)


def test_q2_reads_the_frozen_rows_of_a_dataframe():
    runs = _runs()
    assert ex.q2.evaluate({"MNIST": True, "shuffled labels": False, "inverted images": False}, runs=runs).status == CORRECT
    wrong = ex.q2.evaluate({"MNIST": True, "shuffled labels": False, "inverted images": True}, runs=runs)
    assert wrong.status == INCORRECT and "inverted images" in wrong.message


def test_q3_solution_code_on_a_dataframe():
    runs = _runs()
    namespace = {"runs": runs}
    exec(ex.q3.solution_code, namespace)  # noqa: S102
    answer = namespace["ntg_inverted"]
    assert answer == pytest.approx({1: 0.12, 5: 0.12, 20: 0.12, 100: 0.12})
    assert ex.q3.evaluate(answer, runs=runs).status == CORRECT
    flipped = ex.q3.evaluate({k: -v for k, v in answer.items()}, runs=runs)
    assert flipped.status == INCORRECT and "sign" in flipped.message


def test_q4_judges_on_test_accuracy_not_validation():
    rows = []
    for source, acc in (("MNIST", {"frozen": 0.95, "scratch": 0.9}),
                        ("shuffled labels", {"frozen": 0.5, "conv1+conv2 only": 0.9, "scratch": 0.88}),
                        ("inverted images", {"fine-tuned": 0.7, "conv1+conv2 only": 0.86, "scratch": 0.88})):
        for rung, v in acc.items():
            # validation says the opposite of the test set: the checker must read acc
            rows.append(dict(source=source, rung=rung, seed=0, labels_per_class=20, val_acc=1 - v, acc=v))
    runs = pd.DataFrame(rows)
    good = {"MNIST": True, "shuffled labels": False, "inverted images": False}
    assert ex.q4.evaluate(good, runs=runs).status == CORRECT
    assert ex.q4.evaluate({**good, "MNIST": False}, runs=runs).status == INCORRECT
