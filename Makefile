# stridelab: every target creates .venv if missing and installs the package with the pinned torch.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= 2


.PHONY: demo tour test fuzz bench lint types pictures golden install clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/stridelab study --overwrite

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

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist src/*.egg-info
