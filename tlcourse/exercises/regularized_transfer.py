"""Exercises on regularized transfer: the L2-SP loss, forgetting, choosing λ, the limit λ → ∞.

The first question is answered in framework code (PyTorch or Keras). Its checker builds a
tiny model of the course's small CNN in the learner's framework — imported only then —
and evaluates the learner's loss on it, value and gradient; the framework is named by the
check call (``framework="torch"`` or ``"tf"``) or, failing that, guessed from the modules
already imported. The other questions are framework-neutral (strings, numbers) and are
checked against the runs the notebook measured.
"""

from __future__ import annotations

import sys

import numpy as np

from tlcourse.exercises.core import Incorrect, Question, call_learner, expect_choice

FRAMEWORKS = ("torch", "tf")
_LAM = 0.37  # the λ the checker passes: not 1, not ½, so that forgetting it shows


def _framework(framework):
    if framework is None:
        loaded = [fw for fw, module in (("torch", "torch"), ("tf", "tensorflow")) if module in sys.modules]
        if len(loaded) != 1:
            raise Incorrect('name your framework: q1.check(make_l2sp_loss, framework="torch") or framework="tf"')
        framework = loaded[0]
    if framework not in FRAMEWORKS:
        raise Incorrect(f"framework must be one of {FRAMEWORKS}, got {framework!r}")
    return framework


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _scalar(value, n):
    """The loss as one float: fit averages a per-example vector, so we do too."""
    arr = np.asarray(value, dtype=float)
    if arr.shape == (n,):
        arr = arr.mean()
    if arr.shape != ():
        raise Incorrect(f"loss_fn must return one number (a scalar tensor), got shape {arr.shape}")
    return float(arr)


def _tiny_case(framework):
    """A tiny small-CNN (8×8 inputs, quarter width) moved away from its snapshot, and a batch."""
    rng = np.random.default_rng(8)
    x = rng.random((6, 8, 8, 1), dtype=np.float32)
    y = np.array([0, 3, 9, 1, 3, 7])
    if framework == "torch":
        import torch

        from tlcourse.methods.regularization_torch import snapshot
        from tlcourse.models.small_cnn_torch import small_cnn

        model = small_cnn(seed=0, width=0.25, image_size=8)
        source = snapshot(model.features)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.from_numpy(rng.normal(scale=0.05, size=tuple(p.shape)).astype(np.float32)))
        trunk = {name: p for name, p in model.features.named_parameters()}
        return model, source, trunk, torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), torch.from_numpy(y)
    import tensorflow as tf

    from tlcourse.methods.regularization_tf import snapshot
    from tlcourse.models.small_cnn_tf import small_cnn

    model = small_cnn(seed=0, width=0.25, image_size=8)
    source = {k: v for name in ("conv1", "conv2", "fc1") for k, v in snapshot(model.get_layer(name)).items()}
    for v in model.trainable_weights:
        v.assign_add(rng.normal(scale=0.05, size=tuple(v.shape)).astype(np.float32))
    trunk = {v.path: v for v in model.trainable_weights if v.path in source}
    return model, source, trunk, tf.constant(x), tf.constant(y.astype(np.int32))


