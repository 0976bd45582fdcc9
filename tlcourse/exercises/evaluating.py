"""Exercises on evaluating and choosing: how many seeds a claim needs, cross-validation done right,
and what cross-validation can tell with few labels.

Answers are numbers, strings, booleans and plain functions of NumPy arrays; nothing here imports
a deep-learning framework. The measured question takes the notebook's cross-validation table
(one row per seed and value of C, with the cross-validated estimate ``cv_acc`` and the held-out
``test_acc`` of the model trained on all labelled images) as ``runs=``.
"""

from __future__ import annotations

import math

import numpy as np

from tlcourse.exercises._measured import MeasuredQuestion, as_records
from tlcourse.exercises.core import Incorrect, NotAttempted, Question, call_learner, is_placeholder

DEFAULT_C = 1.0
"""scikit-learn's default inverse regularization strength: the 'untuned' choice."""


# -- q1: how many seeds for a given precision ---------------------------------------------------


def _t(n: int, level: float = 0.95) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.5 + level / 2, n - 1))


def half_width(std: float, n: int, level: float = 0.95) -> float:
    """The Student-t half-width t_{(1+level)/2, n−1} · std / √n of a mean over ``n`` runs."""
    return _t(n, level) * std / math.sqrt(n)


def seeds_needed(std: float, target: float, level: float = 0.95) -> int:
    """The smallest n ≥ 2 whose t-interval half-width t_{n−1} · std / √n is at most ``target``."""
    if std < 0 or target <= 0:
        raise ValueError("std must be >= 0 and the target half-width > 0")
    n = 2
    while half_width(std, n, level) > target:
        n += 1
    return n


class SeedsNeeded(Question):
    id = "evaluating.q1"
    prompt = ("Write seeds_needed(std, half_width): the smallest number of seeds n (at least 2) for which the "
              "95% Student-t interval of the mean, t_{0.975, n−1} · std / √n, is no wider than ±half_width.")
    hints = [
        "Start at n = 2 and increase n until t_{0.975, n−1} · std / √n ≤ half_width.",
        "stats.t.ppf(0.975, n - 1) is t_{0.975, n−1}; it falls as n grows (12.7, 4.30, 3.18, … → 1.96).",
        "The normal shortcut n = (1.96 · std / half_width)² is a few seeds short: t > 1.96 for every finite n.",
    ]
    solution_code = (
        "def seeds_needed(std, half_width):\n"
        "    n = 2\n"
        "    while stats.t.ppf(0.975, n - 1) * std / np.sqrt(n) > half_width:\n"
        "        n += 1\n"
        "    return n"
    )
    CASES = ((0.02, 0.01), (0.03, 0.01), (0.05, 0.05), (0.018, 0.005))

    def _check(self, fn):
        for std, target in self.CASES:
            got = call_learner(fn, std, target)
            if isinstance(got, (bool, np.bool_)) or not isinstance(got, (int, np.integer, float, np.floating)):
                raise Incorrect(f"seeds_needed should return a whole number of seeds, got {got!r}")
            if float(got) != int(got):
                raise Incorrect(f"a number of seeds is a whole number; for std={std}, half_width={target} "
                                f"you returned {got}")
            n, want = int(got), seeds_needed(std, target)
            if n == want:
                continue
            normal = math.ceil((1.96 * std / target) ** 2)
            if n == normal:
                raise Incorrect(f"{n} is the normal-distribution answer (1.96 · std / half_width)²; with {n} "
                                f"seeds t_{{0.975, {n - 1}}} = {_t(n):.2f} > 1.96, so the interval is still "
                                f"±{half_width(std, n):.4f}: use Student's t")
            if n < 2:
                raise Incorrect("an interval needs at least two seeds (the standard deviation needs n − 1 ≥ 1)")
            if n < want:
                raise Incorrect(f"for std={std}: with {n} seeds the half-width is ±{half_width(std, n):.4f}, "
                                f"still wider than ±{target}")
            raise Incorrect(f"for std={std}: {want} seeds already give ±{half_width(std, want):.4f} ≤ ±{target}; "
                            "the smallest such n is asked")
        return ("halving the interval takes about four times the seeds — a little more than four "
                "when there are few, because t falls too.")

    def examples(self):
        from scipy import stats

        def good(std, hw):
            n = 2
            while stats.t.ppf(0.975, n - 1) * std / np.sqrt(n) > hw:
                n += 1
            return n

        def normal(std, hw):
            return math.ceil((1.96 * std / hw) ** 2)

        def one_short(std, hw):
            return good(std, hw) - 1

        def as_float(std, hw):
            return (1.96 * std / hw) ** 2

        return [(good,)], [(normal,), (one_short,), (as_float,), (lambda std, hw: good(std, hw) + 3,)]


