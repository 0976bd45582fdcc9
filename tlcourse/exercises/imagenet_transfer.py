"""Exercises on reusing an ImageNet-pretrained network: decoding logits, choosing what to
unfreeze, what makes cached activations exact, and the measured gap to a model trained
from scratch.

Framework-neutral: no check imports PyTorch or TensorFlow. Question 2's answer is a live
model, so its checker is split (``observe`` / ``_judge``): in the kernel, :func:`trainable_map`
reads ``{weight name: trainable}`` from a PyTorch module (``named_parameters()`` and
``requires_grad``) or a Keras model (``weights`` and ``trainable_weights``), duck-typed, and
:func:`stage_states` reduces it to one word per stage of the network; the judge decides on
those 19 words alone, so the grader can judge them outside the kernel.
"""

from __future__ import annotations

import re

import numpy as np

from tlcourse.exercises._measured import MeasuredQuestion, as_records
from tlcourse.exercises.core import Incorrect, NotAttempted, Question, call_learner

NUM_BLOCKS = 16
"""EfficientNet-Lite0's MBConv blocks (numbered 0–15)."""


# -- q1 ----------------------------------------------------------------------------------------


def _names(full: bool = False) -> list[str]:
    from tlcourse.models.imagenet import class_names

    return class_names(full=full)


class Top1Name(Question):
    id = "imagenet_transfer.q1"
    prompt = (
        "Write top1_name(logits): the ImageNet class name (imagenet.class_names()) of the largest "
        "of 1,000 logits."
    )
    hints = [
        "The predicted class is the index of the largest logit: np.argmax(logits).",
        "Softmax does not change which logit is largest, so you do not need probabilities.",
        "imagenet.class_names() lists the 1,000 names in class-index order: index it with the argmax.",
    ]
    solution_code = (
        "def top1_name(logits):\n"
        "    return imagenet.class_names()[int(np.argmax(logits))]"
    )

    def _check(self, fn):
        names, full = _names(), _names(full=True)
        rng = np.random.default_rng(9)
        cases = [rng.normal(size=1000) for _ in range(3)]
        spiked = np.zeros(1000)
        spiked[281] = 5.0
        cases.append(spiked)
        negative = -np.abs(rng.normal(size=1000)) - 10.0  # all negative: the max is still the answer
        negative[967] = -1.0
        cases.append(negative)
        for z in cases:
            expected = int(np.argmax(z))
            got = call_learner(fn, z.copy())
            if isinstance(got, (int, np.integer)) and not isinstance(got, (bool, np.bool_)):
                raise Incorrect(f"you returned the class index {int(got)}: return its name, "
                                "imagenet.class_names()[index]")
            if not isinstance(got, str):
                raise Incorrect(f"return the class name as a string, got {type(got).__name__}")
            if got in (names[expected], full[expected]):
                continue
            where = [i for i, n in enumerate(names) if n == got or full[i] == got]
            if where and int(np.argmin(z)) in where:
                raise Incorrect("that is the class of the smallest logit: use np.argmax, not np.argmin")
            if where and any(i in (expected - 1, expected + 1) for i in where):
                raise Incorrect("off by one: class i is imagenet.class_names()[i], counting from 0")
            raise Incorrect(f"for logits whose largest entry is at index {expected}, expected "
                            f"{names[expected]!r}, got {got!r}")
        return "argmax of the logits = argmax of the probabilities; class 281 is 'tabby', 967 'espresso'."

    def examples(self):
        names = _names()

        def good(z):
            return names[int(np.argmax(z))]

        def full_name(z):
            return _names(full=True)[int(np.argmax(z))]

        def index(z):
            return int(np.argmax(z))

        def argmin(z):
            return names[int(np.argmin(z))]

        def off_by_one(z):
            return names[int(np.argmax(z)) + 1]

        return [(good,), (full_name,)], [(index,), (argmin,), (off_by_one,), (lambda z: None,)]


# -- q2 ----------------------------------------------------------------------------------------


def trainable_map(model) -> dict[str, bool]:
    """``{weight name: trainable}`` of a PyTorch module or a Keras model (plain data).

    PyTorch: every parameter of ``named_parameters()`` with its ``requires_grad``. Keras:
    every weight of ``model.weights`` except BatchNorm's moving statistics, named by its
    path (``"block15_dwconv/kernel"``), trainable when it is in ``model.trainable_weights``
    (so ``model.trainable = False`` freezes everything, whatever the layers say).
    """
    if hasattr(model, "named_parameters"):  # torch.nn.Module
        return {name: bool(p.requires_grad) for name, p in model.named_parameters()}
    if hasattr(model, "trainable_weights") and hasattr(model, "weights"):  # keras.Model
        live = {id(w) for w in model.trainable_weights}
        out = {}
        for w in model.weights:
            path = getattr(w, "path", None) or getattr(w, "name", "")
            if path.rsplit("/", 1)[-1] in ("moving_mean", "moving_variance"):
                continue
            out[path] = id(w) in live
        return out
    raise TypeError(f"expected a PyTorch module or a Keras model, got {type(model).__name__}")


