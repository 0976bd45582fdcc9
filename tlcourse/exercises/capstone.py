"""Exercises of the capstone: a confidence interval, a choice made on validation, its defence,
and the glossary.

The measured questions take the notebook's run table (one row per method, label budget and
seed, with ``val_acc`` measured on the validation half and ``acc`` on the test half) as
``runs=``; the choice is judged on validation accuracy only — choosing on the test half
would make its score an optimistic estimate.
"""

from __future__ import annotations

import math

import numpy as np

from tlcourse.exercises._measured import MeasuredQuestion, as_records
from tlcourse.exercises.core import Incorrect, NotAttempted, Question, call_learner, is_placeholder

T_975 = {2: 4.302652729911275, 3: 3.182446305284263, 4: 2.7764451051977987}  # t_{0.975, n−1}


def _reference_interval(values) -> tuple[float, float]:
    from tlcourse.evaluation import interval

    return interval(values)


class Interval(Question):
    id = "capstone.q1"
    prompt = ("Write interval95(accs): the mean of the accuracies and the half-width of the 95% Student-t "
              "confidence interval, t_{0.975, n−1} · s / √n with s the sample standard deviation (ddof=1).")
    hints = [
        "scipy.stats.t.ppf(0.975, n - 1) is t_{0.975, n−1}: 4.30 for three seeds, 1.96 only as n → ∞.",
        "np.std(accs, ddof=1) is s (divides by n − 1); np.std's default ddof=0 divides by n.",
        "Return (mean, t * s / np.sqrt(n)) — divided by √n, not by n.",
    ]
    solution_code = (
        "def interval95(accs):\n"
        "    accs = np.asarray(accs, dtype=float)\n"
        "    n = len(accs)\n"
        "    t = stats.t.ppf(0.975, n - 1)\n"
        "    return accs.mean(), t * accs.std(ddof=1) / np.sqrt(n)"
    )
    CASES = ([0.50, 0.55, 0.60], [0.62, 0.70, 0.66, 0.69], [0.8, 0.81, 0.79, 0.85, 0.83])

    def _check(self, fn):
        for accs in self.CASES:
            got = call_learner(fn, list(accs))
            if not isinstance(got, (tuple, list)) or len(got) != 2:
                raise Incorrect(f"interval95 should return two numbers (mean, half_width), got {got!r}")
            try:
                mean, half = (float(v) for v in got)
            except (TypeError, ValueError) as err:
                raise Incorrect(f"interval95 should return two numbers, got {got!r}") from err
            want_mean, want_half = _reference_interval(accs)
            if not math.isclose(mean, want_mean, abs_tol=1e-9):
                raise Incorrect(f"for {accs} the mean is {want_mean:.4f}, you returned {mean:.4f}")
            if math.isclose(half, want_half, rel_tol=1e-6):
                continue
            x = np.asarray(accs)
            n = len(x)
            wrong = {
                "the standard deviation divides by n (ddof=0): use ddof=1, the sample estimate":
                    T_975[n - 1] * x.std() / np.sqrt(n),
                "1.96 is the normal quantile; with few runs use Student's t, t_{0.975, n−1}":
                    1.96 * x.std(ddof=1) / np.sqrt(n),
                "divide by √n, not by n": T_975[n - 1] * x.std(ddof=1) / n,
                "that is t · s, the spread of one run: the mean's uncertainty is t · s / √n":
                    T_975[n - 1] * x.std(ddof=1),
            }
            for why, value in wrong.items():
                if math.isclose(half, value, rel_tol=1e-6):
                    raise Incorrect(why)
            raise Incorrect(f"for {accs} the half-width is {want_half:.4f}, you returned {half:.4f}")
        return "with 3 seeds t = 4.30: the interval is 2.5 standard errors wider than ±2 would suggest."

    def examples(self):
        from scipy import stats

        def good(accs):
            accs = np.asarray(accs, dtype=float)
            return accs.mean(), stats.t.ppf(0.975, len(accs) - 1) * accs.std(ddof=1) / np.sqrt(len(accs))

        def ddof0(accs):
            accs = np.asarray(accs, dtype=float)
            return accs.mean(), stats.t.ppf(0.975, len(accs) - 1) * accs.std() / np.sqrt(len(accs))

        def normal(accs):
            accs = np.asarray(accs, dtype=float)
            return accs.mean(), 1.96 * accs.std(ddof=1) / np.sqrt(len(accs))

        def over_n(accs):
            accs = np.asarray(accs, dtype=float)
            return accs.mean(), stats.t.ppf(0.975, len(accs) - 1) * accs.std(ddof=1) / len(accs)

        def one_value(accs):
            return float(np.mean(accs))

        return [(good,)], [(ddof0,), (normal,), (over_n,), (one_value,)]


