"""Binder and conda: the environment files agree with pyproject.toml and stay CPU-only.

Binder (repo2docker) builds from ``binder/``: ``environment.yml`` (conda + pip),
``postBuild`` (installs tlcourse itself, ``--no-deps``) and ``start`` (thread and logging
settings for a 1-CPU, 2 GB pod). The root ``environment.yml`` is the same file for
learners who use conda. Nothing here builds an image: the files are checked statically.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from urllib.parse import parse_qs, unquote, urlparse

import pytest
import yaml
from conftest import ROOT
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the copy pip vendors
    from pip._vendor import tomli as tomllib

BINDER = ROOT / "binder"
RUNTIME_EXTRAS = ("torch", "tf", "lab")  # what a learner's kernel needs; not dev or grading
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
CUDA_NAMES = re.compile(r"(^nvidia-|cuda|cudnn|cublas|nccl|^triton$|^tensorflow$|^tensorflow-gpu$|^jaxlib$)")


def _pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]


def _runtime_requirements() -> dict[str, Requirement]:
    project = _pyproject()
    reqs = list(project["dependencies"])
    for extra in RUNTIME_EXTRAS:
        reqs += project["optional-dependencies"][extra]
    out: dict[str, Requirement] = {}
    for text in reqs:
        req = Requirement(text)
        out.setdefault(canonicalize_name(req.name), req)
    return out


def _environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def _pip_section(env: dict) -> list[str]:
    sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(sections) == 1, "environment.yml has one pip: section"
    return sections[0]


def _pip_requirements(env: dict) -> dict[str, Requirement]:
    reqs = [Requirement(line) for line in _pip_section(env) if not line.startswith("-")]
    return {canonicalize_name(r.name): r for r in reqs}


def _lowest(req: Requirement):
    """The lowest version a requirement admits (its ``>=``/``==``/``~=`` bound), or None."""
    bounds = [s.version for s in req.specifier if s.operator in (">=", "==", "~=", "===")]
    return min(bounds, key=Version) if bounds else None


def test_binder_environment_is_the_root_environment():
    assert (BINDER / "environment.yml").read_bytes() == (ROOT / "environment.yml").read_bytes(), (
        "binder/environment.yml must be a copy of environment.yml: cp environment.yml binder/")


def test_environment_parses_and_names_python_and_pip():
    env = _environment()
    assert env["name"] and env["channels"] == ["conda-forge"]
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    python = [d for d in conda if re.fullmatch(r"python[=<>].*", d)]
    assert len(python) == 1, f"pin one Python version, found {python}"
    version = re.search(r"\d+\.\d+", python[0]).group()
    requires = _pyproject()["requires-python"]
    assert Requirement(f"python{requires}").specifier.contains(version + ".0"), (version, requires)
    assert "pip" in conda
    assert _pip_section(env), "the pip: section lists the course's packages"


def test_pins_agree_with_pyproject():
    declared = _runtime_requirements()
    listed = _pip_requirements(_environment())
    missing = sorted(set(declared) - set(listed))
    assert not missing, f"runtime requirements of pyproject.toml missing from environment.yml: {missing}"
    stray = sorted(set(listed) - set(declared))
    assert not stray, f"environment.yml installs packages pyproject.toml does not declare: {stray}"
    problems = []
    for name, req in declared.items():
        ours = listed[name]
        low = _lowest(ours)
        if req.specifier and low is None:
            problems.append(f"{name}: environment.yml has no lower bound, pyproject says {req.specifier}")
        elif low is not None and not req.specifier.contains(low, prereleases=True):
            problems.append(f"{name}: environment.yml allows {low}, pyproject says {req.specifier}")
    assert not problems, "\n".join(problems)
    assert str(listed["torch"].specifier) == str(declared["torch"].specifier) == "==2.13.0", (
        "the same exact torch pin everywhere (a CPU wheel of that version exists)")


def test_cpu_only():
    env = _environment()
    pip = _pip_section(env)
    names = [canonicalize_name(r) for r in _pip_requirements(env)]
    names += [re.split(r"[=<>\s]", d)[0] for d in env["dependencies"] if isinstance(d, str)]
    gpu = [n for n in names if CUDA_NAMES.search(n) or n in ("pytorch", "pytorch-cuda", "cudatoolkit")]
    assert not gpu, f"CUDA/GPU packages named: {gpu} (use tensorflow-cpu and the CPU torch index)"
    assert "tensorflow-cpu" in names
    assert f"--extra-index-url {CPU_INDEX}" in pip, "torch must come from the CPU wheel index"
    assert not any(line.startswith("--index-url") for line in pip), "keep PyPI as the main index"
    tf = _pyproject()["optional-dependencies"]["tf"]
    assert not any(canonicalize_name(Requirement(r).name) == "tensorflow" for r in tf)


@pytest.mark.parametrize("name", ["postBuild", "start"])
def test_binder_scripts_are_executable_bash(name):
    path = BINDER / name
    assert path.exists()
    assert os.access(path, os.X_OK), f"chmod +x binder/{name}"
    text = path.read_text()
    assert text.startswith("#!/bin/bash") or text.startswith("#!/usr/bin/env bash")
    subprocess.run(["bash", "-n", str(path)], check=True)
    git = shutil.which("git")
    if git and (ROOT / ".git").exists():  # Binder clones the repository: the mode git records counts
        staged = subprocess.run([git, "ls-files", "-s", f"binder/{name}"], cwd=ROOT, capture_output=True, text=True).stdout
        if staged:
            assert staged.startswith("100755"), f"git update-index --chmod=+x binder/{name}"


def test_post_build_installs_tlcourse_without_dependencies():
    text = (BINDER / "postBuild").read_text()
    install = [line for line in text.splitlines() if "pip install" in line and not line.lstrip().startswith("#")]
    assert install and all("--no-deps" in line for line in install), install
    assert "set -e" in text


def test_start_caps_threads_and_stays_offline():
    text = (BINDER / "start").read_text()
    for setting in ("TLCOURSE_THREADS=1", "OMP_NUM_THREADS=1", "TF_CPP_MIN_LOG_LEVEL=2", "HF_HUB_OFFLINE=1"):
        assert setting in text, setting
    assert text.rstrip().endswith('exec "$@"'), 'binder/start must end by handing over: exec "$@"'
    # And it really does: run it with a command.
    out = subprocess.run(["bash", str(BINDER / "start"), "bash", "-c", "echo $TLCOURSE_THREADS $HF_HUB_OFFLINE"],
                         capture_output=True, text=True, check=True).stdout
    assert out.split() == ["1", "1"]


def test_apt_txt_names_only_packages():
    apt = BINDER / "apt.txt"
    if not apt.exists():
        pytest.skip("no binder/apt.txt: the notebooks need no system packages at run time")
    for line in apt.read_text().splitlines():
        assert re.fullmatch(r"\s*(#.*)?|[a-z0-9][a-z0-9.+-]+", line), line


def test_readme_binder_badge_opens_the_welcome_notebook_in_lab():
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\[!\[[^\]]*\]\((https://mybinder\.org/badge[^)]*)\)\]\((https://mybinder\.org/v2/[^)]+)\)", readme)
    assert links, "README has a 'launch binder' badge linking to mybinder.org/v2/…"
    badge, target = links[0]
    url = urlparse(target)
    assert re.fullmatch(r"/v2/gh/[\w.-]+/[\w.-]+/[\w./-]+", url.path), url.path
    urlpath = unquote(parse_qs(url.query)["urlpath"][0])
    assert urlpath == "lab/tree/notebooks/00_welcome.ipynb", urlpath
    assert (ROOT / urlpath.removeprefix("lab/tree/")).exists()
