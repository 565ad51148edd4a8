# opencomposer: every command a user or CI needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := true
export CDK_DISABLE_VERSION_CHECK := true

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all]'
	touch $(STAMP)

setup: $(STAMP) ## create .venv with everything (run by the other targets on first use)

run: $(STAMP) ## start the local stack, train the default job, download its MIDI into out/, stop (EPOCHS=n to change)
	$(PY) -m opencomposer.local.demo $(if $(EPOCHS),--epochs $(EPOCHS))

# exec: make's child is the stack itself, which gets what make forwards (a SIGTERM to the whole
# group reaches it twice: serve.py counts a repeat within a second as the same request)
serve: $(STAMP) ## run the local stack in the foreground (API on http://127.0.0.1:8000, or OPENCOMPOSER_PORT)
	exec $(PY) -m opencomposer.local.serve

test: $(STAMP) ## lint and run the whole test suite
	$(PY) -m ruff check .
	$(PY) -m pytest

image-test: $(STAMP) ## build the training image (cached) and run it as SageMaker does (Linux; starts dockerd as root)
	bash training_container/image/image-test.sh

fuzz: $(STAMP) ## fuzz the API with schemathesis against a local stack: 1,200 cases (CASES=n, SEED=s)
	$(PY) -m tests.fuzz.fuzz_api $(if $(CASES),--cases $(CASES)) $(if $(SEED),--seed $(SEED))

bench: $(STAMP) ## run the benchmarks (BENCH="api training" picks some); figures in bench/results/bench.json
	$(PY) -m bench $(BENCH)

bench-gpu: $(STAMP) ## the training throughput figures on a CUDA GPU (bench/gpu.sh)
	bash bench/gpu.sh

lint: $(STAMP) ## ruff and mypy
	$(PY) -m ruff check .
	$(PY) -m mypy lambdas opencomposer training_container/gan infra

synth: $(STAMP) ## synthesise the CloudFormation template into cdk.out/ (offline, no Docker)
	$(PY) infra/app.py

data: $(STAMP) ## build the Bach-chorale dataset cache (python -m gan.data; other targets build it on first use)
	$(PY) -m gan.data

# --- AWS deployment (the CDK CLI pinned in package.json) ---------------------------------------
NPM_STAMP := node_modules/.installed
CDK := node_modules/.bin/cdk --no-notices

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $(NPM_STAMP)

bootstrap: $(STAMP) $(NPM_STAMP) ## once per AWS account and region: the CDK bootstrap stack deploys need
	$(CDK) bootstrap

deploy: $(STAMP) $(NPM_STAMP) ## deploy to your AWS account (credentials, Docker); sizes: PARAMS="InstanceType=ml.g4dn.xlarge"
	$(CDK) deploy $(foreach p,$(PARAMS),--parameters $(p)) --outputs-file cdk.out/outputs.json

destroy: $(STAMP) $(NPM_STAMP) ## delete the deployed stack and everything in it: jobs, MIDI, models (asks first)
	$(CDK) destroy

clean: ## remove the environment, node_modules, caches and local state
	rm -rf $(VENV) node_modules cdk.out .opencomposer .pytest_cache .ruff_cache .mypy_cache

.PHONY: help setup run serve test image-test fuzz bench bench-gpu lint synth data bootstrap deploy destroy clean
