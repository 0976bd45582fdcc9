"""Exercises on transfer across modalities: an image network on spectrograms, one language to another.

The checks work for PyTorch and for Keras answers: a model is recognised by what it has
(``state_dict`` for PyTorch, ``get_layer`` and ``weights`` for Keras), and no framework is
imported, here or in the checks.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from tlcourse.exercises._measured import MeasuredQuestion, as_records, mean_of
from tlcourse.exercises.core import Incorrect, Question, call_learner

SCRATCH = "scratch"
MNIST_FROZEN = "MNIST frozen"
MNIST_FINE_TUNED = "MNIST fine-tuned"
RANDOM_FROZEN = "random frozen"
ENGLISH_FROZEN = "English frozen"
TRUNK = ("conv1", "conv2", "fc1")


# -- q2: the head set to a linear probe --------------------------------------------------------


def _array(value) -> np.ndarray:
    """A weight as a float64 NumPy array: a torch tensor, a Keras variable or an array."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    elif hasattr(value, "numpy"):
        value = value.numpy()
    return np.asarray(value, dtype=np.float64)


def _torch_weights(model) -> dict:
    """``{block: [arrays]}`` of a torch SmallNet-like model, in PyTorch's layout (head weight (out, in))."""
    out: dict[str, list] = {}
    for name, value in model.state_dict().items():
        parts = name.split(".")
        block = parts[1] if parts[0] == "features" and len(parts) > 2 else parts[0]
        out.setdefault(block, []).append(_array(value))
    return out


def _keras_weights(model) -> dict:
    """``{block: [arrays]}`` of a Keras SmallNet-like model; the head's kernel transposed to (out, in)."""
    out = {}
    for name in (*TRUNK, "head"):
        try:
            layer = model.get_layer(name)
        except ValueError:
            continue
        arrays = [_array(w) for w in layer.get_weights()]
        if name == "head" and arrays:
            arrays[0] = arrays[0].T
        out[name] = arrays
    return out


def _storage(model) -> set:
    """Identities of the model's weight storage: data pointers (torch) or variable ids (Keras)."""
    if hasattr(model, "state_dict") and hasattr(model, "named_parameters"):
        return {p.data_ptr() for _, p in model.named_parameters()}
    return {id(v) for v in getattr(model, "weights", [])}


def _max_diff(got: list, want: list):
    """Largest |got − want| over matching arrays, or None if the shapes do not match."""
    if len(got) != len(want) or any(g.shape != w.shape for g, w in zip(got, want)):
        return None
    return max((float(np.max(np.abs(g - w))) if g.size else 0.0 for g, w in zip(got, want)), default=0.0)