# -- q2: cross-validation with the scaler inside the folds --------------------------------------


def cv_reference(X, y, C, n_folds, seed, *, leak=False, stratified=True, shuffle=True) -> float:
    """Mean accuracy over stratified, shuffled folds of standardize + logistic regression.

    With ``leak=True`` the scaler is fit on all of X first (the validation folds leak into it);
    ``stratified`` / ``shuffle`` off give the other common slips.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = np.asarray(X, dtype=float), np.asarray(y)
    splitter = StratifiedKFold if stratified else KFold
    folds = splitter(n_splits=n_folds, shuffle=shuffle, random_state=seed if shuffle else None)
    if leak:
        X = StandardScaler().fit_transform(X)
    scores = []
    for train, val in folds.split(X, y):
        model = LogisticRegression(C=C, max_iter=1000)
        if not leak:
            model = make_pipeline(StandardScaler(), model)
        model.fit(X[train], y[train])
        scores.append(model.score(X[val], y[val]))
    return float(np.mean(scores))


def _cv_data(case: int):
    """A small labelled set: 4 classes × 8, 6 features on very different scales, a few outliers."""
    rng = np.random.default_rng(100 + case)
    y = np.repeat(np.arange(4), 8)
    centres = rng.normal(0.0, 1.0, size=(4, 6))
    X = centres[y] + rng.normal(0.0, 1.1, size=(y.size, 6))
    X[rng.choice(y.size, 3, replace=False)] += rng.normal(0.0, 6.0, size=(3, 6))  # outliers move the scaler
    X = X * np.array([1.0, 10.0, 0.1, 100.0, 1.0, 3.0]) + np.array([0.0, 50.0, 0.0, -200.0, 5.0, 0.0])
    order = rng.permutation(y.size)
    return X[order].astype(np.float32), y[order].astype(np.int64)


class CrossValidate(Question):
    id = "evaluating.q2"
    prompt = ("Write cv_accuracy(X, y, C, n_folds, seed): the n_folds-fold cross-validated accuracy of "
              "probe(C) (standardize, then logistic regression), with stratified, shuffled folds "
              "StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed); the scaler must learn "
              "its means and variances from the training folds only.")
    hints = [
        "for train, val in StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(X, y): "
        "fit on X[train], score on X[val].",
        "Fit a fresh probe(C) in every fold: the pipeline fits its StandardScaler on X[train] only. "
        "Standardizing all of X before splitting lets the validation images shape the features.",
        "Return the mean of the fold accuracies, one number (cross_val_score(...).mean() does the same).",
    ]
    solution_code = (
        "def cv_accuracy(X, y, C, n_folds, seed):\n"
        "    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)\n"
        "    scores = []\n"
        "    for train, val in folds.split(X, y):\n"
        "        model = probe(C).fit(X[train], y[train])  # the scaler sees the training folds only\n"
        "        scores.append(model.score(X[val], y[val]))\n"
        "    return float(np.mean(scores))"
    )
    CASES = ((0, 1.0, 4, 0), (1, 0.1, 4, 3), (2, 1.0, 8, 1), (3, 10.0, 4, 5))

    def _check(self, fn):
        for case, C, n_folds, seed in self.CASES:
            X, y = _cv_data(case)
            got = call_learner(fn, X, y, C, n_folds, seed)
            if isinstance(got, (list, tuple, np.ndarray)):
                if np.size(got) == n_folds:
                    raise Incorrect("return one number, the mean of the fold accuracies, not the list of them")
                raise Incorrect(f"cv_accuracy should return one number, got {type(got).__name__}")
            try:
                value = float(got)
            except (TypeError, ValueError) as err:
                raise Incorrect(f"cv_accuracy should return a number, got {got!r}") from err
            want = cv_reference(X, y, C, n_folds, seed)
            if math.isclose(value, want, abs_tol=1e-9):
                continue
            slips = {
                "the scaler was fit on all of X before splitting: the validation fold's values shaped the "
                "standardization. Put the scaler inside the model (probe(C)) and fit it per fold":
                    cv_reference(X, y, C, n_folds, seed, leak=True),
                "the folds are not shuffled: pass shuffle=True, random_state=seed to StratifiedKFold":
                    cv_reference(X, y, C, n_folds, seed, shuffle=False),
                "use stratified folds (StratifiedKFold): with few labels, plain KFold can leave a class out of "
                "a training fold": cv_reference(X, y, C, n_folds, seed, stratified=False),
            }
            for why, wrong in slips.items():
                if math.isclose(value, wrong, abs_tol=1e-9) and not math.isclose(wrong, want, abs_tol=1e-9):
                    raise Incorrect(why)
            raise Incorrect(f"with C={C}, {n_folds} folds and seed {seed} the cross-validated accuracy is "
                            f"{want:.4f}, you returned {value:.4f}")
        return "every fold scored by a model (scaler included) that never saw it."

    def examples(self):
        def good(X, y, C, n_folds, seed):
            return cv_reference(X, y, C, n_folds, seed)

        def leaky(X, y, C, n_folds, seed):
            return cv_reference(X, y, C, n_folds, seed, leak=True)

        def unshuffled(X, y, C, n_folds, seed):
            return cv_reference(X, y, C, n_folds, seed, shuffle=False)

        def plain_kfold(X, y, C, n_folds, seed):
            return cv_reference(X, y, C, n_folds, seed, stratified=False)

        def fold_list(X, y, C, n_folds, seed):
            return [cv_reference(X, y, C, n_folds, seed)] * n_folds

        return [(good,)], [(leaky,), (unshuffled,), (plain_kfold,), (fold_list,)]


# -- q3: predict what cross-validation tells with 5 labels per class ----------------------------


def cv_summary(runs) -> dict:
    """What the cross-validation table says: spreads at the default C, and how often CV picks the test-best C.

    ``runs`` has one row per (seed, C) with ``cv_acc`` and ``test_acc``. CV's choice is the C with the
    highest ``cv_acc``, ties going to the smallest C (the first in ascending order); the test-best C
    the one with the highest ``test_acc``, likewise.
    """
    rows = as_records(runs)
    if not rows or not all({"seed", "C", "cv_acc", "test_acc"} <= set(r) for r in rows):
        raise Incorrect("pass the cross-validation table (columns seed, C, cv_acc, test_acc) as runs=")
    by_seed: dict = {}
    for r in rows:
        by_seed.setdefault(r["seed"], []).append((float(r["C"]), float(r["cv_acc"]), float(r["test_acc"])))
    errors, tests, agree = [], [], []
    for seed_rows in by_seed.values():
        seed_rows.sort()
        default = [r for r in seed_rows if math.isclose(r[0], DEFAULT_C)]
        if not default:
            raise Incorrect(f"the table has no runs at the default C = {DEFAULT_C}")
        errors.append(default[0][1] - default[0][2])
        tests.append(default[0][2])
        cv_pick = max(range(len(seed_rows)), key=lambda i: (seed_rows[i][1], -i))
        test_pick = max(range(len(seed_rows)), key=lambda i: (seed_rows[i][2], -i))
        agree.append(cv_pick == test_pick)
    if len(by_seed) < 3:
        raise Incorrect("the table needs at least three seeds")
    return {"error_sd": float(np.std(errors, ddof=1)), "test_sd": float(np.std(tests, ddof=1)),
            "bias": float(np.mean(errors)), "agreement": float(np.mean(agree)), "seeds": len(by_seed)}


class PredictCrossValidation(MeasuredQuestion):
    id = "evaluating.q3"
    prompt = ("Predict, then verify, at 5 labels per class: (a) is the spread over seeds of the CV estimate's error "
              "(cv_acc − test_acc) 'larger' or 'smaller' than the spread of the test accuracy itself? (b) Does "
              "cross-validation pick the C that is best on the test set in most seeds (True/False)?")
    hints = [
        "Each validation fold holds 10 images: one image more or less right moves a fold's accuracy by 0.1.",
        "The test set has 1,000 images; the test accuracy moves between seeds only because another 50 images "
        "were labelled.",
        "With C values whose test accuracies differ by one or two points, a noisy estimate picks among them "
        "almost at random.",
    ]
    solution_code = 'prediction = {"error_spread_vs_test_spread": "larger", "cv_usually_picks_best_C": False}'
    KEYS = ("error_spread_vs_test_spread", "cv_usually_picks_best_C")

    def _check(self, prediction, runs=None):
        if not isinstance(prediction, dict):
            raise Incorrect(f"answer with a dict with the keys {', '.join(self.KEYS)}")
        if any(is_placeholder(prediction.get(k)) for k in self.KEYS):
            raise NotAttempted("fill in both ____")
        missing = [k for k in self.KEYS if k not in prediction]
        if missing:
            raise Incorrect(f"the dict lacks {', '.join(missing)}")
        spread = str(prediction["error_spread_vs_test_spread"]).strip().lower()
        if spread not in ("larger", "smaller"):
            raise Incorrect(f"error_spread_vs_test_spread is 'larger' or 'smaller', got {spread!r}")
        usually = prediction["cv_usually_picks_best_C"]
        if not isinstance(usually, (bool, np.bool_)):
            raise Incorrect(f"cv_usually_picks_best_C is True or False, got {usually!r}")
        if runs is None:
            raise Incorrect("pass the measured table too: q3.check(prediction, runs=cv_runs)")
        s = cv_summary(runs)
        measured = "larger" if s["error_sd"] > s["test_sd"] else "smaller"
        wrong = []
        if spread != measured:
            wrong.append(f"(a) the CV estimate misses the test accuracy by ±{s['error_sd']:.3f} (std over "
                         f"{s['seeds']} seeds) while the test accuracy itself varies by ±{s['test_sd']:.3f}")
        if bool(usually) != (s["agreement"] > 0.5):
            wrong.append(f"(b) CV picked the test-best C in {s['agreement']:.0%} of the seeds")
        if wrong:
            raise Incorrect("the measurement says otherwise: " + "; ".join(wrong))
        return (f"the estimate's error (±{s['error_sd']:.3f}) is {s['error_sd'] / s['test_sd']:.1f}× the spread of "
                f"what it estimates; CV found the best C in {s['agreement']:.0%} of the seeds.")

    def examples(self):
        runs = _example_cv_runs()
        good = {"error_spread_vs_test_spread": "larger", "cv_usually_picks_best_C": False}
        return [(good, runs)], [
            (dict(good, error_spread_vs_test_spread="smaller"), runs),
            (dict(good, cv_usually_picks_best_C=True), runs),
            (dict(good, error_spread_vs_test_spread="about the same"), runs),
            ({"error_spread_vs_test_spread": "larger"}, runs),
        ]


def _example_cv_runs() -> list[dict]:
    """A small table shaped like the notebook's: noisy CV estimates around steadier test accuracies."""
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(8):
        base = 0.52 + rng.normal(0, 0.02)
        for C, shift in zip((0.01, 0.1, 1.0, 10.0), (-0.03, 0.005, 0.0, -0.01), strict=True):
            test = base + shift
            rows.append({"seed": seed, "C": C, "test_acc": round(test, 3),
                         "cv_acc": round(test + rng.normal(-0.02, 0.08), 2)})
    return rows


q1 = SeedsNeeded()
q2 = CrossValidate()
q3 = PredictCrossValidation()
