-- Offline sync protocol: conflicts kept on materials, merge bases, idempotency receipts, dead letters.
ALTER TABLE materials ADD COLUMN conflicts JSONB NOT NULL DEFAULT '[]';

-- Each material state, so an edit made against version N can be merged three-way against the
-- fields as of N.
CREATE TABLE material_revisions (
    user_id UUID NOT NULL,
    material_id UUID NOT NULL,
    version BIGINT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    tags JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, material_id, version)
);

-- (device, mutationId) → result, written in the same transaction as the change.
CREATE TABLE mutation_receipts (
    device_id UUID NOT NULL,
    mutation_id BIGINT NOT NULL,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    material_id UUID NOT NULL,
    status TEXT NOT NULL,
    library_version BIGINT NOT NULL,
    code TEXT,
    message TEXT,
    detail TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (device_id, mutation_id)
);

-- Mutations that could not apply, kept so the user can see and restore them.
-- A device's own latest write to a material: its edits queued after it build on it.
CREATE INDEX mutation_receipts_by_material ON mutation_receipts (device_id, material_id);

CREATE TABLE rejected_mutations (
    id UUID PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id UUID,
    mutation_id BIGINT,
    mutation_type TEXT NOT NULL,
    material_id UUID NOT NULL,
    data TEXT NOT NULL,
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX rejected_mutations_by_user ON rejected_mutations (user_id, created_at);
