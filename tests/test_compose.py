"""compose.yaml cannot run here (no Docker engine): check its structure instead."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_services_present() -> None:
    services = _compose()["services"]
    for name in (
        "postgres",
        "redis",
        "prefect-server",
        "migrate",
        "worker-cpu",
        "worker-gpu",
        "serve",
    ):
        assert name in services, name


def test_dependencies_are_gated_on_health() -> None:
    services = _compose()["services"]
    assert "healthcheck" in services["postgres"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["command"] == ["clustermass", "db", "upgrade"]
    for worker in ("worker-cpu", "worker-gpu", "serve"):
        deps = services[worker]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["redis"]["condition"] == "service_healthy"


def test_workers_listen_on_their_queue_and_gpu_is_reserved() -> None:
    services = _compose()["services"]
    assert services["worker-cpu"]["command"][-2:] == ["--queue", "cpu"]
    assert services["worker-gpu"]["command"][-2:] == ["--queue", "gpu"]
    devices = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]


def test_all_app_services_share_one_image_and_database_url() -> None:
    services = _compose()["services"]
    urls = {
        services[s]["environment"]["CLUSTERMASS_DATABASE_URL"]
        for s in ("migrate", "worker-cpu", "worker-gpu", "serve")
    }
    images = {services[s]["image"] for s in ("migrate", "worker-cpu", "worker-gpu", "serve")}
    assert len(urls) == 1 and len(images) == 1
    assert "${POSTGRES_PASSWORD:?" in urls.pop()  # the secret comes from the environment


def test_dockerfile_pins_torch() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "torch==2.13.0" in text
