"""Exercises on feature extraction: freezing the extractor, counting what trains, where it pays off.

The checks work for PyTorch and for Keras answers: a model is recognised by what it has
(``named_parameters`` for PyTorch, ``layers`` and ``trainable_weights`` for Keras), and no
framework is imported, here or in the checks.
"""

from __future__ import annotations

import numpy as np

from tlcourse.exercises._measured import MeasuredQuestion, as_records, mean_of
from tlcourse.exercises.core import Incorrect, Question, call_learner

HEAD = "frozen + head"
LOGREG = "features + logreg"
SCRATCH = "scratch"


# -- q1 ----------------------------------------------------------------------------------------


def _size(shape) -> int:
    return int(np.prod([int(d) for d in shape]))


def _torch_trainability(model):
    """``(head_train, head_frozen, other_train, other_frozen, names still training)`` of a torch-like model."""
    children = [name for name, _ in model.named_children()]
    if not children:
        raise Incorrect("expected a model with an extractor and a head (named children), got a single layer")
    head = children[-1]
    counts = {"head_train": 0, "head_frozen": 0, "other_train": 0, "other_frozen": 0}
    still = []
    for name, p in model.named_parameters():
        part = "head" if name == head or name.startswith(head + ".") else "other"
        trains = bool(p.requires_grad)
        counts[f"{part}_{'train' if trains else 'frozen'}"] += int(p.numel())
        if part == "other" and trains:
            still.append(name.rsplit(".", 1)[0])
    return counts, sorted(set(still))


def _keras_trainability(model):
    if getattr(model, "trainable", True) is False:
        raise Incorrect("model.trainable = False makes Keras train none of the model's weights — the head "
                        "included, even if you set the head's trainable back to True afterwards. Set "
                        "trainable = False on the extractor's layers, not on the whole model")
    layers = list(model.layers)
    weighted = [layer for layer in layers if getattr(layer, "weights", None)]
    if not weighted:
        raise Incorrect("the model you returned has no weights")
    head = weighted[-1]
    counts = {"head_train": 0, "head_frozen": 0, "other_train": 0, "other_frozen": 0}
    still = []
    for layer in weighted:
        part = "head" if layer is head else "other"
        live = {id(v) for v in layer.trainable_weights}
        for v in layer.weights:
            trains = id(v) in live
            counts[f"{part}_{'train' if trains else 'frozen'}"] += _size(v.shape)
            if part == "other" and trains:
                still.append(layer.name)
    return counts, sorted(set(still))


