"""Exercises on what transfer learning is: domains and tasks, transferred features, when it helps."""

from __future__ import annotations

import numpy as np

from tlcourse.exercises._measured import MeasuredQuestion, as_records
from tlcourse.exercises.core import Incorrect, Question, call_learner, expect_close

_CHANGES = {"domain", "task", "both"}


class DomainOrTask(Question):
    id = "transfer_basics.q1"
    prompt = "For each scenario, does the domain change, the task, or both?"
    hints = [
        "A domain is a feature space with a distribution over it: D = {X, P(X)}. "
        "A task is a label space with the function to learn: T = {Y, f}.",
        "Ask two questions per scenario: do the inputs look different (P(X))? Are the labels different (Y)?",
    ]
    solution_code = (
        "changes = {\n"
        '    "a": "domain",  # same ten digits, other scanner and resolution: P(X) changes\n'
        '    "b": "domain",  # same labels (spam / not spam), other users\' e-mail: P(X) changes\n'
        '    "c": "both",    # photos -> X-rays, and 1000 classes -> pneumonia yes/no\n'
        '    "d": "task",    # same kind of images, new labels 5-9\n'
        "}"
    )
    _answer = {"a": "domain", "b": "domain", "c": "both", "d": "task"}
    _why = {
        "a": "both datasets label the digits 0–9: only the look of the images, P(X), differs",
        "b": "the labels are still spam / not spam: the e-mails' distribution differs",
        "c": "X-rays look nothing like photos (domain) and the labels differ (task)",
        "d": "the images come from the same collection; only the label set changes",
    }

    def _check(self, changes):
        if not isinstance(changes, dict) or set(changes) != set(self._answer):
            raise Incorrect(f"give a dict with keys {sorted(self._answer)}")
        wrong = []
        for key, value in changes.items():
            v = str(value).strip().lower()
            if v not in _CHANGES:
                raise Incorrect(f"{key!r}: answer one of {sorted(_CHANGES)}, got {value!r}")
            if v != self._answer[key]:
                wrong.append(f"{key}: {self._why[key]}")
        if wrong:
            raise Incorrect("; ".join(wrong))
        return "domain = {X, P(X)}, task = {Y, f}."

    def examples(self):
        bad = dict(self._answer, d="domain")
        return [(dict(self._answer),)], [(bad,), ({"a": "domain"},), (dict(self._answer, a="model"),)]


class ReluFeatures(Question):
    id = "transfer_basics.q2"
    prompt = "Write the feature map of a transferred hidden layer: f(X) = max(0, X W + b)."
    hints = [
        "X is (n, d), W is (d, h) and b is (h,): X @ W + b broadcasts b over the rows.",
        "np.maximum(0, Z) is the ReLU, element by element.",
    ]
    solution_code = (
        "def relu_features(X, W, b):\n"
        "    return np.maximum(0, X @ W + b)"
    )

    def _check(self, fn):
        rng = np.random.default_rng(7)
        X, W, b = rng.normal(size=(5, 4)), rng.normal(size=(4, 3)), rng.normal(size=3)
        got = call_learner(fn, X, W, b)
        expected = np.maximum(0, X @ W + b)
        if np.shape(got) == expected.shape and np.allclose(got, X @ W + b):
            raise Incorrect("the result can be negative: apply the ReLU max(0, ·)")
        if np.shape(got) == expected.shape and np.allclose(got, np.maximum(0, X @ W)):
            raise Incorrect("add the bias b before the ReLU")
        expect_close(got, expected, what="relu_features(X, W, b)")
        return "these are the source network's hidden activations, reused as the target's inputs."

    def examples(self):
        return [(lambda X, W, b: np.maximum(0, X @ W + b),)], [
            (lambda X, W, b: X @ W + b,),
            (lambda X, W, b: np.maximum(0, X @ W),),
            (lambda X, W, b: np.maximum(0, W.T @ X.T),),
        ]


def _measured_gap(runs, a, b, k):
    sel = [r for r in runs if r["labels_per_class"] == k]
    if not sel:
        raise Incorrect(f"no runs at {k} labels per class in the results you passed")
    mean = {m: np.mean([r["acc"] for r in sel if r["method"] == m]) for m in (a, b)}
    return mean[a] - mean[b], mean


class PredictLowLabelGap(MeasuredQuestion):
    id = "transfer_basics.q3"
    prompt = (
        "Predict, then verify: with 1 labelled image per class, does starting from the "
        "source network's weights beat training from scratch? Answer True or False."
    )
    hints = [
        "With one image per class the scratch model has 10 examples to fit ~100,000 weights.",
        "The source network already reads the target digits at about 60% without any target label.",
    ]
    solution_code = "transfer_wins_at_1 = True"

    def _check(self, prediction, runs=None):
        if not isinstance(prediction, (bool, np.bool_)):
            raise Incorrect(f"answer True or False, got {prediction!r}")
        if runs is None:
            raise Incorrect("pass the measured runs: q3.check(transfer_wins_at_1, runs=runs)")
        gap, mean = _measured_gap(as_records(runs), "transfer", "scratch", 1)
        measured = bool(gap > 0)
        if bool(prediction) != measured:
            raise Incorrect(
                f"the measurement says otherwise: transfer {mean['transfer']:.3f} vs scratch "
                f"{mean['scratch']:.3f} at 1 label per class"
            )
        return f"measured gap at 1 label per class: {gap:+.3f}."

    def examples(self):
        runs = [
            dict(method="transfer", labels_per_class=1, seed=0, acc=0.68),
            dict(method="scratch", labels_per_class=1, seed=0, acc=0.58),
        ]
        return [(True, runs)], [(False, runs), ("yes", runs)]



class FrozenNarrowFeatures(MeasuredQuestion):
    id = "transfer_basics.q4"
    prompt = (
        "Read the results: on digits 5–9 with 10 labels per class, which gave the higher "
        "accuracy, 'raw' pixels or 'frozen' features from a network trained on digits 0–4?"
    )
    hints = ["Look at the table printed above the plot, row 10.", "Compare the two columns' means."]
    solution_code = (
        'better_at_10 = "raw" if gap(narrow_runs, "raw", "frozen", at=10) > 0 else "frozen"'
    )

    def _check(self, answer, runs=None):
        value = str(answer).strip().lower()
        if value not in {"raw", "frozen"}:
            raise Incorrect(f"answer 'raw' or 'frozen', got {answer!r}")
        if runs is None:
            raise Incorrect("pass the measured runs: q4.check(better_at_10, runs=narrow_runs)")
        gap, mean = _measured_gap(as_records(runs), "raw", "frozen", 10)
        truth = "raw" if gap > 0 else "frozen"
        if value != truth:
            raise Incorrect(f"measured: raw {mean['raw']:.3f}, frozen {mean['frozen']:.3f}")
        return "a source that saw only five classes kept only what separates those five."

    def examples(self):
        runs = [
            dict(method="raw", labels_per_class=10, seed=0, acc=0.83),
            dict(method="frozen", labels_per_class=10, seed=0, acc=0.71),
        ]
        return [("raw", runs)], [("frozen", runs), ("pixels", runs)]


q1 = DomainOrTask()
q2 = ReluFeatures()
q3 = PredictLowLabelGap()
q4 = FrozenNarrowFeatures()
