-- Edits that left the outbox because the pulled state included them, kept (the newest
-- JOURNAL_KEEP) in case the server loses that state: a restored backup or a lost tail shows as a
-- server version behind the cursor in the same epoch, and these are then sent again (ADR 0004).
CREATE TABLE journal (
    mutation_id INTEGER PRIMARY KEY,
    material_id TEXT NOT NULL,
    type TEXT NOT NULL,
    base_version INTEGER NOT NULL,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL,
    acknowledged_version INTEGER NOT NULL
);
