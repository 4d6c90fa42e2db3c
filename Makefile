# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

CLIENTS := tests/clients
CLIENTS_STAMP := $(CLIENTS)/node_modules/.installed-stamp

.PHONY: install clients run test bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

# Real npm clients the tests drive (Claude Code, Codex CLI, Vercel AI SDK, axe-core). Without npm,
# the tests that need them skip.
$(CLIENTS_STAMP): $(CLIENTS)/package.json $(CLIENTS)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix $(CLIENTS) --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "npm not found: tests that drive npm clients will skip"; fi

clients: $(CLIENTS_STAMP)

run: install
	GPUNIQ_SANDBOX=$${GPUNIQ_SANDBOX:-1} $(BIN)/python -m gpuniq_site.serve

test: install clients
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	bash bench/run.sh

clean:
	rm -rf $(VENV) var $(CLIENTS)/node_modules
