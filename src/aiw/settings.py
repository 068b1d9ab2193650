"""The one settings object of the platform.

Settings come from environment variables with the ``AIW_`` prefix and ``__`` between a section
and its field (``AIW_METADATA__URL=postgresql://...``), then from keyword overrides given to
:func:`load_settings`. Nothing is read at import time. Core classes receive the section they
need through their constructor; only ``aiw.cli``, ``aiw.api`` and ``aiw.dashboard`` call
:func:`load_settings`.

Every URL that is left empty means "the embedded default inside the workspace".
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from aiw.errors import ConfigError

__all__ = [
    "AlertSettings",
    "ApiSettings",
    "ApprovalPolicy",
    "EmbeddingSettings",
    "EngineSettings",
    "FeatureSettings",
    "IndexSettings",
    "LLMSettings",
    "MetadataSettings",
    "MonitoringSettings",
    "PipelineSettings",
    "QualitySettings",
    "RagSettings",
    "RolloutSettings",
    "ServingSettings",
    "Settings",
    "SqlSettings",
    "TrackingSettings",
    "WarehouseSettings",
    "load_settings",
]

Role = Literal["viewer", "analyst", "data_scientist", "approver", "admin"]


class _Section(BaseModel):
    model_config = {"extra": "forbid"}


class WarehouseSettings(_Section):
    """Where the analytical tables live."""

    url: str = Field("", description="Empty for the workspace DuckDB file; postgresql://... to attach PostgreSQL.")
    threads: int = Field(0, ge=0, description="DuckDB threads; 0 lets DuckDB use every core.")


class MetadataSettings(_Section):
    """The platform metadata database (keys, audit log, approvals, rollouts, runs)."""

    url: str = Field("", description="SQLAlchemy URL; empty for SQLite at <home>/platform.db.")
    echo: bool = Field(False, description="Log every SQL statement (debugging only).")


class TrackingSettings(_Section):
    """MLflow experiment tracking and model registry."""

    url: str = Field("", description="MLflow tracking URI; empty for SQLite at <home>/mlflow.db.")
    experiment: str = Field("aiw", description="Default experiment name.")


class EmbeddingSettings(_Section):
    """The sentence embedding provider."""

    model_path: str = Field("", description="Model folder; empty for the bundled all-MiniLM-L6-v2.")
    batch_size: int = Field(64, ge=1, le=4096, description="Texts embedded per forward pass.")
    cache: bool = Field(True, description="Keep a persistent cache of embeddings by text SHA-256.")


class LLMSettings(_Section):
    """The language model used by ai_complete, summaries and document answers."""

    adapter: str = Field("extractive", description="extractive | openai | transformers | dotted.path:Class")
    base_url: str = Field("", description="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    api_key: SecretStr = Field(SecretStr(""), description="Key for the endpoint; never logged.")
    model: str = Field("", description="Model name sent to the endpoint.")
    model_path: str = Field("", description="Folder of a local transformers causal LM.")
    timeout_s: float = Field(60.0, gt=0, description="Per-request timeout in seconds.")
    max_retries: int = Field(4, ge=0, le=20, description="Retries on 429/5xx/timeouts, with backoff.")
    backoff_s: float = Field(
        0.5, ge=0, le=60, description="First retry wait in seconds; doubles per retry, with jitter."
    )
    backoff_max_s: float = Field(30.0, ge=0, le=600, description="Longest wait between retries, Retry-After included.")
    concurrency: int = Field(4, ge=1, le=256, description="Requests in flight at once.")
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature (0 = deterministic).")
    max_tokens: int = Field(512, ge=1, description="Most tokens generated per call.")
    cache: bool = Field(True, description="Cache results by (model, prompt, parameters).")


class SqlSettings(_Section):
    """The read-only query runner."""

    row_limit: int = Field(10_000, ge=1, description="Most rows a query returns.")
    timeout_s: float = Field(60.0, gt=0, description="A query running longer is interrupted.")


class IndexSettings(_Section):
    """The vector index for documents."""

    adapter: str = Field("lancedb", description="lancedb | chroma | qdrant | dotted.path:Class")
    url: str = Field("", description="Server URL for chroma/qdrant; empty for the embedded default.")


class RagSettings(_Section):
    """Chunking, retrieval and answering defaults."""

    collection: str = Field("policies", description="Default collection name.")
    chunk_tokens: int = Field(256, ge=16, le=4096, description="Chunk size in embedding tokens.")
    chunk_overlap: int = Field(32, ge=0, description="Overlap between chunks in tokens.")
    top_k: int = Field(5, ge=1, le=100, description="Chunks given to the answerer.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant.")
    bm25_weight: float = Field(1.0, ge=0, description="Weight of the BM25 ranking in fusion.")
    vector_weight: float = Field(1.0, ge=0, description="Weight of the vector ranking in fusion.")
    min_score: float = Field(0.35, ge=-1, le=1, description="Below this cosine, answer 'I don't know'.")
    candidates: int = Field(
        100, ge=1, le=1000, description="Chunks each of BM25 and vector search fetch before fusion."
    )
    feedback: bool = Field(
        True, description="Pseudo-relevance feedback: expand BM25 (RM3) and the query vector (Rocchio)."
    )
    feedback_docs: int = Field(10, ge=1, le=100, description="Top BM25 chunks whose terms expand the query (RM3).")
    feedback_terms: int = Field(10, ge=1, le=100, description="Expansion terms added to the BM25 query (RM3).")
    feedback_query_weight: float = Field(0.5, ge=0, le=1, description="Weight of the original terms in the RM3 query.")
    vector_feedback_docs: int = Field(5, ge=1, le=100, description="Top vector hits averaged into the query vector.")
    vector_feedback_weight: float = Field(0.5, ge=0, le=4, description="Weight of that average (Rocchio beta).")
    role_tags: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "viewer": ["public"],
            "analyst": ["public"],
            "data_scientist": ["public", "internal"],
            "approver": ["public", "internal"],
            "admin": ["public", "internal"],
        },
        description="Access tags each role may read; a document is visible when one of its tags is.",
    )
    default_access_tags: list[str] = Field(
        default_factory=lambda: ["public"], description="Access tags of documents that name none."
    )
    allowed_roots: list[str] = Field(
        default_factory=list, description="Folders API callers may ingest from; empty: the documents folder."
    )


class FeatureSettings(_Section):
    """The Feast feature store."""

    online_url: str = Field("", description="redis://host:port for a Redis online store; empty for SQLite.")
    project: str = Field(
        "aiw", pattern=r"^[A-Za-z0-9_]+$", description="Feast project name; also the key prefix in a shared Redis."
    )
    ttl_days: int = Field(3650, ge=1, description="How far back a point-in-time join looks for a feature row.")


class EngineSettings(_Section):
    """Where batch scoring and bulk embedding run."""

    batch: Literal["local", "ray"] = Field("local", description="local (in-process) or ray.")
    ray_address: str = Field("", description="Ray cluster address; empty starts a local Ray.")
    chunk_rows: int = Field(100_000, ge=1, description="Rows per batch-scoring chunk.")
    nats_url: str = Field("nats://127.0.0.1:4222", description="NATS server for streaming scoring.")


class ApprovalPolicy(_Section):
    """What a model version needs before it may take an alias."""

    approvals: int = Field(1, ge=0, le=10, description="Distinct approvers needed.")
    gates: dict[str, str] = Field(default_factory=dict, description='Metric gates, e.g. {"auc": ">=0.80"}.')


class RolloutSettings(_Section):
    """Canary and shadow defaults (see aiw.mlops.rollout)."""

    steps: list[float] = Field(
        default_factory=lambda: [5.0, 10.0, 25.0, 50.0, 100.0],
        description="Candidate traffic shares (percent) of a canary, increasing, ending at 100.",
    )
    bake_s: float = Field(60.0, gt=0, description="Seconds each step bakes before latency and shift are judged.")
    max_error_rate: float = Field(0.05, ge=0, le=1, description="Candidate error rate that rolls back at once.")
    max_p95_ratio: float = Field(1.2, gt=0, description="Candidate p95 latency over the champion's that rolls back.")
    latency_floor_ms: float = Field(2.0, ge=0, description="p95 differences below this are noise, never a regression.")
    max_prediction_psi: float = Field(0.25, gt=0, description="PSI between the arms' predictions that rolls back.")
    min_requests: int = Field(100, ge=1, description="Requests each arm needs in a step before it is judged.")
    tick_s: float = Field(0.25, gt=0, le=60, description="How often the controller evaluates live rollouts.")
    poll_s: float = Field(1.0, gt=0, le=300, description="How often a server re-reads rollouts started elsewhere.")
    window: int = Field(20_000, ge=100, description="Outcomes kept in memory per arm.")
    shadow_queue: int = Field(256, ge=1, description="Mirrored requests waiting for the candidate; more are dropped.")


class MonitoringSettings(_Section):
    """Drift detection defaults."""

    drift_share: float = Field(0.5, gt=0, le=1, description="Share of drifted columns that is dataset drift.")
    max_points: int = Field(
        100_000, ge=10_000, description="Distinct values a drift profile keeps per numeric column; more are sketched."
    )
    window_hours: float = Field(24.0, gt=0, description="Served-traffic window compared with the one before it.")
    reports_dir: str = Field(
        "monitoring", description="Folder under <home>/artifacts for drift reports (JSON, HTML, profiles)."
    )


class AlertSettings(_Section):
    """Alert delivery."""

    webhooks: list[str] = Field(default_factory=list, description="Webhook URLs to notify.")
    webhook_secret: SecretStr = Field(SecretStr(""), description="HMAC-SHA256 key for webhooks.")
    allow_private: bool = Field(False, description="Allow webhooks to loopback/private addresses.")
    rules: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Alert rules replacing the defaults (see aiw.mlops.monitoring.alerts.AlertRule).",
    )
    timeout_s: float = Field(5.0, gt=0, le=120, description="Timeout of one webhook delivery.")
    max_attempts: int = Field(
        8, ge=1, le=100, description="Webhook deliveries tried before the alert is dead-lettered."
    )
    retry_base_s: float = Field(2.0, gt=0, description="First retry delay; doubles per attempt.")
    retry_max_s: float = Field(600.0, gt=0, description="Longest retry delay.")
    poll_s: float = Field(2.0, gt=0, description="How often the outbox worker looks for due deliveries.")


class PipelineSettings(_Section):
    """Pipelines and schedules."""

    daily_validation_cron: str = Field("0 6 * * *", description="Cron (UTC) of daily-validation.")
    max_workers: int = Field(2, ge=1, le=64, description="Steps of one pipeline run at once (parallel branches).")
    retries: int = Field(2, ge=0, le=20, description="Retries of a step that fails with a transient error.")
    retry_backoff_s: float = Field(1.0, ge=0, description="First retry wait; doubles on each retry.")
    step_timeout_s: float = Field(1800.0, gt=0, description="A step running longer than this fails.")
    embedding_norm_warn: float = Field(0.05, gt=0, description="Relative shift of the mean L2 norm that warns.")
    embedding_norm_critical: float = Field(0.15, gt=0, description="Relative mean-norm shift that blocks the swap.")
    embedding_cosine_warn: float = Field(0.98, ge=-1, le=1, description="Centroid cosine below this warns.")
    embedding_cosine_critical: float = Field(0.90, ge=-1, le=1, description="Centroid cosine below this blocks.")


class QualitySettings(_Section):
    """Data quality gates over the warehouse tables (aiw data check)."""

    training_days: int = Field(14, ge=3, le=366, description="Days of history a volume check learns from.")
    sensitivity: float = Field(3.0, gt=0, description="Standard deviations from the mean that fail a volume check.")
    seasonality: Literal["none", "day_of_week"] = Field(
        "none", description="day_of_week compares a day with the same weekday of earlier weeks."
    )
    min_training_days: int = Field(7, ge=2, description="Fewer days of history than this skips the volume check.")
    freshness_hours: float = Field(48.0, gt=0, description="A table whose newest row is older than this fails.")


class ApiSettings(_Section):
    """The REST API server."""

    host: str = Field("127.0.0.1", description="Interface to bind.")
    port: int = Field(8000, ge=1, le=65535, description="Port to bind.")
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="Largest request body accepted.")


class ServingSettings(_Section):
    """Model serving: real-time scoring, model cache and the served-traffic store."""

    runtime: Literal["auto", "sklearn", "onnx"] = Field(
        "auto", description="auto uses ONNX Runtime when it reproduces the model, else the model itself."
    )
    onnx_tolerance: float = Field(1e-4, gt=0, le=0.1, description="Largest probability difference ONNX may show.")
    alias_ttl_s: float = Field(2.0, gt=0, le=3600, description="Seconds an alias -> version lookup is trusted.")
    max_rows: int = Field(10_000, ge=1, description="Most rows one predict request may carry.")
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="Largest predict request body (audited 413).")
    threads: int = Field(2, ge=1, le=64, description="Threads that run large predictions off the event loop.")
    traffic_rows: int = Field(100_000, ge=0, description="Served prediction rows kept per model (drift monitoring).")
    traffic_sample_rows: int = Field(20, ge=0, le=10_000, description="Input rows kept per served request.")
    gc_freeze: bool = Field(
        True,
        description="After a model loads, move the heap to the garbage collector's permanent generation "
        "(gc.freeze), so that full collections stop pausing every request for 100-300 ms.",
    )


class Settings(BaseSettings):
    """Every setting of the platform, one section per concern."""

    model_config = SettingsConfigDict(
        env_prefix="AIW_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    home: Path = Field(Path(".aiw"), description="The workspace folder.")
    environment: Literal["development", "production"] = Field(
        "development", description="production refuses placeholder secrets."
    )
    log_level: str = Field("INFO", description="Log level of the CLI and server.")
    warehouse: WarehouseSettings = Field(default_factory=WarehouseSettings)  # type: ignore[arg-type]
    metadata: MetadataSettings = Field(default_factory=MetadataSettings)  # type: ignore[arg-type]
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)  # type: ignore[arg-type]
    embeddings: EmbeddingSettings = Field(default_factory=EmbeddingSettings)  # type: ignore[arg-type]
    llm: LLMSettings = Field(default_factory=LLMSettings)  # type: ignore[arg-type]
    sql: SqlSettings = Field(default_factory=SqlSettings)  # type: ignore[arg-type]
    index: IndexSettings = Field(default_factory=IndexSettings)  # type: ignore[arg-type]
    rag: RagSettings = Field(default_factory=RagSettings)  # type: ignore[arg-type]
    features: FeatureSettings = Field(default_factory=FeatureSettings)  # type: ignore[arg-type]
    engine: EngineSettings = Field(default_factory=EngineSettings)  # type: ignore[arg-type]
    policies: dict[str, ApprovalPolicy] = Field(
        default_factory=dict, description="Approval policy per model name; '*' is the default."
    )
    rollout: RolloutSettings = Field(default_factory=RolloutSettings)  # type: ignore[arg-type]
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)  # type: ignore[arg-type]
    alerts: AlertSettings = Field(default_factory=AlertSettings)  # type: ignore[arg-type]
    pipelines: PipelineSettings = Field(default_factory=PipelineSettings)  # type: ignore[arg-type]
    quality: QualitySettings = Field(default_factory=QualitySettings)  # type: ignore[arg-type]
    api: ApiSettings = Field(default_factory=ApiSettings)  # type: ignore[arg-type]
    serving: ServingSettings = Field(default_factory=ServingSettings)  # type: ignore[arg-type]

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    def approval_policy(self, model: str) -> ApprovalPolicy:
        """The approval policy of ``model``: its own, else the ``'*'`` entry, else the default."""
        return self.policies.get(model) or self.policies.get("*") or ApprovalPolicy()  # type: ignore[call-arg]


def _describe(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        where = "__".join(str(part) for part in err["loc"])
        env = f"AIW_{where.upper()}" if where else "settings"
        problems.append(f"{env}: {err['msg']}")
    return "; ".join(problems)


def build_settings(**overrides: Any) -> Settings:
    """Build a fresh :class:`Settings` from the environment and ``overrides`` (no cache).

    Raises:
        ConfigError: a setting is malformed; the message names the variable and the problem.
    """
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(
            f"Invalid setting: {_describe(exc)}", hint="fix the environment variable or override"
        ) from exc
    if settings.environment == "production":
        for name, secret in (
            ("AIW_LLM__API_KEY", settings.llm.api_key),
            ("AIW_ALERTS__WEBHOOK_SECRET", settings.alerts.webhook_secret),
        ):
            if secret.get_secret_value() in {"changeme", "secret", "test"}:
                raise ConfigError(
                    f"{name} holds a placeholder secret, refused in production", hint="set a real secret or unset it"
                )
    return settings


@lru_cache(maxsize=1)
def load_settings() -> Settings:
    """The process-wide settings, built once on first use (never at import time)."""
    return build_settings()
