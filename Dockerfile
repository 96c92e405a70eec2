# One image for every clustermass process (migrate, workers, flow server).
# Build the CPU flavour with:  docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cpu .
# The default (PyPI) torch wheel carries CUDA, which the gpu worker needs.
# tests/test_compose.py checks this file against compose.yaml and the code paths it serves.
FROM python:3.11-slim

ARG TORCH_INDEX=https://pypi.org/simple
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 PREFECT_SERVER_ANALYTICS_ENABLED=false

RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 clustermass

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
# every package of [tool.setuptools.packages.find]
COPY astro ./astro
COPY cli ./cli
COPY db ./db
COPY models ./models
COPY mocks ./mocks
COPY survey ./survey
COPY flows ./flows
COPY services ./services
COPY migrations ./migrations
COPY benchmarks ./benchmarks
# run configurations (`clustermass demo` reads demo.yaml; `--config configs/...` elsewhere)
COPY configs ./configs
RUN pip install --index-url "$TORCH_INDEX" --extra-index-url https://pypi.org/simple "torch==2.13.0" \
    && pip install .

# Mount points owned by the unprivileged user: a named volume mounted on /data starts as a copy
# of this folder (owner included), so the store is writable by `clustermass`; /inbox is only
# read (a bind mount keeps the host's owner: it must be readable by uid 1000).
RUN mkdir -p /data /inbox && chown clustermass:clustermass /data /inbox

USER clustermass
ENV CLUSTERMASS_DATA_DIR=/data CLUSTERMASS_CONFIGS_DIR=/app/configs
CMD ["clustermass", "--help"]
