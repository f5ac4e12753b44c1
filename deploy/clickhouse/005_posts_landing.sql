-- The sink hands enriched_post v1 messages to ClickHouse as they are on posts.enriched
-- (JSONEachRow into this Null table) and the view below maps them onto posts, so the worker
-- never decodes and re-encodes rows in Python. The engine validates what pydantic would:
-- types (Nullable exactly where the schema allows null; inserted with null_as_default = 0 and
-- unknown fields rejected, see `ClickHouseSink.insert_encoded_posts`) and these constraints;
-- a rejected batch is re-checked message by message and the bad ones dead-lettered.
CREATE TABLE IF NOT EXISTS {db}.enriched_post_v1
(
    schema           LowCardinality(String),
    v                UInt8,
    id               String,
    source           LowCardinality(String),
    account          Nullable(String),
    author           Nullable(String),
    title            Nullable(String),
    url              Nullable(String),
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
    repost_of        Nullable(String),
    topic            LowCardinality(String),
    secondary_topic  LowCardinality(String),
    topic_score      Float32,
    sentiment_score  Float32,
    sentiment_label  LowCardinality(String),
    model_path       LowCardinality(String),
    metrics          Tuple(
                         pageviews Nullable(UInt64),
                         likes Nullable(UInt64),
                         reposts Nullable(UInt64),
                         comments Nullable(UInt64),
                         looking_at Nullable(UInt64)),
    received_at      DateTime64(3, 'UTC'),
    processed_at     DateTime64(3, 'UTC'),
    CONSTRAINT envelope CHECK schema = 'enriched_post' AND v = 1,
    CONSTRAINT sentiment_range CHECK sentiment_score BETWEEN -1 AND 1,
    CONSTRAINT sentiment_labels CHECK sentiment_label IN ('negative', 'neutral', 'positive'),
    CONSTRAINT model_paths CHECK model_path IN ('transformer', 'lexical', 'cache')
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.enriched_post_v1_to_posts TO {db}.posts AS
SELECT
    id, source, ifNull(account, '') AS account, ifNull(author, '') AS author, ifNull(title, '') AS title,
    ifNull(url, '') AS url, created_at, text, text_norm, lang, urls, mentions, hashtags, countries,
    organisations, content_hash, is_repost, ifNull(repost_of, '') AS repost_of, topic, secondary_topic,
    topic_score, sentiment_score, sentiment_label, model_path,
    metrics.pageviews AS pageviews, metrics.likes AS likes, metrics.reposts AS reposts,
    metrics.comments AS comments, metrics.looking_at AS looking_at, processed_at
FROM {db}.enriched_post_v1;
