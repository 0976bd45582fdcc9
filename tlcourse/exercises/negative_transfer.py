"""Exercises on negative transfer: dead units, predicting where a source hurts, the negative
transfer gap, and backing off by validation.

The checks work for PyTorch and for Keras answers and import neither framework at module
import time. A run table is passed as ``runs=`` (a DataFrame or a list of dicts) with the
columns ``source``, ``way``, ``labels_per_class``, ``seed``, ``acc`` (and ``val_acc``);
training from scratch has ``way == "scratch"``.
"""

from __future__ import annotations

import numpy as np

from tlcourse.exercises._measured import MeasuredQuestion, as_records, mean_of
from tlcourse.exercises.core import Incorrect, NotAttempted, Question, call_learner, is_placeholder

SOURCES = ("MNIST", "shuffled labels", "inverted images")
SCRATCH = "scratch"
FINE_TUNED = "fine-tuned"
FROZEN = "frozen"


def _records(runs) -> list[dict]:
    if runs is None:
        raise Incorrect("pass the measured runs too: q.check(answer, runs=runs)")
    return as_records(runs)


_mean = mean_of  # the mean of a metric (default "acc") over the rows matching the keywords


def _as_bool(value, what: str) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise Incorrect(f"{what}: answer True or False, got {value!r}")


# -- q1 ----------------------------------------------------------------------------------------


def _fc1_outputs(model, x) -> np.ndarray:
    """fc1's outputs (after its ReLU) on x, by the course's own helper for the model's framework."""
    if hasattr(model, "named_parameters"):
        from tlcourse.training_torch import features
    elif hasattr(model, "layers"):
        from tlcourse.training_tf import features
    else:
        raise Incorrect(f"expected a PyTorch or Keras model, got {type(model).__name__}")
    return np.asarray(features(model, x), dtype=float)


