# One image for every Podium role; the command picks the role:
#   docker run podium conductor | tracker | service MODULE:OBJ | history-store | api | triggers
# Users' services build FROM it (examples/Dockerfile).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PODIUM_HEALTH_PORT=8081 \
    PODIUM_METRICS_HOST=0.0.0.0

WORKDIR /app

# The dependencies alone first: this layer is rebuilt only when pyproject.toml changes.
COPY pyproject.toml ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; open('/tmp/requirements.txt', 'w').write(chr(10).join(deps))" \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Then Podium itself (no dependency resolution: they are installed above).
COPY README.md ./
COPY podium/ podium/
COPY events/ events/
COPY workflow/ workflow/
COPY conductor/ conductor/
COPY services/ services/
RUN pip install --no-deps . \
    && rm -rf build podium.egg-info

# The shipped examples (definitions and services) for the compose file's example roles.
COPY examples/ examples/

RUN useradd --system --uid 10001 --no-create-home --home-dir /data podium \
    && mkdir -p /data && chown podium /data
USER 10001

# readiness and liveness are served on PODIUM_HEALTH_PORT by every long-running role
EXPOSE 8081
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["podium", "probe", "live"]

ENTRYPOINT ["podium"]
CMD ["--help"]
