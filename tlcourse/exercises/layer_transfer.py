"""Exercises on structure transfer and on which layers transfer (Yosinski et al. 2014 in miniature).

The checks work for PyTorch and for Keras answers: a model is recognised by what it has
(``named_parameters`` for PyTorch, ``get_layer`` for Keras) and the framework's model
module is imported only inside the check, never when this module is imported.
"""

from __future__ import annotations

import numpy as np

from tlcourse.exercises._measured import MeasuredQuestion, as_records
from tlcourse.exercises.core import Incorrect, Question, call_learner

# -- reading a small CNN's blocks, in either framework ---------------------------------------


def _framework(model) -> str:
    if hasattr(model, "named_parameters") and hasattr(model, "state_dict"):
        return "torch"
    if hasattr(model, "get_layer") and hasattr(model, "get_weights"):
        return "tf"
    raise Incorrect(f"expected a PyTorch or Keras model from tlcourse's small_cnn(), got {type(model).__name__}")


def _cnn_module(framework: str):
    if framework == "torch":
        from tlcourse.models import small_cnn_torch as module
    else:
        from tlcourse.models import small_cnn_tf as module
    return module


def _block_weights(model, framework: str) -> dict[str, list[np.ndarray]]:
    """``{block name: [its weight arrays]}`` (copies), head included."""
    module = _cnn_module(framework)
    out = {}
    for name, block in module.blocks(model).items():
        if framework == "torch":
            out[name] = [t.detach().cpu().numpy().copy() for t in block.state_dict().values()]
        else:
            out[name] = [np.array(w) for w in block.get_weights()]
    return out


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, b))


def _perturb(model, framework: str) -> None:
    """Add 1 to every weight of ``model`` in place (to see whether another model shares them)."""
    if framework == "torch":
        import torch

        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)
    else:
        for layer in _cnn_module(framework).blocks(model).values():
            layer.set_weights([w + 1.0 for w in layer.get_weights()])


# -- q1 ----------------------------------------------------------------------------------------


def _trainable_counts(model, framework: str) -> dict[str, int]:
    """``{block name: number of weight tensors that train}``."""
    out = {}
    for name, block in _cnn_module(framework).blocks(model).items():
        if framework == "torch":
            out[name] = sum(1 for p in block.parameters() if p.requires_grad)
        else:
            out[name] = len(block.trainable_weights)
    return out