class FreezeExtractor(Question):
    id = "feature_extraction.q1"
    prompt = (
        "Write freeze_extractor(model): freeze every weight of the source model except those of its head "
        "(the last block), so that training would change only the head; return the model."
    )
    hints = [
        "PyTorch: the extractor is model.features; loop over its parameters() and call p.requires_grad_(False).",
        "Keras: loop over model.layers and set layer.trainable = False on every layer but the one named 'head'.",
        "Keras: do not set model.trainable = False — a frozen model hands no weights to the optimizer, "
        "not even those of a layer you unfreeze afterwards.",
    ]
    solution_code = (
        "def freeze_extractor(model):\n"
        "    if FRAMEWORK == \"torch\":\n"
        "        for p in model.features.parameters():  # conv1, conv2, fc1\n"
        "            p.requires_grad_(False)\n"
        "    else:  # Keras\n"
        "        for layer in model.layers:\n"
        "            if layer.name != \"head\":\n"
        "                layer.trainable = False\n"
        "    return model"
    )

    def observe(self, fn, model=None):
        """Which weights still train after the learner's function ran: counts and names."""
        if model is None:
            raise Incorrect('pass a fresh source model too: q1.check(freeze_extractor, pretrained("mnist-cnn"))')
        result = call_learner(fn, model)
        model = model if result is None else result
        if hasattr(model, "named_parameters") and hasattr(model, "named_children"):
            counts, still = _torch_trainability(model)
            return {"counts": counts, "still": still, "torch": True}
        if hasattr(model, "layers") and hasattr(model, "trainable_weights"):
            counts, still = _keras_trainability(model)
            return {"counts": counts, "still": still, "torch": False}
        raise Incorrect(f"freeze_extractor should return the model, got {type(model).__name__}")

    def _judge(self, observation):
        counts, still = observation["counts"], observation["still"]
        if counts["head_train"] == 0 and counts["other_train"] == 0:
            raise Incorrect("nothing is left to train: the head is frozen too. Freeze the extractor, keep the head")
        if counts["head_frozen"]:
            raise Incorrect(f"{counts['head_frozen']} of the head's weights are frozen: the new head must train")
        if counts["other_frozen"] == 0:
            raise Incorrect("every weight of the extractor still trains: nothing was frozen"
                            + (" (requires_grad is an attribute of each parameter tensor)"
                               if observation["torch"] else ""))
        if still:
            raise Incorrect(f"these still train and are not the head: {', '.join(still)}")
        total = counts["head_train"] + counts["other_frozen"]
        return (f"{counts['head_train']:,} of {total:,} parameters train — the head's — and "
                f"{counts['other_frozen']:,} are frozen.")

    def examples(self):
        class Param:  # what the check reads of a torch.nn.Parameter
            def __init__(self, *shape):
                self.shape, self.requires_grad = shape, True

            def numel(self):
                return _size(self.shape)

            def requires_grad_(self, flag=True):
                self.requires_grad = flag
                return self

        class Module:
            def __init__(self, **params):
                self.params = params

            def named_parameters(self):
                return list(self.params.items())

            def parameters(self):
                return list(self.params.values())

        class TorchNet:  # SmallNet's shape: .features (conv1, conv2, fc1) and .head
            def __init__(self):
                self.features = Module(**{"conv1.conv.weight": Param(16, 1, 3, 3), "conv1.conv.bias": Param(16),
                                          "fc1.dense.weight": Param(64, 1568), "fc1.dense.bias": Param(64)})
                self.head = Module(weight=Param(10, 64), bias=Param(10))

            def named_children(self):
                return [("features", self.features), ("head", self.head)]

            def named_parameters(self):
                return [(f"{c}.{n}", p) for c, m in self.named_children() for n, p in m.named_parameters()]

            def parameters(self):
                return [p for _, p in self.named_parameters()]

        class Variable:
            def __init__(self, *shape):
                self.shape = shape

        class Layer:  # what the check reads of a keras layer
            def __init__(self, name, *shapes):
                self.name, self.weights, self.trainable = name, [Variable(*s) for s in shapes], True

            @property
            def trainable_weights(self):
                return list(self.weights) if self.trainable else []

        class KerasNet:  # a functional model: input layer, conv1, fc1, head
            def __init__(self):
                self.layers = [Layer("image"), Layer("conv1", (3, 3, 1, 16), (16,)),
                               Layer("fc1", (1568, 64), (64,)), Layer("head", (64, 10), (10,))]
                self._trainable = True

            @property
            def trainable(self):
                return self._trainable

            @trainable.setter
            def trainable(self, flag):  # as in Keras: the flag is set on every layer too
                self._trainable = flag
                for layer in self.layers:
                    layer.trainable = flag

            @property
            def trainable_weights(self):
                return [w for layer in self.layers for w in layer.trainable_weights] if self._trainable else []

            def get_layer(self, name):
                return next(layer for layer in self.layers if layer.name == name)

        def torch_good(model):
            for p in model.features.parameters():
                p.requires_grad_(False)
            return model

        def torch_by_name(model):
            for name, p in model.named_parameters():
                p.requires_grad = name.startswith("head.")
            return model

        def keras_good(model):
            for layer in model.layers:
                if layer.name != "head":
                    layer.trainable = False
            return model

        def torch_everything(model):
            for p in model.parameters():
                p.requires_grad_(False)
            return model

        def torch_only_conv1(model):
            for name, p in model.named_parameters():
                if name.startswith("features.conv1"):
                    p.requires_grad_(False)
            return model

        def torch_head_instead(model):
            for p in model.head.parameters():
                p.requires_grad_(False)
            return model

        def torch_nothing(model):
            return model

        def keras_whole_model(model):
            model.trainable = False
            model.get_layer("head").trainable = True
            return model

        def keras_head_only_frozen(model):
            model.get_layer("head").trainable = False
            return model

        def returns_flag(model):
            return True

        return [(torch_good, TorchNet()), (torch_by_name, TorchNet()), (keras_good, KerasNet())], [
            (torch_everything, TorchNet()),
            (torch_only_conv1, TorchNet()),
            (torch_head_instead, TorchNet()),
            (torch_nothing, TorchNet()),
            (keras_whole_model, KerasNet()),
            (keras_head_only_frozen, KerasNet()),
            (returns_flag, KerasNet()),
        ]


