-- enriched_post v1 names two more model paths: `learned` (the fast learned model that scores every
-- post by default) and `empty` (nothing left to score after normalisation: neutral, the fallback
-- topic). `cache` stays accepted for messages written before a repost took its original's model
-- path. A Null table cannot alter a constraint, and it holds no rows, so the landing table and its
-- view are created again with the wider check (same columns as 005).
DROP VIEW IF EXISTS {db}.enriched_post_v1_to_posts;
DROP TABLE IF EXISTS {db}.enriched_post_v1;
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
    CONSTRAINT model_paths CHECK model_path IN ('learned', 'transformer', 'lexical', 'cache', 'empty')
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
