-- Login and registration attempt counters (spec AU7), one row per bucket (a client address or
-- an account), counted in fixed windows. In the database so limits hold across instances.
CREATE TABLE rate_limits (
    bucket TEXT PRIMARY KEY NOT NULL,
    window_start INTEGER NOT NULL,
    attempts INTEGER NOT NULL
);
CREATE INDEX rate_limits_window ON rate_limits (window_start);
