"""compose.yaml and the Dockerfile, checked against the code paths they serve.

There is no Docker engine here: the files are parsed and their volumes, users, mounts,
healthchecks and environment are checked against the settings and the code that use them (the
settings are built from the very environment compose gives each service). Where a Docker
engine answers, the image is also built and its user, mounts and configs checked
(``test_image_builds_and_runs_as_its_user``).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tomllib
from importlib.metadata import version
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
APP_SERVICES = ("migrate", "worker-cpu", "worker-gpu", "serve")
#: A password no URL survives un-encoded.
NASTY_PASSWORD = "p@ss:w/rd%?#&="


def _compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def _services() -> dict[str, dict[str, Any]]:
    return _compose()["services"]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    lines = [
        ln
        for ln in (ROOT / "Dockerfile").read_text().splitlines()
        if not ln.lstrip().startswith("#")
    ]
    text = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in text.splitlines():
        if line.strip():
            instr, _, args = line.strip().partition(" ")
            out.append((instr.upper(), args.strip()))
    return out


def _docker_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instr, args in _dockerfile():
        if instr == "ENV":
            for token in shlex.split(args):
                key, _, value = token.partition("=")
                env[key] = value
    return env


def _docker_copies() -> dict[str, PurePosixPath]:
    """Source -> absolute destination of each ``COPY`` (relative to the WORKDIR in force)."""
    workdir = PurePosixPath("/")
    copies: dict[str, PurePosixPath] = {}
    for instr, args in _dockerfile():
        if instr == "WORKDIR":
            workdir = workdir / args
        elif instr == "COPY":
            *sources, dest = shlex.split(args)
            into_folder = dest.endswith("/")  # `COPY a b ./`: each source lands by its name
            for src in sources:
                name = src.rstrip("/")
                copies[name] = workdir / dest / name if into_folder else workdir / dest
    return copies


def _service_env(name: str, password: str = NASTY_PASSWORD) -> dict[str, str]:
    """The environment compose gives a service: image ENV, then its own (secret substituted)."""
    env = dict(_docker_env()) if name in APP_SERVICES else {}
    for key, value in (_services()[name].get("environment") or {}).items():
        env[key] = re.sub(r"\$\{POSTGRES_PASSWORD:\?[^}]*\}", lambda _: password, str(value))
    return env


def _settings_for(name: str, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN202
    from services.settings import Settings

    for key in list(os.environ):
        if key.startswith("CLUSTERMASS_"):
            monkeypatch.delenv(key)
    for key, value in _service_env(name).items():
        monkeypatch.setenv(key, value)
    return Settings(_env_file=None)


def _mounts(service: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """Container path -> (source, read_only) of a service's volumes."""
    out = {}
    for spec in service.get("volumes", []):
        source, target, *mode = spec.split(":")
        out[target] = (source, bool(mode) and "ro" in mode[0].split(","))
    return out


def _duration_s(text: str) -> float:
    units = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text):
        total += float(number) * units[unit]
    assert total > 0, f"unreadable duration {text!r}"
    return total


def _healthcheck_text(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(test[1:])


# ---------------------------------------------------------------------------------------------
# structure


def test_services_present() -> None:
    services = _services()
    for name in ("postgres", "redis", "prefect-server", "prefect-db", *APP_SERVICES):
        assert name in services, name


def test_dependencies_are_gated_on_health() -> None:
    services = _services()
    assert "pg_isready" in _healthcheck_text(services["postgres"])
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["command"] == ["clustermass", "db", "upgrade"]
    for worker in ("worker-cpu", "worker-gpu", "serve"):
        deps = services[worker]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["redis"]["condition"] == "service_healthy"
    assert services["serve"]["depends_on"]["prefect-server"]["condition"] == "service_healthy"


def test_workers_listen_on_their_queue_and_gpu_is_reserved() -> None:
    services = _services()
    assert services["worker-cpu"]["command"][-2:] == ["--queue", "cpu"]
    assert services["worker-gpu"]["command"][-2:] == ["--queue", "gpu"]
    devices = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]


def test_all_app_services_share_one_image_and_database() -> None:
    services = _services()
    urls = {services[s]["environment"]["CLUSTERMASS_DATABASE_URL"] for s in APP_SERVICES}
    images = {services[s]["image"] for s in APP_SERVICES}
    assert len(urls) == 1 and len(images) == 1
    secrets = {services[s]["environment"]["CLUSTERMASS_DATABASE_PASSWORD"] for s in APP_SERVICES}
    assert secrets == {"${POSTGRES_PASSWORD:?Variable not set}"}  # from the environment


# ---------------------------------------------------------------------------------------------
# the secret


