"""Exercises on domain adaptation: MMD and CORAL by hand (NumPy), the gradient reversal layer in
PyTorch or TensorFlow, and reading the measured runs (does CORAL help on MNIST-M? how many target
labels is adaptation worth?).

Neither framework is imported here: the gradient-reversal check imports the one the learner names,
inside :meth:`GradientReversal.observe`, and hands the grader plain lists."""

from __future__ import annotations

import numpy as np

from tlcourse.exercises._measured import MeasuredQuestion, as_records, mean_of
from tlcourse.exercises.core import Incorrect, Question, call_learner, expect_close
from tlcourse.methods import alignment as _al


def _case(seed: int, m: int = 7, n: int = 5, d: int = 3):
    """Small feature batches with different means and covariances (and m ≠ n)."""
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(m, d))
    xt = rng.normal(size=(n, d)) @ np.diag(np.linspace(0.5, 2.0, d)) + np.linspace(1.0, -1.0, d)
    return xs, xt


def _scalar(value, what):
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as err:
        raise Incorrect(f"{what} should return one number, got {type(value).__name__}") from err
    if arr.shape != ():
        raise Incorrect(f"{what} should return one number, got an array of shape {arr.shape}")
    if not np.isfinite(arr):
        raise Incorrect(f"{what} returned {float(arr)}")
    return float(arr)


_mean = mean_of  # the mean accuracy of the runs matching the keywords


# -- q1 ----------------------------------------------------------------------------------------


class LinearMMD(Question):
    id = "domain_adaptation.q1"
    prompt = (
        "Write linear_mmd2(xs, xt): MMD² with the linear kernel k(a, b) = a·b between source features "
        "xs (m×d) and target features xt (n×d). It reduces to the squared distance between the two means."
    )
    hints = [
        "mean k(x_i, x_j) over source pairs is (mean x)·(mean x); do the same for the target and the cross term.",
        "So MMD² = ||μ_s − μ_t||²: take the mean over the rows (axis=0), subtract, square, sum.",
    ]
    solution_code = (
        "def linear_mmd2(xs, xt):\n"
        "    diff = xs.mean(axis=0) - xt.mean(axis=0)   # one mean feature vector per domain\n"
        "    return float(diff @ diff)                  # squared Euclidean distance"
    )

    def _check(self, fn):
        xs, xt = _case(11)
        got = _scalar(call_learner(fn, xs.copy(), xt.copy()), "linear_mmd2(xs, xt)")
        expected = _al.linear_mmd2(xs, xt)
        diff = xs.mean(0) - xt.mean(0)
        if np.isclose(got, np.sqrt(expected)):
            raise Incorrect("that is the distance ||μ_s − μ_t||; MMD² is its square")
        if np.isclose(got, float(np.sum(diff)) ** 2) or np.isclose(got, float(np.sum(diff))):
            raise Incorrect("square each feature's difference before summing: Σ_k (μ_s,k − μ_t,k)²")
        row_diff = xs.mean(1)[: len(xt)] - xt.mean(1)
        if np.isclose(got, float(row_diff @ row_diff)):
            raise Incorrect("average over the examples (axis=0), not over the features (axis=1)")
        expect_close(got, expected, what="linear MMD²")
        same = _scalar(call_learner(fn, xs.copy(), xs.copy()), "linear_mmd2(xs, xs)")
        expect_close(same, 0.0, what="linear_mmd2(xs, xs) (identical samples)")
        return ("the linear kernel compares the means only: two samples with equal means but different "
                "spreads get MMD² = 0. A Gaussian kernel compares every moment.")

    def examples(self):
        def good(xs, xt):
            d = xs.mean(0) - xt.mean(0)
            return float(d @ d)

        def by_kernel(xs, xt):
            return float((xs @ xs.T).mean() + (xt @ xt.T).mean() - 2 * (xs @ xt.T).mean())

        def not_squared(xs, xt):
            return float(np.linalg.norm(xs.mean(0) - xt.mean(0)))

        def sum_first(xs, xt):
            return float(np.sum(xs.mean(0) - xt.mean(0)) ** 2)

        def wrong_axis(xs, xt):
            d = xs.mean(1)[: len(xt)] - xt.mean(1)
            return float(d @ d)

        return [(good,), (by_kernel,)], [(not_squared,), (sum_first,), (wrong_axis,), (lambda xs, xt: "0",)]


