"""Runtime settings, read from ``CLUSTERMASS_*`` environment variables (or a ``.env`` file).

Science code (``mocks/``, ``models/``) never reads settings: the service layer passes plain
values down. Settings are served by :func:`get_settings`, an ``lru_cache``d factory, so tests can
override the environment and call ``get_settings.cache_clear()``.
"""

from __future__ import annotations

import getpass
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from db.session import redact

__all__ = [
    "Settings",
    "get_settings",
    "default_home",
    "default_embedded_pg_dir",
    "legacy_data_dir",
    "checkout_configs_dir",
]

DeviceName = Literal["auto", "cpu", "cuda"]


def default_home() -> Path:
    """Return the default data root: ``/var/tmp/clustermass-<user>``.

    One folder holds the embedded database (``pgdata/``) and the file store (``data/``), so the
    two always move together: a database never outlives, or loses track of, the files its rows
    point to because ``HOME`` or the platform's data folder changed.

    It lives under ``/var/tmp`` (persistent across reboots on most systems), in a folder named
    after the user, not under ``HOME``. When run as root the embedded server runs as a dedicated
    ``pgserver`` user and makes every parent folder of its data directory world-traversable;
    ``/var/tmp`` already is, so no private folder (such as ``/root``) gets opened up.
    """
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # pragma: no cover - no passwd entry
        user = str(os.getuid())
    return Path("/var/tmp") / f"clustermass-{user}"


def default_embedded_pg_dir() -> Path:
    """Return the default data directory of the embedded PostgreSQL server: ``<home>/pgdata``."""
    return default_home() / "pgdata"


def legacy_data_dir() -> Path:
    """Return where the file store was by default before the single data root (issue 15).

    Only used to point users at files left there (``clustermass db verify --repair`` looks in it).
    """
    return platformdirs.user_data_path("clustermass")


def checkout_configs_dir() -> Path:
    """Return the ``configs/`` folder of the source checkout (absent in an installed package).

    An installed package (the image's ``pip install .``) has no ``configs/`` next to its modules:
    there ``CLUSTERMASS_CONFIGS_DIR`` says where the run configurations are (the Dockerfile sets
    it to the copy it ships).
    """
    return Path(__file__).resolve().parents[1] / "configs"