def _ranking(runs, budget) -> list[tuple[str, float]]:
    """Methods at ``budget`` by mean validation accuracy, best first."""
    rows = [r for r in as_records(runs) if r.get("labels_per_class") == budget]
    if not rows:
        raise Incorrect(f"no runs at {budget} labels per class: pick a budget the notebook measured")
    means: dict[str, list[float]] = {}
    for r in rows:
        means.setdefault(r["method"], []).append(float(r["val_acc"]))
    return sorted(((m, float(np.mean(v))) for m, v in means.items()), key=lambda mv: -mv[1])


def _fields(answer, names):
    if not isinstance(answer, dict):
        raise Incorrect(f"answer with a dict holding {', '.join(names)}")
    if any(is_placeholder(answer.get(k)) for k in names):
        raise NotAttempted("fill in every ____ of the dict")
    missing = [k for k in names if k not in answer]
    if missing:
        raise Incorrect(f"the dict lacks {', '.join(missing)}")
    return answer


class Choice(MeasuredQuestion):
    id = "capstone.q2"
    prompt = ("From the runs, at your decision budget: which method has the best mean validation accuracy, "
              "and which comes second? Answer {'budget': k, 'method': ..., 'runner_up': ...}.")
    hints = [
        "Use the validation column (val_acc), never the test column: the test half is for the final report.",
        "evaluation.summarize(runs[runs.labels_per_class == k], metric='val_acc') sorts it out.",
    ]
    solution_code = (
        "ranked = (summarize(runs[runs.labels_per_class == DECISION_BUDGET], metric=\"val_acc\")\n"
        "          .sort_values(\"mean\", ascending=False))\n"
        "choice = {\"budget\": DECISION_BUDGET, \"method\": ranked.method.iloc[0], "
        "\"runner_up\": ranked.method.iloc[1]}"
    )

    def _check(self, answer, runs=None):
        if runs is None:
            raise Incorrect("pass the measured runs too: q2.check(choice, runs=runs)")
        answer = _fields(answer, ("budget", "method", "runner_up"))
        ranked = _ranking(runs, answer["budget"])
        methods = [m for m, _ in ranked]
        for key in ("method", "runner_up"):
            if answer[key] not in methods:
                raise Incorrect(f"{key} must be one of {methods}, got {answer[key]!r}")
        (best, best_acc), (second, second_acc) = ranked[0], ranked[1]
        if answer["method"] != best:
            test_best = _test_best(runs, answer["budget"])
            extra = (" — is that the best on the test half? Choose on validation only"
                     if answer["method"] == test_best != best else "")
            raise Incorrect(f"{answer['method']!r} is not the best on validation at {answer['budget']} "
                            f"labels per class{extra}")
        if answer["runner_up"] != second:
            raise Incorrect(f"{answer['runner_up']!r} is not second on validation")
        return (f"{best} ({best_acc:.3f}) ahead of {second} ({second_acc:.3f}) on validation: "
                "now check whether that lead is more than seed noise.")

    def examples(self):
        runs = _example_runs()
        good = [({"budget": 5, "method": "fine-tune", "runner_up": "frozen + head"}, runs)]
        bad = [({"budget": 5, "method": "frozen + head", "runner_up": "fine-tune"}, runs),  # best on test
               ({"budget": 5, "method": "fine-tune", "runner_up": "scratch"}, runs),
               ({"budget": 7, "method": "fine-tune", "runner_up": "frozen + head"}, runs),
               ({"budget": 5, "method": "magic", "runner_up": "scratch"}, runs)]
        return good, bad