class TransferFirstN(Question):
    id = "layer_transfer.q1"
    prompt = (
        "Write transfer_first_n(source, target, n, frozen): copy the weights of the first n blocks of "
        "`source` (in the order of block_names) into `target`, and freeze those n blocks if `frozen` "
        "(AnB) or leave them trainable (AnB+). Target's other blocks and its head keep their random "
        "start and stay trainable."
    )
    hints = [
        "Loop over block_names(source)[:n]: for n = 2 that is ['conv1', 'conv2'], for n = 0 nothing.",
        "Inside the loop: copy_block(source, target, name), then freeze_block(target, name) only if frozen.",
        "Copy values (load_state_dict / set_weights), do not hand the source's block itself to the target: "
        "two models that share a block also share its training.",
    ]
    solution_code = (
        "def transfer_first_n(source, target, n, frozen):\n"
        "    for name in block_names(source)[:n]:\n"
        "        copy_block(source, target, name)\n"
        "        if frozen:\n"
        "            freeze_block(target, name)\n"
        "    return target"
    )

    def observe(self, fn, source=None):
        """Run the learner's function for every n, frozen and not, on fresh models; return what it did.

        Per case: which blocks hold the source's weights afterwards, which changed to something
        else, how many weight tensors of each block still train, whether the source changed, and
        whether the target shares weights with the source (plain data: names, counts, booleans).
        """
        if source is None:
            raise Incorrect("pass the source model too: q1.check(transfer_first_n, source)")
        framework = _framework(source)
        module = _cnn_module(framework)
        arch_spec = source.spec
        # work on a copy: a wrong answer must not change the notebook's source model
        state = module.export_state(source)
        source = module.import_state(module.build(arch_spec, seed=0), state)
        names = module.block_names(source)
        body = names[:-1]
        source_w = _block_weights(source, framework)

        def source_changed():
            return any(not _same(w, source_w[k]) for k, w in _block_weights(source, framework).items())

        cases = []
        for frozen in (True, False):
            for n in range(len(body) + 1):
                target = module.build(arch_spec, seed=1234 + n)
                before = _block_weights(target, framework)
                result = call_learner(fn, source, target, n, frozen)
                model = target if result is None else result
                if _framework(model) != framework:
                    raise Incorrect("return the target model (or nothing), in the source's framework")
                case = {"n": n, "frozen": frozen, "source_changed": source_changed()}
                after = _block_weights(model, framework)
                case["copied"] = [k for k in names if _same(after[k], source_w[k])]
                case["changed"] = [k for k in names if not _same(after[k], before[k]) and k not in case["copied"]]
                case["trainable"] = _trainable_counts(model, framework)
                case["shares"] = False
                if n and not case["source_changed"]:
                    _perturb(model, framework)
                    case["shares"] = source_changed()
                cases.append(case)
                if case["source_changed"] or case["shares"]:
                    # the copy of the source is spoilt: a fresh one for the next cases
                    source = module.import_state(module.build(arch_spec, seed=0), state)
        reference = _trainable_counts(module.build(arch_spec, seed=0), framework)
        return {"names": list(names), "reference": reference, "cases": cases}

    def _judge(self, observation):
        names = list(observation["names"])
        body = names[:-1]
        reference = observation["reference"]
        for case in observation["cases"]:
            n, frozen = case["n"], case["frozen"]
            tag = f"with n={n}, frozen={frozen}"
            if case["source_changed"]:
                raise Incorrect(f"{tag} your function changed the source's weights: copy from source into target")
            copied, changed, expected = list(case["copied"]), list(case["changed"]), body[:n]
            if changed:
                raise Incorrect(f"{tag}, block(s) {changed} changed but do not hold the source's weights")
            if "head" in copied:
                raise Incorrect(f"{tag} you copied the head too: the target task gets its own new head")
            if copied != expected:
                raise Incorrect(f"{tag} you copied {copied or 'nothing'}; the first {n} block(s) are "
                                f"{expected or 'none'}")
            counts = case["trainable"]
            for k in names:
                should_freeze = frozen and k in expected
                if should_freeze and counts[k]:
                    raise Incorrect(f"{tag}, the copied block {k} still trains: AnB freezes what it copies")
                if not should_freeze and counts[k] != reference[k]:
                    why = ("AnB+ fine-tunes the copied blocks: leave them trainable" if k in expected
                           else "only copied blocks may be frozen; the new ones must learn")
                    raise Incorrect(f"{tag}, block {k} does not train: {why}")
            if case["shares"]:
                raise Incorrect(
                    "the target shares its weights with the source (you handed over blocks or tensors "
                    "instead of copying values): training the target would change the source too"
                )
        return "blocks below n hold the source's weights (frozen in AnB, trainable in AnB+); the rest start random."

    def examples(self):
        from tlcourse.models import small_cnn_tf as keras_cnn
        from tlcourse.models import small_cnn_torch as torch_cnn

        def torch_copy(source, target, name):
            target.blocks[name].load_state_dict(source.blocks[name].state_dict())

        def make_torch(pick=lambda names, n: names[:n], freeze_when=lambda frozen: frozen, copy=torch_copy):
            def transfer_first_n(source, target, n, frozen):
                for name in pick(torch_cnn.block_names(source)[:-1], n):
                    copy(source, target, name)
                    if freeze_when(frozen):
                        target.blocks[name].requires_grad_(False)
                return target
            return transfer_first_n

        def copy_parameters(source, target, name):  # parameter by parameter works too
            import torch

            with torch.no_grad():
                for p_t, p_s in zip(target.blocks[name].parameters(), source.blocks[name].parameters()):
                    p_t.copy_(p_s)

        def share(source, target, name):  # hands the source's block over: both models share it
            setattr(target.features, name, source.blocks[name])

        def reversed_copy(source, target, name):
            source.blocks[name].load_state_dict(target.blocks[name].state_dict())

        def torch_freeze_all(source, target, n, frozen):
            make_torch()(source, target, n, frozen)
            if frozen:
                for name in torch_cnn.block_names(target):
                    if name != "head":
                        target.blocks[name].requires_grad_(False)

        def keras_good(source, target, n, frozen):
            for name in keras_cnn.block_names(source)[:n]:
                target.get_layer(name).set_weights(source.get_layer(name).get_weights())
                target.get_layer(name).trainable = not frozen

        def keras_with_head(source, target, n, frozen):
            names = keras_cnn.block_names(source)
            for name in names[:n] + (["head"] if n == len(names) - 1 else []):
                target.get_layer(name).set_weights(source.get_layer(name).get_weights())
                target.get_layer(name).trainable = not frozen

        torch_source = torch_cnn.small_cnn(seed=0)
        keras_source = keras_cnn.small_cnn(seed=0)
        return (
            [(make_torch(), torch_source), (make_torch(copy=copy_parameters), torch_source),
             (keras_good, keras_source)],
            [(make_torch(pick=lambda names, n: names), torch_source),              # every block, whatever n
             (make_torch(pick=lambda names, n: names[: n + 1]), torch_source),     # one too many
             (make_torch(pick=lambda names, n: names[len(names) - n:]), torch_source),  # the top n
             (make_torch(freeze_when=lambda frozen: True), torch_source),          # always frozen
             (make_torch(freeze_when=lambda frozen: not frozen), torch_source),    # frozen flag inverted
             (torch_freeze_all, torch_source),
             (make_torch(copy=share), torch_cnn.small_cnn(seed=0)),
             (make_torch(copy=reversed_copy), torch_cnn.small_cnn(seed=0)),
             (keras_with_head, keras_source)],
        )


