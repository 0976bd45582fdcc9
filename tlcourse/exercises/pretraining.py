"""Exercises on pre-training a source model: its parameters, what pre-training buys, saving and reloading.

The checks work for PyTorch and for Keras answers: a model is recognised by what it has
(``get_weights`` for Keras, ``state_dict`` for PyTorch) and no framework is imported, here
or in the checks.
"""

from __future__ import annotations

import numpy as np

from tlcourse.exercises._measured import MeasuredQuestion, as_records
from tlcourse.exercises.core import Incorrect, NotAttempted, Question, call_learner, is_placeholder


def _means_at(runs, k: int) -> dict[str, float]:
    """Mean accuracy per method at ``k`` labels per class (the budget closest to ``k`` if absent)."""
    records = as_records(runs)
    if not records:
        raise Incorrect("the runs you passed are empty")
    budgets = sorted({int(r["labels_per_class"]) for r in records})
    at = min(budgets, key=lambda b: (abs(b - k), b))
    out: dict[str, list[float]] = {}
    for r in records:
        if int(r["labels_per_class"]) == at:
            out.setdefault(str(r["method"]), []).append(float(r["acc"]))
    return {m: float(np.mean(v)) for m, v in out.items()}


# -- q1 ----------------------------------------------------------------------------------------


class CountBlockParameters(Question):
    id = "pretraining.q1"
    prompt = (
        "How many parameters (weights and biases) do the blocks conv1 and fc1 of the small CNN hold? "
        "conv1: 3×3 convolution, 1 → 16 channels, with bias. fc1: dense layer on the flattened output "
        "of conv2 (32 channels of 7×7 after two 2×2 poolings) → 64 units, with bias. "
        "Answer a dict {'conv1': ..., 'fc1': ...}."
    )
    hints = [
        "A convolution has one k×k×c_in kernel per output channel, plus one bias per output channel.",
        "conv1: 16 kernels of 3×3×1, plus 16 biases. fc1: every one of its 64 units sees all 32·7·7 inputs, "
        "plus 64 biases.",
    ]
    solution_code = (
        "n_params = {\n"
        '    "conv1": 3 * 3 * 1 * 16 + 16,      # 16 kernels of 3×3×1, 16 biases\n'
        '    "fc1": (32 * 7 * 7) * 64 + 64,     # 1,568 inputs to each of 64 units, 64 biases\n'
        "}"
    )
    _answer = {"conv1": 3 * 3 * 1 * 16 + 16, "fc1": 32 * 7 * 7 * 64 + 64}

    def _check(self, counts):
        if not isinstance(counts, dict) or set(counts) != set(self._answer):
            raise Incorrect(f"give a dict with the keys {sorted(self._answer)}")
        try:
            conv1, fc1 = (float(counts[k]) for k in ("conv1", "fc1"))
        except (TypeError, ValueError) as err:
            raise Incorrect(f"the counts must be whole numbers, got {counts!r}") from err
        if conv1 != round(conv1) or fc1 != round(fc1):
            raise Incorrect(f"parameters come whole: the counts must be whole numbers, got {counts!r}")
        conv1, fc1 = int(conv1), int(fc1)
        if conv1 != self._answer["conv1"]:
            if conv1 == 144:
                raise Incorrect("conv1: 144 kernel weights are right; add its 16 biases, one per output channel")
            if conv1 == 16 * 9 * 28 * 28 or conv1 == 16 * 28 * 28:
                raise Incorrect("conv1: a convolution's weights do not depend on the image size; they are "
                                "shared across positions")
            raise Incorrect(f"conv1: 16 output channels × a 3×3×1 kernel each, plus 16 biases — not {conv1}")
        if fc1 != self._answer["fc1"]:
            if fc1 == 32 * 7 * 7 * 64:
                raise Incorrect("fc1: the 100,352 weights are right; add its 64 biases")
            if fc1 in (32 * 14 * 14 * 64 + 64, 32 * 14 * 14 * 64):
                raise Incorrect("fc1: conv2 ends with a second 2×2 pooling, so its output is 7×7, not 14×14")
            if fc1 in (28 * 28 * 64 + 64, 28 * 28 * 64):
                raise Incorrect("fc1 sees the 32 feature maps of conv2 (32·7·7 = 1,568 numbers), not the 784 pixels")
            raise Incorrect(f"fc1: 32·7·7 = 1,568 inputs to each of 64 units, plus 64 biases — not {fc1}")
        return ("conv1 holds 160 parameters, fc1 100,416: 95% of the network's 105,866 sit in one dense "
                "layer, while the convolutions that read the pixels are tiny.")

    def examples(self):
        good = dict(self._answer)
        return [(good,), ({"conv1": 160.0, "fc1": 100416},)], [
            (dict(good, conv1=144),),
            (dict(good, fc1=100352),),
            (dict(good, fc1=32 * 14 * 14 * 64 + 64),),
            (dict(good, fc1=28 * 28 * 64 + 64),),
            (dict(good, conv1=16 * 9 * 28 * 28),),
            ({"conv1": 160},),
            (dict(good, conv1="many"),),
        ]


