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

# The client distribution (client/, pachyderm-client) first on the command
# line: the project depends on it, and pip takes it from there.
$(STAMP): pyproject.toml client/pyproject.toml
	@$(MAKE) --no-print-directory system-packages
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e ./client -e '.[test]'
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

# Azurite, Microsoft's Azure Storage emulator the Azure block store tests run
# (tests/support/azurite.py), from the npm registry at its lock file's versions.
AZURITE := tests/support/azurite
$(AZURITE)/node_modules/.installed: $(AZURITE)/package-lock.json
	@$(MAKE) --no-print-directory system-packages
	cd $(AZURITE) && npm ci --silent --no-audit --no-fund
	@touch $@


# With a Docker engine (etc/with-dockerd.sh starts the project's own when none
# answers, and stops it after): the Docker executor and image tests need one.
test: install $(NODE_CLIENT)/node_modules/.installed $(AZURITE)/node_modules/.installed
	@bash etc/install-system-packages.sh --test
	bash etc/with-dockerd.sh $(VENV)/bin/pytest -q

stress: install
	$(VENV)/bin/pytest -q -m stress

typecheck: install
	$(VENV)/bin/mypy

protos: install
	$(PY) etc/gen_protos.py

bench: install
	$(PIP) install --quiet -e ./client -e '.[test,bench]'
	$(PY) -m bench

# What `pachctl deploy` prints with default flags, checked in under manifests/
# (tests/pachctl/test_deploy.py fails when they are out of date). The clouds
# need a bucket or container, and amazon and microsoft etcd's disk; the example
# ones are named in each file's header (microsoft's example key is not a real one).
GOOGLE_DEPLOY_FLAGS := --bucket my-pachyderm-bucket
AMAZON_DEPLOY_FLAGS := --bucket my-pachyderm-bucket --region us-west-2 --volume-id vol-0123456789abcdef0
MICROSOFT_DEPLOY_FLAGS := --container pachyderm --account-name mystorageaccount --account-key RVhBTVBMRS1BQ0NPVU5ULUtFWQ== --volume-uri https://mystorageaccount.blob.core.windows.net/vhds/pach-disk.vhd
manifests: install
	@mkdir -p manifests
	$(VENV)/bin/pachctl deploy local > manifests/local.yaml.tmp && mv manifests/local.yaml.tmp manifests/local.yaml
	$(VENV)/bin/pachctl deploy google $(GOOGLE_DEPLOY_FLAGS) > manifests/google.yaml.tmp \
		&& mv manifests/google.yaml.tmp manifests/google.yaml
	$(VENV)/bin/pachctl deploy amazon $(AMAZON_DEPLOY_FLAGS) > manifests/amazon.yaml.tmp \
		&& mv manifests/amazon.yaml.tmp manifests/amazon.yaml
	$(VENV)/bin/pachctl deploy microsoft $(MICROSOFT_DEPLOY_FLAGS) > manifests/microsoft.yaml.tmp \
		&& mv manifests/microsoft.yaml.tmp manifests/microsoft.yaml

# The pachd and job-shim images `pachctl deploy` names by default, tagged
# $(IMAGE_TAG) and latest, built FROM $(IMAGE_BASE) by etc/build-images.sh
# (needs a Docker engine with BuildKit; push them, or load them into your
# cluster's nodes).
IMAGE_TAG ?= 1.2.3-py
IMAGE_BASE ?= python:3.11-slim
images:
	IMAGE_TAG=$(IMAGE_TAG) IMAGE_BASE=$(IMAGE_BASE) bash etc/build-images.sh

clean:
	rm -rf $(VENV)