def test_no_secret_is_pasted_into_a_url() -> None:
    """A raw POSTGRES_PASSWORD with '@', ':' or '/' inside a URL breaks it: none is."""
    text = (ROOT / "compose.yaml").read_text()
    assert not re.search(r"://[^\s\"']*\$\{POSTGRES_PASSWORD", text)


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_settings_get_the_raw_password_url_encoded(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = make_url(_settings_for(name, monkeypatch).database_url)
    assert (url.host, url.port, url.username, url.database) == (
        "postgres",
        5432,
        "clustermass",
        "clustermass",
    )
    assert url.password == NASTY_PASSWORD
    assert _services()["postgres"]["environment"]["POSTGRES_USER"] == url.username
    assert _services()["postgres"]["environment"]["POSTGRES_DB"] == url.database


def test_prefect_server_assembles_its_url_from_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.settings import Settings as PrefectSettings

    env = _service_env("prefect-server")
    assert not any("CONNECTION_URL" in k for k in env)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    url = make_url(PrefectSettings().server.database.connection_url.get_secret_value())
    assert url.drivername == "postgresql+asyncpg"
    assert (url.host, url.username, url.password, url.database) == (
        "postgres",
        "clustermass",
        NASTY_PASSWORD,
        "prefect",
    )
    # the database that prefect-db creates
    assert "CREATE DATABASE prefect" in _services()["prefect-db"]["command"]


def test_prefect_image_matches_the_pinned_prefect() -> None:
    pins = [d for d in _pyproject()["project"]["dependencies"] if d.startswith("prefect")]
    assert len(pins) == 1 and pins[0].startswith("prefect=="), pins
    pinned = pins[0].split("==")[1]
    image = _services()["prefect-server"]["image"]
    assert image == f"prefecthq/prefect:{pinned}-python3.11"
    assert version("prefect") == pinned  # the client here is the server's version too


# ---------------------------------------------------------------------------------------------
# the image: user, mounts, packages, configs


def test_image_copies_every_package_it_installs() -> None:
    include = _pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.rstrip("*") for p in include}
    copies = _docker_copies()
    missing = sorted(p for p in packages if p not in copies)
    assert not missing, f"Dockerfile does not COPY {missing}: `pip install .` would drop them"


def test_image_user_owns_the_data_mount_points() -> None:
    steps = _dockerfile()
    users = [args for instr, args in steps if instr == "USER"]
    assert users and users[-1] not in ("root", "0"), "the processes must not run as root"
    user = users[-1]
    user_at = max(i for i, (instr, _) in enumerate(steps) if instr == "USER")
    runs = " ".join(args for instr, args in steps[:user_at] if instr == "RUN")
    assert re.search(rf"useradd\b[^&;]*\b{user}\b", runs), f"no useradd of {user}"
    chowned = set()
    for m in re.finditer(rf"chown\s+(?:-R\s+)?{user}(?::\S+)?\s+([^&;]+)", runs):
        chowned |= set(m.group(1).split())
    made = set()
    for m in re.finditer(r"mkdir\s+-p\s+([^&;]+)", runs):
        made |= set(m.group(1).split())
    services = _services()
    for name in APP_SERVICES:
        for target, (source, read_only) in _mounts(services[name]).items():
            if read_only:
                continue  # read only: the host's owner needs only to let uid 1000 read
            assert target in made and target in chowned, (
                f"{name}: {target} ({source}) is written by {user} but not created and chowned "
                "to it in the image (a new named volume copies the folder's owner)"
            )


