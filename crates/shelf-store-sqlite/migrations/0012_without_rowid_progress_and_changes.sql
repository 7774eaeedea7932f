-- `progress` and `library_changes` become WITHOUT ROWID tables (ADR 0016, eighth session): their
-- rows live in their primary key's B-tree, so a write no longer touches a rowid table and a
-- primary-key index for each. A create changes about 10 pages instead of 12: fewer WAL frames to
-- write, sync and copy back. Their rows are small; `materials` and `material_revisions` carry
-- bodies of up to 1 MiB and keep their rowid (SQLite advises WITHOUT ROWID for small rows only).
-- Rebuilt in this migration's transaction; nothing references either table.
CREATE TABLE progress_new (
    user_id BLOB NOT NULL,
    material_id BLOB NOT NULL,
    percent_complete REAL NOT NULL,
    position TEXT NOT NULL,
    study_seconds INTEGER NOT NULL,
    completed INTEGER NOT NULL,
    last_studied_at INTEGER,
    version INTEGER NOT NULL,
    PRIMARY KEY (user_id, material_id),
    FOREIGN KEY (user_id, material_id) REFERENCES materials (user_id, id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
INSERT INTO progress_new SELECT user_id, material_id, percent_complete, position, study_seconds, completed, last_studied_at, version
  FROM progress;
DROP TABLE progress;
ALTER TABLE progress_new RENAME TO progress;

CREATE TABLE library_changes_new (
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    entity_id BLOB NOT NULL,
    version INTEGER NOT NULL,
    op TEXT NOT NULL,
    changed_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, kind, entity_id)
) STRICT, WITHOUT ROWID;
INSERT INTO library_changes_new SELECT user_id, kind, entity_id, version, op, changed_at FROM library_changes;
DROP TABLE library_changes;
ALTER TABLE library_changes_new RENAME TO library_changes;
CREATE INDEX library_changes_feed ON library_changes (user_id, version);
CREATE INDEX library_changes_tombstones ON library_changes (changed_at) WHERE op = 'delete';
