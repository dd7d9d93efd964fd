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

# The main job: certify the reference network, which the harness starts on loopback, in both roles of the default
# use case: as BAP against its gateway and BPPs, then as BPP against its BAP; each plays its certification profile
# (scenarios and probes in one pool), prints its coverage and signs its reports with a demo operator's key, which
# `verify-certificate` then checks. Both roles run whatever the first finds; the exit status is non-zero when
# either fails. Reports go to $(REPORT)/{bap,bpp}/; `make report` renders them as one.
demo: $(STAMP)
	@rm -rf $(REPORT) && mkdir -p $(REPORT)
	@$(BIN)/deg-conformance keys new --out $(REPORT)/operator.key --subscriber-id demo-operator.deg-conformance.local \
		--key-id demo-1 > $(REPORT)/operator.json 2>/dev/null
	@$(BIN)/python -c "import json; print(json.load(open('$(REPORT)/operator.json'))['signing_public_key'])" \
		> $(REPORT)/operator.pub
	@status=0; \
	for role in bap bpp; do \
		$(BIN)/deg-conformance certify --role $$role -n 8 --certificate-key $(REPORT)/operator.key \
			--report-dir $(REPORT)/$$role || status=$$?; \
		$(BIN)/deg-conformance verify-certificate $(REPORT)/$$role/certificate.json \
			--public-key $(REPORT)/operator.pub || status=$$?; \
	done; \
	exit $$status

# The latest run's Allure results as one HTML report, with the allure npm package pinned in package.json (no
# Java): `make report [RESULTS="dir..."] [OUT=dir]`; by default both roles of `make demo` to $(REPORT)/allure-report.
report: $(STAMP)
	@[ -x node_modules/.bin/allure ] || npm ci --no-audit --no-fund
	@$(BIN)/deg-conformance report $(or $(RESULTS),$(REPORT)/bap $(REPORT)/bpp) --out $(or $(OUT),$(REPORT)/allure-report)

# mypy first, so that pytest's summary is the last line of the output.
test: $(STAMP)
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest -n auto -q

typecheck: $(STAMP)
	$(BIN)/python -m mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/validate_throughput.py
	$(BIN)/python benchmarks/reference_bpp.py
	$(BIN)/python benchmarks/verdicts_under_load.py
	$(BIN)/python benchmarks/certification.py
	$(BIN)/python benchmarks/load_reference.py

clean:
	rm -rf $(VENV) reports/*/ .pytest_cache .mypy_cache
