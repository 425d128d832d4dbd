# voicenode — `make run` starts a node on its embedded defaults, `make test` runs every check.
# Both set up what they need first: Debian packages (apt-get) and a virtual environment.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages the node and its tests use: espeak-ng/sox render and measure test speech;
# chromium runs the /phone page end to end (driven by playwright, no browser download).
SYSTEM_PACKAGES := espeak-ng sox chromium

.PHONY: run test lint typecheck unit system-packages venv clean bench

system-packages:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

run: system-packages venv
	$(BIN)/voicenode serve

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest -q

test: system-packages venv lint typecheck unit

bench: system-packages venv
	$(BIN)/voicenode-bench turns --out var/bench

clean:
	rm -rf $(VENV) var .mypy_cache .pytest_cache .ruff_cache
