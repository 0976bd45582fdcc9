"""Training and evaluation loops for Keras models: the plumbing notebooks repeat.

The same functions and defaults as :mod:`tlcourse.training_torch`, so both frameworks
give comparable numbers; the transfer technique (``layer.trainable = False``,
``set_weights``, the regularised loss) stays in the notebook.

``fit`` compiles the model with the optimizer and loss it is given and trains it batch
by batch, minimising the mean cross-entropy::

    L(θ) = 1/|B| Σ_{i∈B} −log softmax(f_θ(x_i))_{y_i}     (sparse_categorical_crossentropy, from logits)

with Adam (``lr=1e-3``) or SGD with momentum 0.9, batches of 64 in a fresh permutation
per epoch from ``numpy.random.default_rng(seed)`` — the batches ``training_torch.fit``
draws with the same seed (both loops share :mod:`tlcourse.training`).

What it does with BatchNorm: Keras decides per layer. A layer with ``trainable=True``
runs in training mode during ``fit`` (normalises with the batch statistics and updates
its moving averages); a layer with ``trainable=False`` runs in inference mode (moving
averages, no update) — unlike PyTorch, where a frozen BatchNorm still updates its
statistics in ``train()`` mode. A model built as ``outputs = base(inputs, training=False)``
keeps ``base`` in inference mode even after unfreezing. Only trainable weights change.

How it trains: a ``tf.function`` step (``GradientTape`` over
``model.trainable_variables``, the loss plus any ``model.losses`` from layer
regularisers, ``optimizer.apply_gradients``), traced once for any batch size. That is
what ``model.fit`` does inside, without its ``tf.data`` pipeline and second trace for the
last, smaller batch.

Tracing costs about half a second, as much as forty small training steps, and a notebook
trains dozens of models of one architecture. So with the default loss and an optimizer
named by a string, the traced step is kept and reused: it belongs to a private copy of
the model (an *engine*, one per architecture, trainable flags, optimizer settings and input
shape). ``fit`` copies the model's weights into the engine, resets the engine's optimizer
to a fresh one's state (moments zero, step count zero, the requested learning rate),
trains it, and copies the weights and the optimizer state back (after every epoch, so
``val`` scores the current weights). The computation is the same graph as tracing anew,
so the numbers are the same; a custom ``loss_fn``, layer regularisers or an optimizer
instance you pass get a step traced for that call alone, since they may refer to the
model they were written for.

>>> import numpy as np
>>> from tlcourse.models.small_cnn_tf import small_cnn
>>> x = np.random.default_rng(0).random((32, 28, 28), dtype=np.float32)
>>> y = np.arange(32) % 10
>>> model = small_cnn(seed=0)
>>> history = fit(model, x, y, epochs=2, seed=0, progress=False)
>>> sorted(history), len(history["loss"])
(['acc', 'loss', 'seconds'], 2)
>>> predict(model, x).shape, features(model, x).shape
((32, 10), (32, 64))
"""

from __future__ import annotations

import numpy as np

from tlcourse import training
from tlcourse.runtime import _quiet_tensorflow_env
from tlcourse.training import BATCH_SIZE, EVAL_BATCH_SIZE, LR, OPTIMIZERS, SGD_MOMENTUM

_quiet_tensorflow_env()  # before TensorFlow loads: no start-up log noise
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402


def to_input(x, name: str = "x") -> np.ndarray:
    """Course images → what the Keras models take: float32, channels last.

    ``(N, H, W)`` grey images get a channel axis ``(N, H, W, 1)``; ``(N, H, W, C)`` with
    C ∈ {1, 3} and feature matrices ``(N, D)`` pass unchanged.

    >>> to_input(np.zeros((5, 28, 28), np.float32)).shape
    (5, 28, 28, 1)
    """
    return training.channels_last(x, name)


def make_optimizer(optimizer: str = "adam", lr: float = LR, weight_decay: float = 0.0):
    """``"adam"`` → ``Adam``, ``"sgd"`` → ``SGD`` with momentum 0.9.

    ``weight_decay`` is Keras' decoupled decay, ``w ← w − lr · weight_decay · w`` each step
    (``training_torch`` does the same: ``AdamW``, or the decay applied by hand for SGD).
    """
    decay = weight_decay or None
    if optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=lr, weight_decay=decay)
    if optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=SGD_MOMENTUM, weight_decay=decay)
    raise ValueError(f"unknown optimizer {optimizer!r}; valid names: {', '.join(OPTIMIZERS)}, "
                     "or pass a keras.optimizers.Optimizer instance")


def _loss(loss_fn, model):
    """``loss(logits, y)`` for ``None`` (sparse cross-entropy from logits) or a course-style callable."""
    if loss_fn is None:
        cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        return lambda logits, y: cross_entropy(y, logits)
    if isinstance(loss_fn, keras.losses.Loss):  # Keras' own order: (y_true, y_pred)
        return lambda logits, y: loss_fn(y, logits)
    if training.loss_takes_model(loss_fn):
        return lambda logits, y: loss_fn(logits, y, model)
    return loss_fn


