# The two quick-start commands: `make demo` and `make test`. Both create .venv if missing
# and install what they need from the package registries.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Re-install when the dependency list changes.
STAMP      := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
TEST_STAMP := $(VENV)/.installed-test-$(shell cksum pyproject.toml | cut -d' ' -f1)
QUESTION ?= How do I add documents to the knowledge base?
# The viewer page's LiveKit client, from npm at this pinned version (see bot/web/live_page.py).
LIVEKIT_CLIENT_VERSION := 2.15.7
LIVEKIT_JS := bot/web/static/vendor/livekit-client.umd.js
# LiveAvatar's own web SDK, pinned: tests/test_liveavatar_sdk.py checks the topics, event names
# and session fields the page and the fakes use against it (it is not served to browsers).
LIVEAVATAR_SDK_VERSION := 0.0.18
LIVEAVATAR_SDK := build/npm/liveavatar-web-sdk/package.json

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

$(STAMP): $(BIN)/python pyproject.toml $(LIVEKIT_JS)
	$(BIN)/pip install -q -e .
	touch $@

$(TEST_STAMP): $(BIN)/python pyproject.toml $(LIVEKIT_JS) /usr/bin/chromium
	$(BIN)/pip install -q -e ".[test]"
	touch $@

$(LIVEKIT_JS):
	mkdir -p $(@D) build/npm
	cd build/npm && npm pack --silent livekit-client@$(LIVEKIT_CLIENT_VERSION) >/dev/null
	tar -xzf build/npm/livekit-client-$(LIVEKIT_CLIENT_VERSION).tgz -C build/npm \
		package/dist/livekit-client.umd.js
	cp build/npm/package/dist/livekit-client.umd.js $@

$(LIVEAVATAR_SDK):
	mkdir -p $(@D)
	cd build/npm && npm pack --silent @heygen/liveavatar-web-sdk@$(LIVEAVATAR_SDK_VERSION) >/dev/null
	tar -xzf build/npm/heygen-liveavatar-web-sdk-$(LIVEAVATAR_SDK_VERSION).tgz -C $(@D) \
		--strip-components=1 package/package.json package/lib

# Headless Chromium for the viewer page's browser tests (Debian package).
/usr/bin/chromium:
	apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium

demo: $(STAMP)
	@$(BIN)/avatarbot knowledge add knowledge/sample --if-empty
	@$(BIN)/avatarbot ask "$(QUESTION)"

test: $(TEST_STAMP) postgres $(LIVEAVATAR_SDK)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

eval: $(STAMP)
	$(BIN)/avatarbot eval retrieval ../shared/eval/anthropic-docs
	$(BIN)/avatarbot eval retrieval bench/devsets/slack-rewrites

bench: $(TEST_STAMP) postgres
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) data .pytest_cache build
