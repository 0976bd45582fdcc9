"""Exercises on losses and optimizers: mean vs sum, stable cross-entropy, L2-SP, one Adam step."""

from __future__ import annotations

import numpy as np

from tlcourse.exercises.core import Incorrect, Question, call_learner, expect_close

# -- reference formulas (what the checks compare with) -------------------------------------


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(-_log_softmax(logits)[np.arange(len(labels)), labels].mean())


def _adam(w, g, m, v, t, lr, b1, b2, eps, *, bias_correction=True, keras_eps=False,
          eps_inside=False, store_corrected=False):
    """One Adam step (Kingma & Ba 2015, Algorithm 1) and the usual ways of getting it wrong."""
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    m_hat = m / (1 - b1**t) if bias_correction else m
    v_hat = v / (1 - b2**t) if bias_correction else v
    if keras_eps:
        step = lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
    elif eps_inside:
        step = lr * m_hat / np.sqrt(v_hat + eps)
    else:
        step = lr * m_hat / (np.sqrt(v_hat) + eps)
    if store_corrected:
        m, v = m_hat, v_hat
    return w - step, m, v


def _quiet(fn, *args):
    with np.errstate(all="ignore"):
        return call_learner(fn, *args)


def _scalar(value, what):
    arr = np.asarray(value, dtype=float)
    if arr.shape != ():
        raise Incorrect(f"{what} should be one number (the mean over the batch), got shape {arr.shape}")
    return float(arr)


# -- q1 ----------------------------------------------------------------------------------------


class SumVersusMean(Question):
    id = "losses_optimizers.q1"
    prompt = (
        "SGD with lr = 0.1 on the mean loss over batches of 32 examples. You switch the loss to the sum "
        "over the batch. Which learning rate gives exactly the same updates?"
    )
    hints = [
        "The sum over a batch of 32 is 32 × the mean, and so is its gradient.",
        "The update is lr × gradient: keep the product the same.",
    ]
    solution_code = "lr_for_sum = 0.1 / 32"

    def _check(self, lr):
        try:
            value = float(lr)
        except (TypeError, ValueError) as err:
            raise Incorrect(f"answer a number, got {lr!r}") from err
        if np.isclose(value, 0.1 * 32):
            raise Incorrect("the summed loss's gradient is 32× larger, so the learning rate must be 32× smaller")
        if np.isclose(value, 0.1):
            raise Incorrect("the gradient of the sum is 32× the gradient of the mean: the same lr makes 32× larger steps")
        expect_close(value, 0.1 / 32, what="the learning rate")
        return "0.003125. The minimiser is the same; only the gradient's scale, and so the step, changes."

    def examples(self):
        return [(0.1 / 32,), (0.003125,)], [(3.2,), (0.1,), (0.01,), ("small",)]


# -- q2 ----------------------------------------------------------------------------------------