def _test_best(runs, budget) -> str:
    rows = [r for r in as_records(runs) if r.get("labels_per_class") == budget]
    means: dict[str, list[float]] = {}
    for r in rows:
        means.setdefault(r["method"], []).append(float(r["acc"]))
    return max(means, key=lambda m: np.mean(means[m]))


def _example_runs() -> list[dict]:
    rows = []
    table = {"fine-tune": ([0.70, 0.72, 0.69], [0.66, 0.69, 0.68]),
             "frozen + head": ([0.66, 0.70, 0.67], [0.70, 0.71, 0.69]),
             "scratch": ([0.50, 0.55, 0.52], [0.51, 0.54, 0.50])}
    for method, (val, test) in table.items():
        for seed, (v, t) in enumerate(zip(val, test)):
            rows.append({"method": method, "labels_per_class": 5, "seed": seed, "val_acc": v, "acc": t})
    return rows


class Defence(MeasuredQuestion):
    id = "capstone.q3"
    prompt = ("Defend the choice: the per-seed differences of validation accuracy between your method and the "
              "runner-up at the decision budget, their mean, the 95% t-interval half-width, and whether the "
              "interval excludes 0. Answer {'budget', 'method', 'runner_up', 'mean_difference', 'half_width', "
              "'resolved'}.")
    hints = [
        "evaluation.paired(runs, method, runner_up, at=k, metric='val_acc') gives one difference per seed: "
        "both methods saw the same labelled images in a seed, so what the seeds share cancels.",
        "interval95 (or evaluation.interval) of those differences gives (mean, half-width).",
        "resolved is mean_difference − half_width > 0: the whole interval lies above zero.",
    ]
    solution_code = (
        "diffs = paired(runs, choice[\"method\"], choice[\"runner_up\"], at=choice[\"budget\"], metric=\"val_acc\")\n"
        "mean_difference, half_width = interval(diffs)\n"
        "defence = dict(choice, mean_difference=mean_difference, half_width=half_width,\n"
        "               resolved=bool(mean_difference - half_width > 0))"
    )

    def _check(self, answer, runs=None):
        if runs is None:
            raise Incorrect("pass the measured runs too: q3.check(defence, runs=runs)")
        answer = _fields(answer, ("budget", "method", "runner_up", "mean_difference", "half_width", "resolved"))
        ranked = [m for m, _ in _ranking(runs, answer["budget"])]
        if [answer["method"], answer["runner_up"]] != ranked[:2]:
            raise Incorrect(f"defend the measured choice: at {answer['budget']} labels per class the top two on "
                            f"validation are {ranked[0]!r} and {ranked[1]!r} (exercise 2)")
        import pandas as pd

        from tlcourse.evaluation import paired

        diffs = paired(pd.DataFrame(as_records(runs)), answer["method"], answer["runner_up"],
                       at=answer["budget"], metric="val_acc")
        mean, half = _reference_interval(diffs)
        try:
            got_mean, got_half = float(answer["mean_difference"]), float(answer["half_width"])
        except (TypeError, ValueError) as err:
            raise Incorrect("mean_difference and half_width should be numbers") from err
        if not math.isclose(got_mean, mean, abs_tol=1e-6):
            raise Incorrect(f"the mean per-seed difference is not {got_mean:.4f}: subtract the runner-up's "
                            "validation accuracy from the method's, seed by seed")
        if not math.isclose(got_half, half, rel_tol=1e-4, abs_tol=1e-9):
            unpaired = _unpaired_half(runs, answer)
            if math.isclose(got_half, unpaired, rel_tol=1e-4):
                raise Incorrect("that half-width treats the two methods as independent; pair them by seed "
                                "(the interval of the differences)")
            raise Incorrect(f"the half-width of the differences' interval is not {got_half:.4f}")
        if not isinstance(answer["resolved"], (bool, np.bool_)):
            raise Incorrect("resolved should be True or False")
        if bool(answer["resolved"]) != (mean - half > 0):
            raise Incorrect("resolved means the whole interval, mean − half-width, is above 0"
                            + (": here it is not" if answer["resolved"] else ": here it is"))
        verdict = ("the lead is larger than the seed noise" if mean - half > 0 else
                   "with these seeds the lead is not resolved: say so, or run more seeds")
        return f"{mean:+.3f} ± {half:.3f}: {verdict}."

    def examples(self):
        runs = _example_runs()
        base = {"budget": 5, "method": "fine-tune", "runner_up": "frozen + head"}
        d = np.array([0.04, 0.02, 0.02])
        mean, half = float(d.mean()), float(T_975[2] * d.std(ddof=1) / np.sqrt(3))
        good = [(dict(base, mean_difference=mean, half_width=half, resolved=mean - half > 0), runs)]
        bad = [(dict(base, mean_difference=mean, half_width=half, resolved=not (mean - half > 0)), runs),
               (dict(base, mean_difference=-mean, half_width=half, resolved=False), runs),
               (dict(base, mean_difference=mean, half_width=_unpaired_half(runs, base),
                     resolved=False), runs),
               (dict(base, method="scratch", mean_difference=mean, half_width=half, resolved=True), runs)]
        return good, bad


