-- Shelf on PostgreSQL, schema 1.
CREATE TABLE shelf_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id UUID PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    library_version BIGINT NOT NULL DEFAULT 1,
    -- Highest version whose tombstone was purged: cursors below it must resync.
    feed_horizon BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE sessions (
    id UUID PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash BYTEA NOT NULL UNIQUE,
    device_name TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE materials (
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    id UUID NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    tags JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (user_id, id)
);

CREATE TABLE progress (
    user_id UUID NOT NULL,
    material_id UUID NOT NULL,
    percent_complete DOUBLE PRECISION NOT NULL,
    position TEXT NOT NULL,
    study_seconds BIGINT NOT NULL,
    completed BOOLEAN NOT NULL,
    last_studied_at TIMESTAMPTZ,
    version BIGINT NOT NULL,
    PRIMARY KEY (user_id, material_id),
    FOREIGN KEY (user_id, material_id) REFERENCES materials (user_id, id) ON DELETE CASCADE
);

-- One row per entity ever changed: its last version and whether it is live or a tombstone.
CREATE TABLE library_changes (
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    entity_id UUID NOT NULL,
    version BIGINT NOT NULL,
    op TEXT NOT NULL,
    changed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, kind, entity_id)
);
CREATE INDEX library_changes_feed ON library_changes (user_id, version);
CREATE INDEX library_changes_tombstones ON library_changes (changed_at) WHERE op = 'delete';