_BLOCK = re.compile(r"^(?:_blocks\.(\d+)\.|block(\d+)_)")
_STAGE_NAMES = ["stem", *[f"block {i}" for i in range(NUM_BLOCKS)], "head", "classifier"]


def stage_of(name: str) -> int:
    """The stage of a weight name, PyTorch or Keras: 0 stem, 1–16 blocks 0–15, 17 head, 18 classifier."""
    tail = str(name)
    m = _BLOCK.match(tail)
    if m:
        return 1 + int(m.group(1) or m.group(2))
    if tail.startswith(("_conv_stem", "_bn0", "stem_")):
        return 0
    if tail.startswith(("_conv_head", "_bn1", "head_")):
        return NUM_BLOCKS + 1
    if tail.startswith(("_fc", "predictions", "classifier")):
        return NUM_BLOCKS + 2
    raise ValueError(f"cannot place the weight {name!r} in EfficientNet-Lite0's stages")


_STATES = ("train", "frozen", "mixed", "absent")


def stage_states(flags: dict[str, bool]) -> list[str]:
    """Per stage (stem, blocks 0–15, head, classifier): "train", "frozen", "mixed" or "absent".

    >>> stage_states({"_conv_stem.weight": False, "_fc.weight": True})[:2], stage_states({"_fc.bias": True})[-1]
    (['frozen', 'absent'], 'train')
    """
    per: dict[int, set[bool]] = {}
    for name, flag in flags.items():
        try:
            stage = stage_of(str(name))
        except ValueError as err:
            raise Incorrect(f"{err}: pass the EfficientNet-Lite0 model, exercise_model") from err
        per.setdefault(stage, set()).add(bool(flag))
    states = []
    for s in range(NUM_BLOCKS + 3):
        seen = per.get(s, set())
        states.append("absent" if not seen else "mixed" if len(seen) > 1 else "train" if True in seen else "frozen")
    return states