# -- q2 ----------------------------------------------------------------------------------------


class TrainableInA2B(Question):
    id = "layer_transfer.q2"
    prompt = (
        "A2B on a 10-class target: conv1 and conv2 copied from the source and frozen, fc1 and the head "
        "new and trained. How many parameters does the optimizer update? (conv1: 3×3×1→16, conv2: "
        "3×3×16→32, each followed by a 2×2 max-pool; fc1: 32·7·7 → 64; head: 64 → 10; every layer has biases.)"
    )
    hints = [
        "Only fc1 and the head train. A dense layer n_in → n_out has n_in·n_out weights and n_out biases.",
        "fc1: 32·7·7 = 1568 inputs, 64 outputs; head: 64 inputs, 10 outputs.",
    ]
    solution_code = "n_trainable_A2B = (1568 * 64 + 64) + (64 * 10 + 10)  # fc1 + head"

    _blocks = {"conv1": 3 * 3 * 1 * 16 + 16, "conv2": 3 * 3 * 16 * 32 + 32, "fc1": 1568 * 64 + 64, "head": 64 * 10 + 10}

    def _check(self, count):
        if isinstance(count, bool) or not isinstance(count, (int, np.integer, float, np.floating)):
            raise Incorrect(f"answer a number, got {count!r}")
        b = self._blocks
        value = float(count)
        expected = b["fc1"] + b["head"]
        known = {
            sum(b.values()): "that is every parameter of the network: conv1 and conv2 are frozen",
            b["conv1"] + b["conv2"]: "that is the number of frozen parameters (conv1 + conv2); the question asks for the trained ones",
            b["head"]: "fc1 is new in A2B and trains too: only the first two blocks are copied and frozen",
            b["fc1"]: "add the head's 64·10 + 10",
            1568 * 64 + 64 * 10: "count the biases too (64 for fc1, 10 for the head)",
        }
        if value in known:
            raise Incorrect(known[value])
        if value != expected:
            raise Incorrect(f"{value:g} is not it: add fc1's and the head's weights and biases")
        share = expected / sum(b.values())
        return (f"{expected:,} of {sum(b.values()):,} ({share:.0%}): freezing both convolutions saves only 5% "
                "of the parameters — in this network fc1 holds almost all of them.")

    def examples(self):
        return [(101066,), ((1568 * 64 + 64) + (64 * 10 + 10),)], [(105866,), (4800,), (650,), (100416,), (100992,), ("many",), (123,)]


# -- q3: predict, then verify ------------------------------------------------------------------


def _target_means(runs, target: str, methods) -> dict[str, float]:
    rows = [r for r in as_records(runs) if r.get("target") == target]
    out = {}
    for m in methods:
        accs = [r["acc"] for r in rows if r.get("method") == m]
        if not accs:
            raise Incorrect(f"no {m} runs on {target!r} in the results you passed")
        out[m] = float(np.mean(accs))
    return out


