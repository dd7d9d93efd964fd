# Two commands from a fresh clone: `make demo` and `make test`. Everything else is their plumbing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
REPORT := reports/demo

.PHONY: install demo report test typecheck bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The main job: the full certification suite (every shipped scenario) against the reference network,
# which the harness starts on loopback. Reports go to $(REPORT)/; `make report` renders them as HTML.
demo: $(STAMP)
	@rm -rf $(REPORT)
	$(BIN)/deg-conformance run -n 4 --report-dir $(REPORT)

# The latest run's Allure results as HTML, with the allure npm package pinned in package.json (no Java):
# `make report RESULTS=path/to/allure-results [OUT=dir]`; by default $(REPORT)/allure-results to allure-report beside it.
report:
	@[ -x node_modules/.bin/allure ] || npm ci --no-audit --no-fund
	@bash .ci/render-report $(or $(RESULTS),$(REPORT)/allure-results) $(OUT)

# mypy first, so that pytest's summary is the last line of the output.
test: $(STAMP)
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest -n auto -q

typecheck: $(STAMP)
	$(BIN)/python -m mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/validate_throughput.py
	$(BIN)/python benchmarks/reference_bpp.py
	$(BIN)/python benchmarks/run_suite.py

clean:
	rm -rf $(VENV) reports/*/ .pytest_cache .mypy_cache
