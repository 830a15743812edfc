# ownchat — two commands: `make quickstart` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The torch build is decided here, not in pyproject: CUDA wheels when an NVIDIA GPU is present,
# the CPU wheel (torch==2.13.0, on this machine's disk) otherwise.
TORCH_SPEC := $(shell if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then echo torch; else echo torch==2.13.0; fi)
TEST_PACKS := smollm2-135m-instruct qwen2.5-coder-1.5b-instruct gsm8k mt-bench ifeval
ALL_PACKS := $(TEST_PACKS) gemma-3-270m

.PHONY: setup packs test-packs browser quickstart quickstart-tiny test test-unit test-slow lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

packs: $(STAMP)
	$(BIN)/ownchat models pull $(ALL_PACKS)

test-packs: $(STAMP)
	$(BIN)/ownchat models pull $(TEST_PACKS)

# Debian's chromium for the web-chat browser test (Playwright's own browser download needs the internet).
browser:
	@command -v chromium >/dev/null 2>&1 || { (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "chromium not installed: browser tests will be skipped"; }

quickstart: packs
	$(BIN)/ownchat quickstart

quickstart-tiny: packs
	$(BIN)/ownchat quickstart --tiny

test: $(STAMP) test-packs browser
	$(BIN)/ruff check .
	$(BIN)/pytest -q -p no:cacheprovider --timeout=1500 tests

test-unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

test-slow: $(STAMP) packs browser
	$(BIN)/pytest -q -m slow tests

lint: $(STAMP)
	$(BIN)/ruff check .

bench: packs
	$(BIN)/python benchmarks/engines.py

clean:
	rm -rf $(VENV) build *.egg-info