# -- q2 ----------------------------------------------------------------------------------------


def _weights(model) -> list[np.ndarray]:
    """A model's weights as NumPy arrays: Keras ``get_weights()``, PyTorch ``state_dict()``."""
    if hasattr(model, "get_weights"):
        return [np.asarray(w) for w in model.get_weights()]
    if hasattr(model, "state_dict"):
        return [np.asarray(v.detach().cpu().numpy()) for v in model.state_dict().values()]
    if hasattr(model, "missing_keys") and hasattr(model, "unexpected_keys"):
        raise Incorrect("you returned what load_state_dict returns — a report of missing and unexpected keys. "
                        "load_state_dict fills the model in place: call it, then return the model")
    raise Incorrect(f"load_source should return a model, got {type(model).__name__}")


class ReloadWeights(Question):
    id = "pretraining.q2"
    prompt = (
        "Write load_source(path): build a fresh small_cnn (other random weights), load the weights saved "
        "at `path` into it and return it. PyTorch: the file holds a state_dict saved with torch.save; "
        "Keras: it was written by model.save_weights."
    )
    hints = [
        "PyTorch: torch.load(path) gives back the state_dict (a dict of tensors); model.load_state_dict(...) "
        "copies it into the model's parameters.",
        "Keras: model.load_weights(path) reads a .weights.h5 file into a model of the same architecture.",
        "Both load in place: load_state_dict returns a report of missing keys and load_weights returns None, "
        "so return the model itself.",
    ]
    solution_code = (
        "def load_source(path):\n"
        "    model = small_cnn(seed=123)  # same architecture, other random weights\n"
        "    if FRAMEWORK == \"torch\":\n"
        "        model.load_state_dict(torch.load(path))\n"
        "    else:  # Keras\n"
        "        model.load_weights(path)\n"
        "    return model"
    )

    def observe(self, fn, path=None, reference=None):
        """How far the loaded model's weights are from the saved ones (max |w - w_saved|), and how
        the learner's function treats a second call and a missing file."""
        if path is None or reference is None:
            raise Incorrect("pass the file and the saved model's weights: q2.check(load_source, path, reference)")
        model = call_learner(fn, path)
        if model is None:
            raise Incorrect("load_source returned None. load_weights / load_state_dict fill the model in place "
                            "and do not return it: return the model yourself")
        again = call_learner(fn, path)
        try:
            ghost = call_learner(fn, str(path) + ".missing")
        except NotAttempted:
            raise
        except Exception:  # noqa: BLE001 - any error is the expected outcome for a missing file
            ghost = None
        got, reference = _weights(model), [np.asarray(w) for w in reference]
        same_shapes = len(got) == len(reference) and all(g.shape == r.shape for g, r in zip(got, reference))
        worst = max((float(np.max(np.abs(g.astype(float) - r.astype(float)))) if g.size else 0.0
                     for g, r in zip(got, reference)), default=0.0) if same_shapes else None
        return {"same_architecture": same_shapes, "worst_difference": worst,
                "fresh": again is not model,
                "ignores_path": ghost is not None and not is_placeholder(ghost)}

    def _judge(self, observation):
        if not observation["same_architecture"]:
            raise Incorrect("the model you returned does not have the saved model's architecture")
        worst = observation["worst_difference"]
        if worst > 0:
            raise Incorrect(f"its weights differ from the saved ones by up to {worst:.3g}: were the weights "
                            "loaded into the model you return?")
        if not observation["fresh"]:
            raise Incorrect("load_source returned the same object twice: build a fresh model inside it and "
                            "load the file into that")
        if observation["ignores_path"]:
            raise Incorrect("load_source returned a model for a file that does not exist: it ignores `path`")
        return "a fresh network with exactly the saved weights: the source model can travel as a file."

    def examples(self):
        rng = np.random.default_rng(0)
        saved = [rng.normal(size=(3, 2)), rng.normal(size=2)]
        fresh = [rng.normal(size=(3, 2)), rng.normal(size=2)]
        files = {"source.weights": saved}  # an in-memory "disk": a missing name raises KeyError

        class FakeTensor:
            def __init__(self, array):
                self.array = np.asarray(array)

            def detach(self):
                return self

            def cpu(self):
                return self

            def numpy(self):
                return self.array

        class FakeTorchModel:  # what the check reads of a torch.nn.Module
            def __init__(self, arrays):
                self.params = {f"w{i}": FakeTensor(a) for i, a in enumerate(arrays)}

            def state_dict(self):
                return dict(self.params)

            def load_state_dict(self, state):
                self.params = {k: FakeTensor(v) for k, v in state.items()}
                return type("IncompatibleKeys", (), {"missing_keys": [], "unexpected_keys": []})()

        class FakeKerasModel:  # what the check reads of a keras.Model
            def __init__(self, arrays):
                self.arrays = [np.asarray(a) for a in arrays]

            def get_weights(self):
                return list(self.arrays)

            def load_weights(self, path):
                self.arrays = [np.array(a) for a in files[path]]

        def torch_load(path):
            return {f"w{i}": np.array(a) for i, a in enumerate(files[path])}

        def torch_good(path):
            model = FakeTorchModel(fresh)
            model.load_state_dict(torch_load(path))
            return model

        def keras_good(path):
            model = FakeKerasModel(fresh)
            model.load_weights(path)
            return model

        def torch_returns_report(path):
            return FakeTorchModel(fresh).load_state_dict(torch_load(path))

        def keras_returns_none(path):
            return FakeKerasModel(fresh).load_weights(path)

        def not_loaded(path):
            return FakeKerasModel(fresh)

        shared = FakeKerasModel(saved)

        def same_object(path):
            return shared

        def ignores_path(path):
            return FakeKerasModel(saved)

        path = "source.weights"
        return [(torch_good, path, saved), (keras_good, path, saved)], [
            (torch_returns_report, path, saved),
            (keras_returns_none, path, saved),
            (not_loaded, path, saved),
            (same_object, path, saved),
            (ignores_path, path, saved),
            (torch_good, path, [saved[0]]),
        ]


