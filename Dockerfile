# The gateway's image: one image for the gateway processes, the Celery worker and Celery beat
# (docs/deployment.md). Build: `docker build -t ai-gateway .`
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# tesseract-ocr reads images in requests (guardrail policies' `images:`); without it each
# policy's fallback applies.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tesseract-ocr \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --system --uid 10001 --create-home --home-dir /home/gateway gateway

WORKDIR /srv/ai-gateway
COPY pyproject.toml setup.py README.md manage.py ./
COPY gateway_site gateway_site
COPY tenants tenants
COPY routing routing
COPY audit audit
COPY billing billing
COPY mock_provider mock_provider
COPY templates templates
COPY config config
RUN pip install -e . \
    && python manage.py collectstatic --noinput --verbosity 0 \
    && mkdir -p var/journal /tmp/gateway-metrics \
    && chown -R gateway:gateway var /tmp/gateway-metrics

USER gateway
# The write-ahead journal must outlive the process: mount a volume here (docs/deployment.md).
ENV GATEWAY_ENV=production \
    GATEWAY_JOURNAL_DIR=/srv/ai-gateway/var/journal
VOLUME ["/srv/ai-gateway/var/journal"]
EXPOSE 8000
# SIGTERM: the process stops accepting, finishes its calls in flight for
# GATEWAY_SHUTDOWN_GRACE_SECONDS and flushes its audit writer; give the container longer.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=2s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
# One process per container, scaled by replicas behind the balancer (compose.yaml);
# `--workers N` instead runs N in one container, with PROMETHEUS_MULTIPROC_DIR set.
CMD ["python", "-m", "gateway_site.server", "--host", "0.0.0.0", "--port", "8000"]