class StableCrossEntropy(Question):
    id = "losses_optimizers.q2"
    prompt = (
        "Write cross_entropy(logits, labels): the mean over the batch of −log softmax(z_i)[y_i], "
        "computed from logits (N×K) and integer labels (N,), stable for logits in the thousands."
    )
    hints = [
        "−log softmax(z)[y] = logsumexp(z) − z[y], and logsumexp(z) = m + log Σ_k exp(z_k − m) with m = max_k z_k.",
        "Subtract each row's maximum (keepdims=True) before np.exp: every exponent is then ≤ 0, nothing overflows.",
        "Compute the log-probabilities as z − logsumexp(z), not as np.log(softmax): a probability that underflows "
        "to 0 has log −inf. Pick each row's label column with z[np.arange(N), labels].",
    ]
    solution_code = (
        "def cross_entropy(logits, labels):\n"
        "    z = logits - logits.max(axis=1, keepdims=True)           # every exponent <= 0\n"
        "    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))\n"
        "    return -log_probs[np.arange(len(labels)), labels].mean()"
    )

    def _check(self, fn):
        rng = np.random.default_rng(3)
        logits = rng.normal(scale=3.0, size=(6, 4))
        labels = np.array([0, 3, 1, 2, 3, 0])
        expected = _cross_entropy(logits, labels)
        got = _quiet(fn, logits.copy(), labels.copy())
        per_example = -_log_softmax(logits)[np.arange(6), labels]
        if np.shape(got) == per_example.shape and np.allclose(got, per_example):
            raise Incorrect("you returned one loss per example: return their mean over the batch")
        got = _scalar(got, "cross_entropy(logits, labels)")
        if np.isclose(got, per_example.sum()):
            raise Incorrect("you returned the sum over the batch: divide by N (the frameworks' default is the mean)")
        if np.isclose(got, -expected):
            raise Incorrect("the sign is flipped: the loss is −log p(y), a positive number")
        expect_close(got, expected, what="cross_entropy on ordinary logits")

        big = np.array([[1000.0, 0.0, -1000.0], [0.0, 800.0, 1000.0], [-3.0, 5.0, 2.0]])
        big_labels = np.array([0, 0, 1])  # the second row's true class is 1000 below the top
        expected = _cross_entropy(big, big_labels)
        got = _scalar(_quiet(fn, big.copy(), big_labels.copy()), "cross_entropy(logits, labels)")
        if not np.isfinite(got):
            raise Incorrect(
                f"on logits like 1000 your loss is {got}: np.exp(1000) overflows to inf (and a probability of "
                "e^-1000 underflows to 0, whose log is -inf). Subtract each row's maximum before np.exp and "
                "take log-probabilities as z − logsumexp(z)"
            )
        expect_close(got, expected, what="cross_entropy on large logits", atol=1e-6, rtol=1e-9)
        return "the log-sum-exp trick: all exponents ≤ 0, and the log is taken of a sum ≥ 1."

    def examples(self):
        def stable(z, y):
            z = z - z.max(axis=1, keepdims=True)
            return -(z - np.log(np.exp(z).sum(axis=1, keepdims=True)))[np.arange(len(y)), y].mean()

        def naive(z, y):  # overflows: exp(1000) = inf, inf / inf = nan
            p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
            return -np.log(p[np.arange(len(y)), y]).mean()

        def shifted_but_log_of_softmax(z, y):  # no overflow, but p = e^-1000 underflows to 0
            e = np.exp(z - z.max(axis=1, keepdims=True))
            p = e / e.sum(axis=1, keepdims=True)
            return -np.log(p[np.arange(len(y)), y]).mean()

        def summed(z, y):
            return -_log_softmax(z)[np.arange(len(y)), y].sum()

        def per_example(z, y):
            return -_log_softmax(z)[np.arange(len(y)), y]

        def wrong_sign(z, y):
            return _log_softmax(z)[np.arange(len(y)), y].mean()

        def from_scipy(z, y):
            from scipy.special import logsumexp

            return float(np.mean(logsumexp(z, axis=1) - z[np.arange(len(y)), y]))

        return [(stable,), (from_scipy,)], [
            (naive,), (shifted_but_log_of_softmax,), (summed,), (per_example,), (wrong_sign,),
        ]


# -- q3 ----------------------------------------------------------------------------------------


