"""Prometheus metrics of every connector (default registry, label = connector instance name); their
dead letters are counted with the stages' in `pd_dlq_total{reason}` (`pipeline.kafka`)."""

from prometheus_client import Counter, Gauge

POSTS_PRODUCED = Counter("pd_connector_posts_produced", "Posts the broker confirmed on the raw topic.", ["connector"])
FETCH_ERRORS = Counter(
    "pd_connector_fetch_errors",
    "Failed source requests, by kind (http_5xx, http_429, timeout, ...).",
    ["connector", "kind"],
)
RETRIES = Counter("pd_connector_retries", "Source requests retried after a transient error.", ["connector"])
RATE_LIMIT_WAIT = Counter(
    "pd_connector_rate_limit_wait_seconds",
    "Time spent waiting on our own token bucket or the source's rate limit.",
    ["connector"],
)
CHECKPOINT_LAG = Gauge(
    "pd_connector_checkpoint_lag_posts", "Records sent but not yet covered by a saved checkpoint.", ["connector"]
)
CHECKPOINT_SAVED = Gauge(
    "pd_connector_checkpoint_saved_timestamp_seconds", "Unix time of the last saved checkpoint.", ["connector"]
)
