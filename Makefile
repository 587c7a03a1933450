# Set-up and entry points. Everything installs into .venv from PyPI; nothing else is needed
# beyond Python 3.11+, pip and bash. `make demo` runs the main job against the embedded relay,
# `make test` runs the whole test suite (what CI runs).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test bench docs check-docs clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --config-settings editable_mode=compat -e '.[embedded,pg,test]'
	touch $@

demo: $(VENV)/.installed
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash scripts/demo.sh

test: $(VENV)/.installed
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	for script in bench/bench_*.py; do $(PY) $$script || exit 1; done

docs: $(VENV)/.installed
	$(PY) scripts/gen_docs.py

check-docs: $(VENV)/.installed
	$(PY) scripts/gen_docs.py --check

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
