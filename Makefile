# mscam — one entry point for set-up, tests, demo and benchmarks.
# `make demo` and `make test` work on a fresh Debian 12 or Debian 13 machine: they install what is
# missing. Nothing here names a Python version: the venv follows the system Python, whatever it is.

SHELL := /bin/bash
SYSPY ?= /usr/bin/python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# torch 2.13.0 on every Python: on Python 3.11 pip takes the CPU wheel lying in $(WHEELS) (seconds);
# on Python 3.13 (Debian 13) no such file exists and pip downloads PyPI's build, CUDA libraries
# included (several GB of downloads, 4.6 GB in the venv). Override with e.g. TORCH=torch==2.14.1.
TORCH ?= torch==2.13.0
WHEELS ?= /opt/wheels
FIND_LINKS := $(if $(wildcard $(WHEELS)),--find-links $(WHEELS),)
APT_PACKAGES := qgis python3-qgis qgis-providers gdal-bin python3-gdal python3-numpy python3-venv xvfb
# Debian's GDAL and QGIS bindings are built against Debian's own numpy (1.24 on Debian 12, 2.2 on
# Debian 13): pip must never replace it. The constraint is written at set-up time from the numpy
# that Debian's python3-numpy provides, so it follows the machine instead of naming a version.
PIP_CONSTRAINTS = $(VENV)/constraints.txt
SYSTEM_NUMPY = $(shell $(SYSPY) -c 'import numpy; print(numpy.__version__)' 2>/dev/null)
export QT_QPA_PLATFORM ?= offscreen
export XDG_RUNTIME_DIR ?= /tmp/mscam-xdg-$(shell id -u)
export PYTHONDONTWRITEBYTECODE := 1
# The public CAM libraries live in their own venv, for bench/parity_public.py and
# tests/test_parity_public.py only (never in .venv). First what pytorch_grad_cam imports, under
# the system's numpy (opencv 4.11 accepts numpy 1 and 2), and pytest; then grad-cam and torchcam
# without their declared dependencies: grad-cam's torchvision does not import beside torch 2.13
# (parity_public.py stubs the names it imports), and torchcam asks numpy>=1.26.
BENCH_VENV ?= .venv-bench
BENCH_PY := $(BENCH_VENV)/bin/python
BENCH_PIP := $(BENCH_VENV)/bin/pip
PUBLIC_CAMS := grad-cam==1.5.7 torchcam==0.5.0
PUBLIC_CAM_DEPS := ttach==0.0.3 tqdm opencv-python-headless==4.11.0.86 scikit-learn matplotlib scipy pillow \
  pytest

.PHONY: setup system-packages test test-debian13 demo model bench bench-gpu bench-public eval heldout package qgis lint format clean

setup: system-packages $(VENV)/.installed

system-packages:
	@if ! dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
	  echo "installing Debian packages: $(APT_PACKAGES)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(APT_PACKAGES); \
	fi

# Re-run when the system's numpy changes (a Debian upgrade) as well as when the project's do.
$(VENV)/.installed: pyproject.toml $(wildcard /usr/lib/python3/dist-packages/numpy/version.py) | system-packages
	test -x $(PY) || $(SYSPY) -m venv --system-site-packages $(VENV)
	$(call write_constraints,$(VENV))
	$(PIP) install -q $(FIND_LINKS) -c $(PIP_CONSTRAINTS) "$(TORCH)"
	$(PIP) install -q $(FIND_LINKS) -c $(PIP_CONSTRAINTS) -e ".[dev]"
	$(call check_numpy,$(PY))
	touch $@

# $(call write_constraints,VENV): pin numpy to the system's version (and nothing else) for pip.
define write_constraints
	@test -n "$(SYSTEM_NUMPY)" || { echo "set-up: $(SYSPY) cannot import numpy (Debian's python3-numpy)" >&2; exit 1; }
	printf '# written by make setup: the numpy that Debian'"'"'s GDAL and QGIS bindings were built against\nnumpy==%s\n' "$(SYSTEM_NUMPY)" >$(1)/constraints.txt
endef

# $(call check_numpy,PYTHON): the venv sees the system's numpy, and GDAL's array bindings load with it.
define check_numpy
	$(1) -c "import numpy, torch, osgeo.gdal_array, mscam; \
	  assert numpy.__version__ == '$(SYSTEM_NUMPY)', (numpy.__version__, '$(SYSTEM_NUMPY)')"
endef

test: setup
	mkdir -p $(XDG_RUNTIME_DIR) && chmod 700 $(XDG_RUNTIME_DIR)
	$(PY) -m pytest

# `make test` on Debian 13 (QGIS 3.40 LTR, Python 3.13, GDAL 3.10, numpy 2) from a Debian 12 host:
# a debootstrap chroot cached under build/debian13, a fresh clone of HEAD inside. Needs root.
test-debian13:
	bash scripts/test_debian13.sh

demo: setup
	$(PY) -m mscam demo --out demo_out

