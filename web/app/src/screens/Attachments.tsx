/**
 * Attachments: resumable upload with tus (tus-js-client; an interrupted upload continues where
 * it stopped, even after a reload), a progress bar, download, and removal. Downloads of recently
 * opened materials are warmed into the Service Worker's cache, so they open offline too.
 */
import { useState, type ChangeEvent } from 'react';
import { attachmentUrl, describeError, ShelfApiError, type MaterialItem } from '@shelf/sdk';
import { useSync } from '../sync/LibraryVersionSyncProvider';

async function sha256Hex(file: File): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', await file.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** tus-js-client is loaded only when a file is attached, keeping it out of the first paint. */
async function upload(file: File, sha256: string, onProgress: (percent: number) => void): Promise<void> {
  const { Upload } = await import('tus-js-client');
  return new Promise((resolve, reject) => {
    const tus = new Upload(file, {
      endpoint: '/api/uploads',
      metadata: { sha256, filename: file.name },
      headers: { 'X-Shelf-Csrf': '1' },
      chunkSize: 8 * 1024 * 1024,
      retryDelays: [0, 1_000, 3_000, 10_000],
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      onProgress: (sent, total) => onProgress(total > 0 ? Math.floor((100 * sent) / total) : 0),
      onSuccess: () => resolve(),
      onError: (error) => reject(error),
    });
    void tus.findPreviousUploads().then((previous) => {
      if (previous[0]) tus.resumeFromPreviousUpload(previous[0]);
      tus.start();
    });
  });
}

export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function uploadErrorText(error: unknown): string {
  const text = String((error as Error)?.message ?? error);
  if (text.includes('file_too_large')) return 'This file is larger than the server accepts.';
  if (text.includes('quota_exceeded')) return 'This file would exceed your storage space.';
  if (error instanceof ShelfApiError) return describeError(error);
  return 'The upload stopped. Choose the file again to continue where it stopped.';
}

export function Attachments({ item }: { item: MaterialItem }) {
  const { engine } = useSync();
  const [percent, setPercent] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);

  async function choose(event: ChangeEvent<HTMLInputElement>) {
    const file = event.target.files?.[0];
    event.target.value = '';
    if (!file) return;
    setError(null);
    setPercent(0);
    try {
      const sha256 = await sha256Hex(file);
      const known = await fetch(`/api/blobs/${sha256}`, { method: 'HEAD', credentials: 'same-origin' });
      if (!known.ok) await upload(file, sha256, setPercent);
      setPercent(100);
      await engine.attachFile(item.id, { sha256, filename: file.name, contentType: file.type || 'application/octet-stream', size: file.size });
    } catch (caught) {
      setError(uploadErrorText(caught));
    } finally {
      setPercent(null);
    }
  }

  async function detach(attachmentId: string) {
    await engine.detachFile(item.id, attachmentId);
  }

  return (
    <section className="panel" aria-labelledby="attachments-title">
      <h2 id="attachments-title">Attachments</h2>
      {item.attachments.length === 0 && <p className="hint">No files yet.</p>}
      <ul className="attachments">
        {item.attachments.map((attachment) => (
          <li key={attachment.id}>
            <a href={attachmentUrl(item.id, attachment.id)} download={attachment.filename}>
              {attachment.filename}
            </a>
            <span className="hint">{formatSize(attachment.size)}</span>
            <button type="button" className="link" onClick={() => void detach(attachment.id)} aria-label={`Remove ${attachment.filename}`}>
              Remove
            </button>
          </li>
        ))}
      </ul>
      <label htmlFor="attach" className="file-button">
        Attach a file
      </label>
      <input id="attach" type="file" className="visually-hidden" onChange={(event) => void choose(event)} disabled={percent !== null} />
      {percent !== null && (
        <div className="upload">
          <label htmlFor="upload-progress">Uploading…</label>
          <progress id="upload-progress" max={100} value={percent}>
            {percent}%
          </progress>
        </div>
      )}
      {error && <p className="field-error" role="alert">{error}</p>}
    </section>
  );
}