class Settings(BaseSettings):
    """All runtime configuration of the clustermass service.

    Every field maps to ``CLUSTERMASS_<FIELD>``; e.g. ``CLUSTERMASS_DATABASE_URL``.
    """

    model_config = SettingsConfigDict(
        env_prefix="CLUSTERMASS_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the PostgreSQL server. Unset: the embedded server is used.",
    )
    database_password: SecretStr | None = Field(
        default=None,
        description="Password of the database user, given apart from the URL (any character "
        "allowed: it is URL-encoded into database_url; a URL that already holds a password "
        "keeps it). Lets a deployment pass a raw secret (compose: POSTGRES_PASSWORD).",
    )
    home: Path = Field(
        default_factory=default_home,
        description="Data root: holds the embedded database (pgdata/) and the file store (data/) "
        "unless CLUSTERMASS_EMBEDDED_PG_DIR / CLUSTERMASS_DATA_DIR say otherwise.",
    )
    embedded_pg_dir: Path = Field(
        default_factory=default_embedded_pg_dir,
        description="Data directory of the embedded PostgreSQL server (used when no URL is set); "
        "default <home>/pgdata.",
    )
    data_dir: Path = Field(
        default_factory=lambda: default_home() / "data",
        description="Root of the content-addressed file store for maps, cubes and weights; "
        "default <home>/data.",
    )
    broker_url: str | None = Field(
        default=None,
        description="Celery broker URL (e.g. redis://127.0.0.1:6379/0). Unset: tasks run eagerly "
        "in-process.",
    )
    result_backend: str | None = Field(
        default=None, description="Celery result backend; defaults to the broker URL."
    )
    device: DeviceName = Field(default="auto", description="Torch device for gpu-queue jobs.")
    visibility_timeout_s: int = Field(
        default=12 * 3600,
        gt=0,
        description="Redis visibility timeout: the broker hands an unacknowledged task out again "
        "after this long. Must exceed the longest job (a full training fold) or a slow task runs "
        "twice; a worker that died is detected sooner by the heartbeat (heartbeat_timeout_s).",
    )
    heartbeat_s: float = Field(
        default=10.0,
        gt=0,
        description="Seconds between the heartbeats a running task writes (with its progress) to "
        "the result backend.",
    )
    heartbeat_timeout_s: float = Field(
        default=120.0,
        gt=0,
        description="A running task whose heartbeat is older than this is lost (its worker died): "
        "the waiting flow sends it again (tasks are idempotent). Must exceed heartbeat_s.",
    )
    worker_wait_s: float = Field(
        default=30.0,
        gt=0,
        description="How long a flow waits for a worker to consume a task's queue (before sending,"
        " and while the task is queued) before failing with the command that starts one.",
    )
    task_deadline_s: float = Field(
        default=12 * 3600.0,
        gt=0,
        description="Per-task deadline: a task still running this long after it started is "
        "revoked and its flow fails, naming the task and the setting. Keep it at or below "
        "visibility_timeout_s (past that, Redis hands the task to a second worker anyway).",
    )
    run_stale_s: float = Field(
        default=300.0,
        gt=0,
        description="A run still 'pending' or 'running' whose flow has not heartbeated for this "
        "long was left by a dead process: `clustermass runs recover` lists it, "
        "`clustermass fit --resume RUN` resumes it.",
    )
    worker_max_tasks_per_child: int = Field(
        default=50, gt=0, description="Recycle a worker process after this many tasks."
    )
    inbox_dir: Path | None = Field(
        default=None,
        description="Folder watched by `clustermass serve` for new survey files to ingest.",
    )
    shared_data_dir: Path | None = Field(
        default=None,
        description="Folder of real survey files (catalogues/, images/). Unset: ../shared/data "
        "next to the checkout, when present.",
    )
    read_only_database_url: str | None = Field(
        default=None,
        description="URL used by `clustermass query` (the clustermass_reader role); defaults to "
        "database_url.",
    )
    configs_dir: Path = Field(
        default_factory=checkout_configs_dir,
        description="Folder of the shipped run configurations (demo.yaml, ...); default the "
        "checkout's configs/. The image sets it to the copy it ships.",
    )
    inbox_settle_s: float = Field(
        default=2.0,
        gt=0,
        description="The inbox watcher ingests a file once its size and modification time have "
        "not changed for this long [s] (the writer is done).",
    )
    heartbeat_file: Path | None = Field(
        default=None,
        description="File `clustermass serve` touches while its watcher is alive (a container "
        "healthcheck reads its age). Unset: no heartbeat.",
    )
    worker_soft_shutdown_s: float = Field(
        default=60.0,
        ge=0,
        description="On a cold shutdown (SIGQUIT, or SIGTERM with REMAP_SIGTERM=SIGQUIT) a worker "
        "lets running tasks finish for this long [s], then cancels them; the broker message of a "
        "cancelled task is put back on its queue at once. A container's stop grace period must "
        "exceed it.",
    )

    @model_validator(mode="before")
    @classmethod
    def _below_home(cls, data: Any) -> Any:
        """Put the embedded database and the store below ``home`` unless set on their own."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        home = Path(data.get("home") or default_home()).expanduser()
        data["home"] = home
        if not data.get("embedded_pg_dir"):
            data["embedded_pg_dir"] = home / "pgdata"
        if not data.get("data_dir"):
            data["data_dir"] = home / "data"
        return data

    @field_validator("database_url", "read_only_database_url")
    @classmethod
    def _force_driver(cls, v: str | None) -> str | None:
        """Normalise ``postgres://`` and bare ``postgresql://`` URLs to the psycopg2 driver."""
        if v is None:
            return v
        if v.startswith("postgres://"):
            v = "postgresql://" + v[len("postgres://") :]
        if not v.startswith("postgresql"):
            raise ValueError(
                f"CLUSTERMASS_DATABASE_URL must be a PostgreSQL URL (postgresql://...), got {redact(v)!r}"
            )
        return v

    @model_validator(mode="after")
    def _insert_password(self) -> Settings:
        """URL-encode ``database_password`` into ``database_url`` (when the URL has none)."""
        if self.database_password is None or self.database_url is None:
            return self
        url = make_url(self.database_url)
        if url.password is None:
            secret = self.database_password.get_secret_value()
            self.database_url = url.set(password=secret).render_as_string(hide_password=False)
        return self

    @model_validator(mode="after")
    def _heartbeat_order(self) -> Settings:
        """Require the lost-task timeout to exceed the heartbeat interval."""
        if self.heartbeat_timeout_s <= self.heartbeat_s:
            raise ValueError(
                f"CLUSTERMASS_HEARTBEAT_TIMEOUT_S ({self.heartbeat_timeout_s}) must exceed "
                f"CLUSTERMASS_HEARTBEAT_S ({self.heartbeat_s})"
            )
        return self

    @property
    def celery_eager(self) -> bool:
        """Whether Celery tasks run in-process (no broker configured)."""
        return self.broker_url is None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings (cached; clear with ``get_settings.cache_clear()``)."""
    return Settings()
