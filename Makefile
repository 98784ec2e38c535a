# Everything runs inside .venv; `make install` creates it from nothing (and is a no-op afterwards
# until pyproject.toml changes).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_BASE := $(VENV)/.installed-base
STAMP := $(VENV)/.installed
TORCH_PIN ?= torch==2.13.0

.PHONY: install install-base quickstart quickstart-rtmpose test test-fast lint format docs bench bench-details synthetic clean

# everything: the package, the test tools, loggers, sweepers and notebook support
install: $(STAMP)

# the package alone (what the quickstart needs)
install-base: $(STAMP_BASE)

# torch first, pinned: an unpinned requirement would pull a multi-GB CUDA build.
$(STAMP_BASE): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PIN)
	$(BIN)/python -m pip install --quiet -e .
	touch $(STAMP_BASE)

$(STAMP): $(STAMP_BASE)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

quickstart: install-base
	$(BIN)/python -m src.train experiment=quickstart

# RTMPose as mmpose trains it: CSPNeXt pretrained on UDP heatmaps first, then RTMPose from its last checkpoint
quickstart-rtmpose: install-base
	$(BIN)/python -m src.train experiment=quickstart_cspnext
	$(BIN)/python -m src.train experiment=quickstart_rtmpose

# lint and formatting first (seconds), the docs build (a broken link or page fails), then the suite
test: install lint docs
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# the documentation site into site/ (--strict: a warning, e.g. a broken link, fails the build)
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir site

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

# one run, one table: benchmarks/results/<machine>-<date>.json and .png
bench: install
	$(BIN)/python -m benchmarks.report

# the detailed benchmarks behind the report (peak, training variants, data loading by stage, export, metric,
# tracking + smoothing per frame)
bench-details: install
	$(BIN)/python -m benchmarks.bench_peak
	$(BIN)/python -m benchmarks.bench_training
	$(BIN)/python -m benchmarks.bench_data
	$(BIN)/python -m benchmarks.bench_bottomup
	$(BIN)/python -m benchmarks.bench_pose3d
	$(BIN)/python -m benchmarks.bench_export
	$(BIN)/python -m benchmarks.bench_metric
	$(BIN)/python -m benchmarks.bench_steady

synthetic: install
	$(BIN)/python -m src.synthetic.generate --root data/synthetic

clean:
	rm -rf logs outputs multirun .pytest_cache site
