# voicenode — `make run` starts a node on its embedded defaults, `make test` runs every check.
# Both set up what they need first: Debian packages (apt-get) and a virtual environment.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages the node and its tests use: espeak-ng/sox render and measure test speech;
# chromium runs the /phone page end to end (driven by playwright, no browser download);
# kamailio (kamailio, kamcmd and every module deploy/kamailio uses), rtpengine-daemon and
# sip-tester (sipp) run the telephony edge for real in tests/e2e; baresip is a SIP softphone
# for calls to the node; redis-server serves the analytics Redis Streams. The kamailio and
# rtpengine-daemon postinst scripts start no daemon without systemd (no runlevel, or
# policy-rc.d in containers), so installing them in a container does not fail.
SYSTEM_PACKAGES := espeak-ng sox chromium kamailio rtpengine-daemon sip-tester baresip redis-server postgresql

.PHONY: run test lint typecheck unit system-packages venv clean bench bench-wire

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

bench-wire: system-packages venv
	$(BIN)/voicenode-bench wire --transport audiosocket --spawn --calls 2 --out var/bench-wire

clean:
	rm -rf $(VENV) var .mypy_cache .pytest_cache .ruff_cache
