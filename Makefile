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
# for calls to the node; redis-server serves the analytics Redis Streams; clickhouse-server
# and clickhouse-client (18.16) are the analytics store the ClickHouse sink tests run against.
# The kamailio, rtpengine-daemon and clickhouse-server postinst scripts start no daemon
# without systemd (no runlevel, or policy-rc.d in containers), so installing them in a
# container does not fail; the tests start their own servers.
# build-essential, swig, libssl-dev, python3-dev and xz-utils build pjsua2 from pjproject 2.17
# with server limits (deploy/pjsua2/build.sh; the wheel is cached outside the clone).
SYSTEM_PACKAGES := espeak-ng sox chromium kamailio rtpengine-daemon sip-tester baresip redis-server postgresql \
                   clickhouse-server clickhouse-client \
                   python3-venv build-essential swig libssl-dev python3-dev xz-utils
# Installs the Debian packages named in $(1) that are missing.
apt_install = missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi
PJSUA2_BUILD := deploy/pjsua2/build.sh --python $(BIN)/python
# tests/sip under AddressSanitizer (make sip-asan) and the crash hunt (make stress-sip RUNS=30).
# libstdc++ is preloaded with libasan: python does not link it, and ASan's __cxa_throw
# interceptor must find the real one at start (SWIG's iterators throw to stop).
ASAN_PRELOAD = $(shell gcc -print-file-name=libasan.so) $(shell gcc -print-file-name=libstdc++.so)
RUNS ?= 30

.PHONY: run test lint typecheck unit system-packages venv clean bench bench-wire sip-asan stress-sip

system-packages:
	@$(call apt_install,$(SYSTEM_PACKAGES))

# pjsua2 is built here (PJSUA_MAX_CALLS 512), not taken from PyPI: build.sh builds the wheel
# once per machine and config (cached) and prints its path. An older venv's pjsua2-python
# is removed first: its pjsua2/ package would shadow the built pjsua2.py.
$(BIN)/.installed: pyproject.toml deploy/pjsua2/build.sh deploy/pjsua2/config_site.h \
		$(wildcard deploy/pjsua2/patches/*.patch) | system-packages
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip uninstall -q -y pjsua2-python 2>/dev/null || true
	$(BIN)/pip install -q -e '.[dev]'
	wheel="$$($(PJSUA2_BUILD))" && $(BIN)/pip install -q --force-reinstall --no-deps "$$wheel"
	touch $@

# The audio end-of-turn model (Smart Turn v3.2), taken from the pipecat-ai wheel on PyPI at
# install time (checksummed; nothing of pipecat is installed): deploy/models/fetch_smart_turn.py.
SMART_TURN := $(VENV)/share/voicenode/models/smart-turn-v3.2-cpu.onnx
$(SMART_TURN): deploy/models/fetch_smart_turn.py | $(BIN)/.installed
	$(BIN)/python deploy/models/fetch_smart_turn.py

venv: $(BIN)/.installed $(SMART_TURN)

run: system-packages venv
	$(BIN)/voicenode serve

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest -q

# The fast unit suite (under 2 minutes): every test folder but tests/e2e and tests/sip, without
# the `slow` marker, the PostgreSQL variants and the files that start a daemon, a browser or a
# node process (redis-server, Chromium, sipp, pjsua2, `voicenode serve`) or fuzz for long.
UNIT_FAST := tests/agents tests/config tests/media tests/pipeline tests/control_api \
             tests/voicenode tests/bench
UNIT_FAST_SKIP := tests/control_api/test_analytics_redis.py tests/control_api/test_outbox.py \
                  tests/control_api/test_phone_chromium.py tests/control_api/test_schemathesis.py \
                  tests/voicenode/test_call_api.py tests/voicenode/test_serve.py \
                  tests/bench/test_sip_media.py tests/control_api/test_analytics_clickhouse.py \
                  tests/control_api/test_analytics_summary.py \
                  tests/control_api/test_analytics_backlog.py \
                  tests/control_api/test_analytics_retention.py \
                  tests/control_api/test_analytics_page_chromium.py \
                  tests/control_api/test_analytics_turn_stages.py \
                  tests/control_api/test_analytics_cluster.py \
                  tests/bench/test_analytics_bench.py
.PHONY: unit-fast
unit-fast: venv
	$(BIN)/pytest -q -m "not slow" -k "not postgres" $(addprefix --ignore=,$(UNIT_FAST_SKIP)) \
	  $(UNIT_FAST)

test: system-packages venv lint typecheck unit

bench: system-packages venv
	$(BIN)/voicenode-bench turns --out var/bench

bench-wire: system-packages venv
	$(BIN)/voicenode-bench wire --transport audiosocket --spawn --calls 2 --out var/bench-wire

# tests/sip against the pjsua2 built with AddressSanitizer (not part of `make test`): the
# instrumented module comes first on PYTHONPATH, libasan is preloaded (python is not
# instrumented), Python allocates with malloc so ASan sees its objects too. Reports go to
# var/sip-asan/asan.<pid> (pytest would swallow them on stderr) and are printed at the end;
# -v names each test as it starts, so a run ASan aborts shows the test it was in.
sip-asan: system-packages venv
	rm -rf var/sip-asan && mkdir -p var/sip-asan
	site="$$($(PJSUA2_BUILD) --asan --site)" && \
	LD_PRELOAD="$(ASAN_PRELOAD)" PYTHONMALLOC=malloc PYTHONPATH="$$site" \
	  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:log_path=$(CURDIR)/var/sip-asan/asan \
	  $(BIN)/pytest -v -p no:cacheprovider tests/sip; status=$$?; \
	for f in var/sip-asan/asan.*; do [ -e "$$f" ] && { echo "== ASan report $$f"; cat "$$f"; status=1; }; done; \
	exit $$status

# Runs tests/sip RUNS times and reports each crash with its test and C backtrace (gdb); not
# part of `make test`. bench/stress/sip_stress.sh --help for its options.
stress-sip: system-packages venv
	@$(call apt_install,gdb)
	bench/stress/sip_stress.sh $(RUNS)

clean:
	rm -rf $(VENV) var .mypy_cache .pytest_cache .ruff_cache
