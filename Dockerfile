# syntax=docker/dockerfile:1

# Build stage: dependencies from the hashed lock into a virtual environment, compiled to
# bytecode there, so the runtime stage never needs a compiler or write access to its code.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY requirements/main.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --require-hashes -r /tmp/requirements.txt
WORKDIR /app
COPY alembic.ini gunicorn.conf.py ./
COPY alembic ./alembic
COPY app ./app
COPY deploy/healthcheck.py deploy/wait_for_migrations.py ./deploy/
RUN /opt/venv/bin/python -m compileall -q /opt/venv /app

# Runtime stage: the environment and the code, read-only to the unprivileged user that runs
# them. The uid is numeric so Kubernetes' runAsNonRoot can check it without /etc/passwd.
FROM python:3.11-slim
ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ENVIRONMENT=production \
    WEB_CONCURRENCY=2
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home app
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
USER 10001:10001
EXPOSE 8000
# Sends a Host header the service accepts (the first ALLOWED_HOSTS entry), so the check
# keeps working when ALLOWED_HOSTS is restricted.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "deploy/healthcheck.py"]
# gunicorn finishes in-flight requests on SIGTERM for up to --graceful-timeout seconds;
# Compose's stop_grace_period and Kubernetes' terminationGracePeriodSeconds are longer.
STOPSIGNAL SIGTERM
# Gunicorn supervises the workers (restarts a crashed one); WEB_CONCURRENCY sets how many.
# gunicorn.conf.py prepares the Prometheus multiprocess directory; the worker class is
# uvicorn-worker's without the Server header, with the service's slow-client and keep-alive
# bounds (KEEP_ALIVE_TIMEOUT_SECONDS replaces --keep-alive).
CMD ["gunicorn", "app.main:app", "--config", "gunicorn.conf.py", "--worker-class", "app.core.http.server.UvicornWorker", "--bind", "0.0.0.0:8000", "--graceful-timeout", "20", "--timeout", "60"]