class StartFromProbe(Question):
    id = "modalities.q2"
    prompt = (
        "Write start_from_probe(source, W, b): a NEW network (small_cnn) with the source's trunk weights "
        "(conv1, conv2, fc1) and a head set to the linear probe: W is the probe's (10, 64) weight matrix "
        "(laid out like scikit-learn's coef_), b its 10 intercepts; logits = features @ W.T + b. The source must stay as it is."
    )
    hints = [
        "Build a fresh model with small_cnn(seed=...) and copy every weight of the source into it: "
        "PyTorch model.load_state_dict(source.state_dict()), Keras model.set_weights(source.get_weights()).",
        "Then overwrite the head. PyTorch stores a Linear layer's weight as (out, in) = (10, 64), the layout of "
        "coef_: inside torch.no_grad(), model.head.weight.copy_(torch.from_numpy(W)) and the same for the bias.",
        "Keras stores a Dense kernel as (in, out) = (64, 10): model.get_layer('head').set_weights([W.T, b]).",
        "Do not return the source itself, and do not build the new model out of the source's layers: "
        "training it would then change the source too.",
    ]
    solution_code = (
        "def start_from_probe(source, W, b):\n"
        "    model = small_cnn(seed=SEED)                     # a new network ...\n"
        "    if FRAMEWORK == \"torch\":\n"
        "        model.load_state_dict(source.state_dict())   # ... with a copy of every source weight\n"
        "        with torch.no_grad():                        # then the head := the probe\n"
        "            model.head.weight.copy_(torch.from_numpy(np.asarray(W, dtype=np.float32)))\n"
        "            model.head.bias.copy_(torch.from_numpy(np.asarray(b, dtype=np.float32)))\n"
        "    else:  # Keras\n"
        "        model.set_weights(source.get_weights())\n"
        "        model.get_layer(\"head\").set_weights([np.asarray(W).T, np.asarray(b)])  # kernel is (in, out)\n"
        "    return model"
    )

    def observe(self, fn, source=None):
        """How the learner's model relates to the source and to a probe (W, b) of the checker's own."""
        if source is None:
            raise Incorrect('pass the source model too: q2.check(start_from_probe, source=pretrained("mnist-cnn"))')
        is_torch = hasattr(source, "state_dict") and hasattr(source, "named_parameters")
        read = _torch_weights if is_torch else _keras_weights
        before = read(source)
        if "head" not in before or not before["head"]:
            raise Incorrect("the source model has no block named 'head'")
        n_out, n_in = before["head"][0].shape
        rng = np.random.default_rng(12345)
        W = rng.normal(0.0, 0.1, size=(n_out, n_in)).astype(np.float32)
        b = rng.normal(0.0, 0.1, size=n_out).astype(np.float32)
        model = call_learner(fn, source, W, b)
        if model is None:
            raise Incorrect("start_from_probe returned None: load_state_dict / set_weights change the model in "
                            "place, so return the model yourself")
        if not (hasattr(model, "state_dict") or hasattr(model, "get_layer")):
            raise Incorrect(f"start_from_probe should return a model, got {type(model).__name__}")
        got, after = read(model), read(source)
        head = got.get("head", [])
        return {
            "same_object": model is source,
            "shares_weights": bool(_storage(model) & _storage(source)),
            "source_changed": _max_diff(after.get("head", []) + [a for k in TRUNK for a in after.get(k, [])],
                                        before["head"] + [a for k in TRUNK for a in before.get(k, [])]),
            "trunk_diff": {k: _max_diff(got.get(k, []), before.get(k, [])) for k in TRUNK},
            "head_weight_diff": _max_diff(head[:1], [W.astype(np.float64)]),
            "head_weight_transposed_diff": _max_diff([h.T for h in head[:1]], [W.astype(np.float64)]),
            "head_bias_diff": _max_diff(head[1:2], [b.astype(np.float64)]),
            "head_is_source_head": _max_diff(head, before["head"]) == 0.0,
        }

    def _judge(self, observation):
        if observation["same_object"]:
            raise Incorrect("you returned the source model itself: build a new network and copy the weights into it")
        if observation["shares_weights"]:
            raise Incorrect("the new model shares weight storage with the source: training it would change the "
                            "source too. Copy the weights (load_state_dict / set_weights) into a fresh small_cnn")
        changed = observation["source_changed"]
        if changed is None or changed > 0:
            raise Incorrect("your function changed the source model's weights: leave the source as it is")
        wrong = [k for k, d in observation["trunk_diff"].items() if d is None or d > 1e-6]
        if wrong:
            raise Incorrect(f"the trunk is not the source's: {', '.join(wrong)} differ from the source's weights "
                            "(copy every weight of the source first)")
        if observation["head_is_source_head"]:
            raise Incorrect("the head still holds the source's weights: set it to the probe's W and b")
        wd, wt = observation["head_weight_diff"], observation["head_weight_transposed_diff"]
        if wd is None and wt is not None and wt <= 1e-6:
            raise Incorrect("the head holds W transposed. scikit-learn's coef_ is (classes, features); "
                            "a Keras Dense kernel is (features, classes): pass W.T")
        if wd is None or wd > 1e-6:
            raise Incorrect("the head's weight matrix is not the probe's W"
                            + (f" (off by up to {wd:.3g})" if wd is not None else " (wrong shape)"))
        bd = observation["head_bias_diff"]
        if bd is None or bd > 1e-6:
            raise Incorrect("the head's weights are the probe's, but its bias is not b")
        return ("a new network: the source's trunk, a head that is the probe — its first prediction is the "
                "probe's, and the source is untouched.")

    def examples(self):
        shapes = {"conv1": [(16, 1, 3, 3), (16,)], "conv2": [(32, 16, 3, 3), (32,)], "fc1": [(64, 98), (64,)],
                  "head": [(10, 64), (10,)]}

        class Tensor:  # what the check reads of a torch tensor (numpy(), data_ptr()) and what copy_ does
            def __init__(self, array):
                self.array = np.array(array, dtype=np.float32)

            def numpy(self):
                return self.array

            def data_ptr(self):
                return id(self.array)

            def copy_(self, other):
                self.array[...] = _array(other)
                return self

        class TorchNet:  # SmallNet's parameter names: features.<block>.<layer>.weight, head.weight
            def __init__(self, seed=0):
                r = np.random.default_rng(seed)
                self.params = {}
                for block, (w, b) in shapes.items():
                    prefix = "head" if block == "head" else f"features.{block}.{'dense' if block == 'fc1' else 'conv'}"
                    self.params[f"{prefix}.weight"] = Tensor(r.normal(size=w))
                    self.params[f"{prefix}.bias"] = Tensor(r.normal(size=b))

            def state_dict(self):
                return dict(self.params)

            def load_state_dict(self, state):
                for k, v in state.items():
                    self.params[k].copy_(v)

            def named_parameters(self):
                return list(self.params.items())

        class Layer:  # a Keras layer: weights are variables with numpy(); get/set_weights copy
            def __init__(self, arrays):
                self.weights = [Tensor(a) for a in arrays]

            def get_weights(self):
                return [v.array.copy() for v in self.weights]

            def set_weights(self, arrays):
                if [np.shape(a) for a in arrays] != [v.array.shape for v in self.weights]:
                    raise ValueError("set_weights: shapes do not match")
                for v, a in zip(self.weights, arrays):
                    v.array[...] = a

        class KerasNet:  # a functional model: layers by name, the head's kernel (in, out)
            def __init__(self, seed=0):
                r = np.random.default_rng(seed)
                self.named = {}
                for block, (w, b) in shapes.items():
                    kernel = r.normal(size=w)
                    self.named[block] = Layer([kernel.T if block == "head" else kernel, r.normal(size=b)])

            def get_layer(self, name):
                if name not in self.named:
                    raise ValueError(f"no layer {name}")
                return self.named[name]

            @property
            def weights(self):
                return [v for layer in self.named.values() for v in layer.weights]

            def get_weights(self):
                return [a for layer in self.named.values() for a in layer.get_weights()]

            def set_weights(self, arrays):
                i = 0
                for layer in self.named.values():
                    n = len(layer.weights)
                    layer.set_weights(arrays[i:i + n])
                    i += n

        def torch_answer(copy_trunk=True, set_head=True, returns=True):
            """A learner's torch start_from_probe, with one of its steps left out."""
            def start_from_probe(source, W, b):
                model = TorchNet(seed=7)
                if copy_trunk:
                    model.load_state_dict(source.state_dict())
                if set_head:
                    model.params["head.weight"].copy_(W)
                    model.params["head.bias"].copy_(b)
                return model if returns else None
            return start_from_probe

        def keras_answer(kernel=lambda W: np.asarray(W).T, bias=True):
            """A learner's Keras start_from_probe; ``kernel`` is what it writes into the head's kernel."""
            def start_from_probe(source, W, b):
                model = KerasNet(seed=7)
                model.set_weights(source.get_weights())
                head = model.get_layer("head")
                head.weights[0].array = np.asarray(kernel(W), dtype=np.float32)  # as a layer may, any shape
                if bias:
                    head.weights[1].array[...] = b
                return model
            return start_from_probe

        def torch_in_place(source, W, b):  # overwrites the source's head and returns the source
            source.params["head.weight"].copy_(W)
            source.params["head.bias"].copy_(b)
            return source

        def torch_shared(source, W, b):  # a "new" model that holds the source's tensors
            model = TorchNet(seed=7)
            model.params = dict(source.params)
            model.params["head.weight"], model.params["head.bias"] = Tensor(W), Tensor(b)
            return model

        return [(torch_answer(), TorchNet()), (keras_answer(), KerasNet())], [
            (torch_in_place, TorchNet()),
            (torch_shared, TorchNet()),
            (torch_answer(copy_trunk=False), TorchNet()),
            (torch_answer(set_head=False), TorchNet()),
            (torch_answer(returns=False), TorchNet()),
            (keras_answer(kernel=np.asarray), KerasNet()),      # the (10, 64) coef_ where a (64, 10) kernel belongs
            (keras_answer(bias=False), KerasNet()),
        ]


