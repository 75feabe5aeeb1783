# The README's two commands: `make demo` and `make test`. Both create the venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP    := $(BIN)/python -m pip install --disable-pip-version-check -qq -c constraints.txt
DEMO_OUT ?= results/demo

.PHONY: venv demo test test-slow lint bench clean browser

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@echo "Setting up $(VENV) (first run only: torch is large, allow a few minutes)..."
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.14.1 torchvision==0.29.1
	$(PIP) -e '.[dev,ray]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/gradelab demo --out $(DEMO_OUT)

# Tests marked `slow` train on a real budget (minutes each): they are benchmarks' company, run by
# `make test-slow`, not by CI; tests marked `gpu` skip themselves without a GPU (bench/gpu.sh).
test: $(STAMP) browser lint
	$(BIN)/python -m pytest -q -m "not slow"

# ruff (rules in pyproject.toml) and mypy (strict at the seams: api, options, results, grading,
# serve), both with zero findings; `make test` runs them first.
lint: $(STAMP)
	$(BIN)/ruff check grader tests bench
	$(BIN)/mypy

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

# The server's end-to-end test drives a real browser: Debian's Chromium (Playwright's own browser
# download is not used). Installed once, as root, when it is missing; nothing to do afterwards.
browser:
	@test -x /usr/bin/chromium || { echo "Installing Debian's chromium for the browser test (first run only)..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf results .pytest_cache
