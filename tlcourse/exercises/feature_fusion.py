"""Exercises on feature fusion: the operators in NumPy, which fusion wins, and dead gradients in a product.

Shared by the PyTorch and Keras variants of the notebook: answers are NumPy functions,
strings and numbers, judged against :mod:`tlcourse.methods.fusion` and the measured runs.
The weighted sum (q2) must raise a ValueError, and an exception does not travel as data: its
checker observes the learner's function in the kernel (its outputs on the checker's inputs and
the type of error it raises) and judges that observation (``observe`` / ``_judge``).
"""

from __future__ import annotations

import numpy as np

from tlcourse.exercises._measured import MeasuredQuestion, as_records
from tlcourse.exercises.core import Incorrect, NotAttempted, Question, call_learner, expect_close
from tlcourse.methods import fusion as ref


def _pair(seed, n=6, d_s=5, d_t=3):
    rng = np.random.default_rng(seed)
    return np.maximum(0, rng.normal(size=(n, d_s))), np.maximum(0, rng.normal(size=(n, d_t)))


class ConcatFeatures(Question):
    id = "feature_fusion.q1"
    prompt = ("Write concat_features(f_s, f_t): the concatenation z = [f_s; f_t] of a batch of source "
              "features (n, d_s) and target features (n, d_t), as an (n, d_s + d_t) array.")
    hints = [
        "Each row (one image) gets its source features followed by its target features.",
        "np.concatenate([f_s, f_t], axis=1) — axis 0 would stack the batches instead.",
    ]
    solution_code = (
        "def concat_features(f_s, f_t):\n"
        "    return np.concatenate([f_s, f_t], axis=1)"
    )

    def _check(self, fn):
        f_s, f_t = _pair(11)  # widths 5 and 3: concatenation takes any widths
        got = call_learner(fn, f_s, f_t)
        expected = ref.concat(f_s, f_t)
        shape = np.shape(got)
        if shape == (12, 5) or (len(shape) == 2 and shape[0] == 2 * len(f_s)):
            raise Incorrect("you stacked the two batches (axis 0); join each row's features (axis 1)")
        if len(shape) == 2 and shape[1] == 8 and np.allclose(got, ref.concat(f_t, f_s)):
            raise Incorrect("the target features come first: put the source features f_s first, z = [f_s; f_t]")
        expect_close(got, expected, what="concat_features(f_s, f_t) with widths 5 and 3")
        return "any widths will do: the fused width is d_s + d_t, and the head gets a separate weight for each feature."

    def examples(self):
        return [(lambda f_s, f_t: np.concatenate([f_s, f_t], axis=1),),
                (lambda f_s, f_t: np.hstack([f_s, f_t]),)], [
            (lambda f_s, f_t: np.concatenate([f_s, f_t.repeat(2, axis=1)[:, :5]], axis=0),),
            (lambda f_s, f_t: np.concatenate([f_t, f_s], axis=1),),
            (lambda f_s, f_t: f_s[:, :3] + f_t,),
        ]