# -- q1: mel bands -----------------------------------------------------------------------------


def _mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _bands_below(hz: float, n_mels: int = 32, fmax: float = 4000.0) -> int:
    edges = np.linspace(0.0, _mel(fmax), n_mels + 2)
    centres_hz = 700.0 * (10.0 ** (edges[1:-1] / 2595.0) - 1.0)
    return int(np.sum(centres_hz < hz))


class MelBands(Question):
    id = "modalities.q1"
    prompt = (
        "The spectrograms have 32 mel bands from 0 to 4,000 Hz: 34 band edges equally spaced in mel, "
        "mel(f) = 2595·log10(1 + f/700), band k centred on edge k + 1. How many of the 32 bands are centred "
        "below 1,000 Hz — a quarter of the frequency range?"
    )
    hints = [
        "mel(1000) is about 1000 and mel(4000) about 2146: the range 0–1 kHz is almost half the mel range.",
        "The edges are np.linspace(0, mel(4000), 34); the centres are edges[1:-1]. Count the centres below "
        "mel(1000) — or convert them back to Hz with f = 700·(10^(m/2595) − 1) and count those below 1000.",
    ]
    solution_code = (
        "mel = lambda f: 2595 * np.log10(1 + f / 700)\n"
        "centres = np.linspace(0, mel(4000), 34)[1:-1]       # in mel\n"
        "bands_below_1khz = int((centres < mel(1000)).sum())"
    )

    def _check(self, answer):
        try:
            value = float(answer)
        except (TypeError, ValueError) as err:
            raise Incorrect(f"give the number of bands, got {answer!r}") from err
        want = _bands_below(1000.0)
        if value == want:
            return (f"{want} of 32 bands: almost half of them for the lowest quarter of the frequencies, where the "
                    "voice's pitch and first formants lie (Davis & Mermelstein 1980).")
        if value == 8:
            raise Incorrect("8 is a quarter of 32: that would be a linear frequency scale. On the mel scale "
                            "the bands are narrow at low frequencies and wide at high ones")
        if value == 16:
            raise Incorrect("close, but not half: mel(1000) ≈ 1000 and mel(4000) ≈ 2146, so 1 kHz sits at 46.6% of "
                            "the mel range. Count the band centres below it")
        if not value.is_integer() or not 0 <= value <= 32:
            raise Incorrect(f"a number of bands is a whole number from 0 to 32, got {answer!r}")
        raise Incorrect(f"{value:g} is not it: put 34 edges equally spaced in mel between 0 and mel(4000), and count "
                        "the centres (edges 1 to 32) below mel(1000)")

    def examples(self):
        want = _bands_below(1000.0)
        return [(want,), (float(want),), (np.int64(want),)], [(8,), (16,), (32,), (14.5,), ("fifteen",)]