class UnfreezeTop(Question):
    id = "imagenet_transfer.q2"
    prompt = (
        "Freeze exercise_model so that exactly its last 3 MBConv blocks (13, 14, 15), the head "
        "(1×1 conv + BatchNorm) and the new classifier train, and nothing else."
    )
    hints = [
        "eff.blocks(model) lists 18 stages: stem, blocks 0–15, head. The classifier is not among them, "
        "so freezing a slice of that list never touches it.",
        "The stages to freeze are all but the last four (blocks 13, 14, 15 and the head): eff.blocks(model)[:-4].",
        "set_trainable(stage, False), defined above, holds the framework code: requires_grad_(False) in "
        "PyTorch, layer.trainable = False in Keras. (In Keras, never set model.trainable = False first: "
        "the model's flag overrides every layer's.)",
    ]
    solution_code = (
        "for stage in eff.blocks(exercise_model)[:-4]:   # stem and blocks 0–12\n"
        "    set_trainable(stage, False)"
    )
    K = 3

    def observe(self, model):
        """Per stage of the network, whether its weights train: a list of 19 strings."""
        flags = model if isinstance(model, dict) else None
        if flags is None and (hasattr(model, "named_parameters") or hasattr(model, "trainable_weights")):
            flags = trainable_map(model)
        if not isinstance(flags, dict) or not flags:
            raise Incorrect("pass the model itself: ex.q2.check(exercise_model)")
        return {"stages": stage_states(flags)}

    def _judge(self, observation):
        state = observation.get("stages") if isinstance(observation, dict) else None
        if not isinstance(state, list) or len(state) != NUM_BLOCKS + 3 or any(s not in _STATES for s in state):
            raise Incorrect("the observation of the model is not readable: check exercise_model itself")
        missing = [_STAGE_NAMES[s] for s, v in enumerate(state) if v == "absent"]
        if missing:
            raise Incorrect(f"the answer does not cover the whole network: no weights of {', '.join(missing)}. "
                            "Check the EfficientNet-Lite0 model, exercise_model")
        first = NUM_BLOCKS + 2 - self.K - 1  # index of the first stage that trains (block 13)
        if state[-1] != "train":
            raise Incorrect("the new classifier must train: it starts from random weights "
                            "(in Keras, check that model.trainable is not False)")
        mixed = [_STAGE_NAMES[s] for s, v in enumerate(state) if v == "mixed"]
        if mixed:
            raise Incorrect(f"{', '.join(mixed)} is partly frozen: freeze or unfreeze whole stages")
        if all(v == "frozen" for v in state[:-1]):
            raise Incorrect("everything but the classifier is frozen: that is feature extraction. "
                            f"Let the last {self.K} blocks and the head train")
        if all(v == "train" for v in state):
            raise NotAttempted("nothing is frozen yet: freeze the stem and blocks 0–12")
        wrong_frozen = [_STAGE_NAMES[s] for s in range(first, NUM_BLOCKS + 2) if state[s] == "frozen"]
        wrong_trainable = [_STAGE_NAMES[s] for s in range(first) if state[s] == "train"]
        n_train = sum(v == "train" for v in state[1 : NUM_BLOCKS + 1])
        if wrong_frozen or wrong_trainable:
            parts = []
            if wrong_trainable:
                parts.append(f"trainable but should be frozen: {', '.join(wrong_trainable)}")
            if wrong_frozen:
                parts.append(f"frozen but should train: {', '.join(wrong_frozen)}")
            count = f" ({n_train} blocks train, expected {self.K})" if n_train != self.K else ""
            raise Incorrect("; ".join(parts) + count)
        return "blocks 13–15, the head and the classifier train; the stem and blocks 0–12 are frozen."

    def examples(self):
        def torch_names():
            names = ["_conv_stem.weight", "_bn0.weight", "_bn0.bias"]
            for i in range(NUM_BLOCKS):
                names += [f"_blocks.{i}._depthwise_conv.weight", f"_blocks.{i}._bn1.weight",
                          f"_blocks.{i}._project_conv.weight"]
            return names + ["_conv_head.weight", "_bn1.weight", "_bn1.bias", "_fc.weight", "_fc.bias"]

        def keras_names():
            names = ["stem_conv/kernel", "stem_bn/gamma", "stem_bn/beta"]
            for i in range(NUM_BLOCKS):
                names += [f"block{i}_dwconv/kernel", f"block{i}_dw_bn/gamma", f"block{i}_project_conv/kernel"]
            return names + ["head_conv/kernel", "head_bn/gamma", "head_bn/beta",
                            "predictions/kernel", "predictions/bias"]

        def flags(names, first_trainable_stage, classifier=True):
            out = {n: stage_of(n) >= first_trainable_stage for n in names}
            for n in names:
                if stage_of(n) == NUM_BLOCKS + 2:
                    out[n] = classifier
            return out

        class Param:  # what trainable_map reads of a torch.nn.Parameter
            def __init__(self, flag):
                self.requires_grad = flag

        class TorchModel:  # duck-typed torch.nn.Module
            def __init__(self, flags):
                self.flags = flags

            def named_parameters(self):
                return [(n, Param(f)) for n, f in self.flags.items()]

        class Weight:
            def __init__(self, path):
                self.path = path

        class KerasModel:  # duck-typed keras.Model: weights, and those of them that train
            def __init__(self, flags, frozen_model=False):
                self.weights = [Weight(n) for n in flags]
                self.trainable_weights = [] if frozen_model else [w for w in self.weights if flags[w.path]]

        good = [(flags(torch_names(), 14),), (flags(keras_names(), 14),),
                (TorchModel(flags(torch_names(), 14)),), (KerasModel(flags(keras_names(), 14)),)]
        two_blocks = flags(torch_names(), 15)
        four_blocks = flags(keras_names(), 13)
        frozen_classifier = flags(torch_names(), 14, classifier=False)
        everything_frozen = flags(keras_names(), 18)
        mixed = flags(torch_names(), 14)
        mixed["_blocks.13._bn1.weight"] = False
        return good, [(two_blocks,), (four_blocks,), (frozen_classifier,), (everything_frozen,),
                      (mixed,), ({"a": True},), ([True] * 19,), (TorchModel(flags(torch_names(), 12)),),
                      (KerasModel(flags(keras_names(), 14), frozen_model=True),)]


# -- q3 ----------------------------------------------------------------------------------------


