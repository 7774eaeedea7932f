-- Offline sync protocol: conflicts kept on materials, merge bases, idempotency receipts, dead letters.
ALTER TABLE materials ADD COLUMN conflicts TEXT NOT NULL DEFAULT '[]';

-- Each material state, so an edit made against version N can be merged three-way against the
-- fields as of N.
CREATE TABLE material_revisions (
    user_id BLOB NOT NULL,
    material_id BLOB NOT NULL,
    version INTEGER NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    tags TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, material_id, version)
) STRICT;

-- (device, mutationId) → result, written in the same transaction as the change.
CREATE TABLE mutation_receipts (
    device_id BLOB NOT NULL,
    mutation_id INTEGER NOT NULL,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    material_id BLOB NOT NULL,
    status TEXT NOT NULL,
    library_version INTEGER NOT NULL,
    code TEXT,
    message TEXT,
    detail TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (device_id, mutation_id)
) STRICT;

-- Mutations that could not apply, kept so the user can see and restore them.
-- A device's own latest write to a material: its edits queued after it build on it.
CREATE INDEX mutation_receipts_by_material ON mutation_receipts (device_id, material_id);

CREATE TABLE rejected_mutations (
    id BLOB PRIMARY KEY NOT NULL,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id BLOB,
    mutation_id INTEGER,
    mutation_type TEXT NOT NULL,
    material_id BLOB NOT NULL,
    data TEXT NOT NULL,
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX rejected_mutations_by_user ON rejected_mutations (user_id, created_at);