# -- q3 and q4: predict, then verify -----------------------------------------------------------


def _mean(records, method, k, target=None):
    where = {"method": method, "labels_per_class": k} | ({} if target is None else {"target": target})
    return mean_of(records, **where)


def _budgets(records) -> list[int]:
    budgets = sorted({int(r["labels_per_class"]) for r in records})
    if not budgets:
        raise Incorrect("the runs you passed are empty")
    return budgets


def _choice(prediction, key, options):
    value = str(prediction[key]).strip()
    low = {o.lower(): o for o in options}
    if value.lower() not in low:
        raise Incorrect(f"{key}: answer one of {list(options)}, got {prediction[key]!r}")
    return low[value.lower()]


def _verdict(wrong: list[str], praise: str) -> str:
    """Incorrect with every prediction the measurement contradicts, or the praise."""
    if wrong:
        raise Incorrect("the measurement says otherwise: " + "; ".join(wrong))
    return praise


class _Prediction(MeasuredQuestion):
    """Predict, then verify: a dict of choices (``options``: key → allowed answers), judged against the runs."""

    options: ClassVar[dict[str, tuple[str, ...]]] = {}
    runs_name: ClassVar[str] = "runs"

    def _read(self, prediction, runs):
        """The learner's choices (spelled as in ``options``), the run records and the label budgets."""
        if not isinstance(prediction, dict) or set(prediction) != set(self.options):
            raise Incorrect(f"give a dict with the keys {list(self.options)}")
        chosen = {key: _choice(prediction, key, allowed) for key, allowed in self.options.items()}
        if runs is None:
            raise Incorrect(f"pass the measured runs: {self.id.split('.')[-1]}.check(prediction, "
                            f"runs={self.runs_name})")
        records = as_records(runs)
        return chosen, records, _budgets(records)