def _evaluate_loss(make_loss, framework):
    """Run the learner's loss on the tiny case: its value, its gradient, and the reference numbers."""
    model, source, trunk, x, y = _tiny_case(framework)
    loss_fn = call_learner(make_loss, source, _LAM)
    if not callable(loss_fn):
        raise Incorrect(f"make_l2sp_loss(source, lam) must return a function loss_fn(logits, y, model), "
                        f"got {type(loss_fn).__name__}")
    try:
        if framework == "torch":
            logits = model(x)
            value = call_learner(loss_fn, logits, y, model)
            if not hasattr(value, "backward"):
                raise Incorrect(f"loss_fn must return a torch tensor (fit calls .backward() on it), "
                                f"got {type(value).__name__}")
            if value.dim():
                value = value.mean()
            if value.requires_grad:
                value.backward()
            grads = {k: (None if p.grad is None else p.grad.numpy().copy()) for k, p in trunk.items()}
            z = logits.detach().numpy().astype(float)
            w = {k: p.detach().numpy().astype(float) for k, p in trunk.items()}
            s = {k: source[k].numpy().astype(float) for k in trunk}
            value = float(value.detach())
        else:
            import tensorflow as tf

            with tf.GradientTape() as tape:
                logits = model(x, training=True)
                value = call_learner(loss_fn, logits, y, model)
                if not tf.is_tensor(value):
                    value = tf.constant(np.asarray(value, dtype=np.float32))  # no gradient: caught below
                value = tf.reduce_mean(value)
            keys = list(trunk)
            got = tape.gradient(value, [trunk[k] for k in keys])
            grads = {k: (None if g is None else np.asarray(g)) for k, g in zip(keys, got)}
            z = np.asarray(logits, dtype=float)
            w = {k: trunk[k].numpy().astype(float) for k in keys}
            s = {k: np.asarray(source[k], dtype=float) for k in keys}
            value = float(value)
    except KeyError as err:
        raise Incorrect(
            f"your loss looked up {err} in the snapshot and it is not there: only the trunk (conv1, conv2, fc1) "
            "has source weights — the head is left out of the L2-SP term. Loop over trunk_weights(model)"
        ) from err
    y_np = np.asarray(y)
    per_example = -_log_softmax(z)[np.arange(len(y_np)), y_np]
    ref = {
        "ce": per_example.mean(),
        "ce_sum": per_example.sum(),
        "sp": sum(np.sum((w[k] - s[k]) ** 2) for k in w),
        "l2": sum(np.sum(w[k] ** 2) for k in w),
        "sp_grad": {k: 2.0 * (w[k] - s[k]) for k in w},
    }
    return value, grads, ref


class _ContextQuestion(Question):
    """A question whose check takes one answer and a keyword (``CONTEXT``): the runs, the framework.

    ``examples()`` give that keyword's value as a second positional argument.
    """

    CONTEXT = "runs"

    def evaluate(self, *answer, **context):
        if len(answer) == 2 and not context:
            answer, context = answer[:1], {self.CONTEXT: answer[1]}
        return super().evaluate(*answer, **context)