class WeightedSumWithCheck(Question):
    id = "feature_fusion.q2"
    prompt = ("Write weighted_sum(f_s, f_t, alpha): z = alpha * f_s + (1 - alpha) * f_t for two feature "
              "arrays of the same shape, raising a ValueError when their shapes differ.")
    hints = [
        "The formula is one line. The check comes first: compare f_s.shape with f_t.shape.",
        "NumPy broadcasting hides some mismatches: a target of shape (n, 1) would be added to every "
        "source column without complaint. That is why the function must check the shapes itself.",
        "if f_s.shape != f_t.shape: raise ValueError(f\"widths differ: {f_s.shape} vs {f_t.shape}\")",
    ]
    solution_code = (
        "def weighted_sum(f_s, f_t, alpha):\n"
        "    if f_s.shape != f_t.shape:\n"
        "        raise ValueError(f\"a weighted sum needs features of the same shape, got {f_s.shape} and {f_t.shape}\")\n"
        "    return alpha * f_s + (1 - alpha) * f_t"
    )

    ALPHAS = (0.25, 0.9)

    @staticmethod
    def _inputs():
        return _pair(12, d_s=4, d_t=4)

    def observe(self, fn):
        """What the learner's function returns for the checker's equal-width inputs (two small arrays,
        or what they are instead), and what it does with widths 4 and 1: plain data for :meth:`_judge`."""
        f_s, f_t = self._inputs()
        outputs = []
        for alpha in self.ALPHAS:
            got = call_learner(fn, f_s, f_t, alpha)
            try:
                outputs.append({"array": np.asarray(got, dtype=np.float64)})
            except (TypeError, ValueError):
                outputs.append({"type": type(got).__name__})
        narrow = f_t[:, :1]  # (n, 1): NumPy would broadcast it over every source column
        try:
            out = fn(f_s, narrow, 0.5)
        except ValueError as err:
            mismatch = {"raised": type(err).__name__, "value_error": True}
        except NotImplementedError as err:
            raise NotAttempted("the function still raises NotImplementedError") from err
        except Exception as err:  # noqa: BLE001 - the learner's error is part of what we observe
            mismatch = {"raised": type(err).__name__, "value_error": False}
        else:
            mismatch = {"raised": None, "value_error": False, "shape": [int(n) for n in np.shape(out)]}
        return {"outputs": outputs, "mismatch": mismatch}

    def _judge(self, observation):
        f_s, f_t = self._inputs()
        outputs = observation["outputs"]
        if len(outputs) != len(self.ALPHAS):
            raise Incorrect("the function was not evaluated on every alpha the checker tries")
        for alpha, out in zip(self.ALPHAS, outputs):
            what = f"weighted_sum(f_s, f_t, {alpha})"
            if "array" not in out:
                raise Incorrect(f"{what}: expected an array, got {out.get('type', 'something else')}")
            got = out["array"]
            if np.shape(got) == f_s.shape and np.allclose(got, ref.weighted_sum(f_t, f_s, alpha)) \
                    and not np.allclose(got, ref.weighted_sum(f_s, f_t, alpha)):
                raise Incorrect("alpha weighs the source features: z = alpha * f_s + (1 - alpha) * f_t")
            expect_close(got, ref.weighted_sum(f_s, f_t, alpha), what=what)
        mismatch = observation["mismatch"]
        if mismatch["value_error"]:
            return "and a width mismatch fails loudly instead of broadcasting in silence."
        if mismatch["raised"]:
            raise Incorrect(f"with widths 4 and 1 raise a ValueError, not {mismatch['raised']}")
        shape = tuple(mismatch.get("shape", ()))
        raise Incorrect(f"widths 4 and 1 were accepted (NumPy broadcast them into shape {shape}): "
                        "check f_s.shape == f_t.shape and raise a ValueError")

    def examples(self):
        def good(f_s, f_t, alpha):
            if f_s.shape != f_t.shape:
                raise ValueError("shapes differ")
            return alpha * f_s + (1 - alpha) * f_t

        def swapped(f_s, f_t, alpha):
            if f_s.shape != f_t.shape:
                raise ValueError("shapes differ")
            return (1 - alpha) * f_s + alpha * f_t

        def wrong_error(f_s, f_t, alpha):
            assert f_s.shape == f_t.shape
            return alpha * f_s + (1 - alpha) * f_t

        return [(good,), (lambda f_s, f_t, alpha: ref.weighted_sum(f_s, f_t, alpha),)], [
            (lambda f_s, f_t, alpha: alpha * f_s + (1 - alpha) * f_t,),  # broadcasts (n, 1) silently
            (swapped,),
            (wrong_error,),
            (lambda f_s, f_t, alpha: f"{alpha} * f_s + {1 - alpha} * f_t",),  # not an array
        ]


METHODS = ("source-only", "scratch", "concat", "sum", "product", "max")


