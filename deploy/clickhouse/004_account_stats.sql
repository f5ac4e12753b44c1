-- Account statistics (WeChat official accounts and any source with per-article counters).
-- Plain views over `posts FINAL`: a re-crawled article carries newer counters and replaces its
-- older copy (ReplacingMergeTree on processed_at), so these figures are exact and current rather
-- than summed over every crawl, which an insert-time aggregate could not guarantee.
CREATE VIEW IF NOT EXISTS {db}.article_stats AS
SELECT
    source, account, id, title, url, created_at, topic, secondary_topic,
    sentiment_score, sentiment_label, pageviews, likes, looking_at, reposts, comments, processed_at
FROM {db}.posts FINAL
WHERE account != '';

CREATE VIEW IF NOT EXISTS {db}.account_stats AS
SELECT
    source,
    account,
    count() AS articles,
    min(created_at) AS first_article_at,
    max(created_at) AS last_article_at,
    sum(pageviews) AS total_pageviews,
    avg(pageviews) AS avg_pageviews,
    max(pageviews) AS max_pageviews,
    sum(likes) AS total_likes,
    sum(looking_at) AS total_looking_at,
    avg(looking_at) AS avg_looking_at,
    max(looking_at) AS max_looking_at,
    avg(sentiment_score) AS mean_sentiment
FROM {db}.article_stats
GROUP BY source, account;
