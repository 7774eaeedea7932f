/**
 * Query keys and options (TanStack's `queryOptions` factories). Library data comes from the
 * sync engine's in-memory view of IndexedDB, never straight from the network, so these queries
 * never wait for a server; the engine tells the provider exactly which keys changed.
 */
import { queryOptions } from '@tanstack/react-query';
import { request, searchItems, sortForList, type MaterialItem, type SyncEngine } from '@shelf/sdk';
import { client } from '../session';

export const libraryKeys = {
  all: (userId: string) => ['library', userId] as const,
  list: (userId: string) => ['library', userId, 'list'] as const,
  search: (userId: string, query: string) => ['library', userId, 'list', query] as const,
  material: (userId: string, id: string) => ['library', userId, 'material', id] as const,
  devices: (userId: string) => ['devices', userId] as const,
};

export function listQuery(engine: SyncEngine, userId: string, query: string) {
  const read = (): MaterialItem[] => searchItems(sortForList(engine.items.values()), query);
  return queryOptions({
    queryKey: libraryKeys.search(userId, query),
    queryFn: read,
    // Synchronous first render: the engine's items are already in memory (localStorage
    // snapshot, then the replica).
    initialData: read,
    staleTime: Infinity,
    networkMode: 'always',
  });
}

export function materialQuery(engine: SyncEngine, userId: string, id: string) {
  return queryOptions({
    queryKey: libraryKeys.material(userId, id),
    queryFn: (): MaterialItem | null => engine.items.get(id) ?? null,
    staleTime: Infinity,
    networkMode: 'always',
  });
}

export function devicesQuery(userId: string) {
  return queryOptions({
    queryKey: libraryKeys.devices(userId),
    queryFn: () => request(client.GET('/api/devices')),
  });
}
