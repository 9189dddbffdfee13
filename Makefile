# PacsOne: `make run` sets everything up and starts the server; `make test` runs the tests.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

# MariaDB/MySQL needs its driver, which compiles against libmariadb: only install it when used.
ifneq ($(filter mysql%,$(DATABASE_URL)),)
DB_DRIVER := $(VENV)/.installed-mysql
endif
# PostgreSQL needs psycopg (a binary wheel): likewise only when DATABASE_URL starts with postgres.
ifneq ($(filter postgres%,$(DATABASE_URL)),)
DB_DRIVER := $(VENV)/.installed-postgres
endif

.PHONY: run setup test fuzz bench clean ohif

run: setup ohif
	exec $(PY) manage.py runpacs

setup: $(VENV)/.installed $(DB_DRIVER)
	$(PY) manage.py setuppacs

test: $(VENV)/.installed-test $(DB_DRIVER) ohif
	$(PY) -m pytest

# Fuzz the PDU reader, message assembler, early-header parser and C-FIND identifier decoding
# (hypothesis; a few minutes; FUZZ_EXAMPLES per target). Not part of `make test`.
fuzz: $(VENV)/.installed-test
	$(PY) -m pytest -p no:cacheprovider -q tests/fuzz/fuzz_engine.py

# The benchmark measures SQLite, MariaDB and PostgreSQL (bench/nodes.py: two nodes against one), so it needs both drivers.
# Orthanc is compared on the same database servers where Debian's orthanc-mysql and orthanc-postgresql are installed (bench/README.md).
bench: $(VENV)/.installed-bench $(VENV)/.installed-mysql $(VENV)/.installed-postgres
	$(PY) bench/run.py $(BENCH_ARGS)
	$(PY) bench/web.py $(WEB_BENCH_ARGS)
	$(PY) bench/stats_figures.py $(STATS_BENCH_ARGS)
	$(PY) bench/qr.py $(QR_BENCH_ARGS)
	$(PY) bench/routing.py $(ROUTING_BENCH_ARGS)
	$(PY) bench/dicomweb.py $(DICOMWEB_BENCH_ARGS)
	$(PY) bench/dicomweb_frames.py
	$(PY) bench/hl7.py $(HL7_BENCH_ARGS)
	$(PY) bench/nodes.py $(NODES_BENCH_ARGS)

# OHIF v3 (the diagnostic viewer at /viewer/): the built dist/ of the npm package, kept in var/ohif
# (outside git) and served by Django from there. Skipped, with a note, where npm is missing.
OHIF_VERSION ?= 3.12.10
OHIF_DIR := var/ohif
ohif: $(OHIF_DIR)/.installed-$(OHIF_VERSION)

$(OHIF_DIR)/.installed-$(OHIF_VERSION):
	@if ! command -v npm >/dev/null; then echo "npm not found: OHIF not installed (/viewer/ says so; the built-in viewer works)"; exit 0; fi; \
	set -e; work=$$(mktemp -d); \
	(cd $$work && npm pack --silent @ohif/app@$(OHIF_VERSION) >/dev/null && tar xzf ohif-app-$(OHIF_VERSION).tgz); \
	rm -rf $(OHIF_DIR); mkdir -p $(OHIF_DIR); cp -R $$work/package/dist/. $(OHIF_DIR)/; rm -rf $$work; \
	touch $@; echo "OHIF $(OHIF_VERSION) installed in $(OHIF_DIR)"

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(VENV)/bin/python
	$(PIP) install -r requirements.txt
	touch $@

$(VENV)/.installed-test: requirements-test.txt $(VENV)/.installed
	$(PIP) install -r requirements-test.txt
	touch $@

$(VENV)/.installed-bench: bench/requirements.txt $(VENV)/.installed
	$(PIP) install -r bench/requirements.txt
	touch $@

$(VENV)/.installed-mysql: requirements-mysql.txt | $(VENV)/bin/python
	$(PIP) install -r requirements-mysql.txt
	touch $@

$(VENV)/.installed-postgres: requirements-postgres.txt | $(VENV)/bin/python
	$(PIP) install -r requirements-postgres.txt
	touch $@

clean:
	rm -rf $(VENV)
