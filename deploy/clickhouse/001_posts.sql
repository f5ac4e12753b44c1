-- Enriched posts. ReplacingMergeTree on (source, id): a redelivered post replaces its earlier
-- copy, so at-least-once delivery still yields one row per post (read with FINAL or argMax).
CREATE TABLE IF NOT EXISTS {db}.posts
(
    id               String,
    source           LowCardinality(String),
    account          String,
    author           String,
    title            String,
    url              String,
    created_at       DateTime64(3, 'UTC'),
    text             String,
    text_norm        String,
    lang             LowCardinality(String),
    urls             Array(String),
    mentions         Array(String),
    hashtags         Array(String),
    countries        Array(LowCardinality(String)),
    organisations    Array(LowCardinality(String)),
    content_hash     String,
    is_repost        Bool,
    repost_of        String,
    topic            LowCardinality(String),
    secondary_topic  LowCardinality(String),
    topic_score      Float32,
    sentiment_score  Float32,
    sentiment_label  LowCardinality(String),
    model_path       LowCardinality(String),
    pageviews        Nullable(UInt64),
    likes            Nullable(UInt64),
    reposts          Nullable(UInt64),
    comments         Nullable(UInt64),
    looking_at       Nullable(UInt64),
    processed_at     DateTime64(3, 'UTC'),
    inserted_at      DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(processed_at)
PARTITION BY toYYYYMM(created_at)
ORDER BY (source, id)
TTL toDateTime(inserted_at) + INTERVAL {ttl_days} DAY;
