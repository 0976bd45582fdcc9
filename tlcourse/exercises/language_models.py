"""Exercises on pretrained sentence encoders: cosine similarity, frozen vs bag-of-words, freezing layers."""

from __future__ import annotations

import numpy as np

from tlcourse.exercises.core import Incorrect, Question, call_learner, expect_close

# all-MiniLM-L6-v2: one BERT layer of width 384 with a feed-forward width of 1536.
_HIDDEN, _FFN = 384, 1536
_LAYER_PARAMS = (
    4 * (_HIDDEN * _HIDDEN + _HIDDEN)  # attention: query, key, value, output projections
    + 2 * _HIDDEN  # LayerNorm after attention
    + (_HIDDEN * _FFN + _FFN)  # feed-forward up-projection
    + (_FFN * _HIDDEN + _HIDDEN)  # feed-forward down-projection
    + 2 * _HIDDEN  # LayerNorm after the feed-forward block
)
_NUM_CLASSES = 5
_HEAD_PARAMS = _HIDDEN * _NUM_CLASSES + _NUM_CLASSES
_TOTAL_PARAMS = 22_565_376 + _HEAD_PARAMS  # the encoder without its unused pooler, plus the head


def _reference_cosine(A, B):
    A = np.asarray(A, dtype=float)
    B = np.asarray(B, dtype=float)
    return (A / np.linalg.norm(A, axis=1, keepdims=True)) @ (B / np.linalg.norm(B, axis=1, keepdims=True)).T


class CosineSimilarity(Question):
    id = "language_models.q1"
    prompt = (
        "Write cosine_similarity(A, B): for A of shape (n, d) and B of shape (m, d), the (n, m) "
        "matrix of cos(a_i, b_j) = a_i·b_j / (‖a_i‖ ‖b_j‖), in NumPy. Do not assume unit-length rows."
    )
    hints = [
        "Divide every row by its length first: A / np.linalg.norm(A, axis=1, keepdims=True).",
        "Then all the dot products at once: A_unit @ B_unit.T has shape (n, m).",
    ]
    solution_code = (
        "def cosine_similarity(A, B):\n"
        "    A = A / np.linalg.norm(A, axis=1, keepdims=True)\n"
        "    B = B / np.linalg.norm(B, axis=1, keepdims=True)\n"
        "    return A @ B.T"
    )

    def _check(self, fn):
        rng = np.random.default_rng(11)
        A = rng.normal(size=(4, 6)) * rng.uniform(0.5, 5.0, size=(4, 1))  # rows of different lengths
        B = rng.normal(size=(3, 6)) * rng.uniform(0.5, 5.0, size=(3, 1))
        got = call_learner(fn, A.copy(), B.copy())
        expected = _reference_cosine(A, B)
        shape = np.shape(got)
        if shape == (3, 4):
            raise Incorrect("the result is (m, n): return cos(a_i, b_j) with rows for A, i.e. A @ B.T")
        if shape == expected.shape and np.allclose(got, A @ B.T):
            raise Incorrect("these are plain dot products: divide by the lengths ‖a_i‖ and ‖b_j‖")
        g = np.asarray(got, dtype=float) if shape == expected.shape else None
        if g is not None and np.any(np.abs(g) > 1 + 1e-9):
            raise Incorrect("a cosine lies in [-1, 1]: normalise each row (axis=1), not each column")
        expect_close(got, expected, what="cosine_similarity(A, B)")
        return "for unit-length embeddings, like embed()'s, the cosine is just the dot product."

    def examples(self):
        def good(A, B):
            return _reference_cosine(A, B)

        def dots(A, B):
            return A @ B.T

        def columns(A, B):
            return (A / np.linalg.norm(A, axis=0)) @ (B / np.linalg.norm(B, axis=0)).T

        def transposed(A, B):
            return _reference_cosine(A, B).T

        return [(good,)], [(dots,), (columns,), (transposed,)]


def _as_records(runs):
    return runs.to_dict(orient="records") if hasattr(runs, "to_dict") else list(runs)


def _means(runs, method):
    rows = [r for r in _as_records(runs) if r["method"] == method]
    if not rows:
        raise Incorrect(f"the results you passed hold no runs of {method!r}")
    out = {}
    for k in sorted({int(r["labels_per_class"]) for r in rows}):
        out[k] = float(np.mean([r["acc"] for r in rows if int(r["labels_per_class"]) == k]))
    return out


