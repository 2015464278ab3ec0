# Two commands for a fresh machine with only Python 3.11:
#   make demo   creates .venv, installs toydiff, trains, samples and writes outputs/
#   make test   creates .venv if needed and runs every test
#   make course creates .venv if needed and opens the course notebooks in JupyterLab
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test course notebooks lint format bench docs clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --prefix $(VENV) --name python3 > /dev/null
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/toydiff demo --out outputs

test: $(STAMP)
	$(BIN)/python -m pytest -q

course: $(STAMP)
	$(BIN)/jupyter lab notebooks/

# Regenerate the student notebooks from notebooks/solutions/ (run after editing a solution).
notebooks: $(STAMP)
	$(BIN)/python -m toydiff.course build

lint: $(STAMP)
	$(BIN)/ruff check toydiff tests benchmarks
	$(BIN)/ruff format --check toydiff tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format toydiff tests benchmarks
	$(BIN)/ruff check --fix toydiff tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py

# README pictures and the measured sampler table, from the shipped checkpoint (a few minutes)
docs: $(STAMP)
	$(BIN)/python docs/make_assets.py
	$(BIN)/toydiff evaluate --checkpoint data/gradient_mlp.pt --out docs --threads 1 --timing-repeats 5

clean:
	rm -rf $(VENV) outputs runs wandb .pytest_cache
