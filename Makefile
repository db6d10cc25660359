# Two commands on a fresh machine: `make dev` runs junheng on its embedded broker,
# `make test` runs the test suite. Both install what they need first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: dev test render servers clean

dev: $(STAMP)
	$(VENV)/bin/junheng dev

test: $(STAMP) servers
	$(PY) -m pytest -q

# Regenerate every checked-in generated file (golden files and JSON Schemas).
render: $(STAMP)
	$(PY) -m alerts.render --all
	$(PY) -m schemas.export
	$(PY) -m junheng.examples

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Prometheus and Alertmanager from Debian, for the tests that start them; curl, which a test
# scrapes a gzip-encoded /metrics with, as ops tooling does; faketime, which moves one worker's
# clock to a midnight in China.
servers:
	@command -v promtool >/dev/null && command -v prometheus-alertmanager >/dev/null && command -v curl >/dev/null \
	  && command -v faketime >/dev/null || \
	  { [ "$$(id -u)" = 0 ] || { echo "make test needs the Debian packages prometheus, prometheus-alertmanager, curl and faketime: run as root or install them / 需要安装 prometheus、prometheus-alertmanager、curl 与 faketime"; exit 2; }; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus prometheus-alertmanager curl faketime >/dev/null; }

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
