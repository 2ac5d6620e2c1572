# steerbench: `make demo` and `make test` set up .venv themselves on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: setup demo test bench clean-venv

setup: $(STAMP)

# torch goes first and pinned: the local CPU wheel, not several GB of CUDA packages. The ray
# extra (tests/test_ray_backend.py runs in CI, not skipped) needs no torch of its own.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[dev,ray]'
	touch $(STAMP)

# A reduced `steerbench compare` (docs/study.md): small models, 3 training seeds, 3 episodes per
# scenario and split; trains what runs/demo/models lacks, so a second `make demo` only reports.
demo: $(STAMP)
	$(BIN)/steerbench compare --contestants expert,modular-gt-map,modular-classical-pixels,modular-learned-map,e2e-S \
		--scenarios all --episodes 3 --train-seeds 0,1,2 --workers 2 --fast-sim --logdir runs/demo \
		--train-episodes 4 --heldout-episodes 2 --e2e-epochs 4 --detector-frames 1000 --detector-epochs 3
	@echo "Report: runs/demo/report.md   TensorBoard: $(BIN)/tensorboard --logdir runs"

# ruff (pyflakes, isort, lines <= 120; pyproject.toml) first: a lint error fails in seconds, not after the suite.
# The import direction of the layers is tests/test_layering.py.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

# Environment speed, the fast simulation core against stock, then the harness-cost benchmarks
# against their targets (bench/RESULTS.md; about 15 minutes on 2 cores;
# `$(BIN)/python bench/run_all.py --quick` is a one-minute smoke run).
bench: $(STAMP)
	$(BIN)/python bench/env_speed.py
	$(BIN)/python bench/sim_core.py
	$(BIN)/python bench/run_all.py

clean-venv:
	rm -rf $(VENV)
