/**
 * The version manager of the product documents: `{libraryVersion, epoch}` kept in localStorage
 * (synchronous, read before anything else at start-up) and in IndexedDB (written with the
 * replica, so it always matches what the replica holds). Both are compared at start-up and
 * when the tab regains focus or visibility.
 *
 * Disagreement is information: localStorage ahead of IndexedDB with the same epoch means the
 * browser dropped or rolled back the database (eviction); the replica then resyncs.
 */
import type { CachedVersion } from './types';

export interface VersionStores {
  /** localStorage (or any Storage); absent in workers. */
  local?: Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>;
  /** Reads and writes the `version` record of the replica database. */
  readIndexedDb(): Promise<CachedVersion | null>;
  writeIndexedDb(version: CachedVersion): Promise<void>;
  /** The server version a push (or a periodic check) recorded while the app was closed. */
  readPushed?(): Promise<CachedVersion | null>;
}

export const localKey = (userId: string) => `shelf.libraryVersion.${userId}`;

export function readLocalVersion(stores: VersionStores, userId: string): CachedVersion | null {
  try {
    const raw = stores.local?.getItem(localKey(userId));
    if (!raw) return null;
    const parsed = JSON.parse(raw) as Partial<CachedVersion>;
    return typeof parsed.libraryVersion === 'number' && typeof parsed.epoch === 'string'
      ? { libraryVersion: parsed.libraryVersion, epoch: parsed.epoch }
      : null;
  } catch {
    // Unreadable (private mode, corrupted JSON): same as no cached version — resync.
    return null;
  }
}

export interface CachedVersions {
  /** The version the replica can be trusted to hold (IndexedDB's, else localStorage's). */
  latest: CachedVersion | null;
  local: CachedVersion | null;
  indexedDb: CachedVersion | null;
  /** localStorage says we had more than IndexedDB holds: the database was evicted or reset. */
  indexedDbLost: boolean;
  /** A version the Service Worker learned of (Web Push) that the replica does not hold yet. */
  serverAhead: CachedVersion | null;
}

/** Reads both copies and says which one to trust. */
export async function getLatestCachedVersion(stores: VersionStores, userId: string): Promise<CachedVersions> {
  const local = readLocalVersion(stores, userId);
  const indexedDb = await stores.readIndexedDb();
  const indexedDbLost =
    local !== null && (indexedDb === null || (indexedDb.epoch === local.epoch && indexedDb.libraryVersion < local.libraryVersion));
  // The replica's own record wins: it was written in the same transaction as the data.
  const latest = indexedDb ?? local;
  const pushed = (await stores.readPushed?.()) ?? null;
  const serverAhead = pushed && serverIsAhead(latest, pushed) ? pushed : null;
  return { latest, local, indexedDb, indexedDbLost, serverAhead };
}

/**
 * True when the server has something the cache lacks, its database was replaced (epoch), or it
 * is behind the cache: it lost history this device saw (a restored backup), and the sync that
 * follows sends again what this device holds (ADR 0005).
 */
export function shouldRefreshCache(cached: CachedVersion | null, server: CachedVersion): boolean {
  if (cached === null) return true;
  if (cached.epoch !== server.epoch) return true;
  return server.libraryVersion !== cached.libraryVersion;
}

/** True when `server` (a version a push announced) is newer than what the cache holds. */
export function serverIsAhead(cached: CachedVersion | null, server: CachedVersion): boolean {
  return cached === null || cached.epoch !== server.epoch || server.libraryVersion > cached.libraryVersion;
}

/** Records a version in both places; IndexedDB first, so localStorage never runs ahead of it. */
export async function updateCachedVersion(stores: VersionStores, userId: string, version: CachedVersion, options: { indexedDbWritten?: boolean } = {}): Promise<void> {
  if (!options.indexedDbWritten) await stores.writeIndexedDb(version);
  writeLocalVersion(stores, userId, version);
}

export function writeLocalVersion(stores: VersionStores, userId: string, version: CachedVersion): void {
  try {
    stores.local?.setItem(localKey(userId), JSON.stringify(version));
  } catch {
    // Quota or private mode: localStorage is only the fast copy; IndexedDB keeps the truth.
  }
}

export function forgetCachedVersion(stores: VersionStores, userId: string): void {
  stores.local?.removeItem(localKey(userId));
}