class CachingIsExact(Question):
    id = "imagenet_transfer.q3"
    prompt = (
        "Computing the frozen lower part's activations once and training the top on them gives the same "
        "result as running the whole network every step only if nothing in the lower part changes between "
        "steps. Which of these would break that? Answer a set of letters."
    )
    options = {
        "a": "random crops and flips of the training images, drawn anew each epoch (data augmentation)",
        "b": "the lower part's BatchNorm layers in training mode (model.train() in PyTorch)",
        "c": "dropout / stochastic depth active in the lower part",
        "d": "a learning rate ten times smaller for the top blocks than for the classifier",
        "e": "evaluating the test images with the same cached activations",
    }
    _answer = frozenset({"a", "b", "c"})
    hints = [
        "The cache holds g(x) for each image x, computed once. It stays right if g(x) is the same number "
        "at every step: a fixed function of a fixed input.",
        "Augmentation changes the input x; BatchNorm in training mode normalises with the batch's statistics "
        "(and updates them); dropout draws a new mask each call. The top's learning rates happen after the cut.",
    ]
    solution_code = 'breaks_the_cache = {"a", "b", "c"}'
    _why = {
        "a": "augmentation feeds a different image every epoch, so g(x) changes: the cache holds only one version",
        "b": "BatchNorm in training mode normalises each batch with that batch's own statistics (and updates the "
             "running ones): the same image gets a different activation in a different batch",
        "c": "dropout and stochastic depth draw a new random mask at every call",
        "d": "learning rates act on the top, after the cut: the frozen part's output is unchanged",
        "e": "the test images pass through the same frozen g; caching them is just as exact",
    }

    def _check(self, letters):
        if isinstance(letters, str):
            letters = {c for c in letters.replace(",", " ").split()} if len(letters) > 1 else {letters}
        try:
            chosen = {str(c).strip().lower() for c in letters}
        except TypeError as err:
            raise Incorrect('answer a set of letters, e.g. {"a", "d"}') from err
        unknown = chosen - set(self.options)
        if unknown:
            raise Incorrect(f"unknown options {sorted(unknown)}; choose among {sorted(self.options)}")
        missed = sorted(self._answer - chosen)
        extra = sorted(chosen - self._answer)
        if missed or extra:
            reasons = [f"{c} breaks it: {self._why[c]}" for c in missed]
            reasons += [f"{c} does not: {self._why[c]}" for c in extra]
            raise Incorrect("; ".join(reasons))
        return ("the cache is exact for a deterministic, fixed lower part: eval mode (BatchNorm with running "
                "statistics, no dropout) and the same input images.")

    def examples(self):
        return ([({"a", "b", "c"},), (["c", "b", "a"],)],
                [({"a", "b"},), ({"a", "b", "c", "d"},), ({"e"},), ({"z"},), (42,)])


# -- q4 ----------------------------------------------------------------------------------------


class PredictGapAtOne(MeasuredQuestion):
    id = "imagenet_transfer.q4"
    prompt = (
        "Predict before the experiment runs: with ONE labelled patch per class, by how many points of "
        "accuracy will the ImageNet features (+ logistic regression) beat the small CNN trained from "
        "scratch? Choose 'none' (< 5), 'some' (5–25) or 'lots' (> 25); the check compares with the "
        "measured runs."
    )
    hints = [
        "With 8 training images, the scratch CNN must learn every filter from 8 examples.",
        "The frozen network already separates textures it has never been trained on: its features "
        "were learned from 1.28 million photos.",
    ]
    solution_code = 'gap_at_one = "lots"'
    _bins = (("none", -1.0, 0.05), ("some", 0.05, 0.25), ("lots", 0.25, 1.01))

    def _check(self, prediction, runs=None):
        value = str(prediction).strip().lower() if isinstance(prediction, str) else prediction
        if value not in [name for name, _, _ in self._bins]:
            raise Incorrect(f"answer 'none', 'some' or 'lots', got {prediction!r}")
        if runs is None:
            raise Incorrect("pass the measured runs: ex.q4.check(gap_at_one, runs=runs)")
        rows = [r for r in as_records(runs) if r.get("labels_per_class") == 1]
        methods = sorted({str(r.get("method")) for r in rows})
        a = next((m for m in methods if "feature" in m), None)
        b = next((m for m in methods if "scratch" in m), None)
        if a is None or b is None:
            raise Incorrect("the runs hold no feature-extraction and scratch results at 1 label per class "
                            f"(methods found: {methods})")
        acc = {m: [r["acc"] for r in rows if r.get("method") == m] for m in (a, b)}
        gap = float(np.mean(acc[a]) - np.mean(acc[b]))
        truth = next(name for name, lo, hi in self._bins if lo <= gap < hi)
        if value != truth:
            raise Incorrect(f"measured: {a} {np.mean(acc[a]):.3f}, {b} {np.mean(acc[b]):.3f}, "
                            f"a gap of {100 * gap:+.0f} points ('{truth}')")
        return f"measured gap at 1 label per class: {100 * gap:+.0f} points."

    def examples(self):
        runs = [dict(method="features + logreg", labels_per_class=1, seed=s, acc=0.95) for s in range(3)]
        runs += [dict(method="scratch CNN", labels_per_class=1, seed=s, acc=0.6) for s in range(3)]
        runs += [dict(method="scratch CNN", labels_per_class=30, seed=0, acc=0.95)]
        return [("lots", runs), ("Lots", runs)], [("none", runs), ("some", runs), ("many", runs), ("lots", [])]


q1 = Top1Name()
q2 = UnfreezeTop()
q3 = CachingIsExact()
q4 = PredictGapAtOne()
