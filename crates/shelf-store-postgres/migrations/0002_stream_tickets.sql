-- Single-use tickets that open one event stream (for EventSource clients that cannot send headers).
CREATE TABLE stream_tickets (
    ticket_hash BYTEA PRIMARY KEY,
    device_id UUID NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX stream_tickets_by_device ON stream_tickets (device_id);
