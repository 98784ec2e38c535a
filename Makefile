# Everything runs inside .venv; `make install` creates it from nothing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_PIN ?= torch==2.13.0

.PHONY: install quickstart test test-fast bench synthetic clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch first, pinned: an unpinned requirement would pull a multi-GB CUDA build.
install: $(BIN)/python
	$(BIN)/python -m pip install --quiet $(TORCH_PIN)
	$(BIN)/python -m pip install --quiet -e ".[dev]"

quickstart: install
	$(BIN)/python -m src.train experiment=quickstart

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

bench: install
	$(BIN)/python -m benchmarks.bench_topdown

synthetic: install
	$(BIN)/python -m src.data.synthetic.generate --root data/synthetic

clean:
	rm -rf logs outputs multirun .pytest_cache
