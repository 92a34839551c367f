# The two quick-start commands: `make demo` and `make test`. Both create .venv if missing
# and install what they need from the package registries.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Re-install when the dependency list changes.
STAMP      := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
TEST_STAMP := $(VENV)/.installed-test-$(shell cksum pyproject.toml | cut -d' ' -f1)
QUESTION ?= How do I add documents to the knowledge base?

.PHONY: demo test lint bench eval clean postgres

# The state-store tests run against a real PostgreSQL server (Debian's `postgresql`);
# installed only when its server binaries are missing.
postgres:
	@if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then \
		echo "Installing PostgreSQL (apt-get) for the state-store tests"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends postgresql; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

$(TEST_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e ".[test]"
	touch $@

demo: $(STAMP)
	@$(BIN)/avatarbot knowledge add knowledge/sample --if-empty
	@$(BIN)/avatarbot ask "$(QUESTION)"

test: $(TEST_STAMP) postgres
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

eval: $(STAMP)
	$(BIN)/avatarbot eval retrieval ../shared/eval/anthropic-docs

bench: $(TEST_STAMP) postgres
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) data .pytest_cache
