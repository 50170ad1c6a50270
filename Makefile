# Set-up and everyday commands. Every target that needs Python first runs
# `install`, which is idempotent and fast once done.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
SYSTEM_STAMP := $(VENV)/.system-packages

.PHONY: install system-packages run test stress protos bench typecheck clean

install: $(STAMP)

# Debian packages: etcd (metadata backend and tests), FUSE (mounts), and the
# headers pyfuse3 builds against. Installed only when missing.
system-packages:
	@bash etc/install-system-packages.sh

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory system-packages
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[test]'
	@touch $(STAMP)

run: install
	$(VENV)/bin/pachd

test: install
	$(VENV)/bin/pytest -q

stress: install
	$(VENV)/bin/pytest -q -m stress

typecheck: install
	$(VENV)/bin/mypy

protos: install
	$(PY) etc/gen_protos.py

bench: install
	$(PY) -m bench

clean:
	rm -rf $(VENV)
