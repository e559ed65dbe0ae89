# Two entry points: `make demo` runs the nightly job against the local GoToAssist API
# server, `make test` runs lint and the whole test suite. Both set up .venv themselves.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test lint format benchmark clean system-packages

# Debian packages the tests need: Chromium for the UI tests (Playwright is told to use it and never
# downloads a browser); PostgreSQL and Redis for scripts/distributed/start; Compose v1 to validate
# docker-compose.yml. Installed only when missing (needs root); the services they ship are never
# started here (scripts/distributed/ runs its own).
SYSTEM_PACKAGES := chromium chromium-driver postgresql redis-server docker-compose

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --editable '.[dev]'
	touch $@

demo: $(INSTALLED)
	$(BIN)/python scripts/demo.py

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint system-packages
	$(BIN)/pytest

system-packages:
	@missing=""; \
	for package in $(SYSTEM_PACKAGES); do \
		dpkg-query --show --showformat='$${Status}' $$package 2>/dev/null | grep -q 'install ok installed' \
			|| missing="$$missing $$package"; \
	done; \
	if [ -z "$$missing" ]; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else \
		echo "Missing Debian packages:$$missing (installing them needs root and apt-get);" \
			"the tests that need them are skipped, saying why"; \
	fi

benchmark: $(INSTALLED)
	$(BIN)/python -m benchmarks

format: $(INSTALLED)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	if [ -x $(BIN)/python ]; then \
		$(BIN)/python scripts/distributed/stack.py stop --state-dir .distributed; \
		$(BIN)/python scripts/distributed/stack.py stop --state-dir .distributed-tests; \
		$(BIN)/python scripts/distributed/stack.py stop --state-dir .benchmark-stack; \
	fi
	rm -rf $(VENV) .demo .distributed .distributed-tests .benchmark-stack .pytest_cache .ruff_cache
