-- Per-device sync health: the last library version a session pulled from the feed or was sent on
-- a stream, and when (microseconds). NULL until the device first syncs. Written throttled by the
-- server (at most about once per 30 seconds per device), never once per request.
ALTER TABLE sessions ADD COLUMN synced_version INTEGER;
ALTER TABLE sessions ADD COLUMN synced_at INTEGER;
