-- Shelf on SQLite, schema 1. Ids are 16-byte UUID blobs; times are microseconds since the Unix epoch.
CREATE TABLE shelf_meta (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE users (
    id BLOB PRIMARY KEY NOT NULL,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    library_version INTEGER NOT NULL DEFAULT 1,
    -- Highest version whose tombstone was purged: cursors below it must resync.
    feed_horizon INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE sessions (
    id BLOB PRIMARY KEY NOT NULL,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash BLOB NOT NULL UNIQUE,
    device_name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE materials (
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    id BLOB NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    tags TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (user_id, id)
) STRICT;

CREATE TABLE progress (
    user_id BLOB NOT NULL,
    material_id BLOB NOT NULL,
    percent_complete REAL NOT NULL,
    position TEXT NOT NULL,
    study_seconds INTEGER NOT NULL,
    completed INTEGER NOT NULL,
    last_studied_at INTEGER,
    version INTEGER NOT NULL,
    PRIMARY KEY (user_id, material_id),
    FOREIGN KEY (user_id, material_id) REFERENCES materials (user_id, id) ON DELETE CASCADE
) STRICT;

-- One row per entity ever changed: its last version and whether it is live or a tombstone.
CREATE TABLE library_changes (
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    entity_id BLOB NOT NULL,
    version INTEGER NOT NULL,
    op TEXT NOT NULL,
    changed_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, kind, entity_id)
) STRICT;
CREATE INDEX library_changes_feed ON library_changes (user_id, version);
CREATE INDEX library_changes_tombstones ON library_changes (changed_at) WHERE op = 'delete';
