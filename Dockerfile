# syntax=docker/dockerfile:1
# The Xynergy image: one image for every replica (all-in-one, or one service with
# `serve --service <slug>`), the migration job (`migrate`) and the CLI.
#
#   docker build -t xynergy:0.1.0 .
#   docker run --rm -e XYNERGY_INTERNAL_TOKEN_SECRET_FILE=... xynergy:0.1.0 serve
#
# Settings come only from the environment when a container starts (docs/settings.md;
# secrets as XYNERGY_<NAME>_FILE pointing at a mounted file). No layer holds a
# secret: .dockerignore lets in only what the build needs, never .env or deploy/.
# deploy/README.md has the compose topology; tests/deploy/test_compose.py checks
# this file's shape.

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm
ARG NODE_IMAGE=node:20.18.1-bookworm

# --- 1. front-end assets -------------------------------------------------------------
# The Makefile's own rule (npm ci, then the copy of the few files the pages load), so
# the image ships exactly the files `make install` ships. The full node image has make.
FROM ${NODE_IMAGE} AS assets
WORKDIR /build
# Runtime packages only: the dev ones (the compose schema the tests use) stay out.
ENV npm_config_omit=dev
COPY Makefile package.json package-lock.json .npmrc ./
RUN make docs-assets

# --- 2. wheels -----------------------------------------------------------------------
# The package, with the assets copied in before it is built, and every dependency as a
# wheel, so the runtime stage installs offline and needs no compiler.
FROM ${PYTHON_IMAGE} AS build
WORKDIR /build
COPY pyproject.toml README.md ./
COPY src ./src
COPY --from=assets /build/src/xynergy/platform/static/vendor ./src/xynergy/platform/static/vendor
# A wheel without its pages' files or migrations would start and then fail on the
# first page or the first `migrate`: the build stops here instead.
RUN python -m pip wheel --no-cache-dir --wheel-dir /wheels . \
    && python -m zipfile -l /wheels/xynergy-*.whl > /tmp/wheel-files.txt \
    && grep -q 'xynergy/platform/static/vendor/swagger-ui/swagger-ui-bundle.js' /tmp/wheel-files.txt \
    && grep -q 'xynergy/platform/templates/base.html' /tmp/wheel-files.txt \
    && grep -q 'xynergy/migrations/versions/' /tmp/wheel-files.txt

# --- 3. runtime ----------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # Defaults for a container; anything here is overridden by the environment.
    # Production refuses to start without XYNERGY_INTERNAL_TOKEN_SECRET(_FILE).
    XYNERGY_ENVIRONMENT=production \
    XYNERGY_HOST=0.0.0.0 \
    XYNERGY_PORT=8080 \
    XYNERGY_DATA_DIR=/var/lib/xynergy

# A fixed numeric id, so an orchestrator can check runAsNonRoot and secret files can
# be given to it by owner.
RUN groupadd --system --gid 10001 xynergy \
    && useradd --system --uid 10001 --gid xynergy --home-dir /var/lib/xynergy \
        --shell /usr/sbin/nologin xynergy \
    && install -d -o xynergy -g xynergy -m 0750 /var/lib/xynergy

# Mounted, not copied: the wheels never become a layer of the image.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m pip install --no-cache-dir --no-index --find-links /wheels xynergy

USER 10001:10001
WORKDIR /var/lib/xynergy
EXPOSE 8080

# Liveness only (/healthz touches no backend); the proxy and the orchestrator use
# /readyz for routing. Python, because the slim image has no curl.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request as r; r.urlopen('http://127.0.0.1:' + os.environ.get('XYNERGY_PORT', '8080') + '/healthz', timeout=2)"

# Each replica needs its own DBOS executor id (it recovers its own runs after a
# restart); a container's hostname is unique and survives its restarts. exec keeps
# xynergy as PID 1, so SIGTERM reaches the server and it drains.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/bin/sh", "-c", "export XYNERGY_RUNTIME_EXECUTOR_ID=\"${XYNERGY_RUNTIME_EXECUTOR_ID:-${HOSTNAME:-$(cat /etc/hostname)}}\"; exec xynergy \"$@\"", "xynergy"]
CMD ["serve"]
