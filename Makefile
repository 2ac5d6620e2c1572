# steerbench: `make demo` and `make test` set up .venv themselves on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: setup demo test bench clean-venv

setup: $(STAMP)

# torch goes first and pinned: the local CPU wheel, not several GB of CUDA packages.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/steerbench eval --agent expert --agent modular --agent lane_keeper --agent idle \
		--scenarios highway,merge,roundabout,intersection,racetrack --split train \
		--episodes 3 --seed 0 --workers 2 --logdir runs/demo
	@echo "TensorBoard: $(BIN)/tensorboard --logdir runs/demo"

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/env_speed.py

clean-venv:
	rm -rf $(VENV)
