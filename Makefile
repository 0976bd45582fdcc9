# tlcourse: every command sets up what it needs on a fresh machine (Python 3.10+ and make).
#   make lab    create .venv, install everything, open JupyterLab on notebooks/00
#   make test   the same set-up, then the whole test suite
#   make bench  execute every notebook at default parameters on one thread: time and memory
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tlcourse-installed
# Two notebooks at a time by default (each kernel uses one thread). --dist loadscope keeps
# a notebook's nbval cells (one kernel) and a torch/tf pair on one worker.
JOBS ?= 2
PYTEST_ARGS ?=

export TLCOURSE_THREADS ?= 1
export TF_CPP_MIN_LOG_LEVEL ?= 2
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export MPLBACKEND ?= Agg

.PHONY: install lab test bench lint format strip clean grade-release grade-demo site browser

install: $(STAMP)

# torch is installed first and alone, pinned to the CPU build; the rest then finds it
# satisfied and pulls no CUDA packages (checked right after).
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[torch,tf,lab,dev]"
	@if $(BIN)/python -m pip list 2>/dev/null | grep -iE '^(nvidia-|triton )'; then \
	  echo "error: CUDA packages were installed (see above)"; exit 1; fi
	@touch $(STAMP)

lab: $(STAMP)
	MPLBACKEND=module://matplotlib_inline.backend_inline $(BIN)/jupyter lab notebooks/00_welcome.ipynb

test: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) --dist loadscope \
	  --nbval-lax --nbval-sanitize-with tests/sanitize.cfg --nbval-cell-timeout 600 \
	  tests notebooks $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/tlcourse bench

lint: $(STAMP)
	$(BIN)/ruff check tlcourse tests notebooks

format: $(STAMP)
	$(BIN)/ruff format tlcourse tests

strip: $(STAMP)
	$(BIN)/python -m tlcourse.notebook_tools strip notebooks

# A static HTML site of the notebooks with their outputs (course map as front page).
site: $(STAMP)
	$(BIN)/tlcourse site --execute --executed build/site-executed --out build/site

# System packages for tests/test_browser.py (Debian/Ubuntu, root); without them those tests skip.
browser:
	$(if $(filter 0,$(shell id -u)),,sudo )apt-get install -y --no-install-recommends chromium chromium-driver fonts-dejavu-core

# Instructors (see README "For instructors").
COURSE ?= build/course
grade-release: $(STAMP)
	$(BIN)/tlcourse grade release --course $(COURSE)

# The whole grading pipeline on the test fixtures: correct, blank, wrong and hostile submissions.
grade-demo: $(STAMP)
	rm -rf build/grading-demo
	$(BIN)/python tests/fixtures/submissions/make_submissions.py build/grading-demo
	$(BIN)/tlcourse grade collect --course build/grading-demo/course --submissions build/grading-demo/submissions
	$(BIN)/tlcourse grade autograde --course build/grading-demo/course --submissions build/grading-demo/submissions --jobs $(JOBS) --cell-timeout 15 --notebook-timeout 30
	$(BIN)/tlcourse grade export --course build/grading-demo/course --csv build/grading-demo/grades.csv --feedback build/grading-demo/feedback

clean:
	rm -rf $(VENV) build .pytest_cache
