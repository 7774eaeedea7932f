-- One write path (issue 10): conflict texts leave the material row, and the sync tables' keys
-- start with user_id like every other library table.

-- Conflict texts live here, one row each; materials.conflicts keeps only their summaries, so a
-- material with large conflicts stays cheap to read and rewrite.
CREATE TABLE material_conflicts (
    user_id BLOB NOT NULL,
    material_id BLOB NOT NULL,
    id BLOB NOT NULL,
    field TEXT NOT NULL,
    server_value TEXT NOT NULL,
    device_value TEXT NOT NULL,
    base_version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, material_id, id),
    FOREIGN KEY (user_id, material_id) REFERENCES materials (user_id, id) ON DELETE CASCADE
) STRICT;

INSERT INTO material_conflicts (user_id, material_id, id, field, server_value, device_value, base_version, created_at)
SELECT m.user_id, m.id, unhex(replace(json_extract(c.value, '$.id'), '-', '')), json_extract(c.value, '$.field'),
       json_extract(c.value, '$.serverValue'), json_extract(c.value, '$.deviceValue'),
       json_extract(c.value, '$.baseVersion'),
       CAST(unixepoch(json_extract(c.value, '$.createdAt'), 'subsec') * 1000000 AS INTEGER)
FROM materials m, json_each(m.conflicts) c
WHERE m.conflicts <> '[]';

UPDATE materials SET conflicts = (
    SELECT json_group_array(json_object('id', json_extract(c.value, '$.id'), 'field', json_extract(c.value, '$.field'),
        'baseVersion', json_extract(c.value, '$.baseVersion'), 'createdAt', json_extract(c.value, '$.createdAt')))
    FROM json_each(materials.conflicts) c)
WHERE conflicts <> '[]';

CREATE TABLE mutation_receipts_keyed (
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id BLOB NOT NULL,
    mutation_id INTEGER NOT NULL,
    material_id BLOB NOT NULL,
    status TEXT NOT NULL,
    library_version INTEGER NOT NULL,
    code TEXT,
    message TEXT,
    detail TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, device_id, mutation_id)
) STRICT;
INSERT INTO mutation_receipts_keyed (user_id, device_id, mutation_id, material_id, status, library_version, code, message, detail, created_at)
SELECT user_id, device_id, mutation_id, material_id, status, library_version, code, message, detail, created_at FROM mutation_receipts;
DROP TABLE mutation_receipts;
ALTER TABLE mutation_receipts_keyed RENAME TO mutation_receipts;
-- A device's own latest write to a material: its edits queued after it build on it.
CREATE INDEX mutation_receipts_by_material ON mutation_receipts (user_id, device_id, material_id);

CREATE TABLE rejected_mutations_keyed (
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    id BLOB NOT NULL,
    device_id BLOB,
    mutation_id INTEGER,
    mutation_type TEXT NOT NULL,
    material_id BLOB NOT NULL,
    data TEXT NOT NULL,
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, id)
) STRICT;
INSERT INTO rejected_mutations_keyed (user_id, id, device_id, mutation_id, mutation_type, material_id, data, code, message, created_at)
SELECT user_id, id, device_id, mutation_id, mutation_type, material_id, data, code, message, created_at FROM rejected_mutations;
DROP TABLE rejected_mutations;
ALTER TABLE rejected_mutations_keyed RENAME TO rejected_mutations;
CREATE INDEX rejected_mutations_by_user ON rejected_mutations (user_id, created_at);
