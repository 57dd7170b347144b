# Opitios — `make run` starts the whole system, `make test` runs the suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)

.PHONY: install migrate run test test-slow bench lint screenshots

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

migrate: install
	$(PY) manage.py migrate --noinput

run: install
	@$(PY) -m opitios.run

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

test-slow: install
	RUN_SLOW=1 $(PY) -m pytest $(PYTEST_ARGS)

bench: install
	$(PY) -m bench $(BENCH_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

# PNGs of the compliance console and the desk dashboard (headless Chromium, 1440 px wide) into docs/screenshots/.
screenshots: install
	OPITIOS_SCREENSHOT_DIR=$(CURDIR)/docs/screenshots $(PY) -m pytest -q tests/e2e/test_compliance_admin.py tests/e2e/test_desk_console.py
