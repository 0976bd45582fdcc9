"""Exercises of the welcome notebook: how checking works, on a warm-up question."""

from __future__ import annotations

from tlcourse.exercises.core import Incorrect, Question


class DenseParameters(Question):
    id = "getting_started.q1"
    prompt = "How many trainable parameters does a dense layer from 784 inputs to 10 outputs have?"
    hints = [
        "A dense layer computes y = W x + b. Count the entries of W and of b.",
        "W is 10 × 784 and b has 10 entries.",
    ]
    solution_code = "n_params = 784 * 10 + 10"

    def _check(self, n_params):
        if isinstance(n_params, bool) or not isinstance(n_params, int):
            raise Incorrect(f"give a whole number, got {type(n_params).__name__}")
        if n_params == 7840:
            raise Incorrect("that counts the weights W only: the bias b has parameters too")
        if n_params != 7850:
            raise Incorrect(f"{n_params} is not 784 × 10 weights plus 10 biases")
        return "W has 7,840 entries and b has 10."

    def examples(self):
        return [(7850,)], [(7840,), (794,), ("7850",)]


class ExerciseVerdicts(Question):
    id = "getting_started.q2"
    prompt = "Which three verdicts can a check give? Answer a set of strings."
    hints = ["Run a check on a blank answer, on a wrong one and on the right one: what does each say?"]
    solution_code = 'verdicts = {"not attempted", "incorrect", "correct"}'

    def _check(self, verdicts):
        try:
            got = {str(v).strip().lower() for v in verdicts}
        except TypeError as err:
            raise Incorrect("give a set of strings, e.g. {'a', 'b'}") from err
        want = {"not attempted", "incorrect", "correct"}
        if got != want:
            missing, extra = want - got, got - want
            raise Incorrect(f"missing {sorted(missing)}" + (f"; not verdicts: {sorted(extra)}" if extra else ""))
        return "and 'incorrect' always comes with a reason."

    def examples(self):
        return [({"not attempted", "incorrect", "correct"},), (["Correct", "Incorrect", "Not attempted"],)], [
            ({"correct", "incorrect"},),
            ({"pass", "fail"},),
        ]


q1 = DenseParameters()
q2 = ExerciseVerdicts()
