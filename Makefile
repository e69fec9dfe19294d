# The README's commands. Each target creates .venv when it is missing and
# installs what that target needs, so a fresh clone needs only python3 and make.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q

# GPU=auto (the default): `make train` and `make test` install CuPy into .venv when an
# NVIDIA driver answers (nvidia-smi), the package for its CUDA version. GPU=0 (or no, off):
# no CuPy install, and `make train GPU=0` trains on the CPU even where CuPy is installed.
GPU    ?= auto
NO_GPU := $(filter 0 no off false,$(GPU))
TRAIN_ARGS := $(if $(NO_GPU),--device cpu)
# This machine's CuPy requirement (e.g. cupy-cuda12x>=13), or nothing: no driver, or GPU=0.
# Worked out by the system's python3 once, the first time a recipe needs it.
CUPY = $(eval CUPY := $(if $(NO_GPU),,$(shell $(PYTHON) -m minialexnet._gpu_setup)))$(CUPY)
GPU_STAMP := $(VENV)/.gpu
GPU_LOG   := $(VENV)/gpu-install.log

.PHONY: help test train bench gpu-check gpu-setup lint clean tutorials notebooks docs

help:
	@echo "make test       run the whole test suite (creates .venv)"
	@echo "make train      train AlexNet on the built-in dataset (creates .venv)"
	@echo "make bench      time every AlexNet layer, forward+backward, on this machine"
	@echo "make gpu-check  GPU tests + benchmark on a CUDA machine (no installs)"
	@echo "make gpu-setup  install CuPy into .venv if an NVIDIA driver answers (train, test do)"
	@echo "make tutorials  open the tutorial notebooks in JupyterLab (creates .venv)"
	@echo "make notebooks  rebuild tutorials/*.ipynb from their text twins (no outputs)"
	@echo "make docs       build the documentation site with mkdocs --strict into site/"
	@echo "make lint       ruff"

$(VENV)/.base: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -e .
	touch $@

# mpi: the multi-process tests (tests/test_distributed.py) run with mpiexec -n 2
$(VENV)/.test: $(VENV)/.base
	$(PIP) install -e '.[test,mpi]'
	touch $@

# mpi: chapter 13 runs two processes with mpiexec
$(VENV)/.notebooks: $(VENV)/.base
	$(PIP) install -e '.[notebooks,mpi]'
	touch $@

$(VENV)/.dev: $(VENV)/.test
	$(PIP) install -e '.[dev]'
	touch $@

# Looks for the driver on every run, so one installed later is picked up; installs when
# .venv/.gpu does not name that requirement yet (replacing the CuPy it names). A failed
# install (offline) leaves training on the CPU: one line says so; the next run tries again.
gpu-setup: $(VENV)/.base
	@if [ -n '$(CUPY)' ] && [ '$(CUPY)' != "$$(cat $(GPU_STAMP) 2>/dev/null)" ]; then \
	  echo "NVIDIA driver found: installing $(CUPY) into $(VENV) (GPU=0 skips this)"; \
	  [ ! -s $(GPU_STAMP) ] || $(PIP) uninstall -y "$$(cat $(GPU_STAMP))" >$(GPU_LOG) 2>&1; \
	  rm -f $(GPU_STAMP); \
	  $(PIP) install '$(CUPY)' >>$(GPU_LOG) 2>&1 && echo '$(CUPY)' >$(GPU_STAMP) || \
	  echo "could not install $(CUPY) (offline? see $(GPU_LOG)): training stays on the CPU"; \
	fi

test: $(VENV)/.test gpu-setup
	$(PY) -m pytest -q

train: gpu-setup
	$(PY) -m minialexnet.train $(TRAIN_ARGS)

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