# Rebuild the four bundled models on synthetic chips (cached in build/chips): dual-pol
# (models/default, what load_model() loads) and single-pol (models/single_pol), then their twins
# for scenes finer than ~8.5 m, trained on scenes rendered finer and averaged to ~10 m
# (models/fine_dual, models/fine_single), each with its accuracy report, then
# bench/model/report.md (gradient spread, family hold-out experiment).
MODEL_CHIPS := --chip-cache build/chips
model: setup
	$(PY) -m mscam train --polarisation dual --out core/mscam/models/default \
	  --report bench/model/dual --card-version 2.2.0 $(MODEL_CHIPS)
	$(PY) -m mscam train --polarisation single --out core/mscam/models/single_pol \
	  --report bench/model/single --width 32 --train-per-class 3000 --epochs 12 $(MODEL_CHIPS)
	$(PY) -m mscam train --polarisation dual --fine-fraction 1 --out core/mscam/models/fine_dual \
	  --report bench/model/fine_dual --card-version 2.2.0 $(MODEL_CHIPS)
	$(PY) -m mscam train --polarisation single --fine-fraction 1 \
	  --out core/mscam/models/fine_single --report bench/model/fine_single --card-version 2.2.0 \
	  $(MODEL_CHIPS)
	$(PY) bench/model/report.py --out bench/model

# bench_cam.py runs in the benchmark venv so that pytorch-grad-cam's Grad-CAM is timed in the
# same rounds as mscam's (same torch as .venv).
bench: setup $(BENCH_VENV)/.installed
	$(BENCH_PY) bench/bench_cam.py --out bench
	$(PY) bench/bench_scene.py --out bench
	$(PY) bench/bench_dask.py --out bench
	$(MAKE) --no-print-directory bench-public

# The method comparison on SAR: every CAM method and MS-CAM option on held-out synthetic chips and
# scenes with the default model (WSOL, faithfulness, scene F1, time per tile) → bench/eval/.
eval: setup
	$(PY) bench/eval/run_eval.py --out bench/eval
	$(MAKE) --no-print-directory heldout

# Held-out scenes from a generator mscam never trained on (bench/eval/heldout_generator.py), run
# through `mscam explain` with all defaults and scored against their truth → bench/eval/heldout/.
heldout: setup
	$(PY) bench/eval/heldout.py --out bench/eval/heldout

# The engine benchmark and an 8192² scene on CUDA → bench/results/*_cuda.md; without a CUDA
# device it says so in one line and exits 0.
bench-gpu: setup
	$(PY) bench/bench_gpu.py --out bench

bench-public: $(BENCH_VENV)/.installed
	$(BENCH_PY) bench/parity_public.py --out bench
	$(BENCH_PY) -m pytest -q -p no:cacheprovider tests/test_parity_public.py

$(BENCH_VENV)/.installed: pyproject.toml | system-packages
	test -x $(BENCH_PY) || $(SYSPY) -m venv --system-site-packages $(BENCH_VENV)
	$(call write_constraints,$(BENCH_VENV))
	$(BENCH_PIP) install -q $(FIND_LINKS) -c $(BENCH_VENV)/constraints.txt "$(TORCH)"
	$(BENCH_PIP) install -q $(FIND_LINKS) -c $(BENCH_VENV)/constraints.txt $(PUBLIC_CAM_DEPS)
	$(BENCH_PIP) install -q --no-deps $(PUBLIC_CAMS)
	$(BENCH_PIP) install -q --no-deps -e .
	cd bench && $(abspath $(BENCH_PY)) -c "import numpy, parity_public as p; \
	  assert numpy.__version__ == '$(SYSTEM_NUMPY)', numpy.__version__; \
	  assert p.import_pytorch_grad_cam()[0] and p.import_torchcam()[0]"
	touch $@

# The QGIS plugin zip: mscam_qgis/ with metadata.txt and the engine bundled as mscam_qgis/ext/mscam.
package:
	$(SYSPY) scripts/package_plugin.py --out dist/mscam_qgis.zip

# QGIS desktop on the working tree: the plugin through a symlink on QGIS_PLUGINPATH, the engine
# from core/ and torch from the venv, in a private profile (build/qgis-dev/profile) where it is enabled.
# Open a scene with `make qgis QGIS_ARGS=scene.tif`.
QGIS_DEV := $(CURDIR)/build/qgis-dev
QGIS_ENV = QGIS_PLUGINPATH=$(QGIS_DEV)/plugins QGIS_CUSTOM_CONFIG_PATH=$(QGIS_DEV)/profile \
  PYTHONPATH=$(CURDIR)/core:$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
QGIS_ARGS ?=
qgis: setup
	mkdir -p $(QGIS_DEV)/plugins $(QGIS_DEV)/profile $(XDG_RUNTIME_DIR) && chmod 700 $(XDG_RUNTIME_DIR)
	ln -sfn $(CURDIR)/mscam_qgis $(QGIS_DEV)/plugins/mscam_qgis
	ln -sfn ../metadata.txt mscam_qgis/metadata.txt
	$(QGIS_ENV) /usr/bin/qgis_process.bin plugins enable mscam_qgis >/dev/null
	env -u QT_QPA_PLATFORM $(QGIS_ENV) qgis --noversioncheck $(QGIS_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) $(BENCH_VENV) build dist demo_out .pytest_cache .ruff_cache core/*.egg-info
