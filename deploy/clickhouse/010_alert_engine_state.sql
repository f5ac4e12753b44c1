-- Snapshot of the alert engine (windows, detector baselines, open alerts) after each batch of the
-- single-partition watch topic, with the offset it covers. A restarted worker resumes from the
-- newest snapshot and skips records at or below its offset, so redelivery never double counts.
CREATE TABLE IF NOT EXISTS {db}.alert_engine_state
(
    namespace  String,
    offset     Int64,
    state      String CODEC(ZSTD(3)),
    saved_at   DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(saved_at)
ORDER BY namespace;
