"""The exercise mechanism: questions live here, notebooks hold a placeholder and a call.

The pattern is Kaggle learntools': a notebook cell holds ``answer = ____`` and the next
cell calls ``q1.check(answer)``. ``check`` answers one of three things:

* **not attempted** — the answer still holds the placeholder ``____``;
* **incorrect: <why>** — with a reason that helps;
* **correct**.

``q1.hint()`` shows the next hint, ``q1.solution()`` the solution code. A notebook with
unanswered exercises still runs to the end: ``check`` only displays its verdict.

Under grading (``TLCOURSE_CHECKS=strict``, set by the test harness and by the nbgrader
autograder) ``check`` raises :class:`CheckFailed` for anything but "correct", so a
failing check cell loses its points.

Writing a question: subclass :class:`Question`, set ``prompt``, ``hints`` and
``solution`` (the code a learner could type into the exercise cell) and implement
``_check(*answer)``, which raises :class:`Incorrect` with a reason or returns a short
praise string. ``examples()`` gives answers that must be judged correct and wrong:
the test suite runs every question's checker on them.

A question whose answer is a live object (a model, or a function that builds or changes
one) splits its checker in two: :meth:`Question.observe` runs the learner's code and
returns plain data — what the checker reads of the model (counts of frozen weights, the
weights themselves) — and :meth:`Question._judge` decides on that data alone. The grader,
which cannot receive a model, judges the observation outside the kernel
(:mod:`tlcourse.grading.answers`).
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

CORRECT = "correct"
INCORRECT = "incorrect"
NOT_ATTEMPTED = "not attempted"


class _Placeholder:
    """The blank an exercise cell starts with. Any use of it counts as not attempted."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "____"

    def __bool__(self) -> bool:
        raise NotAttempted("the answer still holds the placeholder ____")


____ = _Placeholder()


class Incorrect(Exception):
    """Raised by a checker: the answer is wrong, and the message says why."""


class NotAttempted(Exception):
    """Raised by a checker: the answer (or part of it) is still the placeholder."""


class CheckFailed(AssertionError):
    """Raised by ``check`` under strict checking when the verdict is not "correct"."""


def is_placeholder(value: Any) -> bool:
    """True when ``value`` is the placeholder or holds one (in a list, tuple, dict or set)."""
    if value is ____:
        return True
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(is_placeholder(v) for v in value)
    if isinstance(value, dict):
        return any(is_placeholder(v) for v in value.values())
    return False


def strict() -> bool:
    """Whether checks raise on a verdict other than "correct" (grading and tests)."""
    return os.environ.get("TLCOURSE_CHECKS", "").lower() == "strict"


@dataclass(frozen=True, repr=False)
class Outcome:
    """A verdict: ``status`` is one of "correct", "incorrect", "not attempted"."""

    status: str
    message: str = ""
    question: str = ""

    @property
    def correct(self) -> bool:
        return self.status == CORRECT

    def __str__(self) -> str:
        label = {CORRECT: "Correct", INCORRECT: "Incorrect", NOT_ATTEMPTED: "Not attempted"}[self.status]
        where = f"[{self.question}] " if self.question else ""
        return f"{where}{label}" + (f": {self.message}" if self.message else "")

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour = {CORRECT: "#2e7d32", INCORRECT: "#c62828", NOT_ATTEMPTED: "#8d6e00"}[self.status]
        label = {CORRECT: "✔ Correct", INCORRECT: "✘ Incorrect", NOT_ATTEMPTED: "… Not attempted"}[self.status]
        symbol, word = label.split(" ", 1)
        msg = html.escape(self.message)
        # No background colour, and the words in the theme's own text colour: they read in light
        # and dark themes alike. The colour is carried by the bar and the symbol, which keep at
        # least 3:1 contrast on white and on JupyterLab Dark's #111 (tests/test_browser.py).
        return (
            f'<div class="tlcourse-check" style="border-left:6px solid {colour};padding:4px 10px;margin:4px 0">'
            f'<b><span style="color:{colour}">{symbol}</span> {word}</b>'
            f"{': ' + msg if msg else ''}</div>"
        )


def _show(obj: Any) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython ships with the course
        print(obj)
        return
    if get_ipython() is None:
        print(obj)
    else:
        display(obj)


class _Markdown:
    def __init__(self, text: str, plain: str):
        self.text, self.plain = text, plain

    def _repr_markdown_(self) -> str:
        return self.text

    def __str__(self) -> str:
        return self.plain

    __repr__ = __str__


class Observed:
    """An observation already made in the learner's kernel (see :meth:`Question.observe`)."""

    __slots__ = ("data",)

    def __init__(self, data: Any):
        self.data = data


