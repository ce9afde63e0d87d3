# fleetup: `make demo` runs the server with a simulated fleet, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint unit browser-deps bench serve clean translations vendor

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/fleetup demo

serve: $(STAMP)
	$(BIN)/fleetup serve

test: $(STAMP) browser-deps lint unit

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest

# The browser tests drive Debian's chromium; install it when it is missing (needs root).
browser-deps:
	@{ command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -q "Noto Sans CJK"; } || { \
	  echo "installing Debian's chromium and a CJK font for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk; }

# A3 compares the agent's backup with Debian's zstd command line on the same data.
bench: $(STAMP)
	@command -v zstd >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zstd; }
	$(BIN)/python -m bench

translations: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -o var/messages.pot src/fleetup

clean:
	rm -rf $(VENV) var test-results .mypy_cache .ruff_cache .pytest_cache
