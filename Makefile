# mscam — one entry point for set-up, tests, demo and benchmarks.
# `make demo` and `make test` work on a fresh Debian 12 machine: they install what is missing.

SHELL := /bin/bash
SYSPY ?= /usr/bin/python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
TORCH ?= torch==2.13.0
WHEELS ?= /opt/wheels
FIND_LINKS := $(if $(wildcard $(WHEELS)),--find-links $(WHEELS),)
APT_PACKAGES := qgis python3-qgis qgis-providers gdal-bin python3-gdal python3-venv xvfb
# Debian's GDAL and QGIS bindings are built against Debian's numpy 1.24: never let pip bring numpy 2.
PIP_CONSTRAINTS := core/constraints.txt
export QT_QPA_PLATFORM ?= offscreen
export XDG_RUNTIME_DIR ?= /tmp/mscam-xdg-$(shell id -u)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup system-packages test demo bench lint format clean

setup: system-packages $(VENV)/.installed

system-packages:
	@if ! dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
	  echo "installing Debian packages: $(APT_PACKAGES)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(APT_PACKAGES); \
	fi

$(VENV)/.installed: pyproject.toml $(PIP_CONSTRAINTS) | system-packages
	test -x $(PY) || $(SYSPY) -m venv --system-site-packages $(VENV)
	$(PIP) install -q $(FIND_LINKS) -c $(PIP_CONSTRAINTS) "$(TORCH)"
	$(PIP) install -q $(FIND_LINKS) -c $(PIP_CONSTRAINTS) -e ".[dev]"
	$(PY) -c "import numpy, torch, osgeo.gdal_array, mscam; assert numpy.__version__ < '2', numpy.__version__"
	touch $@

test: setup
	mkdir -p $(XDG_RUNTIME_DIR) && chmod 700 $(XDG_RUNTIME_DIR)
	$(PY) -m pytest

demo: setup
	$(PY) -m mscam demo --out demo_out

bench: setup
	$(PY) bench/bench_cam.py --out bench

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) build dist demo_out .pytest_cache .ruff_cache core/*.egg-info