class L2SPLoss(_ContextQuestion):
    id = "regularized_transfer.q1"
    prompt = (
        "Write make_l2sp_loss(source, lam), returning loss_fn(logits, y, model) = mean cross-entropy "
        "+ lam · Σ ||w − w_s||² over the trunk's weights (conv1, conv2, fc1; not the head), where "
        "source maps each trunk weight's name to its source value w_s."
    )
    hints = [
        "Use the notebook's helpers: cross_entropy(logits, y) is the data term, trunk_weights(model) gives "
        "(name, weight) pairs of the trunk, and sum_of_squares(t) adds up t² over all its entries.",
        "source[name] is w_s for the weight called name: subtract it before squaring — without it, you "
        "have plain L2, which pulls toward 0.",
        "R = sum(sum_of_squares(w - source[name]) for name, w in trunk_weights(model)); the loss is "
        "cross_entropy(logits, y) + lam * R. No square root, no ½.",
    ]
    solution_code = (
        "def make_l2sp_loss(source, lam):\n"
        "    def loss_fn(logits, y, model):\n"
        "        R = sum(sum_of_squares(w - source[name]) for name, w in trunk_weights(model))\n"
        "        return cross_entropy(logits, y) + lam * R\n"
        "    return loss_fn"
    )

    CONTEXT = "framework"

    def observe(self, make_loss, framework=None):
        """The learner's loss on a tiny model: its value, the reference terms (cross-entropy,
        Σ||w − w_s||², Σ||w||²) and, per trunk weight, whether its gradient is
        ∂CE/∂w + 2λ(w − w_s), ∂CE/∂w alone, or missing."""
        framework = _framework(framework)
        value, grads, ref = _evaluate_loss(make_loss, framework)
        ce_only = self._ce_grads(framework)
        report = {}
        for k, g in grads.items():
            if g is None:
                report[k] = None
                continue
            want = ce_only[k] + _LAM * ref["sp_grad"][k]
            report[k] = {"full": bool(np.allclose(g, want, rtol=1e-3, atol=1e-5)),
                         "ce_only": bool(np.allclose(g, ce_only[k], rtol=1e-3, atol=1e-5)),
                         "error": float(np.max(np.abs(g - want)))}
        return {"value": float(value), "ref": {k: float(ref[k]) for k in ("ce", "ce_sum", "sp", "l2")},
                "grads": report}

    def _judge(self, observation):
        value, ref, grads = observation["value"], observation["ref"], observation["grads"]
        expected = ref["ce"] + _LAM * ref["sp"]

        def near(a, b):
            return np.isclose(a, b, rtol=2e-4, atol=1e-5)

        if not near(value, expected):
            diagnoses = [
                (ref["ce"], "that is the cross-entropy alone: add lam · R, the squared distance to the source"),
                (ref["ce"] + _LAM * ref["l2"], "that is plain L2, Σ||w||², which pulls toward 0: subtract the "
                 "source weights, Σ||w − w_s||²"),
                (ref["ce"] + ref["sp"], "the penalty is not multiplied by lam"),
                (ref["ce"] + _LAM * np.sqrt(ref["sp"]), "R is the squared distance: drop the square root"),
                (ref["ce"] + _LAM * ref["sp"] / 2, "R has no factor ½ here (it would live in λ)"),
                (_LAM * ref["sp"], "the data term is missing: add cross_entropy(logits, y)"),
                (ref["ce_sum"] + _LAM * ref["sp"], "the cross-entropy is summed over the batch: fit averages it, "
                 "and the notebook puts the 1/n into lam — use the mean (cross_entropy)"),
            ]
            for wrong, why in diagnoses:
                if near(value, wrong):
                    raise Incorrect(why)
            raise Incorrect(f"on a test model your loss is {value:.5g}, expected {expected:.5g} "
                            f"(cross-entropy {ref['ce']:.4g} + lam · R with R = {ref['sp']:.4g})")
        missing = [k for k, g in grads.items() if g is None]
        if len(missing) == len(grads):
            raise Incorrect("the value is right but no gradient reaches the weights: compute the penalty with "
                            "framework operations on the weights themselves (no .item(), .numpy(), float() or "
                            ".detach())")
        if missing:
            raise Incorrect(f"no gradient reaches {missing}: the penalty must cover every trunk weight")
        for k, g in grads.items():
            if not g["full"]:
                if g["ce_only"]:
                    raise Incorrect("the value is right but the penalty adds nothing to the gradient: it must be "
                                    "computed from the weights with framework operations (no .item()/.numpy())")
                raise Incorrect(f"the gradient for {k} is off by up to {g['error']:.3g}")
        return "∇R = 2(w − w_s): the pull is proportional to how far each weight has moved from the source."

    @staticmethod
    def _ce_grads(framework):
        """Gradients of the cross-entropy alone on the tiny case (to spot a detached penalty)."""
        model, source, trunk, x, y = _tiny_case(framework)
        if framework == "torch":
            from torch.nn import functional as F

            F.cross_entropy(model(x), y).backward()
            return {k: p.grad.numpy().copy() for k, p in trunk.items()}
        import keras
        import tensorflow as tf

        ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        keys = list(trunk)
        with tf.GradientTape() as tape:
            value = ce(y, model(x, training=True))
        return {k: np.asarray(g) for k, g in zip(keys, tape.gradient(value, [trunk[k] for k in keys]))}

    def examples(self):
        def torch_make(kind):
            def make(source, lam):
                import torch
                from torch.nn import functional as F

                def loss_fn(logits, y, model):
                    ce = F.cross_entropy(logits, y)
                    trunk = list(model.features.named_parameters())
                    if kind == "good":
                        return ce + lam * sum(((w - source[n]) ** 2).sum() for n, w in trunk)
                    if kind == "package":
                        from tlcourse.methods.regularization_torch import l2sp_penalty

                        return ce + lam * l2sp_penalty(model.features, source)
                    if kind == "l2":
                        return ce + lam * sum((w ** 2).sum() for _, w in trunk)
                    if kind == "detached":
                        return ce + lam * float(sum(((w - source[n]) ** 2).sum().item() for n, w in trunk))
                    if kind == "with_head":
                        return ce + lam * sum(((w - source[n]) ** 2).sum() for n, w in model.named_parameters())
                    if kind == "sqrt":
                        return ce + lam * torch.sqrt(sum(((w - source[n]) ** 2).sum() for n, w in trunk))
                    if kind == "summed_ce":
                        return F.cross_entropy(logits, y, reduction="sum") + lam * sum(
                            ((w - source[n]) ** 2).sum() for n, w in trunk)
                    raise ValueError(kind)

                return loss_fn

            return make

        def tf_make(kind):
            def make(source, lam):
                import keras
                import tensorflow as tf

                ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

                def loss_fn(logits, y, model):
                    trunk = [(v.path, v) for v in model.trainable_weights if v.path in source]
                    R = tf.add_n([tf.reduce_sum(tf.square(v - source[n])) for n, v in trunk])
                    if kind == "good":
                        return ce(y, logits) + lam * R
                    if kind == "no_lambda":
                        return ce(y, logits) + R
                    if kind == "half":
                        return ce(y, logits) + lam * R / 2
                    if kind == "no_ce":
                        return lam * R
                    raise ValueError(kind)

                return loss_fn

            return make

        good = [(torch_make("good"), "torch"), (torch_make("package"), "torch"), (tf_make("good"), "tf")]
        bad = [(torch_make(k), "torch") for k in ("l2", "detached", "with_head", "sqrt", "summed_ce")]
        bad += [(tf_make(k), "tf") for k in ("no_lambda", "half", "no_ce")]
        return good, bad


