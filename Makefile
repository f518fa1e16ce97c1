# stridelab: every target creates .venv if missing and installs the package with the pinned torch.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= 2


.PHONY: demo tour test fuzz bench lint types pictures golden install clean zoo

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# The stride study on generated digit scenes: classify, segment and detect (~250 s of CPU, README).
DEMO_FLAGS := --dataset scenes --task classify,segment,detect --width 8 --train-limit 400 \
	--epochs 6 --val-every 6 --batch-size 16 --optimizer adamw --lr 0.01 --seeds 2 \
	--latency-repeats 5 --no-effective-field

demo: $(STAMP)
	$(VENV)/bin/stridelab study $(DEMO_FLAGS) --overwrite

tour: $(STAMP)
	$(PY) scripts/tour.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks scripts

types: $(STAMP)
	$(VENV)/bin/mypy --strict src/stridelab/arith
	$(VENV)/bin/mypy src/stridelab

test: lint types
	$(VENV)/bin/pytest -q -n $(PYTEST_WORKERS) -p no:cacheprovider

fuzz: $(STAMP)
	STRIDELAB_FUZZ=1 $(VENV)/bin/pytest -q -n $(PYTEST_WORKERS) -p no:cacheprovider

bench: $(STAMP)
	@for script in benchmarks/bench_*.py; do \
		echo "== $$script"; $(PY) $$script || exit 1; \
	done

pictures: $(STAMP)
	$(PY) scripts/make_pictures.py

golden: $(STAMP)
	$(VENV)/bin/pytest -q -p no:cacheprovider --regen-golden

# The zoo: a second venv with the machine's torch 2.14.1 / torchvision 0.29.1 and timm, then every
# torchvision and timm model through the inspector (docs/zoo.md). ZOO_ARGS="--match '*convnext*'".
ZOO_VENV := .venv-zoo
ZOO_PY := $(ZOO_VENV)/bin/python
ZOO_STAMP := $(ZOO_VENV)/.installed
ZOO_ARGS ?=

$(ZOO_STAMP): pyproject.toml
	test -x $(ZOO_PY) || $(PYTHON) -m venv $(ZOO_VENV)
	$(ZOO_PY) -m pip install --quiet --upgrade pip
	printf 'torch==2.14.1\ntorchvision==0.29.1\n' > $(ZOO_VENV)/constraints.txt
	$(ZOO_PY) -m pip install --quiet -c $(ZOO_VENV)/constraints.txt torch torchvision timm
	$(ZOO_PY) -m pip install --quiet -c $(ZOO_VENV)/constraints.txt -e . pytest hypothesis
	touch $(ZOO_STAMP)

zoo: $(ZOO_STAMP)
	$(ZOO_PY) -m pytest -q -p no:cacheprovider tests/inspect/test_registry.py
	$(ZOO_PY) scripts/zoo $(ZOO_ARGS)

clean:
	rm -rf $(VENV) $(ZOO_VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist src/*.egg-info
