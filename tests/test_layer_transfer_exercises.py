"""layer_transfer.q1 judges a learner's transfer function on an observation: small plain data
that the grader can judge outside the kernel, with the same verdict as in the kernel."""

from __future__ import annotations

import json

import pytest

from tlcourse.exercises import ____
from tlcourse.exercises import layer_transfer as lt
from tlcourse.grading import answers

torch_cnn = pytest.importorskip("tlcourse.models.small_cnn_torch")


def _solution(source, target, n, frozen):
    for name in torch_cnn.block_names(source)[:n]:
        target.blocks[name].load_state_dict(source.blocks[name].state_dict())
        if frozen:
            target.blocks[name].requires_grad_(False)
    return target


def test_observation_is_small_plain_data_and_judged_alike_outside_the_kernel():
    source = torch_cnn.small_cnn(seed=0)
    observation = lt.q1.observe(_solution, source)
    text = json.dumps(answers.encode(observation))
    assert len(text) < 5000 and "__ndarray__" not in text and "__unsupported__" not in text
    assert lt.q1.evaluate(_solution, source).correct
    payload = json.loads(json.dumps(answers._payload("layer_transfer.q1", (_solution, source), {})))
    assert answers.judge("layer_transfer.q1", payload).correct


def test_the_notebook_source_is_left_unchanged_and_blank_is_not_attempted():
    source = torch_cnn.small_cnn(seed=0)
    before = torch_cnn.export_state(source)

    def vandal(src, target, n, frozen):  # writes into the source
        src.blocks["conv1"].load_state_dict(target.blocks["conv1"].state_dict())
        return target

    outcome = lt.q1.evaluate(vandal, source)
    assert not outcome.correct and "changed the source" in outcome.message
    after = torch_cnn.export_state(source)
    assert all((before[k] == after[k]).all() for k in before)

    def blank(src, target, n, frozen):
        return ____

    assert lt.q1.evaluate(blank, source).status == "not attempted"
    payload = json.loads(json.dumps(answers._payload("layer_transfer.q1", (blank, source), {})))
    assert answers.judge("layer_transfer.q1", payload).status == "not attempted"


def test_a_forged_observation_is_still_judged_by_the_rules():
    source = torch_cnn.small_cnn(seed=0)
    observation = lt.q1.observe(_solution, source)
    observation["cases"][1]["trainable"]["conv1"] = 2  # A1B whose copied block still trains
    from tlcourse.exercises.core import Observed

    outcome = lt.q1.evaluate(Observed(observation))
    assert not outcome.correct and "still trains" in outcome.message
