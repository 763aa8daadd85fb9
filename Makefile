# Each recipe is the command a person would type; `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATA ?= data/restaurant_reviews.tsv
MODEL_DIR ?= ml-model
VERSIONS := stable canary

.PHONY: help install models test test-fast lint bench up down clean

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

install: $(VENV)/.installed ## Create .venv and install the project with its dev tools

$(VENV)/.installed: pyproject.toml uv.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv
	$(VENV)/bin/uv sync --frozen --inexact --extra dev
	touch $@

models: install ## Train the stable and canary models into ml-model/ (DATA=file.tsv to use another corpus)
	$(PY) -m model_service.train --data $(DATA) --out $(MODEL_DIR)

$(MODEL_DIR)/stable/metadata.json $(MODEL_DIR)/canary/metadata.json: | $(VENV)/.installed
	$(PY) -m model_service.train --data $(DATA) --out $(MODEL_DIR)

lint: install ## Ruff on everything, mypy on the services
	$(VENV)/bin/ruff check services tools tests
	$(VENV)/bin/ruff format --check services tools tests
	$(VENV)/bin/mypy services tools

test: install $(MODEL_DIR)/stable/metadata.json lint ## Lint, then run every test
	$(VENV)/bin/pytest

bench: install $(MODEL_DIR)/stable/metadata.json ## Measure scoring speed, throughput, memory and start time
	$(PY) -m bench

clean: ## Remove the virtual environment, trained models and test artefacts
	rm -rf $(VENV) $(MODEL_DIR)/*/ test-artefacts .pytest_cache .mypy_cache .ruff_cache