# -- q3 ----------------------------------------------------------------------------------------

_PROBES = ("pretrained", "random init", "pixels")


class PredictBestProbe(MeasuredQuestion):
    id = "pretraining.q3"
    prompt = (
        "Predict, then verify: with 5 labelled letters per class, which representation gives the best "
        "linear probe on the letters — 'pretrained' (features of the network trained on digits), "
        "'random init' (the same network before training) or 'pixels'?"
    )
    hints = [
        "The network never saw a letter. But do letters and digits share strokes, corners and curves?",
        "A random network's features are fixed random projections of the image: they keep what the pixels "
        "hold but are not organised by anything.",
    ]
    solution_code = 'best_probe = "pretrained"'

    def _check(self, answer, runs=None):
        value = str(answer).strip().lower() if isinstance(answer, str) else answer
        if value not in _PROBES:
            raise Incorrect(f"answer one of {list(_PROBES)}, got {answer!r}")
        if runs is None:
            raise Incorrect("pass the measured runs: q3.check(best_probe, runs=runs)")
        means = _means_at(runs, 5)
        missing = [p for p in _PROBES if p not in means]
        if missing:
            raise Incorrect(f"the runs you passed lack the method(s) {missing}")
        winner = max(_PROBES, key=lambda p: means[p])
        table = ", ".join(f"{p} {means[p]:.3f}" for p in _PROBES)
        if value != winner:
            raise Incorrect(f"the measurement says {winner!r}: {table}")
        return f"measured at 5 labels per class: {table}."

    def examples(self):
        runs = [dict(method=m, labels_per_class=k, seed=s, acc=a + 0.01 * s)
                for m, a in (("pretrained", 0.52), ("random init", 0.34), ("pixels", 0.30))
                for k in (1, 5) for s in (0, 1)]
        return [("pretrained", runs), ("Pretrained ", runs)], [
            ("random init", runs), ("pixels", runs), ("imagenet", runs),
        ]


q1 = CountBlockParameters()
q2 = ReloadWeights()
q3 = PredictBestProbe()