class FrozenBeatsFineTuned(MeasuredQuestion):
    id = "layer_transfer.q3"
    targets = ("letters", "digits")
    prompt = (
        "Predict, then verify: A3B keeps all three copied blocks frozen and trains only a new head; A3B+ "
        "fine-tunes them with it. On which target does A3B come out ahead of A3B+: 'letters', 'digits', "
        "'both' or 'neither'?"
    )
    hints = [
        "Specificity: fc1's 64 units were trained to tell digits apart. Are they the features you want for "
        "letters? For digits drawn differently?",
        "With a handful of labels per class, fine-tuning 106,000 weights can also fit the few examples too "
        "closely; a frozen extractor cannot.",
    ]
    solution_code = 'frozen_wins_on = "digits"'
    _options = ("letters", "digits", "both", "neither")

    def _check(self, answer, runs=None):
        value = str(answer).strip().lower() if isinstance(answer, str) else answer
        if value not in self._options:
            raise Incorrect(f"answer one of {list(self._options)}, got {answer!r}")
        if runs is None:
            raise Incorrect("pass the measured runs: q3.check(frozen_wins_on, runs=nsweep)")
        means = {t: _target_means(runs, t, ("A3B", "A3B+")) for t in self.targets}
        wins = [t for t in self.targets if means[t]["A3B"] > means[t]["A3B+"]]
        truth = {0: "neither", 1: wins[0] if wins else "", 2: "both"}[len(wins)]
        table = "; ".join(f"{t}: A3B {m['A3B']:.3f} vs A3B+ {m['A3B+']:.3f}" for t, m in means.items())
        if value != truth:
            raise Incorrect(f"measured (mean over seeds) — {table}")
        return f"measured — {table}."

    def examples(self):
        def rows(letters, digits):
            out = []
            for target, (frozen, tuned) in (("letters", letters), ("digits", digits)):
                out += [dict(target=target, n=3, mode="frozen", method="A3B", seed=0, acc=frozen),
                        dict(target=target, n=3, mode="fine-tuned", method="A3B+", seed=0, acc=tuned)]
            return out

        runs = rows((0.66, 0.77), (0.88, 0.84))
        return [("digits", runs), ("Digits", runs)], [("letters", runs), ("both", runs), ("neither", runs),
                                                      ("A3B", runs), ("both", rows((0.66, 0.77), (0.80, 0.84)))]


# -- q4 ----------------------------------------------------------------------------------------


class Notation(Question):
    id = "layer_transfer.q4"
    prompt = (
        "Write each method in Yosinski et al.'s notation for our network (3 blocks below the head): "
        "'scratch'; 'feature extractor' (everything but the head copied and frozen); "
        "'fine-tune all' (everything but the head copied, all trained); "
        "'frozen convs' (conv1, conv2 copied and frozen, fc1 and head new)."
    )
    hints = [
        "AnB: the first n blocks come from the network trained on A (our source, MNIST) and stay frozen; the "
        "rest start random and train on B (the target). AnB+: the same, but the copied blocks train too.",
        "With n = 0 nothing is copied, so there is nothing to freeze or to fine-tune.",
    ]
    solution_code = (
        "notation = {\n"
        '    "scratch": "A0B",\n'
        '    "feature extractor": "A3B",\n'
        '    "fine-tune all": "A3B+",\n'
        '    "frozen convs": "A2B",\n'
        "}"
    )
    _answer = {"scratch": "A0B", "feature extractor": "A3B", "fine-tune all": "A3B+", "frozen convs": "A2B"}
    _why = {
        "scratch": "nothing comes from A when you train from scratch: n = 0",
        "feature extractor": "a feature extractor copies all 3 blocks and keeps them frozen: no '+'",
        "fine-tune all": "all 3 blocks come from A and keep training on B: that is what '+' marks",
        "frozen convs": "conv1 and conv2 are the first 2 blocks, frozen: no '+'",
    }

    def _check(self, notation):
        if not isinstance(notation, dict) or set(notation) != set(self._answer):
            raise Incorrect(f"give a dict with the keys {sorted(self._answer)}")
        wrong = []
        for key, value in notation.items():
            v = str(value).strip().upper().replace(" ", "")
            ok = v == self._answer[key].upper() or (key == "scratch" and v in {"A0B+", "B0B", "B0B+"})
            if not ok:
                wrong.append(f"{key}: {self._why[key]}")
        if wrong:
            raise Incorrect("; ".join(wrong))
        return "A0B and A0B+ are the same run: with nothing copied there is nothing to freeze."

    def examples(self):
        good = dict(self._answer)
        return [(good,), (dict(good, scratch="A0B+"),), ({k: v.lower() for k, v in good.items()},)], [
            (dict(good, **{"fine-tune all": "A3B"}),),
            (dict(good, **{"feature extractor": "A3B+"}),),
            (dict(good, **{"frozen convs": "A3B"}),),
            (dict(good, scratch="A3B"),),
            ({"scratch": "A0B"},),
        ]


q1 = TransferFirstN()
q2 = TrainableInA2B()
q3 = FrozenBeatsFineTuned()
q4 = Notation()
