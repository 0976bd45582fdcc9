"""The notebooks' conventions, and the package's import hygiene."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import NOTEBOOKS, ROOT

from tlcourse.notebook_tools import framework_of, notebooks, problems

ALL = notebooks(NOTEBOOKS)


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_notebook_conventions(path):
    assert problems(path) == []


def test_convention_checker_catches_breakage(tmp_path):
    """The checker itself must notice outputs, absolute paths, a missing parameters cell."""
    nb = json.loads(ALL[0].read_text())
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "hi"}]
    code["source"] = ["open('/home/me/data.csv')\n"]
    for c in nb["cells"]:
        c.get("metadata", {}).pop("tags", None)
    nb["metadata"]["kernelspec"]["name"] = "python2"
    bad = tmp_path / "99_bad.ipynb"
    bad.write_text(json.dumps(nb))
    found = " | ".join(problems(bad))
    for expected in ("outputs", "absolute path", "parameters", "kernelspec"):
        assert expected in found


def test_framework_detection():
    def nb(src):
        return {"cells": [{"cell_type": "code", "source": [src]}]}

    assert framework_of(nb("import torch\n")) == "torch"
    assert framework_of(nb("import tensorflow as tf\n")) == "tf"
    assert framework_of(nb("import torch\nimport keras\n")) == "both"
    assert framework_of(nb("import numpy\n")) is None


def test_notebook_names_are_ordered_and_unique():
    numbers = [p.name[:2] for p in ALL]
    assert numbers == sorted(numbers)
    assert len({p.stem for p in ALL}) == len(ALL)


def test_importing_tlcourse_imports_no_framework():
    code = (
        "import sys, tlcourse, tlcourse.exercises, tlcourse.plotting, tlcourse.results, "
        "tlcourse.evaluation, tlcourse.runner, tlcourse.notebook_tools\n"
        "tlcourse.exercises.all_questions()\n"
        "bad = [m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_no_cuda_packages_installed():
    from importlib.metadata import distributions

    names = sorted({(d.metadata["Name"] or "").lower() for d in distributions()})
    cuda = [n for n in names if n.startswith("nvidia-") or n == "triton"]
    assert cuda == [], f"CUDA packages present: {cuda}"


def test_ruff_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "tlcourse", "tests", "notebooks"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_course_map_links_every_notebook_and_only_existing_ones():
    import re

    welcome = json.loads((NOTEBOOKS / "00_welcome.ipynb").read_text())
    text = "\n".join("".join(c["source"]) for c in welcome["cells"] if c["cell_type"] == "markdown")
    links = set(re.findall(r"\]\(([^)#]+\.ipynb)\)", text))
    missing_targets = [link for link in links if not (NOTEBOOKS / link).exists()]
    assert missing_targets == [], f"the course map links to notebooks that do not exist: {missing_targets}"
    unlinked = [p.name for p in ALL if p.name not in links]
    assert unlinked == [], f"notebooks missing from the course map in 00_welcome: {unlinked}"


@pytest.mark.parametrize("path", notebooks(NOTEBOOKS), ids=lambda p: p.name)
def test_a_zoo_source_is_scored_on_images_it_never_saw(path):
    """The zoo trains its MNIST sources on the split ``datasets.load("mnist", seed=0)``: a
    notebook that uses them and loads MNIST with another seed would test the source on
    some of its own training images whenever a learner changes SEED."""
    import re

    source = "\n".join(c["source"] if isinstance(c["source"], str) else "".join(c["source"])
                       for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
    if not re.search(r"pretrained\(\s*[\"']mnist-", source) or 'recipe["data_options"]' in source:
        return  # no zoo source, or (03) one compared with our own training, data split included
    loads = re.findall(r"datasets\.load\(\s*[\"']mnist[\"']\s*(?:,\s*seed\s*=\s*([^,)]+))?", source)
    assert all(seed.strip() == "0" for seed in loads), f"load MNIST with seed=0 next to a zoo source, not {loads}"
