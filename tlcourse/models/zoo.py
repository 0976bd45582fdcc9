"""The source-model zoo: small networks trained once on MNIST-5k, cached, checked, reloaded.

``pretrained("mnist-cnn", framework="torch")`` returns a trained source model. The first
call trains it from its recipe (``datasets.load("mnist")``, a fixed architecture, epochs,
learning rate and seed) — deterministic, so every learner gets the same weights — and
caches it under ``tlcourse.paths.subdir("models")``; later calls reload it in a fraction
of a second. Each framework trains its own copy with its own code (a TensorFlow notebook
must not need PyTorch), from the same recipe, same initial distribution and same batches;
the two differ only by floating-point detail, and their test accuracies agree within a
few tenths of a percent.

The cache holds two files per (name, framework, seed): the weights as a NumPy ``.npz``
(no pickle) in the framework's own layout, and a JSON sidecar with the recipe, its key,
the weights' SHA-256, size and the source model's test accuracy::

    key = sha256(json(recipe ∪ {framework, seed, RECIPE_VERSION}))[:16]

Before reuse the sidecar's key must equal the current recipe's key (else the cache is
*stale*: the recipe changed) and the weights file must have the recorded size and
SHA-256 and load into the model (else it is *corrupted*). Either way a warning says so
and the model is rebuilt; a cache is never used silently when it does not check out.

>>> names()
['mnist-cnn', 'mnist-cnn-bn', 'mnist-mlp']
>>> recipe("mnist-cnn", "torch")["epochs"]
10
>>> len(cache_key(recipe("mnist-cnn", "torch")))
16
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tlcourse.datasets.remote import sha256_of as file_sha256  # SHA-256 of a file, as hex
from tlcourse.models.architectures import spec as make_spec
from tlcourse.paths import subdir

#: Bump when anything outside the recipe changes how a source model is trained
#: (the training loop, initialisation, ...): every cached model is then rebuilt.
RECIPE_VERSION = 1
FRAMEWORKS = ("torch", "tf")


@dataclass(frozen=True)
class Recipe:
    """How a source model is trained: architecture options, data, optimisation."""

    summary: str
    arch: dict
    data: str = "mnist"
    data_options: dict = field(default_factory=lambda: {"seed": 0})
    epochs: int = 10
    lr: float = 1e-3
    batch_size: int = 64
    optimizer: str = "adam"


RECIPES: dict[str, Recipe] = {
    "mnist-cnn": Recipe("small CNN (conv1, conv2, fc1, head) trained on MNIST-5k", {"arch": "cnn"}),
    "mnist-cnn-bn": Recipe("the small CNN with BatchNorm in every hidden block, on MNIST-5k",
                           {"arch": "cnn", "batch_norm": True}),
    "mnist-mlp": Recipe("MLP (fc1, fc2, head) trained on MNIST-5k", {"arch": "mlp"}),
}


class CacheWarning(UserWarning):
    """A cached model was stale or corrupted and is being rebuilt."""


@dataclass(frozen=True)
class ZooInfo:
    """Where a zoo model came from; attached to the model as ``model.zoo_info``."""

    name: str
    framework: str
    seed: int
    key: str
    test_acc: float
    path: str
    from_cache: bool
    seconds: float  # to build (train) or to load
    build_seconds: float  # how long training took when it was built


def names() -> list[str]:
    """The names of the zoo's models."""
    return sorted(RECIPES)


def get_recipe(name: str) -> Recipe:
    """The :class:`Recipe` of ``name``; an unknown name lists the valid ones."""
    if name not in RECIPES:
        raise ValueError(f"unknown zoo model {name!r}; valid names: {', '.join(names())}")
    return RECIPES[name]


def _check_framework(framework: str) -> None:
    if framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r}; valid names: {', '.join(FRAMEWORKS)}")


def recipe(name: str, framework: str, seed: int = 0) -> dict:
    """Everything that determines the trained weights, as a plain dict (hashed into the key)."""
    _check_framework(framework)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {seed!r}")
    r = get_recipe(name)
    arch_spec = make_spec(**r.arch)
    return {"name": name, "framework": framework, "seed": int(seed), "recipe_version": RECIPE_VERSION,
            "spec": arch_spec.as_dict(), "data": r.data, "data_options": dict(r.data_options),
            "epochs": r.epochs, "lr": r.lr, "batch_size": r.batch_size, "optimizer": r.optimizer}


def cache_key(recipe_dict: dict) -> str:
    """16 hex digits of the SHA-256 of the recipe (keys sorted, so order does not matter)."""
    return hashlib.sha256(json.dumps(recipe_dict, sort_keys=True).encode()).hexdigest()[:16]


def cache_paths(name: str, framework: str, seed: int = 0) -> tuple[Path, Path]:
    """``(weights .npz, sidecar .json)`` of a zoo model in ``$TLCOURSE_HOME/models``."""
    _check_framework(framework)
    get_recipe(name)
    stem = subdir("models") / f"{name}_{framework}_seed{int(seed)}"
    return stem.with_suffix(".npz"), stem.with_suffix(".json")


