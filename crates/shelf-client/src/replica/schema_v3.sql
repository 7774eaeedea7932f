-- Version 3: the file an `attachment.add` entry names. The entry is sent only once its bytes are
-- on the server; until then pushing stops before it, so the outbox keeps its order. `staged` =
-- the replica's own copy (made when the upload could not start), removed after the upload.
CREATE TABLE outbox_files (
    mutation_id INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    staged INTEGER NOT NULL CHECK (staged IN (0, 1))
);
