import { describe, expect, it } from 'vitest';
import { getLatestCachedVersion, shouldRefreshCache, updateCachedVersion, type VersionStores } from '../src/version-manager';
import type { CachedVersion } from '../src/types';

function memoryStores(initialDb: CachedVersion | null = null) {
  const map = new Map<string, string>();
  let db = initialDb;
  const stores: VersionStores = {
    local: { getItem: (k) => map.get(k) ?? null, setItem: (k, v) => void map.set(k, v), removeItem: (k) => void map.delete(k) },
    readIndexedDb: async () => db,
    writeIndexedDb: async (v) => void (db = v),
  };
  return { stores, wipeDb: () => (db = null), map };
}

describe('version manager', () => {
  it('keeps the version in localStorage and IndexedDB', async () => {
    const { stores, map } = memoryStores();
    await updateCachedVersion(stores, 'u1', { libraryVersion: 7, epoch: 'e' });
    const cached = await getLatestCachedVersion(stores, 'u1');
    expect(cached.latest).toEqual({ libraryVersion: 7, epoch: 'e' });
    expect(cached.local).toEqual(cached.indexedDb);
    expect(cached.indexedDbLost).toBe(false);
    expect(map.get('shelf.libraryVersion.u1')).toBe('{"libraryVersion":7,"epoch":"e"}');
  });

  it('notices an evicted IndexedDB when localStorage remembers more', async () => {
    const { stores, wipeDb } = memoryStores();
    await updateCachedVersion(stores, 'u1', { libraryVersion: 7, epoch: 'e' });
    wipeDb();
    const cached = await getLatestCachedVersion(stores, 'u1');
    expect(cached.indexedDbLost).toBe(true);
    expect(cached.latest).toEqual({ libraryVersion: 7, epoch: 'e' });
  });

  it('trusts IndexedDB (written with the data) over localStorage', async () => {
    const { stores } = memoryStores({ libraryVersion: 9, epoch: 'e' });
    stores.local?.setItem('shelf.libraryVersion.u1', '{"libraryVersion":5,"epoch":"e"}');
    expect((await getLatestCachedVersion(stores, 'u1')).latest?.libraryVersion).toBe(9);
  });

  it('ignores a corrupted localStorage entry', async () => {
    const { stores } = memoryStores();
    stores.local?.setItem('shelf.libraryVersion.u1', '{nope');
    expect((await getLatestCachedVersion(stores, 'u1')).latest).toBeNull();
  });

  it('refreshes when the server is ahead, the epoch changed, or nothing is cached', () => {
    const server = { libraryVersion: 10, epoch: 'e' };
    expect(shouldRefreshCache(null, server)).toBe(true);
    expect(shouldRefreshCache({ libraryVersion: 9, epoch: 'e' }, server)).toBe(true);
    expect(shouldRefreshCache({ libraryVersion: 10, epoch: 'e' }, server)).toBe(false);
    expect(shouldRefreshCache({ libraryVersion: 12, epoch: 'old' }, server)).toBe(true);
    expect(shouldRefreshCache({ libraryVersion: 12, epoch: 'e' }, server)).toBe(true); // a restored server
  });
});
