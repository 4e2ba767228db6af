# digits: `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install test test-fast lint format train bench bench-serving photos hostile tensorboard clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

install: ## Create .venv and install digits (editable) with its dev tools and MLflow; ONNX Runtime Web (npm) for format=web
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -e ".[dev,mlflow]"
	@if command -v npm >/dev/null; then npm ci --no-audit --no-fund --ignore-scripts; \
	else echo "no npm: digits.export format=web needs ONNX Runtime Web (install Node.js, then npm ci)"; fi

test: ## Run every test on the CPU, one worker per core (synthetic MNIST; real MNIST if DIGITS_DATA_DIR has it)
	$(BIN)/pytest -n auto

test-fast: ## Tests without the slow (multi-process) ones
	$(BIN)/pytest -n auto -m "not slow"

lint: ## ruff lint and format check; the import layers and no import cycles (import-linter)
	$(BIN)/ruff check src tests tools
	$(BIN)/ruff format --check src tests tools
	$(BIN)/lint-imports

format: ## ruff autofix and format
	$(BIN)/ruff check --fix src tests tools
	$(BIN)/ruff format src tests tools

train: ## Train: make train ARGS="model=cnn optimizer=adam"
	$(BIN)/python -m digits.train $(ARGS)

bench: ## Training/predict speed vs a raw loop and the tutorials', then bench-serving (needs DIGITS_DATA_DIR)
	$(BIN)/python tools/bench.py $(ARGS)
	$(BIN)/python tools/bench_serving.py

bench-serving: ## torch vs onnxruntime per model, and a load test of digits.serve (needs DIGITS_DATA_DIR)
	$(BIN)/python tools/bench_serving.py $(ARGS)

photos: ## Accuracy per preprocessing on photo-like digits (pens, small scans): make photos ARGS="ckpt_path=..."
	$(BIN)/python tools/photo_benchmark.py $(ARGS)

hostile: ## Every entry point against ~200 user mistakes, each in a fresh process (needs DIGITS_DATA_DIR)
	$(BIN)/python tools/hostile.py --out outputs/hostile $(ARGS)

tensorboard: ## TensorBoard on outputs/
	$(BIN)/tensorboard --logdir outputs

clean: ## Remove caches and build files (keeps outputs/)
	rm -rf .pytest_cache .ruff_cache build dist src/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