def _read_cache(name: str, framework: str, seed: int) -> tuple[dict | None, dict | None, str]:
    """``(state, sidecar, "")`` for a cache that checks out, else ``(None, None, problem)``.

    ``problem`` is empty when there simply is no cache.
    """
    weights, sidecar = cache_paths(name, framework, seed)
    if not sidecar.exists():
        return None, None, ("corrupted: the weights file has no sidecar" if weights.exists() else "")
    try:
        meta = json.loads(sidecar.read_text())
        expected_key, sha, size = meta["key"], meta["sha256"], meta["bytes"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        return None, None, f"corrupted: unreadable sidecar ({type(err).__name__}: {err})"
    key = cache_key(recipe(name, framework, seed))
    if expected_key != key:
        changed = sorted(k for k, v in recipe(name, framework, seed).items() if meta.get("recipe", {}).get(k) != v)
        return None, None, f"stale: the recipe changed ({', '.join(changed) or 'key'}; key {expected_key} → {key})"
    if not weights.exists():
        return None, None, "corrupted: the weights file is missing"
    actual_size = weights.stat().st_size
    if actual_size != size:
        return None, None, f"corrupted: the weights file has {actual_size} bytes, expected {size} (truncated?)"
    if file_sha256(weights) != sha:
        return None, None, "corrupted: the weights file's SHA-256 does not match its sidecar"
    try:
        with np.load(weights, allow_pickle=False) as data:
            state = {k: data[k] for k in data.files}
    except Exception as err:  # noqa: BLE001 - any failure to read means a corrupted file
        return None, None, f"corrupted: unreadable weights ({type(err).__name__}: {err})"
    return state, meta, ""


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_cache(name: str, framework: str, seed: int, state: dict, facts: dict) -> Path:
    weights, sidecar = cache_paths(name, framework, seed)
    _atomic_write(weights, lambda fh: np.savez(fh, **state))
    r = recipe(name, framework, seed)
    meta = {"name": name, "framework": framework, "seed": int(seed), "key": cache_key(r), "recipe": r,
            "weights_file": weights.name, "sha256": file_sha256(weights), "bytes": weights.stat().st_size,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **facts}
    _atomic_write(sidecar, lambda fh: fh.write(json.dumps(meta, indent=1, sort_keys=True).encode()))
    return weights


@contextlib.contextmanager
def _build_lock(path: Path):
    """Let one process at a time build or check a cache entry (where the OS allows)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock
        yield
        return
    with open(path.with_name(f".{path.stem}.lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def cache_status(name: str, framework: str = "torch", seed: int = 0) -> str:
    """``"ok"``, ``"missing"``, or ``"stale: …"`` / ``"corrupted: …"`` — without loading a framework."""
    state, _, problem = _read_cache(name, framework, seed)
    return "ok" if state is not None else (problem or "missing")


def obtain(name: str, framework: str, seed: int, models_module, training_module, *,
           rebuild: bool = False, progress: bool = True):
    """Load zoo model ``name`` from the cache, or train and cache it (used by ``zoo_torch``/``zoo_tf``).

    ``models_module`` provides ``build(spec, seed)``, ``export_state``, ``import_state``;
    ``training_module`` provides ``fit`` and ``evaluate`` with the course's signatures.
    """
    r = recipe(name, framework, seed)
    arch_spec = make_spec(**r["spec"])
    weights, _ = cache_paths(name, framework, seed)
    with _build_lock(weights):
        start = time.perf_counter()
        state, meta, problem = (None, None, "") if rebuild else _read_cache(name, framework, seed)
        if state is not None:
            model = models_module.build(arch_spec, seed=seed)
            try:
                models_module.import_state(model, state)
            except ValueError as err:
                problem = f"corrupted: the weights do not fit the model ({err})"
            else:
                model.zoo_info = ZooInfo(name, framework, int(seed), meta["key"], meta["test_acc"], str(weights),
                                         True, time.perf_counter() - start, meta.get("build_seconds", float("nan")))
                return model
        if problem:
            warnings.warn(f"zoo model {name!r} ({framework}, seed {seed}) in {weights.parent}: {problem}; "
                          "rebuilding it", CacheWarning, stacklevel=3)
        model, facts = _train(name, r, arch_spec, models_module, training_module, progress)
        _write_cache(name, framework, seed, models_module.export_state(model), facts)
        model.zoo_info = ZooInfo(name, framework, int(seed), cache_key(r), facts["test_acc"], str(weights),
                                 False, time.perf_counter() - start, facts["build_seconds"])
        return model


def _train(name: str, r: dict, arch_spec, models_module, training_module, progress: bool):
    from tlcourse import datasets

    if progress:
        print(f"Training the source model {name!r} ({r['framework']}, seed {r['seed']}) once: "
              f"{r['epochs']} epochs on {r['data']}; it is cached for next time.")
    ds = datasets.load(r["data"], **r["data_options"])
    model = models_module.build(arch_spec, seed=r["seed"])
    start, cpu_start = time.perf_counter(), time.process_time()
    history = training_module.fit(model, ds.x_train, ds.y_train, epochs=r["epochs"], lr=r["lr"],
                                  batch_size=r["batch_size"], optimizer=r["optimizer"], seed=r["seed"],
                                  progress=progress)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    test_acc = training_module.evaluate(model, ds.x_test, ds.y_test)
    data_sha = hashlib.sha256(np.ascontiguousarray(ds.x_train).tobytes()
                              + np.ascontiguousarray(ds.y_train).tobytes()).hexdigest()
    facts = {"test_acc": float(test_acc), "train_acc": float(history["acc"][-1]), "build_seconds": seconds,
             "build_cpu_seconds": cpu_seconds, "n_train": int(len(ds.x_train)), "n_test": int(len(ds.x_test)),
             "data_sha256": data_sha}
    return model, facts


def pretrained(name: str = "mnist-cnn", framework: str = "torch", seed: int = 0, *,
               rebuild: bool = False, progress: bool = True):
    """A trained source model: ``tlcourse.models.zoo_torch.pretrained`` or ``zoo_tf.pretrained``.

    Imports only the framework named. ``rebuild=True`` retrains even if a valid cache exists.
    ``model.zoo_info`` tells its test accuracy and whether it came from the cache.
    """
    _check_framework(framework)
    get_recipe(name)
    module = importlib.import_module(f"tlcourse.models.zoo_{framework}")
    return module.pretrained(name, seed, rebuild=rebuild, progress=progress)

