-- Web Push (spec WP1–WP5, ADR 0006). The server's VAPID key: one row, generated at first start.
CREATE TABLE vapid_keys (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    private_key BLOB NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- At most one subscription per device session; it goes with the session (logout, revocation).
-- pushed_version: the highest version an instance claimed to push, so each is sent once.
CREATE TABLE push_subscriptions (
    device_id BLOB PRIMARY KEY NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    endpoint TEXT NOT NULL,
    p256dh BLOB NOT NULL,
    auth BLOB NOT NULL,
    pushed_version INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX push_subscriptions_by_user ON push_subscriptions (user_id);

-- Which devices have an open event stream on which instance, refreshed while it is open, so
-- any instance can tell whether a device needs a push. A crashed instance's rows go stale.
CREATE TABLE stream_presence (
    device_id BLOB NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    instance_id BLOB NOT NULL,
    seen_at INTEGER NOT NULL,
    PRIMARY KEY (device_id, instance_id)
) STRICT;
CREATE INDEX stream_presence_by_instance ON stream_presence (instance_id);
