-- Uploads staged where every instance reaches them (ADR 0010): beside the offset, the SHA-256
-- state over the staged bytes (so the last byte needs no re-read) and the blob store's staging
-- state (for S3: the multipart upload id, part ETags and tail object). Uploads in flight at the
-- upgrade have neither, so they restart from offset 0 (tus clients resume from HEAD's offset);
-- their old part files under `<data-dir>/uploads/` are no longer read.
ALTER TABLE uploads ADD COLUMN hasher_state BYTEA;
ALTER TABLE uploads ADD COLUMN staging TEXT;
UPDATE uploads SET upload_offset = 0;
