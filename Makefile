# digits: `make help` lists the targets.
# The first of these that is Python 3.11, the version digits supports (or PYTHON=/path/to/python3.11).
PYTHON ?= $(shell for p in python3.11 python3 python; do $$p -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null && echo $$p && break; done)
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install test test-all lint docs format train bench bench-serving photos hostile tensorboard clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

install: ## Create .venv (Python 3.11) and install digits (editable) with every extra: search, slurm, mlflow, docs, dev; ONNX Runtime Web (npm) for format=web
	@test -n "$(PYTHON)" || { echo "make install: digits needs Python 3.11, and none was found on PATH: install python3.11, or give it as PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -e ".[search,slurm,mlflow,docs,dev]"
	@if command -v npm >/dev/null; then npm ci --no-audit --no-fund --ignore-scripts; \
	else echo "no npm: digits.export format=web needs ONNX Runtime Web (install Node.js, then npm ci)"; fi

# --dist worksteal: a worker that runs out of tests takes queued ones from the other, so the
# long tests at the end do not leave a core idle.
test: ## The fast tier: every test but those marked slow, one worker per core (a few minutes)
	$(BIN)/pytest -n auto --dist worksteal -m "not slow"

test-all: ## The full suite, slow tests included (what CI runs)
	$(BIN)/pytest -n auto --dist worksteal

lint: ## ruff lint and format check; the import layers and no import cycles (import-linter)
	$(BIN)/ruff check src tests tools
	$(BIN)/ruff format --check src tests tools
	$(BIN)/lint-imports

docs: ## Build the docs site into site/ (strict: a broken link fails)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

format: ## ruff autofix and format
	$(BIN)/ruff check --fix src tests tools
	$(BIN)/ruff format src tests tools

train: ## Train: make train ARGS="model=cnn optimizer=adam"
	$(BIN)/python -m digits.train $(ARGS)

bench: ## Training/predict speed vs a raw loop and the tutorials', start-up (--help, an .onnx predict, a whole run) vs baselines, a folder's cache, fine-tuning vs training, reading numbers (sequence vs segmenting), then bench-serving (needs DIGITS_DATA_DIR)
	$(BIN)/python tools/bench.py $(ARGS)
	$(BIN)/python tools/bench_startup.py
	$(BIN)/python tools/bench_folder.py
	$(BIN)/python tools/bench_finetune.py
	$(BIN)/python tools/bench_numbers.py
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
	rm -rf .pytest_cache .ruff_cache build dist site src/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
