# Every target creates (once) and reuses the virtual environment in $(VENV).
VENV ?= .venv
PY := $(VENV)/bin/python
REPRO := $(VENV)/bin/repro
SCALE ?= smoke
EXECUTOR ?= local
PAPER ?= pcl
# torch/torchvision: the releases that install offline on our machines (see README).
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1

.PHONY: venv test test-slurm smoke bench lint clean-venv status

# GPU=1: the GPU build of faiss (the `gpu` extra) replaces faiss-cpu, so the E-step's k-means and
# the kNN index run on GPU (a paper-scale PCL/ProPos job refuses to start without it, see
# repro/launch/preflight.py). Both wheels install the same `faiss` module: faiss-cpu is removed
# and the GPU wheel reinstalled over its files (`pip check` then names faiss-cpu as missing).
GPU ?=
STAMP := $(VENV)/.installed$(if $(GPU),-gpu)
FAISS_GPU := $(shell sed -n 's/^gpu = \["\(faiss-gpu[^"]*\)"\]/\1/p' pyproject.toml)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PINS)
	$(PY) -m pip install -q -e '.[dev$(if $(GPU),$(COMMA)gpu)]'
	$(if $(GPU),$(PY) -m pip uninstall -q -y faiss-cpu && \
	  $(PY) -m pip install -q --force-reinstall --no-deps '$(FAISS_GPU)' && \
	  $(PY) -c 'import faiss; print("faiss", faiss.__version__, "GPU build, sees", faiss.get_num_gpus(), "GPU(s)")')
	touch $@

COMMA := ,
venv: $(STAMP)

# make table3 [PAPER=pcl] [SCALE=smoke|paper] [EXECUTOR=local|debug|slurm] [ARGS="--partition gpu"]
table%: venv
	$(REPRO) launch experiments/$(PAPER)/table$*.yaml --scale $(SCALE) --executor $(EXECUTOR) $(ARGS)

# make fig7 [PAPER=propos] [SCALE=...] [EXECUTOR=...]: a figure spec, like a table
fig%: venv
	$(REPRO) launch experiments/$(PAPER)/fig$*.yaml --scale $(SCALE) --executor $(EXECUTOR) $(ARGS)

# make status TABLE=3 [PAPER=pcl] [SCALE=paper]: per cell stored/running/pending/failed
TABLE ?= 3
status: venv
	$(REPRO) status experiments/$(PAPER)/table$(TABLE).yaml --scale $(SCALE)

test: venv
	$(PY) -m pytest -q

# The cluster path on a real single-node Slurm (root on Debian: installs and starts it).
test-slurm: venv
	bash scripts/slurm_local.sh up
	$(PY) -m pytest -q -m slurm

# The longer end-to-end tests, then every table spec at smoke scale.
smoke: venv
	$(PY) -m pytest -q -m smoke
	for spec in experiments/*/*.yaml; do \
	  $(REPRO) launch $$spec --scale smoke --executor $(EXECUTOR) || exit 1; done

bench: venv
	$(PY) benchmarks/run.py

lint: venv
	$(VENV)/bin/ruff check repro tests benchmarks

clean-venv:
	rm -rf $(VENV)
