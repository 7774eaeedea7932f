/**
 * The first screen of the library, kept in localStorage: what the list shows for the newest
 * materials, without bodies. localStorage is read synchronously before IndexedDB has even
 * opened, so the list paints at once; the replica replaces it a few milliseconds later.
 * (The product documents' "localStorage: stores version alongside React Query cache data".)
 */
import type { MaterialItem } from './types';
import { sortForList } from './view';

export const LIST_SNAPSHOT_SIZE = 200;
const key = (userId: string) => `shelf.list.${userId}`;

export function saveListSnapshot(storage: Storage | undefined, userId: string, items: Iterable<MaterialItem>): void {
  try {
    const rows = sortForList(items)
      .slice(0, LIST_SNAPSHOT_SIZE)
      .map((item) => ({ ...item, body: '', attachments: [], conflicts: item.conflicts.length > 0 ? item.conflicts.slice(0, 1).map((c) => ({ ...c, serverValue: '', deviceValue: '' })) : [] }));
    storage?.setItem(key(userId), JSON.stringify(rows));
  } catch {
    // Quota or private mode: the list then paints from IndexedDB, a little later.
  }
}

export function loadListSnapshot(storage: Storage | undefined, userId: string): Map<string, MaterialItem> {
  try {
    const rows = JSON.parse(storage?.getItem(key(userId)) ?? '[]') as MaterialItem[];
    return new Map(rows.map((row) => [row.id, row]));
  } catch {
    return new Map();
  }
}
