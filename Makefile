# Everything runs inside .venv; `make install` creates it from nothing (and is a no-op afterwards
# until pyproject.toml changes).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_PIN ?= torch==2.13.0

.PHONY: install quickstart test test-fast bench synthetic clean

install: $(STAMP)

# torch first, pinned: an unpinned requirement would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PIN)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

quickstart: install
	$(BIN)/python -m src.train experiment=quickstart

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

bench: install
	$(BIN)/python -m benchmarks.bench_topdown
	$(BIN)/python -m benchmarks.bench_bottomup

synthetic: install
	$(BIN)/python -m src.data.synthetic.generate --root data/synthetic

clean:
	rm -rf logs outputs multirun .pytest_cache
