# A voice node image (Debian bookworm, Python 3.11): the package in /opt/voicenode/venv and
# pjsua2 built by deploy/pjsua2/build.sh (512 calls, the repo's patches). An example: the
# tests do not build it.
#
# Build from the repository root, with pjproject's source archive in the build context (see
# deploy/pjsua2/README.md: build.sh checks its sha256):
#   docker build -f deploy/compose/voicenode.Dockerfile \
#       --build-arg PJPROJECT_TARBALL=vendor/pjproject-2.17.tar.xz -t voicenode .
FROM debian:bookworm-slim

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv python3-dev build-essential swig libssl-dev xz-utils ca-certificates \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/voicenode/src
# Only what the package and the pjsua2 build need (not .venv, var/ or tests/).
COPY pyproject.toml README.md ./
COPY voicenode voicenode
COPY config config
COPY media media
COPY sip sip
COPY pipeline pipeline
COPY agents agents
COPY control_api control_api
COPY bench bench
COPY deploy/pjsua2 deploy/pjsua2
ARG PJPROJECT_TARBALL
COPY ${PJPROJECT_TARBALL} /tmp/pjproject.tar.xz
RUN python3 -m venv /opt/voicenode/venv \
 && /opt/voicenode/venv/bin/pip install --no-cache-dir . \
 && wheel="$(PJPROJECT_TARBALL=/tmp/pjproject.tar.xz \
      deploy/pjsua2/build.sh --python /opt/voicenode/venv/bin/python)" \
 && /opt/voicenode/venv/bin/pip install --no-cache-dir --force-reinstall --no-deps "$wheel" \
 && rm -rf /tmp/pjproject.tar.xz /root/.cache

RUN useradd --system --home-dir /var/lib/voicenode --create-home --shell /usr/sbin/nologin voicenode
USER voicenode
ENV HOME=/var/lib/voicenode
WORKDIR /var/lib/voicenode
# SIGTERM drains (OPTIONS and new INVITEs 503, live calls run on); compose's
# stop_grace_period must cover node.drain_timeout_s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/opt/voicenode/venv/bin/voicenode"]
CMD ["serve", "--config", "/etc/voicenode/voicenode.toml"]
