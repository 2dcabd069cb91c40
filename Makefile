# Two commands: `make demo` and `make test`. Both create .venv on first use and reuse it after.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-all lint bench-synthetic clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)  ## plan the bundled example fleet
	$(BIN)/agentplace plan -f examples/fleet

test: $(STAMP)  ## lint + the default (fast) test suite
	$(BIN)/ruff check .
	$(BIN)/pytest -q

test-all: $(STAMP)  ## including tests marked slow
	$(BIN)/pytest -q -m ''

bench-synthetic: $(STAMP)  ## the synthetic 500-node x 200-agent window
	$(BIN)/python -m benchmarks.synthetic --nodes 500 --agents 200

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
