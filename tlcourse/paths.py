"""Where tlcourse keeps what it builds: caches for data and models, and recorded results.

Everything lives under one root, ``$TLCOURSE_HOME`` (default ``~/.cache/tlcourse``):

* ``data/``    datasets tlcourse builds or downloads,
* ``models/``  trained source models (the model zoo),
* ``results/`` key figures recorded by notebooks (``$TLCOURSE_RESULTS_DIR`` overrides).
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The root of tlcourse's caches (``$TLCOURSE_HOME`` or ``~/.cache/tlcourse``)."""
    root = os.environ.get("TLCOURSE_HOME")
    path = Path(root).expanduser() if root else Path.home() / ".cache" / "tlcourse"
    path.mkdir(parents=True, exist_ok=True)
    return path


def subdir(name: str) -> Path:
    """A named folder under :func:`home`, created on demand."""
    path = home() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def env_subdir(variable: str, name: str) -> Path:
    """The folder named by ``$variable`` if set, else :func:`subdir` ``(name)``; created on demand."""
    override = os.environ.get(variable)
    if override:
        path = Path(override).expanduser()
        path.mkdir(parents=True, exist_ok=True)
        return path
    return subdir(name)


def results_dir() -> Path:
    """Where notebooks record their key figures (``$TLCOURSE_RESULTS_DIR`` overrides)."""
    return env_subdir("TLCOURSE_RESULTS_DIR", "results")