# -- q2 ----------------------------------------------------------------------------------------


class CountTrainable(Question):
    id = "feature_extraction.q2"
    prompt = (
        "The small CNN: conv1 (3×3, 1 → 16), conv2 (3×3, 16 → 32), fc1 (32·7·7 → 64), head (64 → classes), "
        "all with biases. How many parameters train (a) with the extractor frozen and a new head for all 26 "
        "letters A–Z; (b) with only conv1 and conv2 frozen, fc1 and a new 10-class head trained? "
        "Answer {'head_26': ..., 'fc1_and_head': ...}."
    )
    hints = [
        "A dense layer from n inputs to m outputs has n·m weights and m biases.",
        "(a) only the head trains: 64 inputs, 26 outputs. (b) fc1 (1,568 → 64) and the head (64 → 10) train.",
    ]
    solution_code = (
        "trainable_counts = {\n"
        '    "head_26": 64 * 26 + 26,                              # the new head only\n'
        '    "fc1_and_head": (32 * 7 * 7 * 64 + 64) + (64 * 10 + 10),  # fc1 + the head\n'
        "}"
    )
    _answer = {"head_26": 64 * 26 + 26, "fc1_and_head": 32 * 7 * 7 * 64 + 64 + 64 * 10 + 10}

    def _check(self, counts):
        if not isinstance(counts, dict) or set(counts) != set(self._answer):
            raise Incorrect(f"give a dict with the keys {sorted(self._answer)}")
        try:
            values = {k: float(v) for k, v in counts.items()}
        except (TypeError, ValueError) as err:
            raise Incorrect(f"the counts must be numbers, got {counts!r}") from err
        head, both = values["head_26"], values["fc1_and_head"]
        if head != self._answer["head_26"]:
            if head == 64 * 26:
                raise Incorrect("(a) 1,664 weights are right; add the head's 26 biases")
            if head == 64 * 10 + 10:
                raise Incorrect("(a) 650 is the 10-class head: the letters A–Z need 26 outputs")
            raise Incorrect(f"(a) the head maps 64 features to 26 scores: 64·26 weights + 26 biases, not {head:g}")
        if both != self._answer["fc1_and_head"]:
            if both == 32 * 7 * 7 * 64 + 64:
                raise Incorrect("(b) that is fc1 alone: the new head trains too")
            if both == 105_866:
                raise Incorrect("(b) that is the whole network: conv1 (160) and conv2 (4,640) are frozen")
            if both == 32 * 7 * 7 * 64 + 64 * 10:
                raise Incorrect("(b) add the biases: 64 for fc1 and 10 for the head")
            raise Incorrect(f"(b) fc1 has 1,568·64 + 64 parameters and the head 64·10 + 10; their sum is not {both:g}")
        return ("1,690 and 101,066: freezing the convolutions alone saves less than 5% of the parameters, "
                "because fc1 holds most of them; freezing the whole extractor leaves under 2%.")

    def examples(self):
        good = dict(self._answer)
        return [(good,), ({"head_26": 1690.0, "fc1_and_head": 101066},)], [
            (dict(good, head_26=1664),),
            (dict(good, head_26=650),),
            (dict(good, fc1_and_head=100416),),
            (dict(good, fc1_and_head=105866),),
            (dict(good, fc1_and_head=100992),),
            ({"head_26": 1690},),
            (dict(good, head_26="small"),),
        ]


# -- q3 ----------------------------------------------------------------------------------------


def _mean(records, target, method, k):
    return mean_of(records, target=target, method=method, labels_per_class=k)


