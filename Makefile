# Set-up and everyday commands. Every target that needs Python first runs
# `install`, which is idempotent and fast once done.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
SYSTEM_STAMP := $(VENV)/.system-packages

.PHONY: install system-packages run test stress protos bench typecheck manifests images clean

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
	@echo "pachd: gRPC on port 30650; the web console at http://127.0.0.1:30080/"
	$(VENV)/bin/pachd

# The Node.js client of the foreign-client test (tests/foreign/node), from the
# npm registry at the versions its lock file pins.
NODE_CLIENT := tests/foreign/node
$(NODE_CLIENT)/node_modules/.installed: $(NODE_CLIENT)/package-lock.json
	@$(MAKE) --no-print-directory system-packages
	cd $(NODE_CLIENT) && npm ci --silent --no-audit --no-fund
	@touch $@

test: install $(NODE_CLIENT)/node_modules/.installed
	@bash etc/install-system-packages.sh --test
	$(VENV)/bin/pytest -q

stress: install
	$(VENV)/bin/pytest -q -m stress

typecheck: install
	$(VENV)/bin/mypy

protos: install
	$(PY) etc/gen_protos.py

bench: install
	$(PIP) install --quiet -e '.[test,bench]'
	$(PY) -m bench

# What `pachctl deploy` prints with default flags, checked in under manifests/
# (tests/pachctl/test_deploy.py fails when they are out of date). google needs
# a bucket; the example one is named in the file's header.
GOOGLE_DEPLOY_FLAGS := --bucket my-pachyderm-bucket
manifests: install
	@mkdir -p manifests
	$(VENV)/bin/pachctl deploy local > manifests/local.yaml.tmp && mv manifests/local.yaml.tmp manifests/local.yaml
	$(VENV)/bin/pachctl deploy google $(GOOGLE_DEPLOY_FLAGS) > manifests/google.yaml.tmp \
		&& mv manifests/google.yaml.tmp manifests/google.yaml

# The pachd and job-shim images `pachctl deploy` names by default (needs a
# Docker engine; push them, or load them into your cluster's nodes).
IMAGE_TAG ?= 1.2.3-py
images:
	docker build -f etc/Dockerfile.pachd -t pachyderm/pachd:$(IMAGE_TAG) .
	docker build -f etc/Dockerfile.job-shim -t pachyderm/job-shim:$(IMAGE_TAG) .

clean:
	rm -rf $(VENV)
