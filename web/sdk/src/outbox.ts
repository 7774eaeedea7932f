/**
 * The outbox: local edits waiting for the server, in order, in IndexedDB. An entry leaves it
 * only when a receipt answers for it; one that was sent (`inflight`) when the tab closed is sent
 * again after a reload, which the server's receipts make harmless (`duplicate`). Acknowledged
 * entries go to the journal (the last JOURNAL_KEEP), to be sent again if the server loses them.
 *
 * Mutation ids must never repeat for this device, even after the browser wiped the database:
 * they are `max(last + 1, Date.now() · 1000)`, so a fresh database still starts above every id
 * used before (unless the clock went back by more than the gap — documented in ADR 0005).
 */
import type { ReplicaDB } from './replica';
import type { MutationInput, MutationResultView, NewMutation, OutboxEntry, SyncProblem } from './types';

export const MAX_BATCH = 500;
export const JOURNAL_KEEP = 10_000;

export type { NewMutation };

export function nextMutationId(last: number, now: number): number {
  return Math.max(last + 1, now * 1000);
}

/** Appends edits atomically and returns the stored entries. */
export async function enqueue(db: ReplicaDB, mutations: NewMutation[], now = Date.now()): Promise<OutboxEntry[]> {
  const tx = db.transaction(['outbox', 'meta'], 'readwrite');
  let last = ((await tx.objectStore('meta').get('lastMutationId')) as number | undefined) ?? 0;
  const entries: OutboxEntry[] = [];
  for (const mutation of mutations) {
    last = nextMutationId(last, now);
    const entry = { ...mutation, mutationId: last, state: 'queued', createdAt: now } as OutboxEntry;
    entries.push(entry);
    void tx.objectStore('outbox').put(entry);
  }
  void tx.objectStore('meta').put(last, 'lastMutationId');
  await tx.done;
  return entries;
}

/** The wire form of an entry: the mutation without the outbox's bookkeeping. */
export function toInput(entry: OutboxEntry): MutationInput {
  const { state: _state, createdAt: _createdAt, ...input } = entry;
  return input as MutationInput;
}

/** The next batch to send, oldest first, marked in flight in the same transaction. */
export async function takeBatch(db: ReplicaDB, max = MAX_BATCH): Promise<OutboxEntry[]> {
  const tx = db.transaction('outbox', 'readwrite');
  const batch: OutboxEntry[] = [];
  let cursor = await tx.store.openCursor();
  while (cursor && batch.length < max) {
    const entry = { ...cursor.value, state: 'inflight' as const };
    batch.push(entry);
    void cursor.update(entry);
    cursor = await cursor.continue();
  }
  await tx.done;
  return batch;
}

export async function pendingCount(db: ReplicaDB): Promise<number> {
  return db.count('outbox');
}

/**
 * Sets aside an entry the server refused as a protocol error (400 naming it): it can never
 * apply, so it leaves the outbox and becomes a problem the learner sees.
 */
export async function setAside(db: ReplicaDB, entry: OutboxEntry, message: string, title: string): Promise<SyncProblem> {
  const problem: SyncProblem = { key: `refused-${entry.mutationId}`, kind: 'rejected', materialId: entry.id, title: describeMutation(entry, title), message: `Not saved: the server refused it (${message}).`, createdAt: Date.now() };
  const tx = db.transaction(['outbox', 'problems'], 'readwrite');
  void tx.objectStore('outbox').delete(entry.mutationId);
  void tx.objectStore('problems').put(problem);
  await tx.done;
  return problem;
}

/**
 * Removes every entry the server answered for. Rejections become problems the learner sees
 * (with what was lost), never a silent drop. Returns the problems recorded.
 */
export async function settle(db: ReplicaDB, sent: OutboxEntry[], results: MutationResultView[], titleOf: (id: string) => string): Promise<SyncProblem[]> {
  const byId = new Map(sent.map((entry) => [entry.mutationId, entry]));
  const problems: SyncProblem[] = [];
  const tx = db.transaction(['outbox', 'problems', 'journal'], 'readwrite');
  for (const result of results) {
    const entry = byId.get(result.mutationId);
    if (!entry) continue;
    void tx.objectStore('outbox').delete(entry.mutationId);
    if (result.status === 'rejected' || (result.status === 'duplicate' && result.code)) {
      const problem = rejectionProblem(entry, result, titleOf(entry.id));
      problems.push(problem);
      void tx.objectStore('problems').put(problem);
    } else {
      void tx.objectStore('journal').put({ ...entry, state: 'queued' });
    }
  }
  // Bounded: the oldest leave once there are more than JOURNAL_KEEP.
  let excess = (await tx.objectStore('journal').count()) - JOURNAL_KEEP;
  let cursor = excess > 0 ? await tx.objectStore('journal').openCursor() : null;
  while (cursor && excess-- > 0) {
    void cursor.delete();
    cursor = await cursor.continue();
  }
  await tx.done;
  return problems;
}

/**
 * The server lost history (a new epoch, or a version behind this device's): every acknowledged
 * edit goes back into the outbox, in order under its own id; receipts make what the server kept a
 * duplicate. Returns how many.
 */
export async function requeueJournal(db: ReplicaDB): Promise<number> {
  const tx = db.transaction(['outbox', 'journal'], 'readwrite');
  const entries = await tx.objectStore('journal').getAll();
  for (const entry of entries) void tx.objectStore('outbox').put({ ...entry, state: 'queued' });
  await tx.objectStore('journal').clear();
  await tx.done;
  return entries.length;
}

export function rejectionProblem(entry: OutboxEntry, result: MutationResultView, title: string): SyncProblem {
  const what = describeMutation(entry, title);
  const why = result.code === 'deleted'
    ? 'the material was deleted on another device. Your edit is kept in the server\'s rejected list, so you can recreate it.'
    : result.code === 'validation_failed'
      ? `it was not valid: ${result.message ?? 'check the fields'}.`
      : result.code === 'not_found'
        ? 'the material no longer exists.'
        : `${result.message ?? result.code ?? 'the server refused it'}.`;
  return { key: `rejected-${entry.mutationId}`, kind: 'rejected', materialId: entry.id, title: what, message: `Not saved: ${why}`, createdAt: Date.now() };
}

function describeMutation(entry: OutboxEntry, title: string): string {
  switch (entry.type) {
    case 'material.create': return `New material “${title}”`;
    case 'material.delete': return `Deleting “${title}”`;
    case 'progress.set':
    case 'progress.delete': return `Progress on “${title}”`;
    case 'conflict.resolve': return `Your choice in a conflict on “${title}”`;
    case 'attachment.add': return `A file attached to “${title}”`;
    case 'attachment.remove': return `Removing a file from “${title}”`;
    default: return `Edit of “${title}”`;
  }
}