class PredictWhereItPays(MeasuredQuestion):
    id = "feature_extraction.q3"
    prompt = (
        "Predict, then verify. (a) With 1 labelled image per class, on which target does the frozen extractor "
        "+ head beat scratch by more: 'digits' (same task, new domain) or 'letters' (new task)? (b) On the "
        "letters with the largest label budget, which is better: 'frozen + head' or 'scratch'? Answer "
        "{'bigger_gain_at_1': ..., 'winner_letters_most_labels': ...}."
    )
    hints = [
        "(a) The extractor was trained to tell digits apart. Which target needs what it learned?",
        "(b) A frozen extractor keeps what separated the digits and nothing else; a network trained from scratch "
        "on enough letters learns what separates letters.",
    ]
    solution_code = (
        "prediction = {\n"
        '    "bigger_gain_at_1": "digits",\n'
        '    "winner_letters_most_labels": "scratch",\n'
        "}"
    )
    _keys = ("bigger_gain_at_1", "winner_letters_most_labels")

    def _check(self, prediction, runs=None):
        if not isinstance(prediction, dict) or set(prediction) != set(self._keys):
            raise Incorrect(f"give a dict with the keys {list(self._keys)}")
        gain = str(prediction["bigger_gain_at_1"]).strip().lower()
        winner = str(prediction["winner_letters_most_labels"]).strip().lower()
        if gain not in ("digits", "letters"):
            raise Incorrect(f"bigger_gain_at_1: answer 'digits' or 'letters', got {prediction['bigger_gain_at_1']!r}")
        if winner not in (HEAD, SCRATCH):
            raise Incorrect(f"winner_letters_most_labels: answer {HEAD!r} or {SCRATCH!r}, "
                            f"got {prediction['winner_letters_most_labels']!r}")
        if runs is None:
            raise Incorrect("pass the measured runs: q3.check(prediction, runs=runs)")
        records = as_records(runs)
        budgets = sorted({int(r["labels_per_class"]) for r in records})
        if not budgets:
            raise Incorrect("the runs you passed are empty")
        low, high = budgets[0], budgets[-1]
        gains = {t: _mean(records, t, HEAD, low) - _mean(records, t, SCRATCH, low) for t in ("digits", "letters")}
        measured_gain = max(gains, key=gains.get)
        at_high = {m: _mean(records, "letters", m, high) for m in (HEAD, SCRATCH)}
        measured_winner = max(at_high, key=at_high.get)
        wrong = []
        if gain != measured_gain:
            wrong.append(f"(a) at {low} label(s) per class the gain over scratch is digits {gains['digits']:+.3f}, "
                         f"letters {gains['letters']:+.3f}")
        if winner != measured_winner:
            wrong.append(f"(b) on letters at {high} labels per class: {HEAD} {at_high[HEAD]:.3f}, "
                         f"{SCRATCH} {at_high[SCRATCH]:.3f}")
        if wrong:
            raise Incorrect("the measurement says otherwise: " + "; ".join(wrong))
        return (f"gain at {low} label(s) per class: digits {gains['digits']:+.3f}, letters {gains['letters']:+.3f}; "
                f"letters at {high}: {HEAD} {at_high[HEAD]:.3f}, {SCRATCH} {at_high[SCRATCH]:.3f}.")

    def examples(self):
        acc = {("digits", HEAD, 1): 0.78, ("digits", SCRATCH, 1): 0.61, ("letters", HEAD, 1): 0.31,
               ("letters", SCRATCH, 1): 0.24, ("digits", HEAD, 100): 0.95, ("digits", SCRATCH, 100): 0.94,
               ("letters", HEAD, 100): 0.81, ("letters", SCRATCH, 100): 0.86}
        runs = [dict(target=t, method=m, labels_per_class=k, seed=s, acc=a + 0.005 * s)
                for (t, m, k), a in acc.items() for s in (0, 1, 2)]
        good = {"bigger_gain_at_1": "digits", "winner_letters_most_labels": "scratch"}
        return [(good, runs), ({"bigger_gain_at_1": "Digits", "winner_letters_most_labels": "scratch "}, runs)], [
            (dict(good, bigger_gain_at_1="letters"), runs),
            (dict(good, winner_letters_most_labels=HEAD), runs),
            ({"bigger_gain_at_1": "letters", "winner_letters_most_labels": HEAD}, runs),
            (dict(good, winner_letters_most_labels="logistic regression"), runs),
            ({"bigger_gain_at_1": "digits"}, runs),
        ]


q1 = FreezeExtractor()
q2 = CountTrainable()
q3 = PredictWhereItPays()