class DeadUnits(Question):
    id = "negative_transfer.q1"
    prompt = (
        "Write dead_units(model, x): the fraction of fc1's 64 units that output 0 for EVERY image of x "
        "(NumPy images of shape (N, 28, 28)). Compute fc1's output in framework code."
    )
    hints = [
        "PyTorch: model.features is conv1, conv2, fc1 (with its ReLU); feed it an (N, 1, 28, 28) tensor, "
        "torch.from_numpy(x[:, None]), inside torch.no_grad(). Keras: build keras.Model(model.input, "
        "model.get_layer('fc1').output) and call it on x[..., None].",
        "You get an (N, 64) array h. A unit j is dead when h[:, j] is 0 for every image: h.max(axis=0) <= 0.",
        "Return the fraction, a number between 0 and 1: np.mean(h.max(axis=0) <= 0).",
    ]
    solution_code = (
        "def dead_units(model, x):\n"
        "    if FRAMEWORK == \"torch\":\n"
        "        with torch.no_grad():\n"
        "            h = model.features(torch.from_numpy(x[:, None])).numpy()   # (N, 64): fc1 after its ReLU\n"
        "    else:  # Keras\n"
        "        fc1 = keras.Model(model.input, model.get_layer(\"fc1\").output)\n"
        "        h = np.asarray(fc1(x[..., None]))\n"
        "    return float(np.mean(h.max(axis=0) <= 0))   # dead: 0 for every image"
    )

    def observe(self, fn, models=None, x=None):
        """The learner's answer on each model, and what the checker measures of fc1 on the same images."""
        if not models or x is None:
            raise Incorrect("pass the models and the images too: q1.check(dead_units, models=..., x=...)")
        x = np.asarray(x, dtype=np.float32)
        seen = {}
        for name, model in dict(models).items():
            got = call_learner(fn, model, x)
            try:
                got = float(got)
            except (TypeError, ValueError) as err:
                raise Incorrect(f"dead_units should return a number, got {type(got).__name__}") from err
            h = _fc1_outputs(model, x)
            seen[str(name)] = {
                "got": got,
                "dead": float(np.mean(h.max(axis=0) <= 0)),
                "units": int(h.shape[1]),
                "zero_somewhere": float(np.mean(h.min(axis=0) <= 0)),
                "zero_entries": float(np.mean(h <= 0)),
            }
        return seen

    def _judge(self, observation):
        for name, s in observation.items():
            got, dead, units = s["got"], s["dead"], s["units"]
            if np.isclose(got, dead, atol=1e-6):
                continue
            if not np.isfinite(got):
                raise Incorrect(f"{name}: your answer is not a finite number")
            if np.isclose(got, dead * units, atol=1e-6) and units > 1 and dead > 0:
                raise Incorrect(f"{name}: {got:g} is the number of dead units; give the fraction (divide by {units})")
            if np.isclose(got, 1 - dead, atol=1e-6):
                raise Incorrect(f"{name}: that is the fraction of units still alive, 1 − {dead:.3f}")
            if np.isclose(got, s["zero_somewhere"], atol=1e-6):
                raise Incorrect(f"{name}: you counted units that are 0 for SOME image; a dead unit is 0 for every "
                                "image (take the max over images, not the min)")
            if np.isclose(got, s["zero_entries"], atol=1e-6):
                raise Incorrect(f"{name}: that is the fraction of zero outputs over all (image, unit) pairs; "
                                "count units instead: a unit is dead when its column is 0 everywhere")
            raise Incorrect(f"{name}: you say {got:.4g}, the checker measures {dead:.4g} of fc1's {units} units "
                            "dead (0 for every image)")
        summary = ", ".join(f"{name} {s['dead']:.0%}" for name, s in observation.items())
        return (f"dead fc1 units on these images: {summary}. A dead ReLU unit passes no gradient back, so "
                "fine-tuning cannot easily bring it back to life.")

    def examples(self):
        import torch

        from tlcourse.models.small_cnn_torch import small_cnn

        x = np.random.default_rng(0).random((40, 28, 28), dtype=np.float32)
        model = small_cnn(seed=0)
        with torch.no_grad():
            model.features.fc1.dense.bias[:20] = -100.0  # 20 units (and maybe some more) never fire
        models = {"damaged": model, "fresh": small_cnn(seed=1)}

        def fc1(m, images):
            with torch.no_grad():
                return m.features(torch.from_numpy(images[:, None])).numpy()

        def good(m, images):
            return float(np.mean(fc1(m, images).max(axis=0) <= 0))

        def good_count_mean(m, images):
            return np.mean(fc1(m, images).sum(axis=0) == 0)

        def count(m, images):
            return int(np.sum(fc1(m, images).max(axis=0) <= 0))

        def alive(m, images):
            return float(np.mean(fc1(m, images).max(axis=0) > 0))

        def somewhere(m, images):
            return float(np.mean(fc1(m, images).min(axis=0) <= 0))

        def entries(m, images):
            return float(np.mean(fc1(m, images) <= 0))

        def blank(m, images):
            from tlcourse.exercises import ____

            return ____

        def text(m, images):
            return "many"

        return ([(good, models, x), (good_count_mean, models, x)],
                [(count, models, x), (alive, models, x), (somewhere, models, x), (entries, models, x),
                 (text, models, x), (good, None, x)])

    def evaluate(self, *answer, **context):
        # examples() give the models and images positionally; notebooks pass them by keyword.
        if len(answer) == 3 and not context:
            answer, context = answer[:1], {"models": answer[1], "x": answer[2]}
        return super().evaluate(*answer, **context)


# -- q2 ----------------------------------------------------------------------------------------


def _check_bool_dict(answer, keys, what):
    if not isinstance(answer, dict) or set(answer) != set(keys):
        raise Incorrect(f"answer a dict with the keys {list(keys)}, each True or False")
    if any(is_placeholder(v) for v in answer.values()):
        raise NotAttempted("some answers still hold the placeholder ____")
    return {k: _as_bool(answer[k], f"{what} {k!r}") for k in keys}


class PredictWhichHelp(MeasuredQuestion):
    id = "negative_transfer.q2"
    prompt = (
        "Predict, then verify: for each source, does its frozen trunk with a new head beat training from scratch "
        "on the 8×8 digits, on average over the label budgets and seeds? Answer {'MNIST': ..., 'shuffled labels': ..., "
        "'inverted images': ...} with True or False."
    )
    hints = [
        "A frozen trunk gives the new head exactly the source's features. The MNIST source learned strokes of "
        "digits; what is left of the features of a network trained on shuffled labels (section 2)?",
        "Inverted images: the labels are right, but the source saw black ink on white paper. Its units learned to "
        "fire on dark strokes over a bright background — what do they see in the target's images?",
    ]
    solution_code = 'beats_scratch = {"MNIST": True, "shuffled labels": False, "inverted images": False}'

    def _check(self, answer, runs=None):
        answer = _check_bool_dict(answer, SOURCES, "source")
        rows = _records(runs)
        scratch = _mean(rows, way=SCRATCH)
        gaps = {s: _mean(rows, way=FROZEN, source=s) - scratch for s in SOURCES}
        table = ", ".join(f"{s} {g:+.3f}" for s, g in gaps.items())
        wrong = [s for s in SOURCES if answer[s] != (gaps[s] > 0)]
        if wrong:
            raise Incorrect(f"not for {', '.join(repr(s) for s in wrong)} — measured, frozen minus scratch "
                            f"(mean accuracy over budgets and seeds): {table}")
        return f"measured, frozen minus scratch: {table}. Same ten digit names, opposite outcomes."

    def examples(self):
        runs = [dict(way=SCRATCH, source="none", labels_per_class=5, seed=0, acc=0.80)]
        runs += [dict(way=FROZEN, source=s, labels_per_class=5, seed=0, acc=a)
                 for s, a in zip(SOURCES, (0.86, 0.50, 0.70))]
        runs += [dict(way=FINE_TUNED, source=s, labels_per_class=5, seed=0, acc=a)
                 for s, a in zip(SOURCES, (0.78, 0.85, 0.70))]   # must not be read: the question is on frozen
        good = {"MNIST": True, "shuffled labels": False, "inverted images": False}
        return [(good, runs), ({**good, "MNIST": np.True_}, runs)], [
            ({**good, "MNIST": False}, runs),
            ({**good, "inverted images": True}, runs),
            ({"MNIST": True, "shuffled labels": False}, runs),
            ({**good, "MNIST": "yes"}, runs),
            (["MNIST"], runs),
        ]