# -- measured questions --------------------------------------------------------------------------


def _records(runs):
    if runs is None:
        raise Incorrect("pass the measured runs too: q.check(answer, runs=sweep_runs)")
    return runs.to_dict(orient="records") if hasattr(runs, "to_dict") else list(runs)


METHODS = ("none", "L2", "L2-SP")


class ForgettingRanking(_ContextQuestion):
    id = "regularized_transfer.q2"
    prompt = (
        "Predict, then verify: at λ = 100 (and no penalty for 'none'), order 'none', 'L2' and 'L2-SP' from the "
        "one that keeps the most source accuracy (trunk + original head on MNIST) to the one that keeps the least."
    )
    hints = [
        "L2 pulls every weight toward 0, L2-SP toward the source's weights, 'none' lets the few target examples "
        "push the weights wherever they like.",
        "Which of the three targets is a point where the source's features still work?",
    ]
    solution_code = 'ranking = ["L2-SP", "none", "L2"]'
    LAMBDA = 100.0

    def _check(self, ranking, runs=None):
        if isinstance(ranking, str) or not isinstance(ranking, (list, tuple)):
            raise Incorrect(f"answer a list of the three names, e.g. {list(METHODS)}, got {ranking!r}")
        names = [str(r).strip() for r in ranking]
        if sorted(names) != sorted(METHODS):
            raise Incorrect(f"order exactly the three names {list(METHODS)}, got {names}")
        rows = _records(runs)
        kept = {}
        for method in METHODS:
            sel = [r["source_acc"] for r in rows if r["method"] == method
                   and (method == "none" or np.isclose(r["lam"], self.LAMBDA))]
            if not sel:
                raise Incorrect(f"the runs hold no {method!r} run at λ = {self.LAMBDA:g}: keep 100 in LAMBDAS")
            kept[method] = float(np.mean(sel))
        measured = sorted(METHODS, key=lambda m: -kept[m])
        table = ", ".join(f"{m} {kept[m]:.3f}" for m in measured)
        if names != measured:
            raise Incorrect(f"the measurement says otherwise — mean source accuracy: {table}")
        return f"measured: {table}. Where the pull points matters more than how strong it is."

    def examples(self):
        runs = [dict(method="none", lam=0.0, seed=0, source_acc=0.95),
                dict(method="L2", lam=100.0, seed=0, source_acc=0.35),
                dict(method="L2", lam=10.0, seed=0, source_acc=0.99),
                dict(method="L2-SP", lam=100.0, seed=0, source_acc=0.97)]
        right = ["L2-SP", "none", "L2"]
        return [(right, runs)], [(["none", "L2-SP", "L2"], runs), (["L2-SP", "L2"], runs), ("L2-SP", runs),
                                  (["L2-SP", "none", "L1"], runs)]


