# The README's commands. Each target creates .venv when it is missing and
# installs what that target needs, so a fresh clone needs only python3 and make.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q

.PHONY: help test train bench gpu-check lint clean tutorials notebooks docs

help:
	@echo "make test       run the whole test suite (creates .venv)"
	@echo "make train      train AlexNet on the built-in dataset (creates .venv)"
	@echo "make bench      time every AlexNet layer, forward+backward, on this machine"
	@echo "make gpu-check  GPU tests + benchmark on a CUDA machine (no installs)"
	@echo "make tutorials  open the tutorial notebooks in JupyterLab (creates .venv)"
	@echo "make notebooks  rebuild tutorials/*.ipynb from their text twins (no outputs)"
	@echo "make docs       build the documentation site with mkdocs --strict into site/"
	@echo "make lint       ruff"

$(VENV)/.base: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -e .
	touch $@

$(VENV)/.test: $(VENV)/.base
	$(PIP) install -e '.[test]'
	touch $@

$(VENV)/.notebooks: $(VENV)/.base
	$(PIP) install -e '.[notebooks]'
	touch $@

$(VENV)/.dev: $(VENV)/.test
	$(PIP) install -e '.[dev]'
	touch $@

test: $(VENV)/.test
	$(PY) -m pytest -q

train: $(VENV)/.base
	$(PY) -m minialexnet.train

tutorials: $(VENV)/.notebooks
	$(VENV)/bin/jupyter lab tutorials/00_arrays_and_devices.ipynb

notebooks: $(VENV)/.test
	$(VENV)/bin/jupytext --quiet --set-formats ipynb,py:percent tutorials/[0-9][0-9]_*.py
	$(PY) tutorials/clear_outputs.py

docs: $(VENV)/.test
	$(VENV)/bin/mkdocs build --strict --site-dir site

bench: $(VENV)/.base
	$(PY) -m minialexnet.bench layers

# For a machine with a GPU whose python3 already has numpy, cupy, pytest and
# hypothesis: runs from the checkout, installs nothing. Output goes to $$OUT
# (or ./gpu-check-out).
gpu-check:
	bash .ci/gpu-check

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check minialexnet tests
	$(VENV)/bin/ruff format --check minialexnet tests

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache
