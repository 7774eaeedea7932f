import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { enqueue, nextMutationId, pendingCount, settle, takeBatch } from '../src/outbox';
import { openReplica, readSnapshot } from '../src/replica';
import { buildView } from '../src/view';

let n = 0;
const freshDb = () => openReplica(`outbox-test-${n++}`, () => {});

describe('outbox', () => {
  it('keeps edits in order and applies them on top of the replica', async () => {
    const db = await freshDb();
    await enqueue(db, [{ type: 'material.create', id: 'm1', baseVersion: 1, data: { title: 'Draft', body: '', tags: [] } }], 1_000);
    await enqueue(db, [{ type: 'material.update', id: 'm1', baseVersion: 1, data: { title: 'Final' } }], 1_000);
    const snapshot = await readSnapshot(db);
    const view = buildView(snapshot.materials, snapshot.progress, snapshot.attachments, snapshot.outbox);
    expect(view.get('m1')?.title).toBe('Final');
    expect(view.get('m1')?.pending).toBe(true);
    expect(snapshot.outbox.map((e) => e.mutationId)).toEqual([1_000_000, 1_000_001]);
  });

  it('never reuses a mutation id, even after the database was wiped', () => {
    expect(nextMutationId(5, 1)).toBe(1_000);
    expect(nextMutationId(1_000_000, 1_000)).toBe(1_000_001);
    expect(nextMutationId(0, 2_000)).toBeGreaterThan(nextMutationId(1_000_000, 1_000));
  });

  it('keeps in-flight entries until a receipt answers for them (replayed after a reload)', async () => {
    const db = await freshDb();
    await enqueue(db, [{ type: 'material.create', id: 'm1', baseVersion: 1, data: { title: 'A' } }]);
    const first = await takeBatch(db);
    expect(first[0]?.state).toBe('inflight');
    // The response was lost (tab closed): the entry is still there and is sent again.
    const again = await takeBatch(db);
    expect(again.map((e) => e.mutationId)).toEqual(first.map((e) => e.mutationId));
    await settle(db, again, [{ mutationId: again[0]!.mutationId, status: 'duplicate', libraryVersion: 2, conflict: [] }], () => 'A');
    expect(await pendingCount(db)).toBe(0);
  });

  it('surfaces rejected edits as problems instead of dropping them silently', async () => {
    const db = await freshDb();
    const [entry] = await enqueue(db, [{ type: 'material.update', id: 'm9', baseVersion: 3, data: { body: 'mine' } }]);
    const problems = await settle(db, [entry!], [{ mutationId: entry!.mutationId, status: 'rejected', libraryVersion: 4, code: 'deleted', message: 'deleted', conflict: [] }], () => 'Notes');
    expect(problems).toHaveLength(1);
    expect(problems[0]?.message).toContain('deleted on another device');
    const snapshot = await readSnapshot(db);
    expect(snapshot.outbox).toHaveLength(0);
    expect(snapshot.problems.map((p) => p.title)).toEqual(['Edit of “Notes”']);
  });

  it('rolls an optimistic edit back when it is rejected', async () => {
    const db = await freshDb();
    const replicaRow = { id: 'm1', title: 'Server', body: '', tags: [], createdAt: 'x', updatedAt: 'x', version: 2, conflicts: [] };
    const [entry] = await enqueue(db, [{ type: 'material.update', id: 'm1', baseVersion: 2, data: { title: '' } }]);
    expect(buildView([replicaRow], [], [], [entry!]).get('m1')?.title).toBe('');
    await settle(db, [entry!], [{ mutationId: entry!.mutationId, status: 'rejected', libraryVersion: 2, code: 'validation_failed', message: 'title is empty', conflict: [] }], () => 'Server');
    const snapshot = await readSnapshot(db);
    expect(buildView([replicaRow], [], [], snapshot.outbox).get('m1')?.title).toBe('Server');
  });
});

describe('protocol errors', () => {
  it('name the mutation to set aside, so the rest of the outbox still goes', async () => {
    const { refusedEntry } = await import('../src/engine');
    const { ShelfApiError } = await import('../src/api/client');
    const batch = ['a', 'b', 'c'];
    expect(refusedEntry(new ShelfApiError(400, 'validation_failed', 'mutations[1] (17): title: must not be empty'), batch)).toBe('b');
    expect(refusedEntry(new ShelfApiError(400, 'invalid_json', 'bad body'), ['only'])).toBe('only');
    expect(refusedEntry(new ShelfApiError(400, 'invalid_json', 'bad body'), batch)).toBeUndefined();
    expect(refusedEntry(new ShelfApiError(503, 'service_unavailable', 'mutations[0]'), batch)).toBeUndefined();
  });
});
