# Set-up and entry points. Python packages install into .venv from PyPI; beyond Python 3.11+, pip
# and bash nothing else is needed for `make demo`. `make demo` runs the main job against the embedded relay,
# `make test` runs the whole test suite (what CI runs), after installing the Debian packages the
# tests use when they are missing (scripts/system_deps.sh, as root).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

LOWEST ?= .venv-lowest
#: The tests that need neither rtp.io nor a relay; the docs generator is build tooling that
#: follows the development versions, so its tests stay out.
LOWEST_TESTS := -m "not relay" tests/cli tests/test_config.py tests/test_files.py --ignore=tests/cli/test_docgen.py

.PHONY: demo test test-lowest bench docs check-docs clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --config-settings editable_mode=compat -e '.[embedded,pg,mysql,test]'
	touch $@

demo: $(VENV)/.installed
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash scripts/demo.sh

test: $(VENV)/.installed
	bash scripts/system_deps.sh
	$(PY) -m pytest -q

# The lowest dependency versions pyproject.toml allows, in a venv of their own.
$(LOWEST)/.installed: pyproject.toml scripts/lowest_deps.py
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/python -m pip install --quiet --upgrade pip
	$(LOWEST)/bin/python -m pip install --quiet $$($(PYTHON) scripts/lowest_deps.py) pytest hypothesis pexpect
	$(LOWEST)/bin/python -m pip install --quiet --no-deps --config-settings editable_mode=compat -e .
	touch $@

test-lowest: $(LOWEST)/.installed
	$(LOWEST)/bin/python -m pytest -q -p no:cacheprovider $(LOWEST_TESTS)

bench: $(VENV)/.installed
	for script in bench/bench_*.py; do $(PY) $$script || exit 1; done

docs: $(VENV)/.installed
	$(PY) scripts/gen_docs.py

check-docs: $(VENV)/.installed
	$(PY) scripts/gen_docs.py --check

clean:
	rm -rf $(VENV) $(LOWEST) .pytest_cache .hypothesis build *.egg-info
