"""The fine-tuning exercise checks on real PyTorch and Keras models (examples() uses stand-ins)."""

from __future__ import annotations

import pytest

from tlcourse.exercises import CORRECT, INCORRECT
from tlcourse.exercises import fine_tuning as ex


def _solution(namespace: dict):
    code = ex.q1.solution_code
    exec(code, namespace)  # noqa: S102 - the solution text a learner sees, run as the notebook runs it
    return namespace["freeze_all_but_last"]


@pytest.fixture(params=["torch", "tf"])
def framework(request):
    if request.param == "torch":
        pytest.importorskip("torch")
        from tlcourse.models import small_cnn_torch as arch

        def freeze(block):
            block.requires_grad_(False)
    else:
        pytest.importorskip("tensorflow")
        from tlcourse.models import small_cnn_tf as arch

        def freeze(block):
            block.trainable = False
    return arch, freeze


@pytest.mark.parametrize("batch_norm", [False, True])
def test_block_states_reads_real_models(framework, batch_norm):
    arch, freeze = framework
    model = arch.small_cnn(batch_norm=batch_norm, seed=0)
    assert set(ex.block_states(model).values()) == {"trainable"}
    freeze(arch.blocks(model)["conv1"])
    states = ex.block_states(model)
    assert states["conv1"] == "frozen" and states["head"] == "trainable"


def test_q1_solution_and_mistakes_on_real_models(framework):
    arch, freeze = framework
    solution = _solution({"arch": arch})

    def make():
        return arch.small_cnn(seed=0)

    assert ex.q1.evaluate(solution, make_model=make).status == CORRECT

    def freeze_first_only(model, n):
        freeze(arch.blocks(model)["conv1"])
        return model

    def freeze_everything(model, n):
        for block in arch.blocks(model).values():
            freeze(block)
        return model

    for wrong in (freeze_first_only, freeze_everything):
        outcome = ex.q1.evaluate(wrong, make_model=make)
        assert outcome.status == INCORRECT, (wrong.__name__, outcome)


def test_q1_keras_whole_model_frozen_is_caught():
    pytest.importorskip("tensorflow")
    from tlcourse.models import small_cnn_tf as arch

    def whole_model(model, n):
        model.trainable = False
        for name in arch.block_names(model)[-n:]:
            model.get_layer(name).trainable = True
        return model

    outcome = ex.q1.evaluate(whole_model, make_model=lambda: arch.small_cnn(seed=0))
    assert outcome.status == INCORRECT and "model.trainable" in outcome.message


def test_q1_grader_judges_real_models_outside_the_kernel(framework):
    """The observation of a real model travels as JSON and the grader's verdict is the checker's."""
    import json

    from tlcourse.grading import answers

    arch, freeze = framework
    solution = _solution({"arch": arch})

    def make():
        return arch.small_cnn(seed=0)

    def keep_first_two(model, n):
        for name in arch.block_names(model)[2:]:
            freeze(arch.blocks(model)[name])
        return model

    for fn, want in ((solution, CORRECT), (keep_first_two, INCORRECT)):
        record = answers._payload("fine_tuning.q1", (fn,), {"make_model": make})
        assert set(record) == {"question", "observed"}
        text = json.dumps(record)
        assert len(text) < 4000, "the observation is plain, small data"
        got = answers.judge("fine_tuning.q1", json.loads(text))
        assert got.status == want == ex.q1.evaluate(fn, make_model=make).status, got
    assert "first" in answers.judge("fine_tuning.q1", json.loads(json.dumps(
        answers._payload("fine_tuning.q1", (keep_first_two,), {"make_model": make})))).message
