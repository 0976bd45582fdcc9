"""Every question's checker, on answers that must be judged correct, wrong and blank."""

from __future__ import annotations

import pytest

from tlcourse.exercises import (
    CORRECT,
    INCORRECT,
    NOT_ATTEMPTED,
    CheckFailed,
    Question,
    ____,
    all_questions,
)
from tlcourse.exercises.core import call_learner, expect_close

QUESTIONS = all_questions()
IDS = sorted(QUESTIONS)


def test_questions_exist():
    assert len(QUESTIONS) >= 3


@pytest.mark.parametrize("qid", IDS)
def test_correct_examples_are_correct(qid):
    q = QUESTIONS[qid]
    good, _ = q.examples()
    assert good, f"{qid} gives no correct example"
    for answer in good:
        outcome = q.evaluate(*answer)
        assert outcome.status == CORRECT, f"{qid}: {outcome}"


@pytest.mark.parametrize("qid", IDS)
def test_wrong_examples_are_incorrect_with_a_reason(qid):
    q = QUESTIONS[qid]
    _, bad = q.examples()
    assert bad, f"{qid} gives no wrong example"
    for answer in bad:
        outcome = q.evaluate(*answer)
        assert outcome.status == INCORRECT, f"{qid}: {answer!r} judged {outcome}"
        assert len(outcome.message) > 10, f"{qid}: the reason is too thin: {outcome.message!r}"


@pytest.mark.parametrize("qid", IDS)
def test_placeholder_is_not_attempted(qid):
    q = QUESTIONS[qid]
    good, _ = q.examples()
    blank = tuple(____ for _ in good[0])
    assert q.evaluate(*blank).status == NOT_ATTEMPTED


@pytest.mark.parametrize("qid", IDS)
def test_hints_and_solution_display(qid, capsys):
    q = QUESTIONS[qid]
    assert q.hints, f"{qid} has no hint"
    q.hint()
    q.solution()
    out = capsys.readouterr().out
    assert "Hint 1/" in out and q.solution_code.strip().splitlines()[0] in out
    assert qid.split(".")[0] in q.id and q.prompt


def test_check_prints_and_strict_mode_raises(monkeypatch, capsys):
    q = QUESTIONS[IDS[0]]
    good, bad = q.examples()
    q.check(*bad[0])
    assert "Incorrect" in capsys.readouterr().out
    monkeypatch.setenv("TLCOURSE_CHECKS", "strict")
    with pytest.raises(CheckFailed):
        q.check(*bad[0])
    with pytest.raises(CheckFailed):
        q.check(____)
    q.check(*good[0])  # correct: no exception


def test_outcome_renders_html_and_text():
    q = QUESTIONS[IDS[0]]
    outcome = q.evaluate(*q.examples()[1][0])
    html = outcome._repr_html_()
    assert "Incorrect" in html and "tlcourse-check" in html
    assert str(outcome).startswith(f"[{q.id}] Incorrect")


def test_learner_code_that_raises_is_incorrect_not_a_crash():
    class Q(Question):
        id = "demo.q"
        prompt = "demo"
        solution_code = "f = lambda x: x"

        def _check(self, fn):
            expect_close(call_learner(fn, 2.0), 2.0, what="f(2)")

    q = Q()
    assert q.evaluate(lambda x: 1 / 0).status == INCORRECT
    assert "ZeroDivisionError" in q.evaluate(lambda x: 1 / 0).message
    assert q.evaluate(lambda x: ____).status == NOT_ATTEMPTED
    assert q.evaluate(lambda x: x).status == CORRECT
    assert q.evaluate(lambda x: x + 1).status == INCORRECT


def test_placeholder_cannot_be_used_as_a_truth_value():
    from tlcourse.exercises.core import NotAttempted

    with pytest.raises(NotAttempted):
        bool(____)