class L2SPPenalty(Question):
    id = "losses_optimizers.q3"
    prompt = (
        "Write l2sp(weights, source_weights): R = Σ_l ||w_l − w_l^s||², the squared distance of a "
        "model's weights (a list of arrays, one per layer) to the source's (a list of the same shapes)."
    )
    hints = [
        "zip(weights, source_weights) pairs each layer's array with the source's.",
        "For one pair: np.sum((w - w_s) ** 2). Add the layers' terms up; no square root, no ½, no mean.",
    ]
    solution_code = (
        "def l2sp(weights, source_weights):\n"
        "    return sum(np.sum((w - w_s) ** 2) for w, w_s in zip(weights, source_weights))"
    )

    @staticmethod
    def _case():
        rng = np.random.default_rng(5)
        shapes = [(4, 3), (3,), (3, 2)]
        source = [rng.normal(size=s) for s in shapes]
        weights = [s + rng.normal(scale=0.5, size=s.shape) for s in source]
        return weights, source

    def _check(self, fn):
        weights, source = self._case()
        got = _scalar(
            call_learner(fn, [w.copy() for w in weights], [s.copy() for s in source]), "l2sp(weights, source_weights)"
        )
        expected = sum(np.sum((w - s) ** 2) for w, s in zip(weights, source))
        if np.isclose(got, sum(np.sum(w**2) for w in weights)):
            raise Incorrect("that is plain L2, Σ||w||², which pulls toward 0: subtract the source's weights first")
        if np.isclose(got, np.sqrt(expected)) or np.isclose(got, sum(np.sqrt(np.sum((w - s) ** 2)) for w, s in zip(weights, source))):
            raise Incorrect("you took the norm, not its square: drop the square root")
        if np.isclose(got, expected / 2):
            raise Incorrect("R has no factor ½ here (put it into λ if you like)")
        if np.isclose(got, np.sum((weights[0] - source[0]) ** 2)):
            raise Incorrect("only the first layer counts in your sum: add the terms of every layer")
        if np.isclose(got, sum(np.mean((w - s) ** 2) for w, s in zip(weights, source))):
            raise Incorrect("you averaged within each layer: R sums the squared differences")
        expect_close(got, expected, what="l2sp(weights, source_weights)")
        zero = call_learner(fn, [s.copy() for s in source], [s.copy() for s in source])
        expect_close(zero, 0.0, what="l2sp(source_weights, source_weights)")
        return "the penalty is 0 at the source's weights and grows with the distance: its gradient is 2(w − w_s)."

    def examples(self):
        def good(ws, ss):
            return sum(np.sum((w - s) ** 2) for w, s in zip(ws, ss))

        def flat(ws, ss):
            d = np.concatenate([(w - s).ravel() for w, s in zip(ws, ss)])
            return float(d @ d)

        return [(good,), (flat,)], [
            (lambda ws, ss: sum(np.sum(w**2) for w in ws),),
            (lambda ws, ss: np.sqrt(good(ws, ss)),),
            (lambda ws, ss: 0.5 * good(ws, ss),),
            (lambda ws, ss: np.sum((ws[0] - ss[0]) ** 2),),
            (lambda ws, ss: sum(np.mean((w - s) ** 2) for w, s in zip(ws, ss)),),
        ]


# -- q4 ----------------------------------------------------------------------------------------


