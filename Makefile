# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

run: install
	GPUNIQ_SANDBOX=$${GPUNIQ_SANDBOX:-1} $(BIN)/python -m gpuniq_site.serve

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	bash bench/run.sh

clean:
	rm -rf $(VENV) var
