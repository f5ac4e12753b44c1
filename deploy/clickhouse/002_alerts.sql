-- Every alert transition (open / updated / resolved) as one row; a redelivered transition
-- replaces itself. The current state of an alert is argMax(state, updated_at) per id.
CREATE TABLE IF NOT EXISTS {db}.alerts
(
    id                       String,
    watch                    LowCardinality(String),
    key                      String,
    severity                 LowCardinality(String),
    state                    LowCardinality(String),
    window_start             DateTime64(3, 'UTC'),
    window_end               DateTime64(3, 'UTC'),
    observed                 UInt32,
    baseline                 Nullable(Float64),
    negative_share           Float64,
    baseline_negative_share  Nullable(Float64),
    score                    Float64,
    sample_post_ids          Array(String),
    sample_texts             Array(String),
    top_terms                Array(String),
    opened_at                DateTime64(3, 'UTC'),
    updated_at               DateTime64(3, 'UTC'),
    inserted_at              DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree
ORDER BY (id, state, window_end)
TTL inserted_at + INTERVAL {ttl_days} DAY;
