-- Sessions that ended (logout, revocation, password change, account deletion), for a few minutes:
-- the server reads the last seconds of this log once a second and ends the streams of those
-- devices, whether or not the bus carried the revocation (spec RT5). Written by a trigger, so no
-- way of deleting a session can forget it. `ended_at` is in microseconds, by SQLite's clock.
CREATE TABLE ended_sessions (
    device_id BLOB NOT NULL,
    ended_at INTEGER NOT NULL
) STRICT;
CREATE INDEX ended_sessions_by_time ON ended_sessions (ended_at);

CREATE TRIGGER sessions_ended AFTER DELETE ON sessions FOR EACH ROW BEGIN
    INSERT INTO ended_sessions (device_id, ended_at) VALUES (OLD.id, CAST(unixepoch('subsec') * 1000000 AS INTEGER));
END;