class PredictImageSource(_Prediction):
    id = "modalities.q3"
    prompt = (
        "Predict, then verify, on the English spoken digits. (a) Averaged over the label budgets, does a linear "
        "probe do better on the MNIST network's frozen features than on the same network's random initial "
        "weights ('random frozen'): 'yes' or 'no'? (b) Averaged over the label budgets, does fine-tuning the MNIST "
        "network beat scratch by 'under 10 points' or 'over 10 points'? "
        "Answer {'mnist_features_beat_random': ..., 'fine_tuning_gain_on_average': ...}."
    )
    hints = [
        "(a) Random convolutions followed by ReLU and pooling already respond to edges and blobs. Did learning "
        "pen strokes add anything that also shows in a spectrogram?",
        "(b) The labels are the same, 0–9 — but is anything else? What do pen strokes and spectrograms have in "
        "common beyond edges and blobs?",
    ]
    solution_code = (
        "prediction = {\n"
        '    "mnist_features_beat_random": "yes",\n'
        '    "fine_tuning_gain_on_average": "under 10 points",\n'
        "}"
    )
    options = {"mnist_features_beat_random": ("yes", "no"),
               "fine_tuning_gain_on_average": ("under 10 points", "over 10 points")}
    runs_name = "runs_en"

    def _check(self, prediction, runs=None):
        chosen, records, budgets = self._read(prediction, runs)
        beats, size = chosen["mnist_features_beat_random"], chosen["fine_tuning_gain_on_average"]
        edge = float(np.mean([_mean(records, MNIST_FROZEN, k) - _mean(records, RANDOM_FROZEN, k) for k in budgets]))
        gain = float(np.mean([_mean(records, MNIST_FINE_TUNED, k) - _mean(records, SCRATCH, k) for k in budgets]))
        wrong = []
        if beats != ("yes" if edge > 0 else "no"):
            wrong.append(f"(a) {MNIST_FROZEN} minus {RANDOM_FROZEN}, averaged over the budgets: {edge:+.3f}")
        if size != ("over 10 points" if gain > 0.10 else "under 10 points"):
            wrong.append(f"(b) {MNIST_FINE_TUNED} minus {SCRATCH}, averaged over the budgets: {gain:+.3f}")
        return _verdict(wrong, f"MNIST features beat random ones by {edge:+.3f} on average, and fine-tuning the "
                               f"MNIST network beats scratch by {gain:+.3f}: MNIST taught something that carries "
                               "over to sound — not much.")

    def examples(self):
        acc = {(SCRATCH, 1): 0.25, (SCRATCH, 30): 0.66, (MNIST_FROZEN, 1): 0.26, (MNIST_FROZEN, 30): 0.62,
               (MNIST_FINE_TUNED, 1): 0.28, (MNIST_FINE_TUNED, 30): 0.72, (RANDOM_FROZEN, 1): 0.24,
               (RANDOM_FROZEN, 30): 0.56}
        runs = [dict(method=m, labels_per_class=k, seed=s, acc=a + 0.004 * s) for (m, k), a in acc.items()
                for s in (0, 1, 2)]
        big = [dict(r, acc=r["acc"] + 0.12) if r["method"] == MNIST_FINE_TUNED else r for r in runs]
        good = {"mnist_features_beat_random": "yes", "fine_tuning_gain_on_average": "under 10 points"}
        return [(good, runs), ({"mnist_features_beat_random": "Yes ", "fine_tuning_gain_on_average": "Under 10 points"},
                               runs), (dict(good, fine_tuning_gain_on_average="over 10 points"), big)], [
            (dict(good, mnist_features_beat_random="no"), runs),
            (dict(good, fine_tuning_gain_on_average="over 10 points"), runs),
            (good, big),
            (dict(good, fine_tuning_gain_on_average="a lot"), runs),
            ({"mnist_features_beat_random": "yes"}, runs),
        ]