# -- q3 ----------------------------------------------------------------------------------------


class NegativeTransferGap(MeasuredQuestion):
    id = "negative_transfer.q3"
    source = "inverted images"
    prompt = (
        "Compute the negative transfer gap of fine-tuning from the 'inverted images' source at every label "
        "budget: NTG(k) = mean accuracy of scratch − mean accuracy of the fine-tuned model, over the seeds. "
        "Answer a dict {labels_per_class: NTG}."
    )
    hints = [
        "Select the rows with runs.way == 'scratch', and those with runs.way == 'fine-tuned' and "
        "runs.source == 'inverted images'; average acc per labels_per_class with groupby.",
        "Two Series indexed by labels_per_class subtract element by element; .to_dict() makes the dict.",
        "Wang et al. define NTG as the error WITH the source minus the error WITHOUT it. Errors are 1 − accuracy, "
        "so NTG = acc(scratch) − acc(transfer): positive means the source hurt.",
    ]
    solution_code = (
        "scratch_acc = runs[runs.way == \"scratch\"].groupby(\"labels_per_class\")[\"acc\"].mean()\n"
        "tuned = runs[(runs.way == \"fine-tuned\") & (runs.source == \"inverted images\")]\n"
        "ntg_inverted = (scratch_acc - tuned.groupby(\"labels_per_class\")[\"acc\"].mean()).to_dict()"
    )

    def _check(self, answer, runs=None):
        rows = _records(runs)
        budgets = sorted({int(r["labels_per_class"]) for r in rows})
        want = {k: _mean(rows, way=SCRATCH, labels_per_class=k)
                - _mean(rows, way=FINE_TUNED, source=self.source, labels_per_class=k) for k in budgets}
        if hasattr(answer, "to_dict") and not isinstance(answer, dict):
            answer = answer.to_dict()
        if not isinstance(answer, dict):
            raise Incorrect(f"answer a dict {{labels_per_class: gap}}, got {type(answer).__name__}")
        try:
            got = {int(k): float(v) for k, v in answer.items()}
        except (TypeError, ValueError) as err:
            raise Incorrect("the keys must be label budgets (numbers) and the values numbers") from err
        if set(got) != set(budgets):
            raise Incorrect(f"give one gap per label budget {budgets}, got keys {sorted(got)}")
        if all(np.isclose(got[k], -want[k], atol=1e-4) for k in budgets) and any(abs(want[k]) > 1e-4 for k in budgets):
            raise Incorrect("the sign is flipped: NTG = accuracy of scratch − accuracy with the source "
                            "(error with the source − error without), positive when the source hurts")
        errors = [k for k in budgets if not np.isclose(got[k], want[k], atol=1e-4)]
        if errors:
            k = errors[0]
            raise Incorrect(f"at {k} labels per class you have {got[k]:.4f}; the runs give {want[k]:.4f} "
                            "(mean over the seeds of scratch minus the mean of fine-tuned from inverted images)")
        worst = max(want, key=want.get)
        return (f"NTG {', '.join(f'{k}: {v:+.3f}' for k, v in want.items())} — positive at every budget means "
                f"negative transfer throughout; the largest at {worst} labels per class.")

    def examples(self):
        runs = []
        for k, (s_acc, t_acc) in {1: ((0.6, 0.62), (0.55, 0.53)), 20: ((0.9, 0.88), (0.8, 0.7))}.items():
            for seed in (0, 1):
                runs.append(dict(way=SCRATCH, source="none", labels_per_class=k, seed=seed, acc=s_acc[seed]))
                runs.append(dict(way=FINE_TUNED, source=self.source, labels_per_class=k, seed=seed, acc=t_acc[seed]))
                runs.append(dict(way=FINE_TUNED, source="MNIST", labels_per_class=k, seed=seed, acc=0.95))
        good = {1: 0.61 - 0.54, 20: 0.89 - 0.75}
        return [(good, runs), ({np.int64(1): np.float64(0.07), np.int64(20): 0.14}, runs)], [
            ({1: -0.07, 20: -0.14}, runs),
            ({1: 0.07}, runs),
            ({1: 0.07, 20: 0.2}, runs),
            ({1: 0.61 - 0.95, 20: 0.89 - 0.95}, runs),
            ([0.07, 0.14], runs),
        ]


