-- One write path (issue 10): conflict texts leave the material row, and the sync tables' keys
-- start with user_id like every other library table.

-- Conflict texts live here, one row each; materials.conflicts keeps only their summaries, so a
-- material with large conflicts stays cheap to read and rewrite.
CREATE TABLE material_conflicts (
    user_id UUID NOT NULL,
    material_id UUID NOT NULL,
    id UUID NOT NULL,
    field TEXT NOT NULL,
    server_value TEXT NOT NULL,
    device_value TEXT NOT NULL,
    base_version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, material_id, id),
    FOREIGN KEY (user_id, material_id) REFERENCES materials (user_id, id) ON DELETE CASCADE
);

INSERT INTO material_conflicts (user_id, material_id, id, field, server_value, device_value, base_version, created_at)
SELECT m.user_id, m.id, (c->>'id')::uuid, c->>'field', c->>'serverValue', c->>'deviceValue',
       (c->>'baseVersion')::bigint, (c->>'createdAt')::timestamptz
FROM materials m, jsonb_array_elements(m.conflicts) c
WHERE m.conflicts <> '[]'::jsonb;

UPDATE materials SET conflicts = (
    SELECT jsonb_agg(jsonb_build_object('id', c->'id', 'field', c->'field', 'baseVersion', c->'baseVersion', 'createdAt', c->'createdAt'))
    FROM jsonb_array_elements(materials.conflicts) c)
WHERE conflicts <> '[]'::jsonb;

ALTER TABLE mutation_receipts DROP CONSTRAINT mutation_receipts_pkey;
ALTER TABLE mutation_receipts ADD PRIMARY KEY (user_id, device_id, mutation_id);
DROP INDEX mutation_receipts_by_material;
-- A device's own latest write to a material: its edits queued after it build on it.
CREATE INDEX mutation_receipts_by_material ON mutation_receipts (user_id, device_id, material_id);

ALTER TABLE rejected_mutations DROP CONSTRAINT rejected_mutations_pkey;
ALTER TABLE rejected_mutations ADD PRIMARY KEY (user_id, id);
