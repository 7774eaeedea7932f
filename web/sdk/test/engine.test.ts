import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { createShelfClient } from '../src/api/client';
import { SyncEngine } from '../src/engine';

const material = (n: number) => ({ id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`, title: `M${n}`, body: '', tags: [], createdAt: 't', updatedAt: 't', version: n + 1, conflicts: [] });

/** A Shelf server stand-in: a change feed of `count` materials, one version each. */
function fakeServer(count: number, options: { failOnce?: number } = {}) {
  const requests: string[] = [];
  let failed = false;
  const library = count + 1;
  const fetchImpl = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = input instanceof Request ? input : new Request(String(input), init);
    const url = new URL(request.url);
    requests.push(`${request.method} ${url.pathname}${url.search}`);
    if (url.pathname === '/api/library/changes') {
      const since = Number(url.searchParams.get('since'));
      const limit = Number(url.searchParams.get('limit'));
      if (since === options.failOnce && !failed) {
        failed = true;
        throw new TypeError('network connection lost');
      }
      const versions = Array.from({ length: count }, (_, i) => i + 2).filter((v) => v > since).slice(0, limit);
      const changes = versions.map((v) => ({ kind: 'material', id: material(v - 1).id, op: 'upsert', version: v, data: material(v - 1) }));
      const nextSince = versions.at(-1) ?? library;
      const hasMore = nextSince < library;
      return Response.json({ libraryVersion: library, epoch: 'e1', changes, hasMore, nextSince: hasMore ? nextSince : library });
    }
    if (url.pathname === '/api/library/version') return Response.json({ libraryVersion: library, epoch: 'e1' });
    return Response.json({ code: 'service_unavailable', message: 'no streams here' }, { status: 503 });
  };
  return { fetch: fetchImpl as typeof fetch, requests };
}

let n = 0;

describe('sync engine', () => {
  it('shows real progress during a first sync and resumes after a dropped connection, not from 0', async () => {
    const server = fakeServer(6, { failOnce: 3 });
    const engine = new SyncEngine({ userId: `engine-${n++}`, client: createShelfClient({ baseUrl: 'http://shelf.test', fetch: server.fetch }), fetch: server.fetch, feedPageSize: 2 });
    const percents: number[] = [];
    engine.subscribe(() => {
      if (engine.state.syncPercent !== null) percents.push(engine.state.syncPercent);
    });
    await engine.start();
    // The start-up sync fails on the second page; this call runs again once it ended.
    await engine.sync();
    engine.stop();
    const pulls = server.requests.filter((r) => r.includes('/api/library/changes'));
    expect(pulls).toEqual([
      'GET /api/library/changes?since=0&limit=2',
      'GET /api/library/changes?since=3&limit=2',
      'GET /api/library/changes?since=3&limit=2',
      'GET /api/library/changes?since=5&limit=2',
    ]);
    expect(engine.items.size).toBe(6);
    expect(engine.state.status).toBe('synced');
    expect(engine.state.currentVersion).toBe(7);
    // Percent of the way from version 0 to 7: after pages ending at versions 3 and 5.
    expect(percents).toContain(42);
    expect(percents).toContain(71);
  });
});
