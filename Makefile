# `make test` takes a fresh clone with only python3 to a passing test run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch for the reference tests; a bare `torch` would pull a
# multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install demo test test-fast fixtures clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[test,reference]"
	# seqeval (the NER metric reference) ships only an sdist whose
	# setup_requires breaks under build isolation; build it in the venv.
	$(BIN)/pip install --quiet "setuptools_scm<8" setuptools wheel
	$(BIN)/pip install --quiet --no-build-isolation "seqeval==1.2.2"
	touch $@

install: $(VENV)/.installed

# The main job on the built-in data (see README).
demo: install
	$(BIN)/python scripts/demo.py

# Everything, slow and reference tests included.
test: install
	$(BIN)/python -m pytest -q

# Tiny configs only: no full-size models.
test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

# Regenerates tests/fixtures from transformers' PyTorch ConvBERT.
fixtures: install
	$(BIN)/python scripts/make_reference_fixtures.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
