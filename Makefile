# Entry points for people and CI. `make run` and `make test` do all set-up on
# a fresh Debian or Ubuntu machine, as root: Docker engine, tools, virtualenv.

PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_FORCE_COLOR ?= false
export PY_COLORS ?= 0

.PHONY: run image engine tools venv test lint unit molecule molecule-image molecule-host molecule-build-guards cli-test collection collection-test test-vm bench clean

## run: build the image and start container `mqbox` on 127.0.0.1
run: image
	ansible-playbook playbooks/run.yml

## image: build the image mqbox:latest
image: engine tools venv
	ansible-playbook playbooks/image.yml

## engine: start a Docker engine when none answers (installs docker.io as root)
engine:
	sh docker/ensure-engine

## tools: install debootstrap, ssh-keygen and git when missing
tools:
	sh docker/ensure-tools

## venv: create the virtualenv with mqbox and its test tools
venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml VERSION
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --editable '.[dev]'
	touch $@

## test: linters, unit tests, the Molecule scenarios and the CLI tests
test: engine tools venv lint unit molecule cli-test

## lint: ansible-lint (production profile), yamllint, ruff, mypy
lint: venv
	yamllint --strict .
	ansible-lint --profile production
	ruff check .
	ruff format --check .
	mypy

## unit: Python unit tests (no Docker needed)
unit: venv
	pytest tests/unit

## cli-test: the mqbox command against Docker: image build, verify, host provision, exit codes
cli-test: engine tools venv
	pytest tests/cli -p no:cacheprovider

## collection: build the Ansible collection mqbox.box into dist/ (offline)
collection: venv
	python -m mqbox.collection --output dist

## collection-test: build, install and run the collection; the execution environment's build context
collection-test: engine venv
	pytest tests/cli/test_collection.py -p no:cacheprovider

## molecule: every Molecule scenario
molecule: molecule-build-guards molecule-image molecule-host

molecule-build-guards: engine venv
	molecule test -s build_guards

molecule-image: engine tools venv
	molecule test -s image

molecule-host: engine tools venv
	molecule test -s host

## test-vm: the Molecule scenario vm (QEMU, software emulation)
test-vm: engine venv
	sh docker/ensure-tools vm
	molecule test -s vm

## clean: remove the virtualenv and the container started by `make run`
clean:
	-docker rm --force mqbox
	rm -rf $(VENV)

## bench: mqbox against the reference Dockerfile in bench/reference; writes docs/benchmarks.md (about 30 min)
bench: engine tools venv
	python -m bench
