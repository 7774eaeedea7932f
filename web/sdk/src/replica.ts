/**
 * The IndexedDB replica of one user's library (idb): materials, progress and attachments as the
 * change feed last described them, the feed cursor, the outbox and the problems to show.
 *
 * One database per user (`shelf-<userId>`), so a second learner on the same browser never sees
 * the first one's library. Every feed page is written in one transaction together with the
 * cursor and cached version, so an interrupted first sync resumes at the last whole page.
 */
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import type { AttachmentView, CachedVersion, ChangeView, MaterialFields, OutboxEntry, ProgressView, SyncProblem } from './types';

/** Where the feed stands: `nextSince` to ask from, `target` the version the sync aims for. */
export interface FeedCursor {
  nextSince: number;
  epoch: string;
  /** The library version when this pass started, for the percentage of a long first sync. */
  startedFrom: number;
  target: number;
}

interface ShelfDB extends DBSchema {
  materials: { key: string; value: MaterialFields };
  progress: { key: string; value: ProgressView };
  attachments: { key: string; value: AttachmentView; indexes: { materialId: string } };
  outbox: { key: number; value: OutboxEntry };
  /** Edits the server acknowledged, the last JOURNAL_KEEP, to send again if it loses them. */
  journal: { key: number; value: OutboxEntry };
  problems: { key: string; value: SyncProblem };
  meta: { key: string; value: unknown };
}

export type ReplicaDB = IDBPDatabase<ShelfDB>;

export const databaseName = (userId: string) => `shelf-${userId}`;

/**
 * Opens (creating if needed) the user's database. `onClosed` fires when the browser closes the
 * connection behind our back (Safari does this to background tabs; storage eviction does it too).
 */
export function openReplica(userId: string, onClosed: () => void): Promise<ReplicaDB> {
  return openDB<ShelfDB>(databaseName(userId), 2, {
    upgrade(db, oldVersion) {
      if (oldVersion < 1) {
        db.createObjectStore('materials', { keyPath: 'id' });
        db.createObjectStore('progress', { keyPath: 'materialId' });
        db.createObjectStore('attachments', { keyPath: 'id' }).createIndex('materialId', 'materialId');
        db.createObjectStore('outbox', { keyPath: 'mutationId' });
        db.createObjectStore('problems', { keyPath: 'key' });
        db.createObjectStore('meta');
      }
      if (oldVersion < 2) db.createObjectStore('journal', { keyPath: 'mutationId' });
    },
    terminated: onClosed,
    // Another context deletes or upgrades the database (a "clear site data", our own logout in
    // another tab): let it proceed, then treat it like a closed connection.
    blocking(_current, _blocked, event) {
      (event.target as IDBDatabase).close();
      onClosed();
    },
  });
}

export interface ReplicaSnapshot {
  materials: MaterialFields[];
  progress: ProgressView[];
  attachments: AttachmentView[];
  outbox: OutboxEntry[];
  problems: SyncProblem[];
  version: CachedVersion | null;
}

/** Everything a tab needs to render, in one read transaction. */
export async function readSnapshot(db: ReplicaDB): Promise<ReplicaSnapshot> {
  const tx = db.transaction(['materials', 'progress', 'attachments', 'outbox', 'problems', 'meta'], 'readonly');
  const [materials, progress, attachments, outbox, problems, version] = await Promise.all([
    tx.objectStore('materials').getAll(),
    tx.objectStore('progress').getAll(),
    tx.objectStore('attachments').getAll(),
    tx.objectStore('outbox').getAll(),
    tx.objectStore('problems').getAll(),
    tx.objectStore('meta').get('version') as Promise<CachedVersion | undefined>,
  ]);
  await tx.done;
  return { materials, progress, attachments, outbox, problems, version: version ?? null };
}

export async function readCursor(db: ReplicaDB): Promise<FeedCursor | null> {
  return ((await db.get('meta', 'cursor')) as FeedCursor | undefined) ?? null;
}

export async function writeCursor(db: ReplicaDB, cursor: FeedCursor): Promise<void> {
  await db.put('meta', cursor, 'cursor');
}

/**
 * Applies one feed page, its cursor and the version it brings, atomically. Returns the ids of
 * the materials whose data changed, so only those queries are invalidated.
 */
export async function applyPage(db: ReplicaDB, changes: ChangeView[], cursor: FeedCursor, version: CachedVersion): Promise<Set<string>> {
  const tx = db.transaction(['materials', 'progress', 'attachments', 'meta'], 'readwrite');
  const touched = new Set<string>();
  for (const change of changes) {
    const upsert = change.op === 'upsert' && change.data != null;
    if (change.kind === 'material') {
      touched.add(change.id);
      if (upsert) void tx.objectStore('materials').put(change.data as unknown as MaterialFields);
      else void tx.objectStore('materials').delete(change.id);
    } else if (change.kind === 'progress') {
      touched.add(change.id);
      if (upsert) void tx.objectStore('progress').put(change.data as unknown as ProgressView);
      else void tx.objectStore('progress').delete(change.id);
    } else if (change.kind === 'attachment') {
      const data = change.data as unknown as AttachmentView | null;
      if (data) touched.add(data.materialId);
      if (upsert && data) void tx.objectStore('attachments').put(data);
      else {
        const old = await tx.objectStore('attachments').get(change.id);
        if (old) touched.add(old.materialId);
        void tx.objectStore('attachments').delete(change.id);
      }
    }
  }
  void tx.objectStore('meta').put(cursor, 'cursor');
  void tx.objectStore('meta').put(version, 'version');
  await tx.done;
  return touched;
}

/** Drops the library (not the outbox): the server said the feed no longer covers our cursor. */
export async function clearLibrary(db: ReplicaDB): Promise<void> {
  const tx = db.transaction(['materials', 'progress', 'attachments', 'meta'], 'readwrite');
  await Promise.all([
    tx.objectStore('materials').clear(),
    tx.objectStore('progress').clear(),
    tx.objectStore('attachments').clear(),
    tx.objectStore('meta').delete('cursor'),
    tx.objectStore('meta').delete('version'),
  ]);
  await tx.done;
}

export async function putProblem(db: ReplicaDB, problem: SyncProblem): Promise<void> {
  await db.put('problems', problem);
}

export async function deleteProblem(db: ReplicaDB, key: string): Promise<void> {
  await db.delete('problems', key);
}