class PickLambda(_ContextQuestion):
    id = "regularized_transfer.q3"
    prompt = (
        "Pick λ from the sweep: which λ gives L2-SP its highest mean target validation accuracy "
        "(column val_acc, mean over seeds)?"
    )
    hints = [
        "Keep the L2-SP rows of sweep_runs, group them by 'lam' and average 'val_acc' over the seeds.",
        "pandas: .groupby('lam')['val_acc'].mean().idxmax() gives the λ of the largest mean.",
    ]
    solution_code = (
        'best_lambda = sweep_runs[sweep_runs.method == "L2-SP"].groupby("lam")["val_acc"].mean().idxmax()'
    )
    TIE = 0.003  # two λ whose means differ by less than this are a tie

    def _check(self, lam, runs=None):
        try:
            value = float(lam)
        except (TypeError, ValueError) as err:
            raise Incorrect(f"answer a number, one of the swept λ values, got {lam!r}") from err
        rows = [r for r in _records(runs) if r["method"] == "L2-SP"]
        if not rows:
            raise Incorrect("the runs hold no L2-SP rows: pass sweep_runs")
        lams = sorted({float(r["lam"]) for r in rows})
        means = {v: float(np.mean([r["val_acc"] for r in rows if np.isclose(r["lam"], v)])) for v in lams}
        match = [v for v in lams if np.isclose(v, value)]
        if not match:
            raise Incorrect(f"{value:g} was not swept; the sweep tried λ in {lams}")
        best = max(means.values())
        table = ", ".join(f"λ={v:g}: {m:.3f}" for v, m in means.items())
        if means[match[0]] < best - self.TIE:
            raise Incorrect(f"mean validation accuracy of L2-SP by λ — {table}")
        return f"{table}. Chosen on validation data, so the test numbers below stay honest."

    def examples(self):
        runs = [dict(method="L2-SP", lam=v, seed=s, val_acc=a)
                for v, accs in ((1.0, (0.90, 0.91)), (10.0, (0.93, 0.94)), (100.0, (0.93, 0.935)))
                for s, a in enumerate(accs)]
        runs.append(dict(method="L2", lam=1.0, seed=0, val_acc=0.99))
        return [(10.0, runs), (100, runs)], [(1.0, runs), (1000.0, runs), ("ten", runs)]


class LargeLambdaLimit(Question):
    id = "regularized_transfer.q4"
    prompt = (
        "The L2-SP penalty covers the trunk, not the head. As λ → ∞, what does L2-SP fine-tuning become? "
        "Answer one of 'plain fine-tuning', 'feature extraction', 'training from scratch', "
        "'the source model unchanged'."
    )
    hints = [
        "An infinite pull allows no distance at all: where do the trunk's weights stay?",
        "And the head — is it in the penalty?",
    ]
    solution_code = 'limit = "feature extraction"'
    OPTIONS = ("plain fine-tuning", "feature extraction", "training from scratch", "the source model unchanged")

    def _check(self, answer):
        why = {
            "plain fine-tuning": "that is λ = 0: no pull at all",
            "training from scratch": "nothing moves toward a random start: the pull is toward the source's weights",
            "the source model unchanged": "the trunk stays at the source's weights, but the head is not in the "
                                          "penalty: it still trains on the target",
        }
        value = str(answer).strip().lower() if isinstance(answer, str) else answer
        if value in why:
            raise Incorrect(why[value])
        expect_choice(answer, self.OPTIONS, "feature extraction", why="")
        return ("the trunk is frozen at w_s and only the head learns: L2-SP slides between fine-tuning (λ = 0) "
                "and feature extraction (λ → ∞).")

    def examples(self):
        return [("feature extraction",), ("Feature extraction ",)], [
            ("plain fine-tuning",), ("the source model unchanged",), ("training from scratch",), ("freezing",),
        ]


q1 = L2SPLoss()
q2 = ForgettingRanking()
q3 = PickLambda()
q4 = LargeLambdaLimit()