def test_image_configs_dir_is_where_the_configs_are_copied(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`clustermass demo` reads <configs_dir>/demo.yaml: in the image it must be the copy."""
    settings = _settings_for("serve", monkeypatch)
    assert PurePosixPath(settings.configs_dir) == _docker_copies()["configs"]
    assert (ROOT / "configs" / "demo.yaml").is_file()


@pytest.mark.parametrize("name", APP_SERVICES)
def test_store_is_the_mounted_volume(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings_for(name, monkeypatch)
    mounts = _mounts(_services()[name])
    source, read_only = mounts[str(settings.data_dir)]
    assert not read_only and source in _compose()["volumes"], (name, source)


# ---------------------------------------------------------------------------------------------
# the inbox


def _ingesting_services() -> list[str]:
    """The services that read inbox files: serve (the watcher) and whichever worker consumes
    the queue the ingestion task is routed to (services/celery_app.py)."""
    from services.celery_app import TASK_ROUTES

    queue = TASK_ROUTES["clustermass.ingest_survey_file"]["queue"]
    workers = [
        n
        for n, s in _services().items()
        if s.get("command", [])[:2] == ["clustermass", "worker"] and s["command"][-1] == queue
    ]
    assert workers, f"no worker consumes the {queue} queue that runs the inbox ingestion"
    return ["serve", *workers]


def test_the_inbox_is_mounted_at_the_same_path_wherever_it_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """serve hands absolute paths under CLUSTERMASS_INBOX_DIR to a cpu worker: the worker must
    see the same files at the same path (else every file is "no such file")."""
    sources = set()
    for name in _ingesting_services():
        inbox = _settings_for(name, monkeypatch).inbox_dir
        assert inbox is not None, f"{name}: CLUSTERMASS_INBOX_DIR unset"
        mounts = _mounts(_services()[name])
        assert str(inbox) in mounts, f"{name}: the inbox {inbox} is not mounted"
        sources.add(mounts[str(inbox)][0])
    assert len(sources) == 1, f"the inbox comes from different places: {sources}"


# ---------------------------------------------------------------------------------------------
# the broker, healthchecks, shutdown


def test_redis_persists_the_queue_on_a_volume() -> None:
    redis = _services()["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert "--save" not in command or command[command.index("--save") + 1] != ""
    data_dir = command[command.index("--dir") + 1]
    source, read_only = _mounts(redis)[data_dir]
    assert source in _compose()["volumes"] and not read_only


def test_every_long_running_service_has_a_healthcheck() -> None:
    for name, service in _services().items():
        if service.get("restart", "unless-stopped") == "no":
            continue  # one-shot jobs: their dependants wait for service_completed_successfully
        assert "healthcheck" in service, f"{name} has no healthcheck"
    assert "redis-cli ping" in _healthcheck_text(_services()["redis"])
    assert "/api/health" in _healthcheck_text(_services()["prefect-server"])


def test_worker_healthchecks_ping_the_workers_own_node_name() -> None:
    source = (ROOT / "cli" / "commands" / "worker.py").read_text()
    assert "f'{queue}@%h'" in source  # clustermass worker names its node <queue>@<hostname>
    for name in ("worker-cpu", "worker-gpu"):
        service = _services()[name]
        queue = service["command"][-1]
        check = _healthcheck_text(service)
        assert "celery -A services.celery_app inspect ping" in check
        assert f"-d {queue}@$$HOSTNAME" in check  # $$: compose leaves $HOSTNAME to the shell
        assert _duration_s(service["healthcheck"]["start_period"]) >= 60  # torch imports


def test_serve_healthcheck_reads_the_heartbeat_and_the_runner(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _settings_for("serve", monkeypatch)
    env = _service_env("serve")
    check = _healthcheck_text(_services()["serve"])
    assert settings.heartbeat_file is not None and f"find {settings.heartbeat_file}" in check
    assert env["PREFECT_RUNNER_SERVER_ENABLE"] == "true"
    assert f"localhost:{env['PREFECT_RUNNER_SERVER_PORT']}/health" in check
    # the heartbeat is touched more often than the check's 2-minute window
    from inspect import signature

    from services.inbox_watch import heartbeat_loop

    assert signature(heartbeat_loop).parameters["every_s"].default < 120
    assert "-mmin -2" in check


@pytest.mark.parametrize("name", ["worker-cpu", "worker-gpu"])
def test_worker_stop_grace_covers_the_soft_shutdown(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docker stop: SIGTERM is a cold shutdown (REMAP_SIGTERM), tasks get the soft-shutdown time,
    then are cancelled and requeued; Docker's SIGKILL must come later than that."""
    from services.celery_app import make_celery

    service = _services()[name]
    env = _service_env(name)
    assert env["REMAP_SIGTERM"] == "SIGQUIT"
    assert service.get("stop_signal", "SIGTERM") == "SIGTERM"
    settings = _settings_for(name, monkeypatch)
    soft = make_celery(settings).conf.worker_soft_shutdown_timeout
    assert soft == settings.worker_soft_shutdown_s > 0
    assert _duration_s(service["stop_grace_period"]) >= soft + 20  # cancel, requeue, exit


# ---------------------------------------------------------------------------------------------
# with a Docker engine


def _docker() -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return None
    ok = subprocess.run([docker, "info"], capture_output=True, timeout=30).returncode == 0
    return docker if ok else None


@pytest.mark.skipif(_docker() is None, reason="no Docker engine answers (`docker info`)")
def test_image_builds_and_runs_as_its_user() -> None:
    docker = _docker()
    assert docker is not None
    tag = "clustermass:compose-test"
    build = [docker, "build", "-q", "-t", tag]
    build += ["--build-arg", "TORCH_INDEX=https://download.pytorch.org/whl/cpu", str(ROOT)]
    subprocess.run(build, check=True, timeout=3600)
    script = (
        "set -e; test $(id -u) -ne 0; touch /data/.w && rm /data/.w; "
        'test -f "$CLUSTERMASS_CONFIGS_DIR/demo.yaml"; clustermass --help >/dev/null; '
        "celery --version >/dev/null"
    )
    run = subprocess.run(
        [docker, "run", "--rm", "-v", "cmtest-products:/data", tag, "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=600,
    )
    subprocess.run([docker, "volume", "rm", "-f", "cmtest-products"], capture_output=True)
    assert run.returncode == 0, run.stdout + run.stderr
