# The two commands of the README: `make demo` and `make test`. Each sets up what it
# needs once (a .venv with pinned wheels, Debian's iverilog; Debian's chromium for the
# report test) and does nothing more on a second run.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-quick check-readme setup iverilog chromium clean

demo: setup
	$(BIN)/neuroharden demo -o report

# tests/sim/test_report.py opens the HTML report in headless Chromium.
test: setup chromium
	$(BIN)/python -m pytest -n 2 --dist loadgroup

# The quick subset: Amaranth-simulator unit tests and golden model tests, no cocotb.
test-quick: setup chromium
	$(BIN)/python -m pytest -m "not slow" -n 2

# The README's headline table equals the last committed demo results
# (benchmarks/results/demo/headline.md, from its stages/): tests/test_readme.py.
check-readme: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_readme.py

setup: $(STAMP) iverilog

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

iverilog:
	@command -v iverilog >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's iverilog"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog >/dev/null; \
	  else \
	    echo "iverilog is missing: run 'sudo apt-get update && sudo apt-get install -y iverilog'" >&2; \
	    exit 1; \
	  fi; }

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's chromium"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "chromium is missing: run 'sudo apt-get update && sudo apt-get install -y chromium'" >&2; \
	    exit 1; \
	  fi; }

clean:
	rm -rf build report sim_build .pytest_cache
