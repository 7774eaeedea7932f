import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { createShelfClient } from '../src/api/client';
import { SyncEngine } from '../src/engine';

interface Stored { id: string; title: string; version: number }

/** A Shelf server stand-in with a library, receipts and a backup that can be restored. */
function restorableServer() {
  let state = { version: 1, materials: new Map<string, Stored>(), receipts: new Set<number>() };
  const epoch = 'e1';
  const fetchImpl = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = input instanceof Request ? input : new Request(String(input), init);
    const url = new URL(request.url);
    if (url.pathname === '/api/library/mutations') {
      const body = (await request.json()) as { mutations: { mutationId: number; type: string; id: string; data: { title: string } }[] };
      const results = body.mutations.map((m) => {
        if (state.receipts.has(m.mutationId)) return { mutationId: m.mutationId, status: 'duplicate', libraryVersion: state.version, conflict: [] };
        state.receipts.add(m.mutationId);
        state.version += 1;
        state.materials.set(m.id, { id: m.id, title: m.data.title, version: state.version });
        return { mutationId: m.mutationId, status: 'applied', libraryVersion: state.version, conflict: [] };
      });
      return Response.json({ results, libraryVersion: state.version });
    }
    if (url.pathname === '/api/library/changes') {
      const since = Number(url.searchParams.get('since'));
      if (since > state.version) return Response.json({ code: 'resync_required', message: 'start again from 0' }, { status: 410 });
      const changes = [...state.materials.values()].filter((m) => m.version > since).sort((a, b) => a.version - b.version).map((m) => ({
        kind: 'material', id: m.id, op: 'upsert', version: m.version,
        data: { id: m.id, title: m.title, body: '', tags: [], createdAt: 't', updatedAt: 't', version: m.version, conflicts: [] },
      }));
      return Response.json({ libraryVersion: state.version, epoch, changes, hasMore: false, nextSince: state.version });
    }
    if (url.pathname === '/api/library/version') return Response.json({ libraryVersion: state.version, epoch });
    return Response.json({ code: 'service_unavailable', message: 'no streams here' }, { status: 503 });
  };
  return {
    fetch: fetchImpl as typeof fetch,
    backup: () => ({ version: state.version, materials: new Map(state.materials), receipts: new Set(state.receipts) }),
    restore: (backup: typeof state) => { state = backup; },
    titles: () => [...state.materials.values()].map((m) => m.title).sort(),
  };
}

describe('a server restored from a backup', () => {
  it('gets back the edits this browser had sent after the backup, and nothing twice', async () => {
    const server = restorableServer();
    const engine = new SyncEngine({ userId: 'restore-1', client: createShelfClient({ baseUrl: 'http://shelf.test', fetch: server.fetch }), fetch: server.fetch });
    await engine.start();
    await engine.createMaterial({ title: 'Before the backup' });
    await engine.sync();
    const backup = server.backup();
    await engine.createMaterial({ title: 'After the backup' });
    await engine.createMaterial({ title: 'Also after' });
    await engine.sync();
    expect(engine.state.pendingCount).toBe(0);

    server.restore(backup);
    expect(server.titles()).toEqual(['Before the backup']);
    await engine.sync();
    engine.stop();
    expect(server.titles()).toEqual(['After the backup', 'Also after', 'Before the backup']);
    expect([...engine.items.values()].map((m) => m.title).sort()).toEqual(server.titles());
    expect(engine.state.status).toBe('synced');
    expect(engine.state.pendingCount).toBe(0);
  });
});
