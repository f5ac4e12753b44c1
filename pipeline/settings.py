"""One settings object for every process; each field is read from the env var of the same name.

Embedded mode (the default) points at the loopback broker and an in-process chdb engine that
`python -m pipeline stack` starts; production changes only these variables.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

if TYPE_CHECKING:
    from pipeline.schemas import PostLimits, TimeRange

PROJECT_ROOT = Path(os.environ.get("PD_MONITOR_HOME") or Path(__file__).resolve().parent.parent)
"""Where models/ and deploy/ are: the source tree, or PD_MONITOR_HOME when the package is installed
elsewhere (the container image installs it into site-packages and keeps those files in /app)."""

Stage = Literal["enrich", "store", "detect"]
STAGES: tuple[Stage, ...] = ("enrich", "store", "detect")


class Settings(BaseSettings):
    """Environment variable = upper-cased field name (e.g. ``KAFKA_BOOTSTRAP_SERVERS``)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    # --- Kafka -------------------------------------------------------------------------------
    kafka_bootstrap_servers: str = Field("127.0.0.1:19092", description="Comma-separated host:port list.")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", description="SASL mechanism when the protocol is SASL_*."
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user.")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password (never logged).")
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle for SSL / SASL_SSL.")
    kafka_ssl_certfile: Path | None = Field(None, description="Client certificate for mutual TLS.")
    kafka_ssl_keyfile: Path | None = Field(None, description="Client key for mutual TLS.")
    kafka_fetch_max_wait_ms: int = Field(
        100, ge=1, description="Longest a consumer fetch waits for data (the embedded broker always waits it out)."
    )
    topic_prefix: str = Field("", description="Namespace for every topic, e.g. 'backtest-1.'.")
    topic_partitions: int = Field(4, ge=1, description="Partitions when the pipeline creates topics.")
    topic_replication: int = Field(1, ge=1, description="Replication factor when the pipeline creates topics.")
    topic_min_insync_replicas: int = Field(
        1, ge=1, description="min.insync.replicas of every topic (acks=all writes need this many replicas)."
    )
    dlq_retention_days: int = Field(30, ge=1, description="Time retention of posts.dlq (the other topics keep posts by purpose).")
    app_id: str = Field("pd-monitor", description="Prefix of the consumer groups: '<app_id>.<stage>' (enrich, store, detect).")

    # --- ClickHouse ----------------------------------------------------------------------------
    clickhouse_url: str | None = Field(
        None, description="http(s)://user:pass@host:8123 or chdb:///abs/path; default chdb under DATA_DIR."
    )
    clickhouse_database: str = Field("pd", description="Database holding every table; a backtest uses its own.")
    clickhouse_ttl_days: int = Field(365, ge=1, description="Retention of enriched posts.")

    # --- processing ----------------------------------------------------------------------------
    max_text_chars: int = Field(5000, ge=1, description="Posts with longer text go to the DLQ.")
    max_message_bytes: int = Field(256 * 1024, ge=1024, description="Raw messages over this go to the DLQ.")
    created_at_not_before: datetime = Field(
        datetime(1990, 1, 1, tzinfo=timezone.utc),
        ge=datetime(1900, 1, 1, tzinfo=timezone.utc),
        description="Posts dated earlier go to the DLQ (invalid_value): event time drives the alert windows.",
    )
    created_at_max_future_s: float = Field(
        86_400.0, ge=0, description="Posts dated later than now + this go to the DLQ (invalid_value)."
    )
    batch_size: int = Field(
        4096,
        ge=1,
        description="Max posts per enrichment batch (reached under a backlog; a slow stream is cut by BATCH_WITHIN_S).",
    )
    batch_within_s: float = Field(0.2, gt=0, description="Max wait to fill a batch.")
    store_batch_size: int = Field(
        20_000, ge=1, description="Max rows per ClickHouse insert of the store stage (few large inserts under load)."
    )
    store_within_s: float = Field(0.25, gt=0, description="Max wait to fill a store batch (latency when the stream is slow).")
    detect_batch_size: int = Field(
        20_000, ge=1, description="Max posts per alert-engine batch; its snapshot is saved once per batch."
    )
    enrich_deadline_s: float = Field(
        0.5,
        gt=0,
        description="With ENRICHER=transformer: its time budget per batch; the rest of the batch takes the learned model.",
    )
    enricher: Literal["auto", "learned", "transformer", "lexical"] = Field(
        "auto",
        description=(
            "Model tier: learned (every post), transformer (second tier, where cores allow), lexical (no model files);"
            " auto = learned when models/build exists, else lexical."
        ),
    )
    dedupe_capacity: int = Field(200_000, ge=1000, description="Post ids remembered per worker for duplicate checks.")
    worker_stages: Annotated[tuple[Stage, ...], NoDecode] = Field(
        STAGES,
        min_length=1,
        description=(
            "Stages a worker runs, comma-separated: enrich workers scale out on their own;"
            " only store and detect open ClickHouse."
        ),
    )

    # --- files ---------------------------------------------------------------------------------
    data_dir: Path = Field(PROJECT_ROOT / "var", description="Embedded broker/ClickHouse state and logs.")
    model_dir: Path = Field(PROJECT_ROOT / "models" / "build", description="Converted encoder + trained heads.")
    taxonomy_path: Path = Field(PROJECT_ROOT / "models" / "taxonomy.yaml", description="Topic taxonomy (YAML).")
    routes_path: Path = Field(
        PROJECT_ROOT / "models" / "routes.yaml",
        description="Which sentiment head scores a post, by its kind (source) and language (YAML).",
    )
    topic_examples_path: Path | None = Field(
        None, description="JSONL of {text, label} examples that refine the zero-shot topic classifier."
    )
    watches_dir: Path = Field(PROJECT_ROOT / "models" / "watches", description="Directory of watch YAML files.")
    alert_idle_flush_s: float = Field(30.0, gt=0, description="Idle time after which open alert windows close.")
    forecast_refit_s: float = Field(
        300.0, ge=0, description="Seconds between forecast refits on the worker owning the alert engine; 0 = none."
    )
    publics_path: Path = Field(
        PROJECT_ROOT / "models" / "publics.yaml", description="Known accounts' countries and Chinese official accounts."
    )

    # --- serving -------------------------------------------------------------------------------
    metrics_host: str = Field("127.0.0.1", description="Bind address of /metrics and the dashboard.")
    metrics_port: int = Field(9108, description="Prometheus /metrics of the worker.")
    web_port: int = Field(6066, description="Built-in live dashboard of the worker.")
    dashboard_url: str | None = Field(
        None, description="Public URL of the dashboard, for links in notifications; default http://127.0.0.1:WEB_PORT."
    )
    alertmanager_url: str = Field("http://127.0.0.1:9093", description="Alertmanager the bridge posts alerts to.")
    alertmanager_resend_s: float = Field(
        60.0, gt=0, description="How often the bridge re-posts firing alerts (they end 4 intervals after the last post)."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("WARNING", description="Log level of every process.")
    log_format: Literal["json", "text"] = Field("json", description="json: one JSON object per line; text: for a terminal.")
    broker_session_timeout_s: float = Field(10.0, gt=0, description="Consumer-group session timeout.")
    broker_rebalance_timeout_s: float = Field(10.0, gt=0, description="Consumer-group rebalance timeout.")
    shutdown_grace_s: float = Field(
        10.0, gt=0, description="After SIGTERM/SIGINT the worker exits within this, whatever its threads are doing."
    )

    @field_validator("worker_stages", mode="before")
    @classmethod
    def _comma_separated(cls, value):
        return tuple(part.strip() for part in value.split(",") if part.strip()) if isinstance(value, str) else value

    @field_validator("created_at_not_before")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)

    def created_at_range(self) -> "TimeRange":
        from pipeline.schemas import TimeRange

        return TimeRange(self.created_at_not_before, timedelta(seconds=self.created_at_max_future_s))

    def post_limits(self) -> "PostLimits":
        from pipeline.schemas import PostLimits

        return PostLimits(self.max_message_bytes, self.max_text_chars, self.created_at_range())
    @model_validator(mode="after")
    def _replicas_can_acknowledge(self) -> "Settings":
        if self.topic_min_insync_replicas > self.topic_replication:
            raise ValueError("TOPIC_MIN_INSYNC_REPLICAS must not exceed TOPIC_REPLICATION (acks=all writes would fail)")
        return self

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case(cls, value):
        return value.upper() if isinstance(value, str) else value

    @property
    def resolved_dashboard_url(self) -> str:
        return (self.dashboard_url or f"http://127.0.0.1:{self.web_port}").rstrip("/")

    @property
    def resolved_clickhouse_url(self) -> str:
        return self.clickhouse_url or f"chdb://{(self.data_dir / 'chdb').resolve()}"

    def topic(self, name: str) -> str:
        """Full topic name inside this deployment's namespace."""
        return f"{self.topic_prefix}{name}"

    def group_id(self, stage: str) -> str:
        """Consumer group of a batch stage (enrich, store): each commits its own offsets."""
        return f"{self.app_id}.{stage}"

    def kafka_client_kwargs(self) -> dict:
        """Security settings in aiokafka's keyword form (faust takes the same via its broker_credentials)."""
        kwargs: dict = {"bootstrap_servers": self.kafka_bootstrap_servers, "security_protocol": self.kafka_security_protocol}
        if self.kafka_security_protocol.startswith("SASL"):
            kwargs.update(
                sasl_mechanism=self.kafka_sasl_mechanism,
                sasl_plain_username=self.kafka_sasl_username,
                sasl_plain_password=self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None,
            )
        if self.kafka_security_protocol in ("SSL", "SASL_SSL"):
            kwargs["ssl_context"] = self.ssl_context()
        return kwargs

    def ssl_context(self):
        from aiokafka.helpers import create_ssl_context

        return create_ssl_context(
            cafile=str(self.kafka_ssl_cafile) if self.kafka_ssl_cafile else None,
            certfile=str(self.kafka_ssl_certfile) if self.kafka_ssl_certfile else None,
            keyfile=str(self.kafka_ssl_keyfile) if self.kafka_ssl_keyfile else None,
        )


class Topics:
    """Logical topic names; `Settings.topic()` adds the namespace prefix."""

    RAW = "posts.raw"
    ENRICHED = "posts.enriched"
    DLQ = "posts.dlq"
    ALERTS = "alerts"
    ALL = (RAW, ENRICHED, DLQ, ALERTS)