# -- q2 ----------------------------------------------------------------------------------------


class CoralLoss(Question):
    id = "domain_adaptation.q2"
    prompt = (
        "Write coral_loss(xs, xt): Deep CORAL's ||C_s − C_t||²_F / (4 d²), where C_s and C_t are the "
        "(unbiased, 1/(n − 1)) covariance matrices of the d features of xs (m×d) and xt (n×d)."
    )
    hints = [
        "A covariance: centre the columns (x − x.mean(axis=0)), then Xcᵀ Xc / (n − 1). np.cov(x, rowvar=False) does the same.",
        "||A||²_F is the sum of the squared entries, np.sum(A ** 2) — no square root. d = xs.shape[1].",
    ]
    solution_code = (
        "def coral_loss(xs, xt):\n"
        "    def cov(x):\n"
        "        xc = x - x.mean(axis=0)\n"
        "        return xc.T @ xc / (len(x) - 1)\n"
        "    d = xs.shape[1]\n"
        "    return float(np.sum((cov(xs) - cov(xt)) ** 2) / (4 * d * d))"
    )

    def _check(self, fn):
        xs, xt = _case(12)
        got = _scalar(call_learner(fn, xs.copy(), xt.copy()), "coral_loss(xs, xt)")
        expected = _al.coral(xs, xt)
        d = xs.shape[1]

        def variant(cov, scale=4.0 * d * d, root=False):
            v = np.sum((cov(xs) - cov(xt)) ** 2)
            return (np.sqrt(v) if root else v) / scale

        if np.isclose(got, variant(lambda x: np.cov(x, rowvar=False, bias=True))):
            raise Incorrect("you used the biased covariance (1/n); Sun & Saenko divide by n − 1")
        if np.isclose(got, variant(lambda x: x.T @ x / (len(x) - 1))):
            raise Incorrect("centre the features first (subtract each column's mean): a covariance, not XᵀX")
        if np.isclose(got, variant(lambda x: np.cov(x, rowvar=False), scale=1.0)):
            raise Incorrect("divide by 4d², with d the number of features (columns)")
        if np.isclose(got, variant(lambda x: np.cov(x, rowvar=False), root=True)):
            raise Incorrect("the squared Frobenius norm: sum the squared entries, no square root")
        if np.isclose(got, variant(lambda x: np.cov(x, rowvar=False), scale=4.0 * len(xs) ** 2)):
            raise Incorrect("d is the number of features (xs.shape[1]), not the number of examples")
        expect_close(got, expected, what="the CORAL loss")
        shifted = _scalar(call_learner(fn, xs.copy(), xs + 3.0), "coral_loss(xs, xs + 3)")
        expect_close(shifted, 0.0, what="coral_loss(xs, xs + 3) (a shifted copy)", atol=1e-9)
        return ("CORAL compares covariances only: a shift of the mean costs nothing "
                f"(coral_loss(xs, xs + 3) = {shifted:.1g}). The features' means need another term, or BatchNorm.")

    def examples(self):
        def good(xs, xt):
            d = xs.shape[1]
            return float(np.sum((np.cov(xs, rowvar=False) - np.cov(xt, rowvar=False)) ** 2) / (4 * d * d))

        def biased(xs, xt):
            d = xs.shape[1]
            c = [np.cov(x, rowvar=False, bias=True) for x in (xs, xt)]
            return float(np.sum((c[0] - c[1]) ** 2) / (4 * d * d))

        def uncentred(xs, xt):
            d = xs.shape[1]
            c = [x.T @ x / (len(x) - 1) for x in (xs, xt)]
            return float(np.sum((c[0] - c[1]) ** 2) / (4 * d * d))

        def no_scale(xs, xt):
            return float(np.sum((np.cov(xs, rowvar=False) - np.cov(xt, rowvar=False)) ** 2))

        def rooted(xs, xt):
            d = xs.shape[1]
            return float(np.linalg.norm(np.cov(xs, rowvar=False) - np.cov(xt, rowvar=False)) / (4 * d * d))

        return [(good,), (_al.coral,)], [(biased,), (uncentred,), (no_scale,), (rooted,)]


# -- q3 ----------------------------------------------------------------------------------------


