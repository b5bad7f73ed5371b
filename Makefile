# Two commands matter: `make run` (the local stack) and `make test` (everything CI checks).
# Each builds its own virtualenv; aws-sam-cli lives in a separate tools virtualenv
# because it pins its own boto3/click.
PYTHON ?= python3
VENV := .venv
TOOLS := .tools-venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TOOLS_STAMP := $(TOOLS)/.installed
# sam build needs the Lambda runtime's Python (3.13) on PATH.
# (pyenv's shim answers to python3.13 even when 3.13 is not selected, so each candidate is run.)
PY313 ?= $(shell for p in $$HOME/.pyenv/versions/3.13*/bin/python3.13 $$(command -v python3.13); do \
	"$$p" -c 'import sys' >/dev/null 2>&1 && echo "$$p" && break; done)

export SAM_CLI_TELEMETRY := 0

.PHONY: run test lint typecheck unit functional e2e deployed template artifacts lock bench mutate mutate-sample clean venv tools

$(STAMP): pyproject.toml layers/plumsms/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

venv: $(STAMP)

$(TOOLS_STAMP): requirements-tools.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --upgrade pip
	$(TOOLS)/bin/pip install --quiet -r requirements-tools.txt
	touch $@

tools: $(TOOLS_STAMP)

run: $(STAMP)
	$(BIN)/plumsms-local

PY_DIRS := layers local functions tests bench

lint: $(STAMP)
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)

typecheck: $(STAMP)
	$(BIN)/mypy layers/plumsms/python/plumsms local/plumsms_local functions bench

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

functional: $(STAMP)
	$(BIN)/pytest tests/functional -q

e2e: $(STAMP)
	$(BIN)/pytest tests/e2e -q

# The machine's own Lambda architecture: the as-deployed tier runs that build.
HOST_ARCH := $(shell uname -m | sed -e 's/aarch64/arm64/' -e 's/amd64/x86_64/')
DEPLOY_ARCH := $(shell python3 layers/plumsms/build_arch.py .)
RUNTIME_SDK := .aws-sam/lambda-runtime/.installed

template: $(TOOLS_STAMP)
	$(TOOLS)/bin/cfn-lint template.yaml
	$(TOOLS)/bin/sam validate --lint --region us-east-1

# What `sam deploy` ships (.aws-sam/build, samconfig's architecture) and the same build for
# this machine's architecture, which tests/deployed runs; both need python3.13 on PATH.
artifacts: $(TOOLS_STAMP) $(RUNTIME_SDK)
	@test -n "$(PY313)" || { echo "sam build needs python3.13 (the Lambda runtime): pyenv install 3.13"; exit 1; }
	PATH="$$(dirname $(PY313)):$$PATH" $(TOOLS)/bin/sam build --region us-east-1 \
		--build-dir .aws-sam/build --cache-dir .aws-sam/cache-$(DEPLOY_ARCH)
	PATH="$$(dirname $(PY313)):$$PATH" LAYER_ARCH=$(HOST_ARCH) $(TOOLS)/bin/sam build \
		--region us-east-1 --parameter-overrides Architecture=$(HOST_ARCH) \
		--build-dir .aws-sam/deployed-$(HOST_ARCH) --cache-dir .aws-sam/cache-$(HOST_ARCH)

# The SDK the Lambda python3.13 runtime provides, alone in a folder (tests/deployed).
$(RUNTIME_SDK): tests/deployed/lambda-runtime.txt
	rm -rf .aws-sam/lambda-runtime
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --no-deps --no-compile \
		--only-binary=:all: --python-version 3.13 --target .aws-sam/lambda-runtime \
		-r tests/deployed/lambda-runtime.txt
	# The runtime image ships its SDK compiled; so does this stand-in.
	$(PY313) -m compileall -q -j 0 .aws-sam/lambda-runtime
	touch $@

deployed: $(STAMP) artifacts
	$(BIN)/pytest tests/deployed -q

# Re-resolve the layer's full pinned dependency set after editing its requirements.txt.
lock: $(STAMP)
	$(BIN)/python layers/plumsms/lock.py > layers/plumsms/requirements.lock.new
	mv layers/plumsms/requirements.lock.new layers/plumsms/requirements.lock

# Mutation testing of the pure domain and the dispatcher's pacing and recovery
# (docs/mutation.md): every mutant, per-module scores (>= 95 %), 30-60 minutes; CI runs a
# fixed sample of 40 so the score cannot silently fall.
mutate: $(STAMP)
	$(BIN)/python -m tests.mutation --jobs 2

mutate-sample: $(STAMP)
	$(BIN)/python -m tests.mutation --sample 40 --seed 0 --jobs 2

test: lint typecheck template artifacts
	$(BIN)/pytest -q
	$(MAKE) --no-print-directory mutate-sample

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(TOOLS) .aws-sam .pytest_cache .mypy_cache .ruff_cache
