"""Exercises: the checking logic behind every exercise cell of the course.

Each module holds the questions of one topic. In a notebook::

    from tlcourse.exercises import ____
    from tlcourse.exercises import transfer_basics as ex
    answer = ____          # the learner replaces ____
    ex.q1.check(answer)    # "not attempted" / "incorrect: why" / "correct"
    ex.q1.hint(); ex.q1.solution()
"""

from __future__ import annotations

import importlib
import pkgutil

from tlcourse.exercises.core import (
    CORRECT,
    INCORRECT,
    NOT_ATTEMPTED,
    CheckFailed,
    Incorrect,
    NotAttempted,
    Outcome,
    Question,
    ____,
)

__all__ = [
    "CORRECT",
    "INCORRECT",
    "NOT_ATTEMPTED",
    "CheckFailed",
    "Incorrect",
    "NotAttempted",
    "Outcome",
    "Question",
    "____",
    "all_questions",
    "get",
]


def all_questions() -> dict[str, Question]:
    """Every question in every exercise module, by id (imports the modules)."""
    found: dict[str, Question] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name == "core" or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, Question):
                if value.id in found and found[value.id] is not value:
                    raise RuntimeError(f"two questions share the id {value.id!r}")
                found[value.id] = value
    return found


def get(question_id: str) -> Question:
    """The question with this id, e.g. ``"transfer_basics.q1"``."""
    questions = all_questions()
    if question_id not in questions:
        raise KeyError(f"no question {question_id!r}; known: {sorted(questions)}")
    return questions[question_id]
