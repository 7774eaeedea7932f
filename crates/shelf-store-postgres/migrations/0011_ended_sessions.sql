-- Sessions that ended (logout, revocation, password change, account deletion), for a few minutes:
-- every instance reads the last seconds of this log once a second and ends the streams of those
-- devices, whether or not the bus carried the revocation (spec RT5). Written by a trigger, so no
-- way of deleting a session can forget it. `ended_at` is the database's clock, as is the window
-- instances read, so server clocks never enter.
CREATE TABLE ended_sessions (
    device_id UUID NOT NULL,
    ended_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX ended_sessions_by_time ON ended_sessions (ended_at);

CREATE FUNCTION note_ended_session() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ended_sessions (device_id) VALUES (OLD.id);
    RETURN NULL;
END
$$;

CREATE TRIGGER sessions_ended AFTER DELETE ON sessions FOR EACH ROW EXECUTE FUNCTION note_ended_session();
