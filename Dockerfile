# One image for every clustermass process (migrate, workers, flow server).
# Build the CPU flavour with:  docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cpu .
# The default (PyPI) torch wheel carries CUDA, which the gpu worker needs.
FROM python:3.11-slim

ARG TORCH_INDEX=https://pypi.org/simple
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 PREFECT_SERVER_ANALYTICS_ENABLED=false

RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 clustermass

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY db ./db
COPY models ./models
COPY mocks ./mocks
COPY flows ./flows
COPY services ./services
COPY migrations ./migrations
COPY configs ./configs
RUN pip install --index-url "$TORCH_INDEX" --extra-index-url https://pypi.org/simple "torch==2.13.0" \
    && pip install .

USER clustermass
ENV CLUSTERMASS_DATA_DIR=/data
CMD ["clustermass", "--help"]
