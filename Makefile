# Each recipe is the command a person would type; `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATA ?= data/restaurant_reviews.tsv
MODEL_DIR ?= ml-model
GATEWAY_PORT ?= 8080
export GATEWAY_PORT

.PHONY: help install models up test lint bench load experiment simulate promote rollback \
	deploy-k8s undeploy-k8s images-minikube up-docker down-docker clean

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

install: $(VENV)/.installed ## Create .venv and install the project with its dev tools

$(VENV)/.installed: pyproject.toml uv.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv
	$(VENV)/bin/uv sync --frozen --inexact --extra dev
	touch $@

models: install ## Train the stable and canary models into ml-model/ (DATA=file.tsv for another corpus)
	$(PY) -m model_service.train --data $(DATA) --out $(MODEL_DIR)

$(MODEL_DIR)/stable/metadata.json $(MODEL_DIR)/canary/metadata.json: | $(VENV)/.installed
	$(PY) -m model_service.train --data $(DATA) --out $(MODEL_DIR)

up: install $(MODEL_DIR)/stable/metadata.json $(MODEL_DIR)/canary/metadata.json ## Run everything locally behind the Envoy gateway on GATEWAY_PORT
	$(PY) -m localmesh up --model-dir $(MODEL_DIR)

lint: install ## Ruff and mypy on the code, hadolint on the Dockerfiles
	$(VENV)/bin/ruff check services tools tests
	$(VENV)/bin/ruff format --check services tools tests
	$(VENV)/bin/mypy services tools
	$(VENV)/bin/hadolint services/*/Dockerfile

test: install $(MODEL_DIR)/stable/metadata.json lint ## Lint, then run every test
	$(VENV)/bin/pytest

bench: install $(MODEL_DIR)/stable/metadata.json ## Measure scoring speed, throughput, memory and start time
	$(PY) -m bench

load: install $(MODEL_DIR)/stable/metadata.json $(MODEL_DIR)/canary/metadata.json ## 20,000 requests at concurrency 32 through the gateway (loopback); fails on a 5xx or >=10% memory growth
	$(PY) -m load $(if $(LOAD_GATEWAY),--gateway $(LOAD_GATEWAY))

experiment: install ## Decide with statistics whether the canary wins (PROMETHEUS_URL to read Prometheus)
	$(PY) -m experiment decide $(if $(PROMETHEUS_URL),--prometheus-url $(PROMETHEUS_URL))

simulate: install ## Send held-out labelled reviews through the gateway as many clients, with feedback
	$(PY) -m experiment simulate --data $(DATA) --gateway http://127.0.0.1:$(GATEWAY_PORT) --host-header service.localhost --clients 1000 --reviews 1000

promote: install ## All traffic to the canary (TO=version) on the running gateway; K8S=1 helm upgrade; DRY_RUN=1 prints
	$(PY) -m localmesh promote $(TO) $(if $(K8S),--kubernetes)

rollback: install ## All traffic back to stable (TO=version); K8S=1 for helm upgrade; DRY_RUN=1 prints
	$(PY) -m localmesh rollback $(TO) $(if $(K8S),--kubernetes)

deploy-k8s: ## Deploy to minikube with Istio, monitoring, Kiali and Jaeger (MEMORY, CPUS, IMAGES; DRY_RUN=1 prints the plan)
	bash deploy/k8s/deploy.sh

unpromote: install ## All traffic to the canary (TO=version) on the running gateway; K8S=1 helm upgrade; DRY_RUN=1 prints
	$(PY) -m localmesh promote $(TO) $(if $(K8S),--kubernetes)

rollback: install ## All traffic back to stable (TO=version); K8S=1 for helm upgrade; DRY_RUN=1 prints
	$(PY) -m localmesh rollback $(TO) $(if $(K8S),--kubernetes)

undeploy-k8s: ## Remove the release (ALL=1 also deletes the minikube cluster; DRY_RUN=1 prints the commands)
	bash deploy/k8s/undeploy.sh

images-minikube: ## Build both images inside minikube
	bash deploy/k8s/images.sh

up-docker: ## Run the stack with Docker Compose (needs a Docker engine)
	docker compose -f deploy/compose.yaml up --build

down-docker: ## Stop the Docker Compose stack
	docker compose -f deploy/compose.yaml down

clean: ## Remove the virtual environment, trained models and test artefacts
	rm -rf $(VENV) $(MODEL_DIR)/*/ test-artefacts .pytest_cache .mypy_cache .ruff_cache
