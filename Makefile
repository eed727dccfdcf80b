# Two entry points on a fresh machine: `make demo` (main job, offline) and `make test`.
# Each bootstraps .venv with the CPU build of torch; GPU users install with `pip install -e .[dev]`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TORCH_PIN ?= torch==2.13.0

.PHONY: venv demo test test-slow lint bench reproduce figures clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_PIN)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

demo: venv
	$(BIN)/sparsejepa demo --out runs/demo

test: venv
	$(BIN)/pytest -q

test-slow: venv
	$(BIN)/pytest -m slow

# Train, probe and export every run of checkpoints/reference_runs.yaml into checkpoints/ (hours on a
# CPU: README, "Reproduction"); a stopped run resumes exactly, a finished one is re-probed
# (features cached) and re-exported; --overwrite: retrained runs replace the shipped releases.
reproduce: venv
	$(BIN)/sparsejepa reproduce --overwrite

# Run every notebook (notebooks/NN_*.ipynb) headless against the released encoders in checkpoints/
# (SPARSEJEPA_CHECKPOINTS overrides) and rewrite paper_figures/ (PNG, PDF and each printed table).
figures: venv
	$(BIN)/sparsejepa figures

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: venv
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/estimators.py

clean:
	rm -rf $(VENV) runs .pytest_cache