def _unpaired_half(runs, answer) -> float:
    """The Welch-style half-width a learner gets by ignoring the pairing (a common slip)."""
    rows = [r for r in as_records(runs) if r.get("labels_per_class") == answer["budget"]]
    a = np.array([r["val_acc"] for r in rows if r["method"] == answer["method"]], dtype=float)
    b = np.array([r["val_acc"] for r in rows if r["method"] == answer["runner_up"]], dtype=float)
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    return T_975[len(a) - 1] * se


class Glossary(Question):
    id = "capstone.q4"
    TERMS = ("fine-tuning", "feature extraction", "negative transfer", "domain adaptation",
             "catastrophic forgetting", "source domain")
    prompt = "Give the Chinese term for each English term of the dict (迁移学习 is 'transfer learning')."
    hints = [
        "The glossary table at the end of this notebook lists them all, with accepted alternatives.",
        "微调 is one of them; 负迁移 another.",
    ]
    solution_code = (
        "terms = {\n"
        "    \"fine-tuning\": \"微调\",\n"
        "    \"feature extraction\": \"特征提取\",\n"
        "    \"negative transfer\": \"负迁移\",\n"
        "    \"domain adaptation\": \"域自适应\",\n"
        "    \"catastrophic forgetting\": \"灾难性遗忘\",\n"
        "    \"source domain\": \"源域\",\n"
        "}"
    )

    def _check(self, answer):
        from tlcourse import glossary

        if not isinstance(answer, dict):
            raise Incorrect("answer with a dict: English term → Chinese term")
        if any(is_placeholder(answer.get(t)) for t in self.TERMS):
            raise NotAttempted("fill in every ____")
        missing = [t for t in self.TERMS if t not in answer]
        if missing:
            raise Incorrect(f"the dict lacks {', '.join(missing)}")
        wrong = [t for t in self.TERMS if not isinstance(answer[t], str) or not glossary.accepts(t, answer[t])]
        if wrong:
            raise Incorrect(f"not the usual term for: {', '.join(wrong)} (see the glossary below)")
        return "六个术语全部正确 — all six right."

    def examples(self):
        good = {"fine-tuning": "微调", "feature extraction": "特征提取", "negative transfer": "负迁移",
                "domain adaptation": "领域自适应", "catastrophic forgetting": "灾难性遗忘", "source domain": "源域"}
        swapped = dict(good, **{"source domain": "目标域"})
        partial = {k: v for k, v in good.items() if k != "negative transfer"}
        return [(good,)], [(swapped,), (partial,), ("微调",)]


q1 = Interval()
q2 = Choice()
q3 = Defence()
q4 = Glossary()
