# syntax=docker/dockerfile:1
# Opitios image: one image for every process (web, worker, beat, flower, listener, ws, hub); the command picks it.
# docs/deployment.md, "Container image".

# A mirror or a pinned digest may stand in for Docker Hub's image: --build-arg PYTHON_IMAGE=...
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY requirements.txt /tmp/requirements.txt
# Runtime packages only: the benchmark and test sections of requirements.txt stay out of the image.
RUN sed '/^# Benchmark charts/,$d' /tmp/requirements.txt > /tmp/runtime.txt \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install -r /tmp/runtime.txt

FROM ${PYTHON_IMAGE}
# OPITIOS_SECRETS is the path of the mounted secrets.yml, not a secret (hadolint's DL3064 goes by the name).
# hadolint ignore=DL3064
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=opitios.settings.production \
    OPITIOS_VAR_DIR=/var/lib/opitios \
    OPITIOS_LOG_DIR=/var/log/opitios \
    OPITIOS_SECRETS=/etc/opitios/secrets.yml \
    GUNICORN_BIND=0.0.0.0:8090
RUN groupadd --system --gid 10001 opitios \
    && useradd --system --uid 10001 --gid opitios --home-dir /app --shell /usr/sbin/nologin opitios \
    && mkdir -p /var/lib/opitios /var/log/opitios /etc/opitios \
    && chown opitios:opitios /var/lib/opitios /var/log/opitios
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=root:root . /app
# Numeric, so a runtime can check it is not root without reading /etc/passwd.
USER 10001:10001
EXPOSE 8090 8092
HEALTHCHECK --interval=15s --timeout=4s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8090/api/v1/live', timeout=3)"]
# gunicorn lets requests in flight finish within GUNICORN_GRACEFUL_TIMEOUT (20 s): stop_grace_period in compose.yaml is longer.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "gunicorn", "opitios.wsgi", "-c", "opitios/gunicorn.conf.py"]
