# The Stratus application image: web, worker and scheduler all run from it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    DJANGO_SETTINGS_MODULE=console.settings \
    STRATUS_VAR_DIR=/app/var

RUN useradd --create-home --uid 1000 stratus
WORKDIR /app

# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml ./
RUN pip install .

COPY --chown=stratus:stratus . .
RUN mkdir -p /app/var && chown stratus:stratus /app/var

USER stratus
EXPOSE 8000
CMD ["gunicorn", "console.wsgi", "--bind", "0.0.0.0:8000", "--workers", "1", \
     "--worker-class", "gthread", "--threads", "8"]
