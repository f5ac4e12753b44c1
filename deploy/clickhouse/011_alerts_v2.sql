-- alert v2: every kind of warning (surge, story, forecast) in one table. `details` holds the
-- kind's own block (story terms and countries, or the forecast that crossed a threshold) as the
-- JSON the topic carries, empty for a surge.
ALTER TABLE {db}.alerts ADD COLUMN IF NOT EXISTS kind LowCardinality(String) DEFAULT 'surge' AFTER id;
ALTER TABLE {db}.alerts ADD COLUMN IF NOT EXISTS scale LowCardinality(String) DEFAULT '' AFTER key;
ALTER TABLE {db}.alerts ADD COLUMN IF NOT EXISTS details String DEFAULT '' AFTER updated_at;
