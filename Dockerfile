# MadBase server image: multi-stage, slim, non-root, with a health check.
#   docker build -t madbase:0.1.0 .        (or: podman build ...)
# The build stage installs the pinned runtime dependencies (requirements.lock) and MadBase into a virtualenv;
# the runtime stage copies only that virtualenv onto a slim Python base: no compiler, no pip cache, no sources.
# Run it with DATABASE_URL (and MADBASE_MASTER_KEY): deploy/docker-compose.yml shows the whole stack.

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/madbase
WORKDIR /src
COPY requirements.lock ./
RUN /opt/madbase/bin/pip install --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/madbase/bin/pip install --no-deps . \
    && find /opt/madbase -name '__pycache__' -prune -exec rm -rf {} + \
    && /opt/madbase/bin/python -m compileall -q /opt/madbase/lib

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="MadBase" \
      org.opencontainers.image.description="The Supabase API served by one Python process over PostgreSQL" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 madbase \
    && useradd --system --uid 10001 --gid madbase --home-dir /data --shell /usr/sbin/nologin madbase \
    && mkdir -p /data && chown madbase:madbase /data
COPY --from=build /opt/madbase /opt/madbase
ENV PATH=/opt/madbase/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MADBASE_HOST=0.0.0.0 \
    MADBASE_PORT=8000 \
    MADBASE_DATA_DIR=/data
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
# /ready: the control database answers (a process that cannot reach PostgreSQL is taken out, not restarted
# in a loop; /health would say only that the process is alive).
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/ready' % os.environ.get('MADBASE_PORT', '8000'), timeout=3)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["madbase"]
CMD ["start"]