class AdamStep(Question):
    id = "losses_optimizers.q4"
    prompt = (
        "Write adam_step(w, g, m, v, t, lr, beta1, beta2, eps) returning (w_new, m_new, v_new): one Adam "
        "step with bias correction and eps added to sqrt(v̂), as in Kingma & Ba's Algorithm 1 and "
        "torch.optim.Adam. t is the number of this step, 1 for the first."
    )
    hints = [
        "m ← β1·m + (1 − β1)·g and v ← β2·v + (1 − β2)·g², element by element.",
        "m̂ = m / (1 − β1^t), v̂ = v / (1 − β2^t); then w ← w − lr · m̂ / (√v̂ + ε).",
        "Return the *uncorrected* m and v: the next step updates them, and corrects again with its own t.",
    ]
    solution_code = (
        "def adam_step(w, g, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):\n"
        "    m = beta1 * m + (1 - beta1) * g\n"
        "    v = beta2 * v + (1 - beta2) * g**2\n"
        "    m_hat = m / (1 - beta1**t)\n"
        "    v_hat = v / (1 - beta2**t)\n"
        "    return w - lr * m_hat / (np.sqrt(v_hat) + eps), m, v"
    )

    _mistakes = {
        "bias_correction": (
            {"bias_correction": False},
            "no bias correction: m and v start at 0, so early on they are too small; divide by (1 − β^t)",
        ),
        "store_corrected": (
            {"store_corrected": True},
            "you returned the bias-corrected m̂, v̂ as the new state: return the raw averages m and v",
        ),
        "keras_eps": (
            {"keras_eps": True},
            "that is Keras's arrangement: the bias correction folded into the learning rate and ε added to √v, "
            "which amounts to ε/√(1 − β2^t) in place of ε; the exercise asks for √v̂ + ε",
        ),
        "eps_inside": ({"eps_inside": True}, "ε goes outside the square root: √v̂ + ε"),
    }

    def _run(self, fn, scale, **mistake):
        rng = np.random.default_rng(11)
        w = rng.normal(size=(3, 2))
        m, v = np.zeros_like(w), np.zeros_like(w)
        lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
        out = []
        for t in range(1, 5):
            g = scale * rng.normal(size=w.shape)
            if fn is None:
                w, m, v = _adam(w, g, m, v, t, lr, b1, b2, eps, **mistake)
            else:
                result = call_learner(fn, w.copy(), g.copy(), m.copy(), v.copy(), t, lr, b1, b2, eps)
                if not isinstance(result, (tuple, list)) or len(result) != 3:
                    raise Incorrect("return a tuple of three arrays: (w_new, m_new, v_new)")
                w, m, v = (np.asarray(r, dtype=float) for r in result)
            out.append((w, m, v))
        return out

    def _check(self, fn):
        for scale in (1.0, 1e-6):  # ordinary gradients, and tiny ones where ε matters
            ref = self._run(None, scale)
            got = self._run(fn, scale)
            for t, ((w, m, v), (rw, rm, rv)) in enumerate(zip(got, ref), start=1):
                if not (np.allclose(w, rw, rtol=1e-6, atol=1e-12) and np.allclose(m, rm, rtol=1e-6, atol=1e-15)
                        and np.allclose(v, rv, rtol=1e-6, atol=1e-20)):
                    for kw, why in self._mistakes.values():
                        wrong = self._run(None, scale, **kw)[t - 1]
                        if all(np.allclose(a, b, rtol=1e-6, atol=1e-20) for a, b in zip((w, m, v), wrong)):
                            raise Incorrect(f"step {t}: {why}")
                    for name, a, b in (("m", m, rm), ("v", v, rv), ("w", w, rw)):
                        if np.shape(a) != np.shape(b):
                            raise Incorrect(f"step {t}: {name} has shape {np.shape(a)}, expected {np.shape(b)}")
                        if not np.allclose(a, b, rtol=1e-6, atol=1e-20):
                            raise Incorrect(
                                f"step {t} (gradients of size {scale:g}): your {name} is off by up to "
                                f"{np.max(np.abs(a - b)):.3g}"
                            )
        return "the first step moves every weight by about lr · sign(g), whatever the gradient's size."

    def examples(self):
        def good(w, g, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
            m = beta1 * m + (1 - beta1) * g
            v = beta2 * v + (1 - beta2) * g**2
            return w - lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps), m, v

        def make(**kw):
            return lambda w, g, m, v, t, lr, b1, b2, eps: _adam(w, g, m, v, t, lr, b1, b2, eps, **kw)

        def sign_flip(w, g, m, v, t, lr, b1, b2, eps):
            w2, m2, v2 = good(w, g, m, v, t, lr, b1, b2, eps)
            return 2 * w - w2, m2, v2

        return [(good,)], [
            *[(make(**kw),) for kw, _ in self._mistakes.values()],
            (sign_flip,),
            (lambda w, g, m, v, t, lr, b1, b2, eps: w - lr * g,),
        ]


q1 = SumVersusMean()
q2 = StableCrossEntropy()
q3 = L2SPPenalty()
q4 = AdamStep()
