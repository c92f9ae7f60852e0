# Two entry points, each doing all of its own set-up on a fresh machine:
#   make plan   the offline plan of the dev stack (STACK=prod for another)
#   make test   the test suite
PYTHON ?= python3
VENV := venv
STAMP := $(VENV)/.installed
STACK ?= dev

.PHONY: venv plan test bench mutate lock clean

# requirements*.txt are lock files (every package pinned, with hashes), compiled from the
# *.in files by `make lock`; pip refuses anything whose hash differs.
$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

plan: $(STAMP)
	$(VENV)/bin/python -m zerotrust plan --stack $(STACK) --out out/$(STACK)

test: $(STAMP)
	$(VENV)/bin/python -m pytest

bench: $(STAMP)
	$(VENV)/bin/python -m benchmarks.run

# Mutation testing of the verdict engine, the observed-traffic readers and the budget (setup.cfg):
# by hand, like a benchmark; the score goes in docs/development.md.
# A mutant can turn a loop endless and growing; 8 GiB of address space per test run stops it before the machine's memory.
mutate: $(STAMP)
	ulimit -v 8388608 && $(VENV)/bin/mutmut run --max-children 2
	$(VENV)/bin/python -m benchmarks.mutation

PIP_COMPILE = $(VENV)-tools/bin/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe \
	--no-emit-index-url --no-emit-trusted-host --no-emit-find-links

lock:
	$(PYTHON) -m venv $(VENV)-tools
	$(VENV)-tools/bin/pip install --quiet --disable-pip-version-check pip-tools==7.6.2
	$(PIP_COMPILE) --output-file requirements.txt requirements.in
	$(PIP_COMPILE) --output-file requirements-dev.txt requirements-dev.in
	cd guardrails && ../$(PIP_COMPILE) --output-file requirements.txt requirements.in

clean:
	rm -rf $(VENV) $(VENV)-tools out .pytest_cache mutants
