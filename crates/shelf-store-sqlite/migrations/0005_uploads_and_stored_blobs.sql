-- Uploads in flight and the blobs each user holds: the two halves of a user's storage usage,
-- reserved against the quota under the user's lock (spec AT7). Replaces the per-upload `.json`
-- files of the upload folder; the bytes stay staged in `<upload_dir>/<id>.part` for now.
CREATE TABLE uploads (
    id BLOB PRIMARY KEY NOT NULL,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    length INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    filename TEXT,
    -- Bytes durably staged by the writers so far (a resumable hasher state can sit beside it).
    upload_offset INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    -- The one writer's claim (spec AT6): its token and expiry, so a crashed writer's lapses.
    lease_token BLOB,
    lease_until INTEGER
) STRICT;
CREATE INDEX uploads_by_user ON uploads (user_id, sha256);
CREATE INDEX uploads_by_age ON uploads (updated_at);

-- Blobs in the blob store under <user>/<sha256>, attached or not. A row is written only after
-- the blob is durable, and deleted (by garbage collection) before the blob is.
CREATE TABLE stored_blobs (
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    stored_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, sha256)
) STRICT;
CREATE INDEX stored_blobs_by_age ON stored_blobs (stored_at);
