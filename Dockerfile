# syntax=docker/dockerfile:1
#
# emailgate container image: a virtualenv with the locked runtime dependencies and the
# emailgate wheel, on a slim Python 3.11, run as a fixed non-root UID.
#
#   docker build -t emailgate:local .
#   docker run --rm -p 8080:8080 --read-only --tmpfs /tmp -e EMAILGATE_HASH_KEY=... emailgate:local
#
# Both stages start from the same base so the venv's interpreter symlink
# (/opt/venv/bin/python -> /usr/local/bin/python3.11) resolves in the final stage.
# Pinned by tag (Python minor + Debian release). Pinning by digest would make the build
# reproducible, but the digest cannot be looked up from the machine this file was written
# on (no registry access); resolve it with
#   docker buildx imagetools inspect python:3.11-slim-bookworm
# and use --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:<digest> (or edit here).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src

# Dependencies first, in their own layer: it is rebuilt only when the lock changes.
# --require-hashes: every file pip fetches must match a hash in the lock (and the lock must be
# complete, or pip refuses). --only-binary=:all:: every dependency ships wheels for CPython
# 3.11 on manylinux x86_64 and aarch64, so no compiler is needed; a missing wheel fails the
# build loudly instead of silently compiling from source.
COPY requirements/runtime.lock.txt requirements/runtime.lock.txt
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --require-hashes --only-binary=:all: \
        -r requirements/runtime.lock.txt

# Then the project itself, as a wheel, without dependencies: everything it needs is already in
# the venv from the lock, so nothing unhashed can slip in through the project's own metadata.
# (The wheel build fetches setuptools/wheel into pip's isolated build environment; they stay
# in this stage.) `pip check` proves the lock satisfies the project's declared dependencies.
COPY pyproject.toml README.md ./
COPY service ./service
RUN python -m pip wheel --no-deps --wheel-dir /tmp/wheels . \
 && /opt/venv/bin/pip install --no-deps /tmp/wheels/emailgate-*.whl \
 && /opt/venv/bin/pip check \
 && /opt/venv/bin/python -c "import emailgate"

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

# A fixed, numeric UID/GID: Kubernetes' runAsNonRoot can only verify a numeric USER, and
# volume permissions (fsGroup, the keys-file Secret) are set against these numbers.
RUN groupadd --system --gid 10001 emailgate \
 && useradd --system --no-log-init --uid 10001 --gid 10001 \
        --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin emailgate

# Only the venv crosses over: no compiler, no build backend, no source tree.
COPY --from=build /opt/venv /opt/venv

# PYTHONDONTWRITEBYTECODE: the root filesystem is read-only in production; the venv's
# .pyc files were compiled at install time. TMPDIR: /tmp is the only writable path
# (a tmpfs/emptyDir). EMAILGATE_HOST: the service's default is loopback, useless in a container.
# EMAILGATE_DATA_DIR: the embedded job store must be writable; on /tmp it lasts as long as the
# container, so a fleet keeps its batch jobs in PostgreSQL (EMAILGATE_DATABASE_URL, docs/batch.md).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TMPDIR=/tmp \
    EMAILGATE_DATA_DIR=/tmp/emailgate-data \
    EMAILGATE_HOST=0.0.0.0 \
    EMAILGATE_PORT=8080

USER 10001:10001
EXPOSE 8080

# Liveness for plain Docker/compose (Kubernetes ignores HEALTHCHECK and uses its probes).
# Python, because the slim image has no curl or wget; urlopen raises on any non-2xx answer or
# connection error, which makes the exit status 1.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('EMAILGATE_PORT', '8080') + '/healthz', timeout=2)"]

# SIGTERM starts the graceful shutdown: stop accepting, finish in-flight checks within
# EMAILGATE_SHUTDOWN_TIMEOUT_S, close Redis and sessions, exit 0. Exec form, so the service is
# PID 1 and receives the signal itself (no shell in between to swallow it).
STOPSIGNAL SIGTERM
CMD ["emailgate", "serve"]