class Question:
    """One exercise. Subclasses set the class attributes and implement :meth:`_check`
    (or :meth:`observe` and :meth:`_judge`, when the answer is a live object)."""

    id: ClassVar[str] = ""
    prompt: ClassVar[str] = ""
    hints: ClassVar[list[str]] = []
    solution_code: ClassVar[str] = ""
    points: ClassVar[int] = 1

    def __init__(self):
        if not self.id or not self.solution_code:
            raise TypeError(f"{type(self).__name__} needs an id and solution_code")
        self._hints_shown = 0

    # -- what subclasses write -------------------------------------------------------
    def _check(self, *answer: Any, **context: Any) -> str | None:
        if self.observes():
            return self._judge(self.observe(*answer, **context))
        raise NotImplementedError

    def observe(self, *answer: Any, **context: Any) -> Any:
        """Run the learner's code on the answer and return plain data for :meth:`_judge`.

        Only questions whose answers cannot travel as data override this. It may raise
        :class:`Incorrect` or :class:`NotAttempted` like a checker.
        """
        raise NotImplementedError

    def _judge(self, observation: Any) -> str | None:
        """The verdict on what :meth:`observe` returned: raise :class:`Incorrect` or praise."""
        raise NotImplementedError

    @classmethod
    def observes(cls) -> bool:
        """Whether this question judges an observation (it overrides :meth:`observe`)."""
        return cls.observe is not Question.observe

    def examples(self) -> tuple[list[tuple], list[tuple]]:
        """(correct answers, wrong answers), each a list of argument tuples for ``check``."""
        raise NotImplementedError

    # -- what learners call ------------------------------------------------------------
    def evaluate(self, *answer: Any, **context: Any) -> Outcome:
        """Judge an answer and return the :class:`Outcome` (no display, never raises)."""
        if not answer or any(is_placeholder(a) for a in answer):
            return Outcome(NOT_ATTEMPTED, "replace ____ with your answer, then run this cell again", self.id)
        if len(answer) == 1 and isinstance(answer[0], Observed) and self.observes():
            return self.outcome_of(lambda: self._judge(answer[0].data))
        return self.outcome_of(lambda: self._check(*answer, **context))

    def outcome_of(self, verdict: Callable[[], str | None]) -> Outcome:
        """Run a checker step: its praise is "correct", its exceptions the other verdicts."""
        try:
            praise = verdict()
        except NotAttempted as err:
            return Outcome(NOT_ATTEMPTED, str(err), self.id)
        except Incorrect as err:
            return Outcome(INCORRECT, str(err), self.id)
        except Exception as err:  # the learner's code raised: say so, plainly
            return Outcome(INCORRECT, f"your answer raised {type(err).__name__}: {err}", self.id)
        return Outcome(CORRECT, praise or "", self.id)

    def check(self, *answer: Any, **context: Any) -> None:
        """Show the verdict on an answer. Under strict checking, raise unless correct."""
        outcome = self.evaluate(*answer, **context)
        _show(outcome)
        if strict() and not outcome.correct:
            raise CheckFailed(str(outcome))

    def hint(self, n: int | None = None) -> None:
        """Show hint ``n`` (1-based), or the next one not yet shown."""
        if not self.hints:
            _show(_Markdown("*No hint for this one: try the solution.*", "No hint for this one."))
            return
        if n is None:
            self._hints_shown = min(self._hints_shown + 1, len(self.hints))
            n = self._hints_shown
        if not 1 <= n <= len(self.hints):
            raise ValueError(f"{self.id} has hints 1 to {len(self.hints)}")
        text = f"Hint {n}/{len(self.hints)}: {self.hints[n - 1]}"
        _show(_Markdown(f"💡 **{text}**", text))

    def solution(self) -> None:
        """Show the solution code."""
        code = self.solution_code.strip()
        _show(_Markdown(f"**Solution** ({self.id}):\n\n```python\n{code}\n```", f"Solution:\n{code}"))

    def __repr__(self) -> str:
        return f"<Question {self.id}: {self.prompt}>"


def call_learner(fn: Callable, *args: Any) -> Any:
    """Call a learner's function; a placeholder result or NotImplementedError means not attempted."""
    if not callable(fn):
        raise Incorrect(f"expected a function, got {type(fn).__name__}")
    try:
        result = fn(*args)
    except NotImplementedError as err:
        raise NotAttempted("the function still raises NotImplementedError") from err
    if is_placeholder(result):
        raise NotAttempted("the function still returns the placeholder ____")
    return result


def expect_close(got: Any, expected: Any, *, what: str, atol: float = 1e-6, rtol: float = 1e-6) -> None:
    """Raise :class:`Incorrect` unless two numbers/arrays agree within tolerance."""
    import numpy as np

    try:
        g = np.asarray(got, dtype=float)
    except (TypeError, ValueError) as err:
        raise Incorrect(f"{what}: expected a number or array, got {type(got).__name__}") from err
    e = np.asarray(expected, dtype=float)
    if g.shape != e.shape:
        raise Incorrect(f"{what}: expected shape {e.shape}, got {g.shape}")
    if not np.all(np.isfinite(g)):
        raise Incorrect(f"{what}: contains NaN or infinity")
    if not np.allclose(g, e, atol=atol, rtol=rtol):
        worst = float(np.max(np.abs(g - e)))
        raise Incorrect(f"{what}: off by up to {worst:.3g} (tolerance {atol:g})")


def expect_choice(got: Any, options: Iterable[str], correct: str, *, why: str) -> str:
    """For multiple choice: raise Incorrect (with ``why``) unless ``got`` is ``correct``."""
    options = list(options)
    value = str(got).strip().lower() if isinstance(got, str) else got
    if value not in options:
        raise Incorrect(f"answer one of {options}, got {got!r}")
    if value != correct:
        raise Incorrect(why)
    return value
