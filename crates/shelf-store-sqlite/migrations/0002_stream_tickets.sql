-- Single-use tickets that open one event stream (for EventSource clients that cannot send headers).
CREATE TABLE stream_tickets (
    ticket_hash BLOB PRIMARY KEY NOT NULL,
    device_id BLOB NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX stream_tickets_by_device ON stream_tickets (device_id);
