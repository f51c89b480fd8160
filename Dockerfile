# syntax=docker/dockerfile:1

# Build stage: dependencies from the hashed lock into a virtual environment.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY requirements/main.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --require-hashes -r /tmp/requirements.txt

# Runtime stage: the environment and the code, run as an unprivileged user.
FROM python:3.11-slim
ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ENVIRONMENT=production \
    WEB_CONCURRENCY=2
RUN useradd --system --uid 10001 --home-dir /app app
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY alembic.ini gunicorn.conf.py ./
COPY alembic ./alembic
COPY app ./app
USER app
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
# Gunicorn supervises the workers (restarts a crashed one); WEB_CONCURRENCY sets how many.
# gunicorn.conf.py prepares the Prometheus multiprocess directory; the worker class is
# uvicorn-worker's without the Server header.
CMD ["gunicorn", "app.main:app", "--config", "gunicorn.conf.py", "--worker-class", "app.core.server.UvicornWorker", "--bind", "0.0.0.0:8000", "--graceful-timeout", "20", "--timeout", "60", "--keep-alive", "5"]
