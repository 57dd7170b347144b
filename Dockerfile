# syntax=docker/dockerfile:1
# Opitios image: one image for every process (web, worker, beat, flower); the command picks it.
# docs/deployment.md, "Container image".

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY requirements.txt /tmp/requirements.txt
# Runtime packages only: the benchmark and test sections of requirements.txt stay out of the image.
RUN sed '/^# Benchmark charts/,$d' /tmp/requirements.txt > /tmp/runtime.txt \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install -r /tmp/runtime.txt

FROM python:3.11-slim-bookworm
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
USER opitios
EXPOSE 8090
HEALTHCHECK --interval=15s --timeout=4s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8090/api/v1/live', timeout=3)"]
# gunicorn lets requests in flight finish within GUNICORN_GRACEFUL_TIMEOUT (20 s): stop_grace_period in compose.yaml is longer.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "gunicorn", "opitios.wsgi", "-c", "opitios/gunicorn.conf.py"]
