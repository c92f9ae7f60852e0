# Two entry points, each doing all of its own set-up on a fresh machine:
#   make plan   the offline plan of the dev stack (STACK=prod for another)
#   make test   the test suite
PYTHON ?= python3
VENV := venv
STAMP := $(VENV)/.installed
STACK ?= dev

.PHONY: venv plan test bench clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

plan: $(STAMP)
	$(VENV)/bin/python -m zerotrust plan --stack $(STACK) --out out/$(STACK)

test: $(STAMP)
	$(VENV)/bin/python -m pytest

bench: $(STAMP)
	$(VENV)/bin/python -m benchmarks.run

clean:
	rm -rf $(VENV) out .pytest_cache
