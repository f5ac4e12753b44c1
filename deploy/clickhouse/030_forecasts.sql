-- Forecasts of every watch key, topic, mentioned country and public's attitude toward China
-- (pipeline/forecasting). One row per series and forecast period: a refit from a newer origin
-- replaces the forecast of each period it covers (ReplacingMergeTree versioned by origin, read with
-- FINAL), so a period that has passed keeps the last forecast made before it and the newest
-- refit's rows (origin = max(origin) of the series) are the current forecast.
--   watch       the watch, or '' for all posts
--   key         'all' / 'topic:<topic>' / 'country:<code>' (a watch's keys and the overall series),
--               'attitude:<lang>/<country>' or 'attitude:chinese_official' (attitude toward China)
--   metric      volume (posts per period), negative_share, net_score (share positive - share negative)
--   resolution  hour (the next 24 hours) or day (the next 14 days)
CREATE TABLE IF NOT EXISTS {db}.forecasts
(
    watch       LowCardinality(String),
    key         String,
    metric      LowCardinality(String),
    resolution  LowCardinality(String),
    t           DateTime('UTC'),
    origin      DateTime('UTC'),
    step        UInt16,
    forecast    Float64,
    lower_80    Float64,
    upper_80    Float64,
    lower_95    Float64,
    upper_95    Float64,
    model       LowCardinality(String),
    fitted_at   DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(origin)
PARTITION BY toYYYYMM(t)
ORDER BY (watch, key, metric, resolution, t)
TTL toDateTime(fitted_at) + INTERVAL {ttl_days} DAY;
