# make demo   run the main job (the node on a built-in default) in the dev venv
# make demo DEMO_ARGS="--backend openvino --precision bf16"   the same on another engine
# make test   ruff, then pytest (creates or refreshes the venv first)
# make setup  create/refresh the venv: Python 3.11, requirements-dev.txt, this package editable
# make lint   ruff only;  make clean  build outputs and caches;  make distclean  also the venv
#
# VENV=/some/path puts the venv elsewhere; PYTHON311=/path/to/python3.11 picks the interpreter.

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.bevformer-setup-stamp
# The first of python3.11 / python3 that is Python 3.11 (evaluated only when the venv is built).
PYTHON311 ?= $(shell for p in python3.11 python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null && command -v $$p && break; \
	done)

.PHONY: setup test lint demo clean distclean

setup: $(STAMP)

# A torch already in the venv (e.g. a CUDA build installed by hand) is kept; else the pinned one.
$(STAMP): requirements-dev.txt requirements-nodeps.txt setup.py setup.cfg
	@test -n "$(PYTHON311)" || { echo "make setup: Python 3.11 not found; install it or run make PYTHON311=/path/to/python3.11" >&2; exit 1; }
	test -x $(PY) || $(PYTHON311) -m venv $(VENV)
	if $(PY) -c 'import torch' 2>/dev/null; then \
		grep -v '^torch==' requirements-dev.txt > $(VENV)/requirements-dev-no-torch.txt; \
		$(PY) -m pip install -r $(VENV)/requirements-dev-no-torch.txt; \
	else \
		$(PY) -m pip install -r requirements-dev.txt; \
	fi
	$(PY) -m pip install --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install --no-deps --no-build-isolation -e .
	touch $@

test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check .

demo: setup
	$(PY) -m bevformer_ros.tools.demo $(DEMO_ARGS)

clean:
	rm -rf build install log *.egg-info .ruff_cache .hypothesis
	find . -name __pycache__ -type d -not -path './.venv/*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