class BlockedByProduct(Question):
    id = "feature_fusion.q3"
    prompt = ("With product fusion z = f_s ⊙ f_t, the gradient reaching the target feature f_t,j of an image is "
              "f_s,j · ∂L/∂z_j. From the source features F_s (one row per target image), compute the share of "
              "(image, unit) pairs in which the target unit gets no gradient at all, whatever the loss.")
    hints = [
        "The factor f_s,j is zero exactly where the source unit's ReLU is off.",
        "np.mean(F_s == 0) is the share of zero entries.",
    ]
    solution_code = "blocked_share = float(np.mean(F_s_train == 0))"

    def evaluate(self, *answer, **context):
        # examples() give the features positionally; notebooks pass them by keyword.
        if len(answer) == 2 and not context:
            answer, context = answer[:1], {"features": answer[1]}
        return super().evaluate(*answer, **context)

    def observe(self, answer, features=None):
        """The answer and the true share of zeros in ``features``: two numbers for :meth:`_judge`
        (the feature matrix itself stays in the kernel)."""
        if isinstance(answer, (bool, np.bool_, str, bytes)) or not np.isscalar(answer):
            raise Incorrect(f"answer one number, a share between 0 and 1; got {answer!r}")
        if features is None:
            raise Incorrect("pass the source features: q3.check(blocked_share, features=F_s_train)")
        F = np.asarray(features, dtype=np.float64)
        return {"answer": float(answer), "share": float(np.mean(F == 0))}

    def _judge(self, observation):
        value, share = observation["answer"], observation["share"]
        if not 0.0 <= value <= 1.0:
            value_pct = value / 100 if 1 < value <= 100 else None
            if value_pct is not None and abs(value_pct - share) < 1e-3:
                raise Incorrect("give a share between 0 and 1, not a percentage")
            raise Incorrect(f"a share lies between 0 and 1, got {value!r}")
        if abs(value - (1 - share)) < 1e-3 and abs(share - 0.5) > 1e-3:
            raise Incorrect("that is the share of *active* source units, which do pass a gradient; count the zeros")
        expect_close(value, share, what="the share of blocked (image, unit) pairs", atol=1e-3, rtol=0)
        return (f"{share:.0%} of the target units get no gradient from a given image, before the target's own "
                "ReLU blocks more: product fusion trains the target side only where the source is active.")

    def examples(self):
        F = np.maximum(0, np.random.default_rng(0).normal(size=(50, 8)))
        share = float(np.mean(F == 0))
        return [(share, F), (round(share, 4), F)], [(1 - share, F), (share * 100, F), ("half", F), (0.9, F)]


class WinnerAtFive(MeasuredQuestion):
    id = "feature_fusion.q4"
    prompt = ("Predict, then verify: at 5 labelled images per class, which method reaches the highest mean "
              f"test accuracy? One of {', '.join(repr(m) for m in METHODS)} "
              "(the four fusions trained from their random start).")
    hints = [
        "Count: 50 labelled letters in all, and a target trunk with tens of thousands of weights.",
        "A fused model can fit its 50 training images with the target side alone. What does its head then lean on?",
    ]
    solution_code = 'winner_at_5 = "source-only"'

    def _check(self, answer, runs=None):
        value = str(answer).strip().lower() if isinstance(answer, str) else answer
        if value not in METHODS:
            raise Incorrect(f"answer one of {list(METHODS)}, got {answer!r}")
        if runs is None:
            raise Incorrect("pass the measured runs: q4.check(winner_at_5, runs=runs)")
        rows = [r for r in as_records(runs) if r["labels_per_class"] == 5 and r["method"] in METHODS]
        if not rows:
            raise Incorrect("no runs at 5 labels per class among the methods in the results you passed")
        means = {m: float(np.mean([r["acc"] for r in rows if r["method"] == m]))
                 for m in METHODS if any(r["method"] == m for r in rows)}
        best = max(means, key=means.get)
        table = ", ".join(f"{m} {a:.3f}" for m, a in sorted(means.items(), key=lambda kv: -kv[1]))
        if value != best:
            raise Incorrect(f"measured at 5 labels per class: {table}")
        return f"measured: {table}."

    def examples(self):
        runs = [dict(method=m, labels_per_class=5, seed=0, acc=a)
                for m, a in zip(METHODS, (0.51, 0.36, 0.37, 0.36, 0.40, 0.37))]
        runs.append(dict(method="concat", labels_per_class=100, seed=0, acc=0.9))
        return [("source-only", runs)], [("concat", runs), ("product", runs), ("fusion", runs)]


q1 = ConcatFeatures()
q2 = WeightedSumWithCheck()
q3 = BlockedByProduct()
q4 = WinnerAtFive()
