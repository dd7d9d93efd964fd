# Two commands from a fresh clone: `make demo` and `make test`. Everything else is their plumbing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
REPORT := reports/demo

.PHONY: install demo test typecheck bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Until the live runner exists, the main job is offline validation of the guide's example transaction
# (which has documented findings: exit code 1 is the expected verdict) and of its conformant twin.
demo: $(STAMP)
	@mkdir -p $(REPORT)
	@echo "== The DEG demand-flexibility guide's own transaction (docs/guide-positions.md explains each finding)"
	@$(BIN)/deg-conformance validate fixtures/demand-flexibility/guide-transaction; \
	  status=$$?; [ $$status -le 1 ] || exit $$status
	@$(BIN)/deg-conformance validate --json fixtures/demand-flexibility/guide-transaction > $(REPORT)/guide-transaction.json; \
	  status=$$?; [ $$status -le 1 ] || exit $$status
	@echo
	@echo "== The same transaction with those problems fixed"
	@$(BIN)/deg-conformance validate fixtures/demand-flexibility/conformant-transaction
	@$(BIN)/deg-conformance validate --json fixtures/demand-flexibility/conformant-transaction > $(REPORT)/conformant-transaction.json
	@echo
	@echo "Reports written to $(REPORT)/"

# mypy first, so that pytest's summary is the last line of the output.
test: $(STAMP)
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest -n auto -q

typecheck: $(STAMP)
	$(BIN)/python -m mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/validate_throughput.py

clean:
	rm -rf $(VENV) reports/*/ .pytest_cache .mypy_cache
