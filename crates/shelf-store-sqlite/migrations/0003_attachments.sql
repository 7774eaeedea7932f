-- Attachments: a material's files. The bytes live in the blob store under <user>/<sha256>.
CREATE TABLE attachments (
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    id BLOB NOT NULL,
    material_id BLOB NOT NULL,
    sha256 TEXT NOT NULL,
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (user_id, id),
    FOREIGN KEY (user_id, material_id) REFERENCES materials (user_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX attachments_by_material ON attachments (user_id, material_id);
CREATE INDEX attachments_by_blob ON attachments (user_id, sha256);
