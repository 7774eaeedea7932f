-- Attachments: a material's files. The bytes live in the blob store under <user>/<sha256>.
CREATE TABLE attachments (
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    id UUID NOT NULL,
    material_id UUID NOT NULL,
    sha256 TEXT NOT NULL,
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (user_id, id),
    FOREIGN KEY (user_id, material_id) REFERENCES materials (user_id, id) ON DELETE CASCADE
);
CREATE INDEX attachments_by_material ON attachments (user_id, material_id);
CREATE INDEX attachments_by_blob ON attachments (user_id, sha256);