def _torch_reversal(fn, lam, x0, g):
    import torch

    x = torch.tensor(x0, dtype=torch.float32, requires_grad=True)
    out = call_learner(fn, x, lam)
    if not isinstance(out, torch.Tensor):
        raise Incorrect(f"grad_reverse should return a tensor, got {type(out).__name__}")
    forward = out.detach().cpu().numpy().astype(float).tolist()
    if not out.requires_grad:
        return forward, None
    (out * torch.tensor(g, dtype=out.dtype)).sum().backward()
    return forward, None if x.grad is None else x.grad.numpy().astype(float).tolist()


def _tf_reversal(fn, lam, x0, g):
    import tensorflow as tf

    x = tf.constant(x0, dtype=tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = call_learner(fn, x, lam)
        if not tf.is_tensor(out):
            raise Incorrect(f"grad_reverse should return a tensor, got {type(out).__name__}")
        total = tf.reduce_sum(tf.cast(out, tf.float32) * tf.constant(g, dtype=tf.float32))
    grad = tape.gradient(total, x)
    return out.numpy().astype(float).tolist(), None if grad is None else grad.numpy().astype(float).tolist()


class GradientReversal(Question):
    id = "domain_adaptation.q3"
    prompt = (
        "Write grad_reverse(x, lam) in your framework: the gradient reversal layer of DANN. Going forward it "
        "returns x unchanged; going back it multiplies the incoming gradient by −lam. PyTorch: a "
        "torch.autograd.Function with forward and backward; Keras/TensorFlow: a function decorated with "
        "@tf.custom_gradient. Check it with q3.check(grad_reverse, framework=FRAMEWORK)."
    )
    hints = [
        "PyTorch: forward(ctx, x, lam) stores lam on ctx and returns x.view_as(x); backward(ctx, grad_output) "
        "returns one gradient per input of forward: (−ctx.lam * grad_output, None) — None for lam. "
        "Then grad_reverse(x, lam) = YourFunction.apply(x, lam).",
        "TensorFlow: inside grad_reverse define @tf.custom_gradient def reverse(value): ... return "
        "tf.identity(value), grad — where grad(upstream) returns −lam * upstream. Then return reverse(x).",
        "Do not negate the output itself (that flips the forward pass) and do not stop the gradient "
        "(detach / tf.stop_gradient): the feature extractor must receive −λ × the gradient.",
    ]
    solution_code = (
        "if FRAMEWORK == \"torch\":\n"
        "    class GradReverse(torch.autograd.Function):\n"
        "        @staticmethod\n"
        "        def forward(ctx, x, lam):\n"
        "            ctx.lam = lam\n"
        "            return x.view_as(x)                    # identity going forward\n"
        "\n"
        "        @staticmethod\n"
        "        def backward(ctx, grad_output):\n"
        "            return -ctx.lam * grad_output, None    # −λ × the gradient going back; none for λ\n"
        "\n"
        "    def grad_reverse(x, lam=1.0):\n"
        "        return GradReverse.apply(x, lam)\n"
        "else:  # TensorFlow / Keras\n"
        "    def grad_reverse(x, lam=1.0):\n"
        "        @tf.custom_gradient\n"
        "        def reverse(value):\n"
        "            def grad(upstream):\n"
        "                return -lam * upstream             # −λ × the gradient going back\n"
        "            return tf.identity(value), grad        # identity going forward\n"
        "        return reverse(x)"
    )

    _x = (1.0, 2.0, 3.0)
    _g = (0.2, -1.0, 0.5)     # the gradient arriving from the domain classifier
    _lams = (0.4, 1.5)

    def observe(self, fn, framework=None):
        """What the learner's layer does: its output and the gradient that reaches x, for two λ."""
        if framework not in ("torch", "tf"):
            raise Incorrect(f"say which framework your grad_reverse uses: framework='torch' or 'tf', got {framework!r}")
        run = _torch_reversal if framework == "torch" else _tf_reversal
        seen = {}
        for lam in self._lams:
            forward, grad = run(fn, lam, list(self._x), list(self._g))
            seen[str(lam)] = {"forward": forward, "grad": grad}
        return seen

    def _judge(self, observation):
        x, g = np.array(self._x), np.array(self._g)
        for lam in self._lams:
            seen = observation.get(str(lam)) if isinstance(observation, dict) else None
            if not isinstance(seen, dict):
                raise Incorrect("no observation of the layer")
            try:
                forward = np.asarray(seen.get("forward"), dtype=float)
            except (TypeError, ValueError) as err:
                raise Incorrect("the layer's output is not a tensor of numbers") from err
            if forward.shape != x.shape:
                raise Incorrect(f"the output should have the input's shape {x.shape}, got {forward.shape}")
            if np.allclose(forward, -x):
                raise Incorrect("the forward pass must be the identity: you negated the features themselves, "
                                "reverse only the gradient")
            if not np.allclose(forward, x):
                raise Incorrect(f"the forward pass must return x unchanged; for x = {list(self._x)} it gave "
                                f"{forward.tolist()}")
            if seen.get("grad") is None:
                raise Incorrect("no gradient reaches x: the layer must not detach / stop the gradient, it "
                                "multiplies it by −λ")
            grad = np.asarray(seen["grad"], dtype=float)
            if grad.shape != x.shape:
                raise Incorrect(f"the gradient should have shape {x.shape}, got {grad.shape}")
            if np.allclose(grad, g):
                raise Incorrect("the gradient passes through unchanged: that is an ordinary identity layer, the "
                                "reversal layer multiplies it by −λ")
            if np.allclose(grad, -g):
                raise Incorrect("reversed, but not scaled: multiply the gradient by −λ, not by −1")
            if np.allclose(grad, lam * g):
                raise Incorrect("scaled by λ but not reversed: the feature extractor would then help the domain "
                                "classifier instead of fooling it")
            if np.allclose(grad, -0.4 * g) and lam != 0.4:
                raise Incorrect("the gradient is −0.4·g whatever λ is: use the lam argument, not a constant")
            expect_close(grad, -lam * g, what=f"the gradient that reaches x (λ = {lam})")
        return ("identity forward, −λ·g backward. The domain classifier after the layer descends the domain loss, "
                "the features before it ascend it: one backward pass trains both sides of the game.")

    def examples(self):
        # the package's own layers are the correct answers
        from tlcourse.methods import alignment_tf, alignment_torch

        class Plain(alignment_torch.GradientReversal):
            @staticmethod
            def backward(ctx, grad_output):
                return grad_output, None

        class Unscaled(alignment_torch.GradientReversal):
            @staticmethod
            def backward(ctx, grad_output):
                return -grad_output, None

        class Constant(alignment_torch.GradientReversal):
            @staticmethod
            def backward(ctx, grad_output):
                return -0.4 * grad_output, None

        def tf_stopped(x, lam=1.0):
            return alignment_tf.tf.stop_gradient(x)

        return [(alignment_torch.grad_reverse, "torch"), (alignment_tf.grad_reverse, "tf")], [
            (lambda x, lam: Plain.apply(x, lam), "torch"), (lambda x, lam: Unscaled.apply(x, lam), "torch"),
            (lambda x, lam: Constant.apply(x, lam), "torch"), (lambda x, lam: -x, "torch"),
            (lambda x, lam: x.detach(), "torch"), (lambda x, lam: lam * x, "torch"),
            (tf_stopped, "tf"), (alignment_tf.grad_reverse, None), (lambda x, lam: "x", "torch"),
        ]


# -- q4 ----------------------------------------------------------------------------------------


class PredictCoral(MeasuredQuestion):
    id = "domain_adaptation.q4"
    target = "mnist-m"
    margin = 0.02
    prompt = (
        "Predict, then verify: on MNIST → MNIST-M, does CORAL beat source-only by at least 2 points of "
        "target accuracy (mean over seeds)? Answer True or False, then check it against the runs."
    )
    hints = [
        "CORAL matches the covariances of the features of the two domains, nothing else: not their means.",
        "Read the table of section 5: the rows 'source-only' and 'CORAL', the MNIST-M column.",
    ]
    solution_code = "coral_helps = False   # covariances are not what tells MNIST-M from MNIST"

    def _check(self, prediction, runs=None):
        if not isinstance(prediction, (bool, np.bool_)):
            raise Incorrect(f"answer True or False, got {prediction!r}")
        if runs is None:
            raise Incorrect("pass the measured runs: q4.check(coral_helps, runs=runs)")
        records = [r for r in as_records(runs) if r.get("target", self.target) == self.target]
        coral, source = _mean(records, method="CORAL"), _mean(records, method="source-only")
        measured = coral - source >= self.margin
        if bool(prediction) != measured:
            raise Incorrect(f"the measurement says otherwise: CORAL {coral:.3f} vs source-only {source:.3f} "
                            f"on {self.target} ({coral - source:+.3f})")
        return f"measured: CORAL {coral:.3f}, source-only {source:.3f} ({coral - source:+.3f})."

    def examples(self):
        def runs(coral):
            return [dict(target="mnist-m", method="source-only", labels_per_class=0, seed=0, acc=0.40),
                    dict(target="mnist-m", method="CORAL", labels_per_class=0, seed=0, acc=coral),
                    dict(target="digits", method="CORAL", labels_per_class=0, seed=0, acc=0.10)]

        return [(True, runs(0.45)), (False, runs(0.41))], [(False, runs(0.45)), (True, runs(0.40)),
                                                           ("yes", runs(0.45)), (True, None)]


# -- q5 ----------------------------------------------------------------------------------------


class LabelsWorth(MeasuredQuestion):
    id = "domain_adaptation.q5"
    target = "mnist-m"
    curve = "fine-tuned on k target labels"
    adapted = ("MMD", "CORAL", "DANN")
    prompt = (
        "Read the plot: on MNIST-M, what is the smallest number of labelled target images per class at which "
        "fine-tuning the source network on them beats the best adaptation method (which used no target "
        "label)? Answer one of the budgets measured, or None if none of them does."
    )
    hints = [
        "Compare each point of the 'fine-tuned on k target labels' curve with the highest dashed line "
        "among MMD, CORAL and DANN.",
        "Means over seeds: acc.loc['mnist-m', ['MMD', 'CORAL', 'DANN']].max() is the best adaptation; "
        "budget_runs grouped by labels_per_class gives the curve.",
    ]
    solution_code = (
        'best = acc.loc["mnist-m", ["MMD", "CORAL", "DANN"]].max()\n'
        'curve = budget_runs[budget_runs.target == "mnist-m"].groupby("labels_per_class")["acc"].mean()\n'
        "labels_worth = next((k for k, a in curve.items() if a > best), None)"
    )

    def _check(self, answer, runs=None):
        if runs is None:
            raise Incorrect("pass the measured runs: q5.check(labels_worth, runs=pd.concat([runs, budget_runs]))")
        records = [r for r in as_records(runs) if r.get("target", self.target) == self.target]
        budgets = sorted({int(r["labels_per_class"]) for r in records if r["method"] == self.curve})
        present = [m for m in self.adapted if any(r["method"] == m for r in records)]
        if not budgets or not present:
            raise Incorrect(f"pass a table holding both the adaptation runs and the '{self.curve}' runs")
        if isinstance(answer, bool) or (answer is not None and not isinstance(answer, (int, np.integer))):
            raise Incorrect(f"answer one of the budgets {budgets} (an int), or None, got {answer!r}")
        if answer is not None and int(answer) not in budgets:
            raise Incorrect(f"{answer} is not one of the budgets measured, {budgets}")
        best = max(_mean(records, method=m) for m in present)
        curve = {k: _mean(records, method=self.curve, labels_per_class=k) for k in budgets}
        truth = next((k for k in budgets if curve[k] > best), None)
        if answer != truth:
            shown = ", ".join(f"k={k}: {a:.3f}" for k, a in curve.items())
            raise Incorrect(f"measured: best adaptation {best:.3f}; {self.curve}: {shown}")
        if truth is None:
            return f"none of the budgets reaches the best adaptation ({best:.3f})."
        return (f"{truth} labelled images per class ({10 * truth} in all) beat the best adaptation ({best:.3f}), "
                "which used thousands of unlabelled ones.")

    def examples(self):
        def runs(k5):
            rows = [dict(target="mnist-m", method="DANN", labels_per_class=0, seed=0, acc=0.50),
                    dict(target="mnist-m", method="MMD", labels_per_class=0, seed=0, acc=0.55),
                    dict(target="digits", method="MMD", labels_per_class=0, seed=0, acc=0.95)]
            for k, acc in ((1, 0.2), (5, k5), (20, 0.7)):
                rows.append(dict(target="mnist-m", method=self.curve, labels_per_class=k, seed=0, acc=acc))
            return rows

        return [(5, runs(0.6)), (20, runs(0.5)), (np.int64(5), runs(0.6))], [
            (1, runs(0.6)), (20, runs(0.6)), (None, runs(0.6)), ("five", runs(0.6)), (7, runs(0.6)), (5, None),
        ]


q1 = LinearMMD()
q2 = CoralLoss()
q3 = GradientReversal()
q4 = PredictCoral()
q5 = LabelsWorth()