class TfidfCatchUp(Question):
    id = "language_models.q2"
    prompt = (
        "Predict, then verify: frozen MiniLM embeddings + logistic regression get some accuracy with "
        "1 labelled sentence per topic. How many labelled sentences per topic does TF-IDF + logistic "
        "regression need to reach that accuracy? Answer one of the label budgets of the sweep, or None "
        "if it never gets there within the budgets we ran."
    )
    hints = [
        "With one sentence per topic, TF-IDF only knows the words of five sentences: most test "
        "sentences share no content word with them.",
        "Read the table: the 'frozen MiniLM' mean at 1 label per class, then go down the TF-IDF column.",
    ]
    solution_code = (
        "frozen_at_1 = mean_at(runs, \"frozen MiniLM + LR\", at=1)\n"
        "tfidf = runs[runs.method == \"TF-IDF + LR\"].groupby(\"labels_per_class\").acc.mean()\n"
        "tfidf_budget_needed = next((int(k) for k, acc in tfidf.items() if acc >= frozen_at_1), None)"
    )
    methods = ("TF-IDF + LR", "frozen MiniLM + LR")

    def evaluate(self, *answer, **context):
        # examples() give the runs positionally; learners pass them by keyword.
        if len(answer) == 2 and not context:
            answer, context = answer[:1], {"runs": answer[1]}
        return super().evaluate(*answer, **context)

    def _check(self, budget, runs=None):
        if runs is None:
            raise Incorrect("pass the measured runs: q2.check(tfidf_budget_needed, runs=runs)")
        tfidf, frozen = _means(runs, self.methods[0]), _means(runs, self.methods[1])
        if 1 not in frozen:
            raise Incorrect("the runs hold no frozen-embedding run at 1 label per class")
        target = frozen[1]
        truth = next((k for k, acc in tfidf.items() if acc >= target), None)
        if budget is not None and not isinstance(budget, (int, np.integer)):
            raise Incorrect(f"answer a label budget (an int) or None, got {budget!r}")
        if budget is not None and int(budget) not in tfidf:
            raise Incorrect(f"answer one of the budgets {sorted(tfidf)} or None, got {budget!r}")
        if budget != truth:
            best = max(tfidf, key=tfidf.get)
            raise Incorrect(
                f"frozen embeddings reach {target:.3f} with 1 label per class; TF-IDF reaches "
                + ", ".join(f"{acc:.3f} at {k}" for k, acc in tfidf.items())
                + (f" — at best {tfidf[best]:.3f}" if truth is None else "")
            )
        if truth is None:
            return (
                f"TF-IDF never gets there: {max(tfidf.values()):.3f} at best, against {target:.3f} "
                "from one sentence per topic with the pretrained encoder."
            )
        return f"TF-IDF needs {truth} labels per class to match what the encoder does with 1."

    def examples(self):
        def runs(tfidf_accs):
            rows = [dict(method=self.methods[1], labels_per_class=1, seed=s, acc=0.65) for s in (0, 1)]
            for k, acc in tfidf_accs.items():
                rows += [dict(method=self.methods[0], labels_per_class=k, seed=s, acc=acc) for s in (0, 1)]
            return rows

        never = runs({1: 0.23, 5: 0.3, 20: 0.4, 50: 0.47})
        at20 = runs({1: 0.23, 5: 0.5, 20: 0.7, 50: 0.8})
        return [(None, never), (20, at20)], [(50, never), (1, never), (None, at20), (5, at20), ("many", never)]


class TrainableCount(Question):
    id = "language_models.q3"
    prompt = (
        "Build a SentenceClassifier for our 5 topics, freeze everything but the top transformer "
        "layer and the head with requires_grad_(False), and count the parameters that still train."
    )
    hints = [
        "model.requires_grad_(False) freezes everything; then switch on "
        "model.encoder.encoder.layer[-1] and model.head with requires_grad_(True).",
        "Count with sum(p.numel() for p in model.parameters() if p.requires_grad).",
    ]
    solution_code = (
        "exercise_model = lm.SentenceClassifier(num_classes=5)\n"
        "exercise_model.requires_grad_(False)                      # freeze everything ...\n"
        "exercise_model.encoder.encoder.layer[-1].requires_grad_(True)  # ... but the top layer\n"
        "exercise_model.head.requires_grad_(True)                  # ... and the new head\n"
        "n_trainable_yours = sum(p.numel() for p in exercise_model.parameters() if p.requires_grad)"
    )
    expected = _LAYER_PARAMS + _HEAD_PARAMS

    def _check(self, count):
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)):
            raise Incorrect(f"answer a number of parameters (an int), got {count!r}")
        count = int(count)
        wrong = {
            _TOTAL_PARAMS: "that is every parameter: nothing is frozen",
            _HEAD_PARAMS: "only the head trains: switch the top transformer layer back on",
            _LAYER_PARAMS: "the new head must train too: it starts from random weights",
            _TOTAL_PARAMS - _LAYER_PARAMS: "that is the frozen part: count the parameters with requires_grad True",
            2 * _LAYER_PARAMS + _HEAD_PARAMS: "two layers train: leave only the top one (layer[-1])",
        }
        if count in wrong:
            raise Incorrect(f"{count:,}: {wrong[count]}")
        if count != self.expected:
            raise Incorrect(f"{count:,} parameters; expected the top layer plus the 5-way head")
        share = count / _TOTAL_PARAMS
        return (
            f"{count:,} of {_TOTAL_PARAMS:,} parameters train ({share:.1%}): one layer of "
            f"{_LAYER_PARAMS:,} plus a head of {_HEAD_PARAMS:,}."
        )

    def examples(self):
        return [(self.expected,), (np.int64(self.expected),)], [
            (_TOTAL_PARAMS,),
            (_HEAD_PARAMS,),
            (_LAYER_PARAMS,),
            (2 * _LAYER_PARAMS + _HEAD_PARAMS,),
            (1_000_000,),
            ("1776389",),
        ]


q1 = CosineSimilarity()
q2 = TfidfCatchUp()
q3 = TrainableCount()