def _train_step(model, opt, loss, example_shape):
    """A compiled step ``(x, y) → (mean loss, number correct)`` that updates the trainable weights."""
    variables = model.trainable_variables
    if not opt.built:
        opt.build(variables)

    @tf.function(input_signature=[tf.TensorSpec((None, *example_shape), tf.float32),
                                  tf.TensorSpec((None,), tf.int32)], jit_compile=False)
    def step(xb, yb):
        with tf.GradientTape() as tape:
            logits = model(xb, training=True)
            value = tf.reduce_mean(loss(logits, yb))  # a per-example loss is averaged
            if model.losses:
                value = value + tf.add_n(model.losses)
        grads = tape.gradient(value, variables)
        opt.apply_gradients(zip(grads, variables))
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, 1, output_type=tf.int32), yb), tf.int32))
        return value, correct

    return step


def fit(model, x, y, *, epochs: int, lr: float = LR, batch_size: int = BATCH_SIZE,
        optimizer="adam", weight_decay: float = 0.0, loss_fn=None, val=None,
        seed: int | None = None, progress: bool = True) -> dict[str, list]:
    """Compile and train ``model`` on ``(x, y)`` for ``epochs`` passes; returns the history.

    Parameters
    ----------
    x, y:
        Channels-last images ``(N, H, W[, C])`` or features ``(N, D)`` (see :func:`to_input`),
        and integer labels ``(N,)``.
    optimizer:
        ``"adam"`` or ``"sgd"``, or a ``keras.optimizers.Optimizer`` you built (``lr`` and
        ``weight_decay`` are then its own). An optimizer instance keeps its state between
        calls and is tied to the variables it first trained.
    loss_fn:
        ``None`` for sparse cross-entropy from logits, a ``keras.losses.Loss`` (called the
        Keras way, ``(y_true, y_pred)``), or a callable ``(logits, y)`` or ``(logits, y, model)``
        (logits first, as in PyTorch; ``y`` arrives as int32 labels). A per-example loss
        vector is averaged.
    val:
        ``(x_val, y_val)`` to measure after each epoch (inference mode).
    seed:
        Seeds the batch order; ``None`` draws it from NumPy's global generator.

    Which weights train is read from ``trainable`` at the call, so freezing or unfreezing
    between calls takes effect. Returns ``{"loss", "acc", "seconds"}`` per epoch (plus
    ``"val_loss"``, ``"val_acc"`` with ``val``), as :func:`tlcourse.training_torch.fit` does.
    """
    X = to_input(x)
    Y = training.labels(y, len(X)).astype(np.int32)
    val = training.validation_pair(val)
    run = training.TrainingRun(len(X), epochs, batch_size, seed, progress, desc=f"fit {model.name}",
                               validate=val is not None)
    if not model.trainable_variables:
        raise ValueError("the model has no trainable weights (every layer has trainable=False)")
    outputs = getattr(model, "outputs", None)
    if outputs and len(outputs[0].shape) == 2:
        training.check_label_range(Y, outputs[0].shape[1])
    if isinstance(optimizer, keras.optimizers.Optimizer):
        if weight_decay:
            raise ValueError("with an optimizer instance, set weight decay on the optimizer itself")
        opt = optimizer
    else:
        opt = make_optimizer(optimizer, lr, weight_decay)
    loss = _loss(loss_fn, model)
    # compiled for the learner's later use (model.optimizer, model.evaluate); the loop is ours
    model.compile(optimizer=opt, metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc")],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True) if loss_fn is None else
                  (lambda y_true, y_pred: loss(y_pred, keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32"))))
    engine = _engine(model, opt, X.shape[1:]) if (loss_fn is None and opt is not optimizer) else None
    if engine is None:
        step = _train_step(model, opt, loss, X.shape[1:])
    else:
        step = engine.load(model, opt)
    for batches in run.epochs():
        for idx in batches:
            value, correct = step(X[idx], Y[idx])
            run.step(float(value), int(correct), len(idx))
        if engine is not None:
            engine.store(model, opt)
        run.end_epoch(*(_scores(model, *val) if val is not None else ()))
    return run.history


class _Engine:
    """A private copy of a model and its optimizer, with its training step traced once."""

    def __init__(self, model, opt, example_shape):
        self.model = keras.models.clone_model(model)
        self.model.build((None, *example_shape))
        self.opt = opt.__class__.from_config(opt.get_config())
        self.step = _train_step(self.model, self.opt, _loss(None, self.model), example_shape)
        self.initial = [v.numpy() for v in self.opt.variables]  # a fresh optimizer's state

    def matches(self, model, opt) -> bool:
        ours, theirs = self.model.variables, model.variables
        return (len(ours) == len(theirs) and len(self.opt.variables) == len(opt.variables)
                and all(a.shape == b.shape and a.dtype == b.dtype and a.trainable == b.trainable
                        for a, b in zip(ours, theirs)))

    def load(self, model, opt):
        """Start from ``model``'s weights and a fresh optimizer at ``opt``'s learning rate."""
        for mine, theirs in zip(self.model.variables, model.variables):
            mine.assign(theirs)
        for mine, value in zip(self.opt.variables, self.initial):
            mine.assign(value)
        self.opt.learning_rate = float(keras.ops.convert_to_numpy(opt.learning_rate))
        return self.step

    def store(self, model, opt):
        """Copy the trained weights and the optimizer state back to ``model`` and ``opt``."""
        for mine, theirs in zip(self.model.variables, model.variables):
            theirs.assign(mine)
        for mine, theirs in zip(self.opt.variables, opt.variables):
            theirs.assign(mine)


_ENGINES: dict[tuple, _Engine] = {}
_MAX_ENGINES = 32


def _architecture(model) -> str:
    """``model``'s configuration as a key that two models of one architecture share.

    Layer and model names are renumbered in order of appearance (Keras numbers unnamed
    layers per instance: ``dense_3``); initialisers and seeds are dropped (the weights
    are copied, not drawn), and so is the last ``compile``. What computes stays: layer
    types, sizes, activations, ``trainable``, the wiring.
    """
    import json

    names: dict[str, str] = {}

    def label(name):
        return names.setdefault(name, f"#{len(names)}") if isinstance(name, str) else name

    def canon(obj):
        if isinstance(obj, dict):
            is_layer = any(k in obj for k in ("trainable", "inbound_nodes", "batch_shape"))
            out = {}
            for k, v in obj.items():
                if k.endswith("_initializer") or k in ("seed", "compile_config"):
                    continue
                if k == "name" and is_layer:
                    out[k] = label(v)
                elif k == "keras_history" and isinstance(v, list) and v:
                    out[k] = [label(v[0]), *v[1:]]
                elif k in ("input_layers", "output_layers") and isinstance(v, list):
                    out[k] = [[label(e[0]), *e[1:]] if isinstance(e, list) and e else label(e) for e in v]
                else:
                    out[k] = canon(v)
            return out
        if isinstance(obj, list):
            return [canon(v) for v in obj]
        return obj

    return json.dumps(canon(json.loads(model.to_json())), sort_keys=True)


def _engine(model, opt, example_shape) -> _Engine | None:
    """The engine for this architecture and optimizer, built on first use; ``None`` if the
    model cannot be copied from its configuration (then ``fit`` traces its own step)."""
    if model.losses:
        return None  # layer regularisers: kept on the model's own step
    try:
        key = (_architecture(model), type(opt).__name__,
               repr(sorted((k, v) for k, v in opt.get_config().items() if k not in ("learning_rate", "name"))),
               tuple(example_shape))
    except Exception:  # noqa: BLE001 - a model Keras cannot serialise trains on its own step
        return None
    engine = _ENGINES.get(key)
    if engine is None:
        try:
            engine = _Engine(model, opt, example_shape)
        except Exception:  # noqa: BLE001 - nor one it cannot rebuild from its configuration
            return None
        if len(_ENGINES) >= _MAX_ENGINES:
            _ENGINES.pop(next(iter(_ENGINES)))
        _ENGINES[key] = engine
    if not opt.built:
        opt.build(model.trainable_variables)
    return engine if engine.matches(model, opt) else None


def predict(model, x, batch_size: int = EVAL_BATCH_SIZE) -> np.ndarray:
    """The model's outputs (logits, ``(N, classes)``) in inference mode, as a NumPy array."""
    X = to_input(x)
    batch_size = training.positive_int(batch_size, "batch_size")
    if not len(X):
        return np.asarray(model(X, training=False))
    return np.concatenate([np.asarray(model(X[i:i + batch_size], training=False))
                           for i in range(0, len(X), batch_size)])


def _scores(model, x, y, batch_size: int = EVAL_BATCH_SIZE) -> tuple[float, float]:
    return training.scores(predict(model, x, batch_size), y)


def evaluate(model, x, y, batch_size: int = EVAL_BATCH_SIZE) -> float:
    """Accuracy of ``model`` on ``(x, y)`` in inference mode: the share of ``argmax = y``."""
    return _scores(model, x, y, batch_size)[1]


def features(model_or_extractor, x, batch_size: int = EVAL_BATCH_SIZE) -> np.ndarray:
    """Features of ``x`` as a NumPy array ``(N, ...)``.

    A model from ``small_cnn_tf`` gives the output of everything but its head (``(N, 64)``
    for the CNN); any other model or layer is run as it is (pass your own extractor).
    """
    from tlcourse.models.small_cnn_tf import feature_extractor

    module = model_or_extractor
    if getattr(module, "spec", None) is not None:
        module = feature_extractor(module)
    return predict(module, x, batch_size)
