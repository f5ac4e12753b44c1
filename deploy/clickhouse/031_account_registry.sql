-- Who speaks (models/publics.yaml, loaded by `pipeline.analytics.attitude.sync_registry`): accounts
-- and outlets whose country is known, and Chinese official accounts (embassies, ministries) by
-- account or by a pattern of their author name. Every sync writes the whole file under a new
-- synced_at; readers take the newest sync only, so an entry removed from the file is gone.
CREATE TABLE IF NOT EXISTS {db}.account_registry
(
    source            LowCardinality(String),
    account           String,
    author_pattern    String,
    country           LowCardinality(String),
    chinese_official  Bool,
    synced_at         DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (synced_at, source, account);
