# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test test-fast bench lint format clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[platform,dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/aigc-audit demo

test: $(STAMP)
	$(BIN)/python -m pytest

# Everything but the real Kafka broker, the wheel installs and the slow tests (markers applied
# in tests/conftest.py); under 3 minutes on 2 cores.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not kafka and not install and not slow"

bench: $(STAMP)
	$(BIN)/aigc-audit bench --json

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m tests.import_tree $(abspath $(BIN))/lint-imports $(CURDIR)/pyproject.toml
	$(BIN)/python -m tests.import_tree $(abspath $(BIN))/python -m mypy --config-file $(CURDIR)/pyproject.toml -p aigc_audit

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .aigc-audit .aigc-audit.keys build dist *.egg-info .pytest_cache .ruff_cache
