-- The local replica, version 1. Server state (materials, progress, attachments) is written only
-- from the change feed; the device's own edits live in `outbox` and their folded result in
-- `overlay`, so a resync can drop the server state without touching unsent edits (ADR 0004).

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE materials (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    data TEXT NOT NULL          -- MaterialFields JSON as the feed sent it
) WITHOUT ROWID;

CREATE TABLE progress (
    material_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    data TEXT NOT NULL          -- ProgressView JSON
) WITHOUT ROWID;

CREATE TABLE attachments (
    id TEXT PRIMARY KEY,
    material_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    data TEXT NOT NULL          -- AttachmentView JSON
) WITHOUT ROWID;
CREATE INDEX attachments_by_material ON attachments (material_id);

-- Every local edit, in order. AUTOINCREMENT: a mutation id is never reused, even after rows
-- are deleted, so the server's receipts (device, mutationId) stay unambiguous.
CREATE TABLE outbox (
    mutation_id INTEGER PRIMARY KEY AUTOINCREMENT,
    material_id TEXT NOT NULL,
    type TEXT NOT NULL,
    base_version INTEGER NOT NULL,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL,
    -- pending: not yet answered; acknowledged: applied on the server at acknowledged_version
    -- and kept until the pulled state includes it; rejected: kept to show, never sent again.
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'acknowledged', 'rejected')),
    acknowledged_version INTEGER,
    code TEXT,
    message TEXT
);
CREATE INDEX outbox_by_material ON outbox (material_id, mutation_id);
CREATE INDEX outbox_by_state ON outbox (state, mutation_id);

-- The fold of a material's live edits over its server state; NULL material = not visible.
CREATE TABLE overlay (
    id TEXT PRIMARY KEY,
    state TEXT                  -- MaterialState JSON, or NULL
) WITHOUT ROWID;

-- Unfinished tus uploads, so an interrupted attach resumes instead of starting over.
CREATE TABLE uploads (
    sha256 TEXT PRIMARY KEY,
    location TEXT NOT NULL,
    size INTEGER NOT NULL
) WITHOUT ROWID;
