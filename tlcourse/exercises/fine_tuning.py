"""Exercises on fine-tuning: freezing blocks, learning rates per block, BatchNorm statistics.

The checkers take PyTorch and Keras answers alike without importing either framework: a
model is inspected by duck typing (PyTorch: ``model.blocks`` and ``requires_grad``;
Keras: ``model.spec.block_names``, ``get_layer`` and ``trainable_weights``). q1's answer is a
function that changes a model, so its checker is split: ``observe`` runs it on fresh models and
records plain data (each block's state, what it returned), ``_judge`` decides on that record
alone — which is what the grader does outside the learner's kernel.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from tlcourse.exercises._measured import MeasuredQuestion, as_records
from tlcourse.exercises.core import Incorrect, Question, call_learner

_STATISTICS = ("moving_mean", "moving_variance")


# -- inspecting a model's blocks (PyTorch or Keras), without importing either -----------------


def _weight_name(weight) -> str:
    return str(getattr(weight, "path", None) or getattr(weight, "name", ""))


def block_states(model) -> OrderedDict:
    """``{block: "trainable" | "frozen" | "partly frozen"}`` for a course SmallNet (PyTorch or Keras).

    PyTorch: a parameter trains when ``requires_grad`` is set. Keras: a weight trains when it is
    among ``model.trainable_weights`` (so ``model.trainable = False`` freezes everything, whatever
    the layers say). BatchNorm statistics are not parameters and are ignored.
    """
    if hasattr(model, "named_parameters") and hasattr(model, "blocks"):  # PyTorch SmallNet
        groups = {name: [bool(p.requires_grad) for p in block.parameters()] for name, block in model.blocks.items()}
    elif hasattr(model, "get_layer") and hasattr(getattr(model, "spec", None), "block_names"):  # Keras
        live = {id(w) for w in model.trainable_weights}
        groups = {}
        for name in model.spec.block_names:
            weights = [w for w in model.get_layer(name).weights if not _weight_name(w).endswith(_STATISTICS)]
            groups[name] = [id(w) in live for w in weights]
    else:
        raise Incorrect(f"expected a course model (arch.small_cnn or transferred_model()), got {type(model).__name__}")
    states = OrderedDict()
    for name, flags in groups.items():
        states[name] = "trainable" if flags and all(flags) else "frozen" if not any(flags) else "partly frozen"
    return states


def _records(runs) -> list[dict]:
    if runs is None:
        raise Incorrect("pass the measured runs as well: check(answer, runs=...)")
    return as_records(runs)


# -- q1 -------------------------------------------------------------------------------------------


class FreezeAllButLast(Question):
    id = "fine_tuning.q1"
    prompt = (
        "Write freeze_all_but_last(model, n): freeze every block of the model except the last n "
        "(the head is the last block) and return the model."
    )
    hints = [
        "arch.block_names(model) lists the blocks in order, head last; the blocks to freeze are "
        "all but the last n of them: a slice [:-n].",
        "PyTorch: arch.blocks(model)[name].requires_grad_(False). Keras: arch.blocks(model)[name].trainable = False "
        "(or model.get_layer(name).trainable = False).",
        "Leave the model itself trainable in Keras: model.trainable = False freezes everything, whatever "
        "you set on its layers afterwards.",
    ]
    solution_code = (
        "def freeze_all_but_last(model, n):\n"
        "    for name in arch.block_names(model)[:-n]:\n"
        "        block = arch.blocks(model)[name]\n"
        "        if hasattr(block, \"requires_grad_\"):   # PyTorch\n"
        "            block.requires_grad_(False)\n"
        "        else:                                  # Keras\n"
        "            block.trainable = False\n"
        "    return model"
    )

    def observe(self, fn, make_model=None):
        """What the learner's function did to fresh models, for n = 2, 1, 3: each block's state
        ("trainable", "frozen", "partly frozen"), whether it returned the model it was given, and
        (Keras) whether it froze the model as a whole."""
        if make_model is None or not callable(make_model):
            raise Incorrect("pass a function making fresh models: check(freeze_all_but_last, make_model=transferred_model)")
        trials = []
        for n in (2, 1, 3):
            model = make_model()
            names = list(block_states(model))
            result = call_learner(fn, model, n)
            trials.append({
                "n": n,
                "blocks": names,
                "states": list(block_states(model).values()),
                "returned": "nothing" if result is None else "the model" if result is model else "another object",
                "whole_model_frozen": getattr(model, "trainable", True) is False,  # Keras: model.trainable = False
            })
        return {"trials": trials}

    def _judge(self, observation):
        for trial in observation["trials"]:
            n, names, states = int(trial["n"]), list(trial["blocks"]), list(trial["states"])
            if len(states) != len(names) or not 0 < n < len(names):
                raise Incorrect("the record of your model does not match its blocks")
            if trial["returned"] == "nothing":
                raise Incorrect("your function returns None: end it with `return model`")
            if trial["returned"] != "the model":
                raise Incorrect("freeze the blocks of the model you were given, and return that same model")
            want = names[len(names) - n:]
            got = [name for name, state in zip(names, states) if state == "trainable"]
            partly = [name for name, state in zip(names, states) if state == "partly frozen"]
            if partly:
                raise Incorrect(f"with n={n}, blocks {partly} are only partly frozen: freeze whole blocks")
            if got == want:
                continue
            if trial["whole_model_frozen"]:
                raise Incorrect(f"with n={n} nothing is left to train: model.trainable = False freezes every weight "
                                "in Keras, whatever you set on its layers afterwards. Freeze the blocks one by one")
            if not got:
                raise Incorrect(f"with n={n} nothing is left to train; the last {n} block(s) {want} must stay trainable")
            if got == names[:n]:
                raise Incorrect(f"with n={n} you kept the *first* {n} block(s) {got} trainable: "
                                "freeze the early blocks, train the last ones")
            raise Incorrect(f"with n={n} the trainable blocks should be {want}, yours are {got}")
        return "frozen blocks keep the source's weights; only the last n learn from the target."

    def examples(self):
        def good(model, n):
            for name in list(block_states(model))[:-n]:
                _freeze_fake(model, name)
            return model

        def first_n(model, n):
            for name in list(block_states(model))[n:]:
                _freeze_fake(model, name)
            return model

        def off_by_one(model, n):
            for name in list(block_states(model))[:-n - 1]:
                _freeze_fake(model, name)
            return model

        def no_return(model, n):
            good(model, n)

        def keras_whole_model(model, n):
            model.trainable = False
            for name in list(block_states(model))[-n:]:
                model.get_layer(name).trainable = True
            return model

        def half_block(model, n):  # freezes only the first parameter of each block
            for name in list(block_states(model))[:-n]:
                next(iter(model.blocks[name].parameters())).requires_grad = False
            return model

        def nothing(model, n):
            return model

        def a_copy(model, n):
            return type(model)()

        torch_like, keras_like = _FakeTorchNet, _FakeKerasNet
        return (
            [(good, torch_like), (good, keras_like)],
            [(first_n, torch_like), (off_by_one, torch_like), (no_return, torch_like),
             (keras_whole_model, keras_like), (half_block, torch_like), (nothing, keras_like),
             (a_copy, torch_like), (good,)],
        )


# Small stand-ins for a PyTorch and a Keras SmallNet (four blocks, head last), for examples().

_BLOCKS = ("conv1", "conv2", "fc1", "head")


class _FakeParam:
    def __init__(self):
        self.requires_grad = True


class _FakeTorchBlock:
    def __init__(self):
        self._params = [_FakeParam(), _FakeParam()]

    def parameters(self):
        return iter(self._params)

    def requires_grad_(self, flag=True):
        for p in self._params:
            p.requires_grad = flag
        return self


class _FakeTorchNet:
    def __init__(self):
        self.blocks = OrderedDict((name, _FakeTorchBlock()) for name in _BLOCKS)

    def named_parameters(self):
        for name, block in self.blocks.items():
            for i, p in enumerate(block.parameters()):
                yield f"{name}.{i}", p


class _FakeWeight:
    def __init__(self, path):
        self.path = path


class _FakeKerasLayer:
    def __init__(self, name):
        self.trainable = True
        self.weights = [_FakeWeight(f"{name}/kernel"), _FakeWeight(f"{name}/bias")]

    @property
    def trainable_weights(self):
        return list(self.weights) if self.trainable else []


class _FakeSpec:
    block_names = list(_BLOCKS)


class _FakeKerasNet:
    spec = _FakeSpec()

    def __init__(self):
        self._layers = {name: _FakeKerasLayer(name) for name in _BLOCKS}
        self._trainable = True

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, flag):  # as in Keras: sets every layer too
        self._trainable = flag
        for layer in self._layers.values():
            layer.trainable = flag

    def get_layer(self, name):
        return self._layers[name]

    @property
    def trainable_weights(self):
        if not self._trainable:
            return []
        return [w for layer in self._layers.values() for w in layer.trainable_weights]


def _freeze_fake(model, name):
    if hasattr(model, "blocks"):
        model.blocks[name].requires_grad_(False)
    else:
        model.get_layer(name).trainable = False


# -- q2 -------------------------------------------------------------------------------------------

_WINNER = {"all": "all blocks", "all blocks": "all blocks", "last 2": "last 2 blocks", "last2": "last 2 blocks",
           "last 2 blocks": "last 2 blocks", "last two": "last 2 blocks"}


class WinnerAtOneLabel(MeasuredQuestion):
    id = "fine_tuning.q2"
    prompt = (
        "Predict, then verify: with 1 labelled image per class on the 8×8 digits, which scores higher — "
        "fine-tuning \"all\" blocks or only the \"last 2\"?"
    )
    hints = [
        "Ten images, one per class, against about 100,000 weights: which model has fewer ways to overfit?",
        "Look at the first row of the digits table: compare the columns 'last 2 blocks' and 'all blocks'.",
    ]
    solution_code = 'winner_at_1 = "last 2"'

    def _check(self, answer, runs=None):
        key = str(answer).strip().lower() if isinstance(answer, str) else None
        if key not in _WINNER:
            raise Incorrect(f'answer "all" or "last 2", got {answer!r}')
        rows = [r for r in _records(runs) if r["labels_per_class"] == 1]
        if not rows:
            raise Incorrect("no runs at 1 label per class in the results you passed")
        mean = {m: float(np.mean([r["acc"] for r in rows if r["method"] == m])) for m in ("all blocks", "last 2 blocks")}
        truth = max(mean, key=mean.get)
        if _WINNER[key] != truth:
            raise Incorrect(f"measured at 1 label per class: last 2 blocks {mean['last 2 blocks']:.3f}, "
                            f"all blocks {mean['all blocks']:.3f}")
        why = ("with so few labels, fewer trainable weights overfit less" if truth == "last 2 blocks" else
               "here the transferred convolutions gained from adapting, even to ten images")
        return f"measured: last 2 blocks {mean['last 2 blocks']:.3f} vs all blocks {mean['all blocks']:.3f}; {why}."

    def examples(self):
        runs = [dict(method="all blocks", labels_per_class=1, seed=s, acc=a) for s, a in enumerate((0.66, 0.70))]
        runs += [dict(method="last 2 blocks", labels_per_class=1, seed=s, acc=a) for s, a in enumerate((0.70, 0.72))]
        return [("last 2", runs), ("Last 2 blocks", runs)], [("all", runs), ("scratch", runs), (2, runs)]


# -- q3 -------------------------------------------------------------------------------------------


class BestLearningRate(MeasuredQuestion):
    id = "fine_tuning.q3"
    prompt = "Read the learning-rate table: which of the learning rates tried gave the best mean accuracy?"
    hints = [
        "The table has one row per learning rate; compare the 'acc' column.",
        "Answer with the number itself, e.g. 1e-3 (not a string).",
    ]
    solution_code = "best_lr = float(lr_runs.groupby(\"lr\").acc.mean().idxmax())  # or type the number you read"

    def _check(self, answer, runs=None):
        if isinstance(answer, bool) or not isinstance(answer, (int, float, np.floating)):
            raise Incorrect(f"answer with a number such as 1e-3, got {answer!r}")
        rows = _records(runs)
        lrs = sorted({float(r["lr"]) for r in rows})
        mean = {lr: float(np.mean([r["acc"] for r in rows if np.isclose(r["lr"], lr)])) for lr in lrs}
        match = [lr for lr in lrs if np.isclose(float(answer), lr, rtol=1e-6)]
        if not match:
            raise Incorrect(f"{answer!r} was not tried; the learning rates were {', '.join(f'{lr:g}' for lr in lrs)}")
        best = max(mean, key=mean.get)
        if match[0] != best:
            table = ", ".join(f"{lr:g}: {acc:.3f}" for lr, acc in mean.items())
            raise Incorrect(f"measured mean accuracies — {table}")
        runner_up = max((lr for lr in lrs if lr != best), key=mean.get, default=None)
        margin = "" if runner_up is None else f", {mean[best] - mean[runner_up]:.3f} ahead of {runner_up:g}"
        return (f"{best:g} gave {mean[best]:.3f}{margin}. Too large a rate overwrites the transferred blocks, "
                "too small a one trains the new head slowly.")

    def examples(self):
        runs = [dict(lr=lr, acc=a, labels_per_class=5, seed=0) for lr, a in ((1e-4, 0.79), (1e-3, 0.84), (1e-2, 0.79))]
        return [(1e-3, runs), (0.001, runs)], [(1e-2, runs), (1e-4, runs), (3e-3, runs), ("1e-3", runs)]


# -- q4 -------------------------------------------------------------------------------------------


def _reference_lrs(names, head_lr, decay):
    return {name: head_lr / decay ** (len(names) - 1 - i) for i, name in enumerate(names)}


class DiscriminativeRates(Question):
    id = "fine_tuning.q4"
    prompt = (
        "Write block_lrs(names, head_lr, decay): a dict from block name to learning rate, the last block "
        "(the head) at head_lr and every block decay times slower than the block above it."
    )
    hints = [
        "The last block gets head_lr, the one before head_lr / decay, the one before that head_lr / decay**2, ...",
        "With enumerate(names), block i is len(names) - 1 - i blocks below the head.",
    ]
    solution_code = (
        "def block_lrs(names, head_lr, decay):\n"
        "    return {name: head_lr / decay ** (len(names) - 1 - i) for i, name in enumerate(names)}"
    )
    _cases = ((["conv1", "conv2", "fc1", "head"], 1e-2, 10.0), (["fc1", "fc2", "head"], 3e-3, 2.6))

    def _check(self, fn):
        for names, head_lr, decay in self._cases:
            got = call_learner(fn, list(names), head_lr, decay)
            if not isinstance(got, dict):
                raise Incorrect(f"return a dict {{block name: learning rate}}, got {type(got).__name__}")
            if list(got) != list(names):
                raise Incorrect(f"the keys should be the block names {names} (in order), got {list(got)}")
            want = _reference_lrs(names, head_lr, decay)
            values = np.array([float(got[n]) for n in names])
            if np.allclose(values, [want[n] for n in reversed(names)], rtol=1e-9):
                raise Incorrect("reversed: the head (last block) gets the largest rate, the first block the smallest")
            if np.isclose(values[-1], head_lr / decay, rtol=1e-9):
                raise Incorrect("off by one: the head itself gets head_lr, undivided")
            if values[0] > values[-1]:
                raise Incorrect("the rates must grow towards the head: divide, going down, don't multiply")
            if not np.allclose(values, [want[n] for n in names], rtol=1e-9):
                detail = ", ".join(f"{n}: {want[n]:.3g}" for n in names)
                raise Incorrect(f"for {names}, head_lr={head_lr:g}, decay={decay:g} expected {detail}")
        return "each block decay× slower than the next: early, general blocks move least."

    def examples(self):
        def good(names, head_lr, decay):
            return {n: head_lr / decay ** (len(names) - 1 - i) for i, n in enumerate(names)}

        def loop(names, head_lr, decay):
            out, lr = {}, head_lr
            for n in reversed(names):
                out[n] = lr
                lr /= decay
            return dict(reversed(out.items()))

        return [(good,), (loop,)], [
            (lambda names, h, d: {n: h / d ** i for i, n in enumerate(names)},),
            (lambda names, h, d: {n: h / d ** (len(names) - i) for i, n in enumerate(names)},),
            (lambda names, h, d: {n: h * d ** (len(names) - 1 - i) for i, n in enumerate(names)},),
            (lambda names, h, d: [h / d ** (len(names) - 1 - i) for i in range(len(names))],),
            (lambda names, h, d: {n: h for n in names},),
        ]


# -- q5 -------------------------------------------------------------------------------------------


class BatchNormStatistics(Question):
    id = "fine_tuning.q5"
    prompt = "For each way of freezing a BatchNorm layer: does it keep the running statistics fixed during training?"
    hints = [
        "The running mean and variance are not parameters: no gradient, and so no requires_grad, ever touches them.",
        "They are updated only in training mode. PyTorch: module.train() / module.eval(). Keras: a BatchNormalization "
        "layer with trainable = False always runs in inference mode.",
        "In Keras 3, a call's training argument is passed down into nested layers and wins over the training=False "
        "written when the model was built; fit calls the model with training=True.",
    ]
    solution_code = (
        "keeps_statistics = {\n"
        '    "torch_requires_grad_false": False,      # a buffer has no gradient: train() mode still updates it\n'
        '    "torch_eval": True,                      # inference mode: running statistics used, not updated\n'
        '    "keras_trainable_false": True,           # a frozen BatchNormalization runs in inference mode\n'
        '    "keras_training_false_then_fit": False,  # Keras 3: fit\'s training=True overrides it\n'
        "}"
    )
    _answer = {"torch_requires_grad_false": False, "torch_eval": True, "keras_trainable_false": True,
               "keras_training_false_then_fit": False}
    _why = {
        "torch_requires_grad_false": "requires_grad_(False) freezes γ and β only; the running statistics are "
                                     "buffers, updated whenever the layer runs in train() mode (as inside fit)",
        "torch_eval": "eval() puts the layer in inference mode: it uses its running statistics and does not update them",
        "keras_trainable_false": "since TF 2.0 (and in Keras 3), trainable = False on a BatchNormalization layer "
                                 "also makes it run in inference mode",
        "keras_training_false_then_fit": "in Keras 3 the training=True that fit passes to the model is handed down to "
                                         "every layer and overrides the training=False recorded when the model was "
                                         "built (keras-team/keras#20285): the statistics move — the notebook measures it",
    }

    def _check(self, answers):
        if not isinstance(answers, dict) or set(answers) != set(self._answer):
            raise Incorrect(f"give a dict with the keys {sorted(self._answer)}")
        wrong = []
        for key, value in answers.items():
            if not isinstance(value, (bool, np.bool_)):
                raise Incorrect(f"{key!r}: answer True or False, got {value!r}")
            if bool(value) != self._answer[key]:
                wrong.append(f"{key}: {self._why[key]}")
        if wrong:
            raise Incorrect("; ".join(wrong))
        return "only inference mode keeps BatchNorm's statistics; requires_grad never does."

    def examples(self):
        return [(dict(self._answer),)], [
            (dict(self._answer, torch_requires_grad_false=True),),
            (dict(self._answer, keras_trainable_false=False),),
            (dict(self._answer, keras_training_false_then_fit=True),),
            (dict(self._answer, torch_eval="yes"),),
            ({"torch_eval": True},),
        ]


q1 = FreezeAllButLast()
q2 = WinnerAtOneLabel()
q3 = BestLearningRate()
q4 = DiscriminativeRates()
q5 = BatchNormStatistics()
