# Each recipe is the command a person would type; `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATA ?= data/restaurant_reviews.tsv
# Never trained on: the plain-review set that stands in for real reviews.
EVAL ?= data/eval_plain_reviews.tsv
MODEL_DIR ?= ml-model
GATEWAY_PORT ?= 8080
export GATEWAY_PORT
# Python keeps compiled modules (and pytest its rewritten tests) between runs, even where the
# environment asks it not to: every test run would otherwise compile all it imports again.
unexport PYTHONDONTWRITEBYTECODE
TOOLS := restaurant_sentiment.tools
TRAIN := restaurant_sentiment.model_service.train
MODELS := $(MODEL_DIR)/stable/metadata.json $(MODEL_DIR)/canary/metadata.json
# What the trained models depend on: the corpus, the proxy set their metadata measures, and the
# code that reads, prepares, fits, calibrates and records them.
MODEL_CODE := services/model-service/src/restaurant_sentiment/model_service
TRAINING_INPUTS := $(DATA) $(EVAL) $(addprefix $(MODEL_CODE)/,train.py preprocess.py corpus.py \
	files.py lexicon.py features.py calibration.py artefacts.py tables.py metadata.py)
MEMBERS := $(wildcard libs/*/pyproject.toml services/*/pyproject.toml tools/pyproject.toml)

.PHONY: help install models evaluate docs openapi up restart test test-fast test-containers \
	images lint bench bench-up load experiment simulate promote rollback split rollout deploy-k8s \
	undeploy-k8s images-minikube up-docker down-docker clean

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

install: $(VENV)/.installed ## Create .venv with every workspace package and the dev tools

# Every installed module is compiled once here (about 20 s), as in the images: otherwise each
# process started where PYTHONDONTWRITEBYTECODE is set compiles all it imports again, which
# took 1.9 s of the model-service's start.
$(VENV)/.installed: pyproject.toml uv.lock $(MEMBERS)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv
	$(VENV)/bin/uv sync --frozen --inexact --compile-bytecode
	touch $@

models: $(MODELS) ## Train stable and canary into ml-model/ when the corpus or training code changed (DATA=file.tsv, EVAL=proxy.tsv)

$(MODELS) &: $(TRAINING_INPUTS) | $(VENV)/.installed
	$(PY) -m $(TRAIN) --data $(DATA) --eval $(EVAL) --out $(MODEL_DIR)

evaluate: install models ## Compare the versions on the held-out split, 5-fold CV and the proxy set (EVAL=file.tsv): by length, theme, errors
	$(PY) -m $(TOOLS).evaluate --data $(DATA) --eval $(EVAL) --model-dir $(MODEL_DIR)

docs: install models ## Regenerate the README's model table from ml-model/*/metadata.json
	$(PY) -m $(TOOLS).docs

openapi: install ## Regenerate docs/openapi/model-service.json, the model-service's OpenAPI document
	$(PY) -m $(TOOLS).openapi

up: install models ## Run everything locally behind the Envoy gateway (ports: see the README)
	$(PY) -m $(TOOLS).localmesh up --model-dir $(MODEL_DIR)

restart: install ## Replace each service process of the running `make up` in turn (new code, ml-model/), dropping no request
	$(PY) -m $(TOOLS).localmesh restart

lint: install ## Ruff, mypy and the import layers on the code, hadolint on the Dockerfiles
	$(VENV)/bin/ruff check libs services tools tests
	$(VENV)/bin/ruff format --check libs services tools tests
	$(VENV)/bin/mypy libs/*/src services/*/src tools/src
	$(VENV)/bin/lint-imports
	$(VENV)/bin/hadolint services/*/Dockerfile deploy/docker/*.Dockerfile

test: install models lint ## Lint, then run every test but the container tier (what CI runs first)
	$(VENV)/bin/pytest -m "not containers" --durations=15

test-containers: install models ## Build the images and run them as compose does (starts dockerd if needed)
	$(VENV)/bin/pytest tests/containers -m containers

images: ## Build the three images as compose names them (LOCAL_BASE=1 without a registry)
	bash deploy/docker/images.sh

test-fast: install models ## In-process tests only: no servers, Envoy, browser or containers
	$(VENV)/bin/pytest -m "not slow" -n auto --durations=10

bench: install models ## The model-service with wrk (needs wrk): scoring speed, throughput, feedback with each store, memory, start time; fails on a missed target
	$(PY) -m $(TOOLS).bench

bench-up: install models ## The diner's path through the gateway with wrk (needs wrk): review, page, /predict vs a bare ASGI app; fails on a missed target
	$(PY) -m $(TOOLS).bench.userpath

load: install models ## 20,000 requests at concurrency 32 through the gateway (loopback); fails on a 5xx or >=10% memory growth
	$(PY) -m $(TOOLS).load $(if $(LOAD_GATEWAY),--gateway $(LOAD_GATEWAY))

experiment: install ## Decide with statistics whether the canary wins (PROMETHEUS_URL to read Prometheus; JSON=1: only JSON on stdout)
	$(if $(JSON),@)$(PY) -m $(TOOLS).experiment decide $(if $(PROMETHEUS_URL),--prometheus-url $(PROMETHEUS_URL)) $(if $(JSON),--json)

simulate: install ## Send held-out labelled reviews through the running gateway as many clients, with feedback
	$(PY) -m $(TOOLS).experiment simulate --data $(DATA) --gateway http://127.0.0.1:$(GATEWAY_PORT) --clients 1000 --reviews 1000

promote: install ## All new traffic to the canary (TO=version) on the running gateway; K8S=1 helm upgrade; DRY_RUN=1 prints
	$(PY) -m $(TOOLS).localmesh promote $(TO) $(if $(K8S),--kubernetes)

rollback: install ## All new traffic back to stable (TO=version); K8S=1 helm upgrade; DRY_RUN=1 prints
	$(PY) -m $(TOOLS).localmesh rollback $(TO) $(if $(K8S),--kubernetes)

split: install ## New-traffic weights on the running gateway (WEIGHTS=stable=70,canary=30, default the values'); K8S=1 helm upgrade; DRY_RUN=1 prints
	$(PY) -m $(TOOLS).localmesh split $(if $(WEIGHTS),--weights $(WEIGHTS)) $(if $(K8S),--kubernetes)

rollout: install ## Canary through the steps of values.yaml's rollout:, judged at each, rolled back on harm (K8S=1 helm upgrade + PROMETHEUS_URL; DRY_RUN=1 prints the plan; LOG=file)
	$(PY) -m $(TOOLS).rollout $(if $(K8S),--kubernetes) $(if $(PROMETHEUS_URL),--prometheus-url $(PROMETHEUS_URL)) $(if $(LOG),--log $(LOG))

deploy-k8s: ## Install minikube, Istio, monitoring, Kiali, Jaeger, the images and the chart (MEMORY, CPUS, IMAGES; DRY_RUN=1 prints the plan)
	bash deploy/k8s/deploy.sh

undeploy-k8s: ## Remove what deploy-k8s installed (ALL=1 also deletes the minikube cluster; DRY_RUN=1 prints the plan)
	bash deploy/k8s/undeploy.sh

images-minikube: ## Build both images inside minikube
	bash deploy/k8s/images.sh

up-docker: ## Run the stack with Docker Compose (needs a Docker engine)
	docker compose -f deploy/compose.yaml up --build

down-docker: ## Stop the Docker Compose stack
	docker compose -f deploy/compose.yaml down

clean: ## Remove the virtual environment, trained models and test artefacts
	rm -rf $(VENV) $(MODEL_DIR)/*/ test-artefacts .pytest_cache .mypy_cache .ruff_cache