class PredictLanguageSource(_Prediction):
    id = "modalities.q4"
    prompt = (
        "Predict, then verify, on the other language's spoken digits. (a) With 1 labelled clip per class, which "
        "frozen extractor gives the better linear probe: 'English frozen' (trained on English speech) or "
        "'MNIST frozen' (trained on handwritten digits)? (b) Where does the frozen English trunk beat scratch by "
        "more: with the 'fewest labels' (1 per class) or with the 'most labels' (30 per class)? "
        "Answer {'better_extractor_at_1': ..., 'english_helps_most_with': ...}."
    )
    hints = [
        "(a) Which source saw spectrograms — of the same ten digits, spoken in another language?",
        "(b) A frozen trunk keeps what separated English words, whatever the number of labels; scratch learns "
        "the target's own words, and the more labels it gets, the better it learns them.",
    ]
    solution_code = (
        "prediction = {\n"
        '    "better_extractor_at_1": "English frozen",\n'
        '    "english_helps_most_with": "fewest labels",\n'
        "}"
    )
    options = {"better_extractor_at_1": (ENGLISH_FROZEN, MNIST_FROZEN),
               "english_helps_most_with": ("fewest labels", "most labels")}
    runs_name = "runs_tg"

    def _check(self, prediction, runs=None):
        chosen, records, budgets = self._read(prediction, runs)
        extractor, where = chosen["better_extractor_at_1"], chosen["english_helps_most_with"]
        low, high = budgets[0], budgets[-1]
        at_low = {m: _mean(records, m, low) for m in (ENGLISH_FROZEN, MNIST_FROZEN)}
        edge = {k: _mean(records, ENGLISH_FROZEN, k) - _mean(records, SCRATCH, k) for k in (low, high)}
        wrong = []
        if extractor != max(at_low, key=at_low.get):
            wrong.append(f"(a) at {low} label(s) per class: {ENGLISH_FROZEN} {at_low[ENGLISH_FROZEN]:.3f}, "
                         f"{MNIST_FROZEN} {at_low[MNIST_FROZEN]:.3f}")
        if where != ("fewest labels" if edge[low] > edge[high] else "most labels"):
            wrong.append(f"(b) {ENGLISH_FROZEN} minus {SCRATCH}: {edge[low]:+.3f} at {low} label(s) per class, "
                         f"{edge[high]:+.3f} at {high}")
        return _verdict(wrong, f"at {low} label(s) per class the English features give {at_low[ENGLISH_FROZEN]:.3f}, "
                               f"the MNIST ones {at_low[MNIST_FROZEN]:.3f}; the English trunk beats scratch by "
                               f"{edge[low]:+.3f} there and by {edge[high]:+.3f} at {high}: transfer pays most where "
                               "labels are scarce.")

    def examples(self):
        acc = {(ENGLISH_FROZEN, 1): 0.37, (ENGLISH_FROZEN, 30): 0.66, (MNIST_FROZEN, 1): 0.29,
               (MNIST_FROZEN, 30): 0.62, (SCRATCH, 1): 0.28, (SCRATCH, 30): 0.68}
        runs = [dict(method=m, labels_per_class=k, seed=s, acc=a + 0.003 * s) for (m, k), a in acc.items()
                for s in (0, 1, 2)]
        weak_scratch = [dict(r, acc=r["acc"] - 0.2) if r["method"] == SCRATCH and r["labels_per_class"] == 30
                        else r for r in runs]
        good = {"better_extractor_at_1": "English frozen", "english_helps_most_with": "fewest labels"}
        return [(good, runs), ({"better_extractor_at_1": "english FROZEN", "english_helps_most_with":
                                " Fewest labels"}, runs),
                (dict(good, english_helps_most_with="most labels"), weak_scratch)], [
            (dict(good, better_extractor_at_1=MNIST_FROZEN), runs),
            (dict(good, english_helps_most_with="most labels"), runs),
            (good, weak_scratch),
            (dict(good, better_extractor_at_1="English"), runs),
            ({"better_extractor_at_1": "English frozen", "english_helps_most_with": "scratch"}, runs),
            ({"better_extractor_at_1": "English frozen"}, runs),
        ]


q1 = MelBands()
q2 = StartFromProbe()
q3 = PredictImageSource()
q4 = PredictLanguageSource()
