"""A checked on-disk cache for datasets that tlcourse builds (``.npz`` files).

A built dataset is stored in ``tlcourse.paths.subdir("data")`` as
``<name>-v<version>-<key>.npz``, where ``key`` hashes the build parameters (seed, sizes,
...) and ``version`` is the recipe version: changing a recipe bumps it, so stale files
are never read. Next to the arrays the file holds a JSON header with the recipe, the
parameters and a SHA-256 digest of every array::

    digest = sha256( for each array name in sorted order: name, dtype, shape, bytes )

A file whose header or digest does not match — truncated, overwritten, built by another
recipe — is reported with a warning and rebuilt; it is never used silently. Files are
written to a temporary name and renamed, so two processes building at once cannot leave
half a file behind.

>>> import numpy as np
>>> arrays, info = cached("demo", 1, {"seed": 0}, lambda: {"x": np.arange(3)})  # doctest: +SKIP
tlcourse: built demo in 0.0 s (cached in ~/.cache/tlcourse/data/demo-v1-....npz)
>>> arrays["x"].tolist(), info["built"]                                           # doctest: +SKIP
([0, 1, 2], True)
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tlcourse.paths import subdir

_META = "__meta__"


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def cache_path(name: str, version: int, params: dict) -> Path:
    """Where the build of ``name`` (recipe ``version``) with ``params`` is cached."""
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    return subdir("data") / f"{name}-v{version}-{key}.npz"


def _read(path: Path, name: str, version: int, params: dict) -> tuple[dict[str, np.ndarray], dict]:
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays.pop(_META)))
    expected = {"name": name, "version": version, "params": params}
    found = {k: meta.get(k) for k in expected}
    if found != json.loads(json.dumps(expected)):
        raise ValueError(f"header {found} does not match {expected}")
    if meta.get("digest") != _digest(arrays):
        raise ValueError("content digest does not match the header")
    return arrays, meta


def _write(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays, **{_META: np.array(json.dumps(meta))})
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def cached(
    name: str,
    version: int,
    params: dict,
    build: Callable[[], dict[str, np.ndarray]],
    *,
    quiet: bool = False,
) -> tuple[dict[str, np.ndarray], dict]:
    """Load the arrays built by ``build()`` for ``params`` from the cache, building on a miss.

    Returns ``(arrays, info)`` with ``info = {"cache_file", "built", "build_seconds"}``;
    ``build_seconds`` is the time of the build that made the file. A first build prints a
    one-line note with its time unless ``quiet``.
    """
    path = cache_path(name, version, params)
    if path.exists():
        try:
            arrays, meta = _read(path, name, version, params)
            return arrays, {"cache_file": str(path), "built": False,
                            "build_seconds": meta.get("build_seconds")}
        except Exception as err:  # any unreadable or mismatching file is rebuilt
            warnings.warn(
                f"tlcourse: the cached {name} data at {path} is corrupted or stale ({err}); "
                "rebuilding it",
                RuntimeWarning,
                stacklevel=2,
            )
            path.unlink(missing_ok=True)
    start = time.perf_counter()
    arrays = {k: np.asarray(v) for k, v in build().items()}
    seconds = time.perf_counter() - start
    meta = {"name": name, "version": version, "params": params, "digest": _digest(arrays),
            "build_seconds": round(seconds, 3)}
    _write(path, arrays, meta)
    if not quiet:
        print(f"tlcourse: built {name} in {seconds:.1f} s (cached in {path})")
    return arrays, {"cache_file": str(path), "built": True, "build_seconds": seconds}