# -- q4 ----------------------------------------------------------------------------------------

KEEP_FC1 = ("frozen", "L2-SP", "fine-tuned")  # the rungs that keep the source's whole trunk


class PredictTheRung(MeasuredQuestion):
    id = "negative_transfer.q4"
    TIE = 0.01  # closer than one point of test accuracy is a tie, and either answer counts
    prompt = (
        "Predict, then verify: on the back-off ladder, for each source, does the rung with the best mean "
        "test accuracy keep the source's whole trunk, fc1 included ('frozen', 'L2-SP' or 'fine-tuned': "
        "True), or not ('conv1+conv2 only' or 'scratch': False)? Answer {source: True or False}."
    )
    hints = [
        "Section 2 found the misleading sources' fc1 full of dead units, and fine-tuning did not revive them. "
        "Which rungs carry that fc1 over, and which do not?",
        "A source that helps (section 3) is worth keeping whole; one that hurts is worth cutting back.",
    ]
    solution_code = 'keeps_fc1 = {"MNIST": True, "shuffled labels": False, "inverted images": False}'

    def _check(self, answer, runs=None):
        answer = _check_bool_dict(answer, SOURCES, "source")
        rows = _records(runs)
        rungs = list(dict.fromkeys(r["rung"] for r in rows))
        verdicts, notes = {}, []
        for s in SOURCES:
            means = {g: _mean(rows, source=s, rung=g) for g in rungs
                     if any(r["source"] == s and r["rung"] == g for r in rows)}
            keep = max((v for g, v in means.items() if g in KEEP_FC1), default=-1.0)
            drop = max((v for g, v in means.items() if g not in KEEP_FC1), default=-1.0)
            best = max(means, key=means.get)
            notes.append(f"{s}: {best} ({means[best]:.3f})")
            verdicts[s] = None if abs(keep - drop) < self.TIE else keep > drop
        wrong = [s for s in SOURCES if verdicts[s] is not None and answer[s] != verdicts[s]]
        if wrong:
            raise Incorrect(f"not for {', '.join(repr(s) for s in wrong)} — best rung by test accuracy: "
                            + "; ".join(notes))
        return ("best rung by test accuracy: " + "; ".join(notes) + ". A good source is worth keeping whole; a "
                "misleading one is worth cutting back to its lower blocks, or dropping.")

    def examples(self):
        runs = []
        table = {"MNIST": {"frozen": 0.95, "fine-tuned": 0.93, "conv1+conv2 only": 0.92, "scratch": 0.90},
                 "shuffled labels": {"frozen": 0.48, "fine-tuned": 0.55, "conv1+conv2 only": 0.89, "scratch": 0.90},
                 "inverted images": {"frozen": 0.80, "fine-tuned": 0.75, "conv1+conv2 only": 0.885,
                                      "scratch": 0.90}}
        for s, rungs in table.items():
            for g, v in rungs.items():
                runs.append(dict(source=s, rung=g, seed=0, labels_per_class=20, val_acc=1 - v, acc=v))
        good = {"MNIST": True, "shuffled labels": False, "inverted images": False}   # (val_acc must not be read)
        tie = [dict(r, acc=0.905) if r["source"] == "inverted images" and r["rung"] == "frozen" else r
               for r in runs]
        return [(good, runs), ({**good, "inverted images": True}, tie)], [
            ({**good, "MNIST": False}, runs),
            ({**good, "shuffled labels": True}, runs),
            ({"MNIST": True}, runs),
            ({**good, "MNIST": 1}, runs),
        ]


q1 = DeadUnits()
q2 = PredictWhichHelp()
q3 = NegativeTransferGap()
q4 = PredictTheRung()
