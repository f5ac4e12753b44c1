-- Per-minute aggregates of `posts`, filled by materialized views at insert time.
--
-- Redelivery: delivery is at-least-once, so a post can be inserted into `posts` twice; the
-- ReplacingMergeTree dedupes it there, but a materialized view fires on every insert. Post counts
-- are therefore kept as uniqExact states of the post identity (source, id), which a second copy
-- of the same post does not change: counts and shares (negative share, topic share) are exact,
-- also when merged across keys. `rows` and `sentiment_sum` are plain sums over inserted rows, so
-- mean sentiment (sentiment_sum / rows) weights a redelivered post twice but is never inflated.
-- A post re-enriched differently on redelivery (e.g. by the lexical fallback the second time)
-- counts under both outcomes when a query splits by them. Queries on `posts FINAL` (the account
-- report, the post tables) are exact in every case.
-- Retention follows `posts` (time of insertion, not of the post), so a backfill of old posts is
-- kept as long as the posts themselves.
CREATE TABLE IF NOT EXISTS {db}.posts_by_minute
(
    minute           DateTime('UTC'),
    source           LowCardinality(String),
    topic            LowCardinality(String),
    secondary_topic  LowCardinality(String),
    lang             LowCardinality(String),
    sentiment_label  LowCardinality(String),
    post_ids         AggregateFunction(uniqExact, String, String),
    rows             SimpleAggregateFunction(sum, UInt64),
    sentiment_sum    SimpleAggregateFunction(sum, Float64),
    inserted_at      SimpleAggregateFunction(max, DateTime) DEFAULT now()
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, source, topic, secondary_topic, lang, sentiment_label)
TTL inserted_at + INTERVAL {ttl_days} DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.posts_by_minute_mv TO {db}.posts_by_minute AS
SELECT
    toStartOfMinute(created_at) AS minute,
    source, topic, secondary_topic, lang, sentiment_label,
    uniqExactState(source, id) AS post_ids,
    toUInt64(count()) AS rows,
    sum(toFloat64(sentiment_score)) AS sentiment_sum
FROM {db}.posts
GROUP BY minute, source, topic, secondary_topic, lang, sentiment_label;

-- One row per mentioned country (posts mentioning none are not in this table).
CREATE TABLE IF NOT EXISTS {db}.posts_by_country_minute
(
    minute           DateTime('UTC'),
    country          LowCardinality(String),
    source           LowCardinality(String),
    topic            LowCardinality(String),
    sentiment_label  LowCardinality(String),
    post_ids         AggregateFunction(uniqExact, String, String),
    rows             SimpleAggregateFunction(sum, UInt64),
    sentiment_sum    SimpleAggregateFunction(sum, Float64),
    inserted_at      SimpleAggregateFunction(max, DateTime) DEFAULT now()
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, country, source, topic, sentiment_label)
TTL inserted_at + INTERVAL {ttl_days} DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.posts_by_country_minute_mv TO {db}.posts_by_country_minute AS
SELECT
    toStartOfMinute(created_at) AS minute,
    country, source, topic, sentiment_label,
    uniqExactState(source, id) AS post_ids,
    toUInt64(count()) AS rows,
    sum(toFloat64(sentiment_score)) AS sentiment_sum
FROM {db}.posts
ARRAY JOIN countries AS country
GROUP BY minute, country, source, topic, sentiment_label;

-- Work done by the pipeline per processing minute and model path. Redeliveries are counted on
-- purpose: this measures throughput and fallback share of the enrichment stage, not content.
CREATE TABLE IF NOT EXISTS {db}.processing_by_minute
(
    minute       DateTime('UTC'),
    source       LowCardinality(String),
    model_path   LowCardinality(String),
    rows         SimpleAggregateFunction(sum, UInt64),
    lag_ms_sum   SimpleAggregateFunction(sum, Float64),
    inserted_at  SimpleAggregateFunction(max, DateTime) DEFAULT now()
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, source, model_path)
TTL inserted_at + INTERVAL {ttl_days} DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.processing_by_minute_mv TO {db}.processing_by_minute AS
SELECT
    toStartOfMinute(processed_at) AS minute,
    source, model_path,
    toUInt64(count()) AS rows,
    sum(toFloat64(dateDiff('millisecond', created_at, processed_at))) AS lag_ms_sum
FROM {db}.posts
GROUP BY minute, source, model_path;
