# `make test` takes a fresh clone with only python3 to a passing test run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch for the reference tests. On Linux the default index serves the
# multi-GB CUDA build; TORCH_INDEX=https://download.pytorch.org/whl/cpu
# fetches the CPU build instead. Left empty, pip's own configuration decides
# (this project's machines keep a CPU wheel in a local wheel folder).
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=

.PHONY: install demo lint docs test test-fast fixtures clean

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV)

# uv installs the same pinned packages as pip would, in about a third of the
# time (it unpacks and compiles in parallel). It does not read pip's
# configuration, so scripts/pip_sources.py hands on pip's indexes and wheel
# folders.
UV_VERSION := 0.13.9
UV_INSTALL = $(BIN)/uv pip install --python $(BIN)/python --quiet --compile-bytecode \
	--index-strategy unsafe-best-match $$($(BIN)/python scripts/pip_sources.py)

$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml constraints.txt
	@echo "installing the pinned packages into $(VENV)/ (the first time: a few minutes)"
	@# pip's warnings about the machine's own index settings would be the
	@# first lines a user reads; its errors still show.
	@$(BIN)/pip install -qq uv==$(UV_VERSION)
	@$(UV_INSTALL) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
	@$(UV_INSTALL) -c constraints.txt -e ".[test,reference,docs]"
	@touch $@

install: $(VENV)/.installed

# The main job on the built-in data (see README).
demo: install
	@$(BIN)/python scripts/demo.py

# Format and lint checks (configured in pyproject.toml); `ruff format .` and
# `ruff check --fix .` repair most of what they report. `lint-imports` checks
# the package's import contracts (setup.cfg, [importlinter]).
lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# The documentation site (mkdocs.yml) into build/site; --strict fails on a
# broken link, a missing API reference or a docstring that names a parameter
# the signature lacks. mkdocs-material's banner about MkDocs 2 is not ours.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# Everything, slow and reference tests included: each module in its own
# pytest process, two at a time (see tests/run_modules.py).
PYTEST := $(BIN)/python tests/run_modules.py --jobs 2 -q

test: install
	$(PYTEST)

# Tiny configs and quick checks only: no training runs, full-size widths,
# real data or subprocess runs.
test-fast: install
	$(PYTEST) -m "not slow"

# transformers 5 has no TensorFlow models, so the real `tf_model.h5` fixtures
# come from transformers 4.x's TFConvBertModel in a side environment.
TF_H5_VENV := .venv-tf-h5
TF_H5_SPECS ?= "transformers>=4.40,<5" "tf-keras==2.21.0" "tensorflow-cpu==2.21.0" "$(TORCH_SPEC)" safetensors

# Regenerates tests/fixtures from transformers' PyTorch ConvBERT, then the
# tf_model.h5 fixtures (tests/fixtures/*_tf) from those with its TF2 port.
fixtures: install
	$(BIN)/python scripts/make_reference_fixtures.py
	$(PYTHON) -m venv $(TF_H5_VENV)
	$(TF_H5_VENV)/bin/pip install --quiet $(TF_H5_SPECS)
	$(TF_H5_VENV)/bin/python scripts/make_tf_h5_fixture.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
